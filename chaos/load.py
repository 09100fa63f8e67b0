"""The load that flows while the faults hit: report requests on Kafka and signed BKM
confirmations over HTTP to the two payment-notifiers, 30% of them replayed.

Both are spread over `duration_s` and keep trying through every fault, as their real
senders would: a request whose produce fails is sent again (the requester must not
submit it twice), a confirmation whose post fails or is answered 5xx is posted again to
the other replica (BKM retries). Every answer's exact bytes are kept: a replay must get
the very bytes of the first answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.events import REPORTS_REQUESTED, ReportRequested
from services.common.bkm.signature import BkmSigner
from services.common.kafka.broker import encode_event
from services.common.signing.certs import load_private_key
from services.sandbox.bkm.messages import PayOptions, signed_fields

GIVE_UP_S = 600.0  # a sender stops retrying after this long


def report_requests(run: str, n: int) -> list[ReportRequested]:
    return [
        ReportRequested(
            request_id=f"chaos-{run}-{i:04d}",
            member="TIB",
            sender="TIB991",
            process_date=date(2025, 5, 5),
            file_type="json" if i % 2 == 0 else "csv",
        )
        for i in range(n)
    ]


async def new_producer(bootstrap: str, max_request_size: int = 1_048_576) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
        max_request_size=max_request_size,
    )
    deadline = time.monotonic() + GIVE_UP_S
    while True:
        try:
            await producer.start()
            return producer
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def send_retrying(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes,
    *,
    key: bytes | None = None,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> tuple[int, int]:
    """(partition, offset) once the cluster took the record; retried through outages."""
    deadline = time.monotonic() + GIVE_UP_S
    while True:
        try:
            md = await producer.send_and_wait(
                topic, value, key=key, partition=partition, headers=headers or []
            )
            return md.partition, md.offset
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def publish_reports(
    bootstrap: str, requests: list[ReportRequested], duration_s: float, sent: list[str]
) -> None:
    """Each request once (again only when its produce failed), spread over duration_s."""
    producer = await new_producer(bootstrap)
    try:
        gap = duration_s / max(1, len(requests))
        for ev in requests:
            await send_retrying(
                producer,
                REPORTS_REQUESTED.name,
                encode_event(REPORTS_REQUESTED, ev),
                key=ev.kafka_key(),
                headers=[("x-event-type", b"ReportRequested")],
            )
            sent.append(ev.request_id)
            await asyncio.sleep(gap)
    finally:
        await producer.stop()


@dataclass
class Answer:
    url: str
    status: int | None  # None: no answer (connection refused, reset, timeout)
    body: bytes = b""
    replay: bool = False


@dataclass
class Confirmation:
    token: str
    outcome: str
    replays: int
    answers: list[Answer] = field(default_factory=list)

    @property
    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    @property
    def answered(self) -> bool:
        return bool(self.ok)

    @property
    def mismatches(self) -> int:
        """200 answers whose bytes differ from the first 200 answer."""
        ok = self.ok
        return sum(a.body != ok[0].body for a in ok[1:])

    @property
    def refused(self) -> int:
        return sum(a.status is not None and 400 <= a.status < 500 for a in self.answers)


def plan_confirmations(
    run: str, n: int, replay_rate: float, rng: random.Random
) -> list[Confirmation]:
    """round(n * replay_rate) of them, chosen at random, are posted more than once: one to
    three extra identical posts."""
    replayed = set(rng.sample(range(n), round(n * replay_rate)))
    out = []
    for i in range(n):
        replays = rng.randint(1, 3) if i in replayed else 0
        outcome = "cancel" if i % 10 == 9 else "success"
        out.append(Confirmation(f"chaos-{run}-{i:04d}", outcome, replays))
    return out


class ConfirmationLoad:
    def __init__(self, urls: list[str], bkm_private: Path, rng: random.Random) -> None:
        self.urls = [u + "/bkm/confirmation" for u in urls]
        self.signer = BkmSigner(load_private_key(bkm_private))
        self.rng = rng
        self.gate = asyncio.Semaphore(8)
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self, confirmations: list[Confirmation], duration_s: float) -> None:
        gap = duration_s / max(1, len(confirmations))
        limits = httpx.Limits(max_connections=32, keepalive_expiry=2.0)
        async with httpx.AsyncClient(timeout=20.0, limits=limits) as client:
            for i, c in enumerate(confirmations):
                self.tasks.append(asyncio.create_task(self._one(client, c, i)))
                await asyncio.sleep(gap)
            await asyncio.gather(*self.tasks)

    async def _one(self, client: httpx.AsyncClient, c: Confirmation, i: int) -> None:
        amount = Decimal(f"{10 + i % 90}.{i % 100:02d}")
        # Card data planted in posMessage (a broken BKM): the notifier must strip it.
        opts = PayOptions(outcome=c.outcome, amount=amount, leak_card_data=True)
        fields = signed_fields(c.token, opts, self.signer, "Europe/Istanbul")
        async with self.gate:
            await self._post_until_answered(client, c, fields, i)
        for k in range(c.replays):
            await asyncio.sleep(self.rng.uniform(0.5, 20.0))
            async with self.gate:
                await self._post_until_answered(client, c, fields, i + k + 1)

    async def _post_until_answered(
        self, client: httpx.AsyncClient, c: Confirmation, fields: dict[str, str], turn: int
    ) -> None:
        deadline = time.monotonic() + GIVE_UP_S
        while time.monotonic() < deadline:
            url = self.urls[turn % len(self.urls)]
            turn += 1
            try:
                resp = await client.post(url, data=fields)
                answer = Answer(
                    url,
                    resp.status_code,
                    resp.content,
                    resp.headers.get("x-kopru-replay") == "true",
                )
            except httpx.HTTPError:
                answer = Answer(url, None)
            c.answers.append(answer)
            if answer.status is not None and answer.status < 500:
                return
            await asyncio.sleep(0.5)
