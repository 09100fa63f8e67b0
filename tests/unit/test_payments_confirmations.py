"""The confirmation decision (services/payment_notifier/confirmations.py) with a real SQLite
store and a recording publisher: once per token, replays, conflicts, signatures, ts."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from schemas.events import Event, PaymentConfirmed, PaymentFailed
from services.common.bkm.signature import BkmSigner, BkmVerifier
from services.common.observability.logging import configure_logging
from services.common.settings import LogSettings, StoreSettings
from services.common.signing.certs import generate_rsa_key
from services.common.stores.factory import open_payment_store
from services.common.stores.payments import CONFIRMED, PaymentStore
from services.payment_notifier.confirmations import (
    ConfirmationDeps,
    handle_return,
    outcome_event_id,
)
from services.payment_notifier.outbox_relay import OutboxRelay, publishing
from services.sandbox.bkm.messages import TEST_CVC, TEST_PAN, PayOptions, signed_fields

ZONE = "Europe/Istanbul"


@pytest.fixture(scope="module")
def bkm_key() -> rsa.RSAPrivateKey:
    return generate_rsa_key(2048)


class Recorder:
    """The publisher: events as sent. ``got()`` first lets the outbox relay publish what
    the store holds (the service's relay does it when woken)."""

    def __init__(self, store: PaymentStore | None = None) -> None:
        self.events: list[Event] = []
        self.store = store

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    async def got(self) -> list[Event]:
        if self.store is not None:
            await OutboxRelay(self.store, publishing(self)).drain()
        return self.events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[PaymentStore]:
    s = open_payment_store(StoreSettings(url=f"sqlite:///{tmp_path}/p.db"))
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def published(store: PaymentStore) -> Recorder:
    return Recorder(store)


@pytest.fixture
def deps(bkm_key: rsa.RSAPrivateKey, store: PaymentStore, published: Recorder) -> ConfirmationDeps:
    return ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()),
        store=store,
        publish=published,
        ts_tolerance_s=300,
        ts_zone=ZONE,
    )


def fields(key: rsa.RSAPrivateKey, token: str = "tok-1", **opts: object) -> dict[str, str]:
    return signed_fields(token, PayOptions(**opts), BkmSigner(key), ZONE)  # type: ignore[arg-type]


async def test_first_confirmation_publishes_once_and_replays_get_the_same_answer(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey
) -> None:
    f = fields(bkm_key)
    first = await handle_return(f, "confirmation", deps)
    replays = [await handle_return(f, "confirmation", deps) for _ in range(3)]
    redirect = await handle_return(f, "success_redirect", deps)
    assert first.status == 200 and not first.replay
    assert first.json()["status"] == CONFIRMED
    assert first.json()["event_id"] == str(outcome_event_id("tok-1"))
    for r in [*replays, redirect]:
        assert (r.status, r.body, r.replay) == (200, first.body, True)
    assert len(await published.got()) == 1
    event = (await published.got())[0]
    assert isinstance(event, PaymentConfirmed)
    assert event.source == "confirmation" and not event.reconciled
    assert event.pos_result["PosResponse"]["Amount"] == "100,00"


async def test_concurrent_confirmations_for_one_token_publish_once(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey
) -> None:
    f = fields(bkm_key, "tok-c")
    replies = await asyncio.gather(*(handle_return(f, "confirmation", deps) for _ in range(10)))
    assert {r.status for r in replies} == {200}
    assert len({r.body for r in replies}) == 1
    assert sum(not r.replay for r in replies) == 1
    assert len(await published.got()) == 1


async def test_bad_signature_is_refused_and_nothing_is_stored(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    reply = await handle_return(fields(bkm_key, "tok-bad", tamper=True), "confirmation", deps)
    other_key = generate_rsa_key(2048)
    forged = await handle_return(fields(other_key, "tok-forged"), "confirmation", deps)
    assert reply.status == 400 and "signature" in reply.json()["error"]
    assert forged.status == 400
    assert await store.get("tok-bad") is None and await store.get("tok-forged") is None
    assert (await published.got()) == []


async def test_stale_ts_is_refused_with_the_skew(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    reply = await handle_return(fields(bkm_key, "tok-old", stale_s=900), "confirmation", deps)
    assert reply.status == 400
    assert "Not Synchronized" in reply.json()["error"]
    assert re.search(r"ts is 9\d\d s from our clock", reply.json()["error"])
    assert await store.get("tok-old") is None and (await published.got()) == []


async def test_altered_amount_under_a_known_token_is_a_conflict(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey
) -> None:
    await handle_return(fields(bkm_key, "tok-a"), "confirmation", deps)
    altered = fields(bkm_key, "tok-a", amount=Decimal("1.00"))
    reply = await handle_return(altered, "confirmation", deps)
    assert reply.status == 409 and reply.json()["status"] == CONFIRMED
    assert len(await published.got()) == 1


async def test_late_failure_never_overwrites_a_confirmed_payment(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    await handle_return(fields(bkm_key, "tok-l"), "confirmation", deps)
    late = await handle_return(fields(bkm_key, "tok-l", outcome="cancel"), "cancel_redirect", deps)
    assert late.status == 409
    row = await store.get("tok-l")
    assert row is not None and row.state == CONFIRMED
    assert len(await published.got()) == 1


async def test_cancel_first_wins_and_publishes_a_failure(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey
) -> None:
    cancel = fields(bkm_key, "tok-x", outcome="cancel", reason="3D failed")
    first = await handle_return(cancel, "cancel_redirect", deps)
    success = await handle_return(fields(bkm_key, "tok-x"), "confirmation", deps)
    assert first.status == 200 and first.json()["status"] == "failed"
    assert success.status == 409
    assert len(await published.got()) == 1
    event = (await published.got())[0]
    assert isinstance(event, PaymentFailed) and event.reason == "3D failed"


async def test_bad_redirect_signature_is_advisory_after_a_verified_confirmation(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey
) -> None:
    confirmed = await handle_return(fields(bkm_key, "tok-r"), "confirmation", deps)
    bad = await handle_return(fields(bkm_key, "tok-r", tamper=True), "success_redirect", deps)
    unknown = await handle_return(fields(bkm_key, "tok-u", tamper=True), "success_redirect", deps)
    assert bad.status == 200 and "advisory" in bad.json()
    assert bad.json()["event_id"] == confirmed.json()["event_id"]
    assert unknown.status == 400
    assert len(await published.got()) == 1


async def test_card_data_in_pos_message_is_never_stored_or_published(
    deps: ConfirmationDeps, published: Recorder, bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    reply = await handle_return(
        fields(bkm_key, "tok-pan", leak_card_data=True), "confirmation", deps
    )
    assert reply.status == 200
    row = await store.get("tok-pan")
    assert row is not None
    stored = json.dumps([row.event, row.answer, row.fingerprint])
    sent = (await published.got())[0].model_dump_json()
    for text in (stored, sent):
        assert TEST_PAN not in text and f'"{TEST_CVC}"' not in text
        assert "12/29" not in text and "AYSE" not in text


async def test_missing_fields_and_cancel_without_reason_are_4xx(
    deps: ConfirmationDeps, bkm_key: rsa.RSAPrivateKey
) -> None:
    assert (await handle_return({"t": "x"}, "confirmation", deps)).status == 400
    no_r = fields(bkm_key, "tok-n")
    assert (await handle_return(no_r, "cancel_redirect", deps)).status == 400


async def test_skew_inside_tolerance_is_accepted(
    deps: ConfirmationDeps, bkm_key: rsa.RSAPrivateKey
) -> None:
    deps.clock = lambda: datetime.now(UTC)
    reply = await handle_return(fields(bkm_key, "tok-s", stale_s=120), "confirmation", deps)
    assert reply.status == 200


class Down(Recorder):
    """A publisher whose broker is down."""

    async def __call__(self, event: Event) -> None:
        raise ConnectionError("broker down")


async def test_publish_failure_still_answers_and_the_relay_publishes_the_same_event(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    deps = ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=Down(), lease_s=0.05
    )
    reply = await handle_return(fields(bkm_key, "tok-down"), "confirmation", deps)
    assert reply.status == 200  # stored first: the answer does not wait for Kafka
    row = await store.get("tok-down")
    assert row is not None and not row.published
    assert (
        await OutboxRelay(store, publishing(Down()), lease_s=0.05).drain() == 0
    )  # broker still down
    await asyncio.sleep(0.1)  # that relay's lease expires (as if it had crashed)
    relay = Recorder()
    assert await OutboxRelay(store, publishing(relay)).drain() == 1
    assert [e.event_id for e in relay.events] == [outcome_event_id("tok-down")]
    row = await store.get("tok-down")
    assert row is not None and row.published
    assert await store.take_unpublished("relay-2", 30) == []


async def test_a_pass_whose_publishes_fail_logs_one_line_not_one_per_row(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    deps = ConfirmationDeps(verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=Down())
    for i in range(7):
        await handle_return(fields(bkm_key, f"tok-f{i}"), "confirmation", deps)
    logs = io.StringIO()
    configure_logging(LogSettings(level="INFO", format="json"), stream=logs)
    try:
        assert await OutboxRelay(store, publishing(Down())).drain() == 0
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    failed = [line for line in lines if "publish" in line["event"] and "failed" in line["event"]]
    assert len(failed) == 1, failed
    assert failed[0]["failed"] == failed[0]["of"] == 7
    assert failed[0]["error"] == "broker down" and len(failed[0]["bkm_t"]) == 5


async def test_a_publish_that_outlasts_the_lease_keeps_it_and_is_never_published_twice(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    """A leader election or cluster outage holds a publish for longer than the lease
    (the chaos run's 'leases taken over before marking', then the same event twice): the
    waiting relay renews its lease, so a second replica's relay finds nothing to take."""
    release = asyncio.Event()

    class Slow(Recorder):
        async def __call__(self, event: Event) -> None:
            await release.wait()  # the broker elects a leader meanwhile
            self.events.append(event)

    deps = ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=Recorder(), lease_s=0.0
    )
    reply = await handle_return(fields(bkm_key, "tok-slow"), "confirmation", deps)
    assert reply.status == 200
    slow = Slow()
    waiting = asyncio.create_task(OutboxRelay(store, publishing(slow), lease_s=0.3).drain())
    other = Recorder()
    for _ in range(6):  # 1.2 s: four lease lengths
        await asyncio.sleep(0.2)
        assert await OutboxRelay(store, publishing(other), lease_s=0.3).drain() == 0
    release.set()
    assert await waiting == 1
    assert [e.event_id for e in slow.events] == [outcome_event_id("tok-slow")]
    assert other.events == []
    row = await store.get("tok-slow")
    assert row is not None and row.published


async def test_the_relay_marks_only_what_the_cluster_acknowledged(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    """The relay hands every event to the producer, then awaits the acknowledgements
    together: a record the cluster refuses (its acknowledgement raises) stays unpublished
    and is taken again; the acknowledged one is marked; an acknowledgement that waits
    keeps the lease like a publish that waits."""
    deps = ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=Recorder(), lease_s=0.0
    )
    for token in ("tok-ack", "tok-nack"):
        assert (await handle_return(fields(bkm_key, token), "confirmation", deps)).status == 200
    loop = asyncio.get_running_loop()

    class Producer:
        """Enqueues at once; the acknowledgements come when the test settles them."""

        def __init__(self) -> None:
            self.events: list[Event] = []
            self.acks: dict[str, asyncio.Future[None]] = {}

        async def __call__(self, event: Event) -> asyncio.Future[None]:
            self.events.append(event)
            ack: asyncio.Future[None] = loop.create_future()
            self.acks[getattr(event, "token", "")] = ack
            return ack

    producer = Producer()
    waiting = asyncio.create_task(OutboxRelay(store, publishing(producer), lease_s=0.3).drain())
    other = Recorder()
    for _ in range(3):  # 0.6 s: two lease lengths, the acknowledgements still pending
        await asyncio.sleep(0.2)
        assert await OutboxRelay(store, publishing(other), lease_s=0.3).drain() == 0
    assert sorted(producer.acks) == ["tok-ack", "tok-nack"]  # both enqueued before any ack
    producer.acks["tok-ack"].set_result(None)
    producer.acks["tok-nack"].set_exception(ConnectionError("NOT_ENOUGH_REPLICAS"))
    assert await waiting == 1
    acked, nacked = await store.get("tok-ack"), await store.get("tok-nack")
    assert acked is not None and acked.published
    assert nacked is not None and not nacked.published
    assert other.events == []
    await asyncio.sleep(0.35)  # the failed record's lease lapses: it is taken again
    assert await OutboxRelay(store, publishing(other)).drain() == 1
    assert [getattr(e, "token", None) for e in other.events] == ["tok-nack"]


async def test_a_recorded_outcome_is_handed_to_its_relay_and_released_at_stop(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    """The handler records under its process's relay's lease and hands the row over: that
    relay publishes it on its next pass without taking it (its take runs only every
    interval), no other relay can take it meanwhile; a relay that stops releases what it
    still holds to the others at once."""
    mine, others = Recorder(), Recorder()
    relay = OutboxRelay(store, publishing(mine), interval_s=3600)
    assert await relay.drain() == 0  # its first pass took the (empty) backlog
    deps = ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=mine, relay=relay
    )
    assert (await handle_return(fields(bkm_key, "tok-hand"), "confirmation", deps)).status == 200
    row = await store.get("tok-hand")
    assert row is not None and not row.published and (row.owner or "").startswith(relay.owner)
    assert await OutboxRelay(store, publishing(others)).drain() == 0  # leased to the relay
    assert await relay.drain() == 1  # handed over: no take needed
    assert [e.event_id for e in mine.events] == [outcome_event_id("tok-hand")]
    row = await store.get("tok-hand")
    assert row is not None and row.published
    assert (await handle_return(fields(bkm_key, "tok-left"), "confirmation", deps)).status == 200
    await relay.release()  # the service stops before its relay's next pass
    await asyncio.sleep(0.01)
    assert await OutboxRelay(store, publishing(others)).drain() == 1
    assert [e.event_id for e in others.events] == [outcome_event_id("tok-left")]


async def test_rows_beyond_the_relays_memory_bound_are_published_by_a_take(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    """During an outage the relay keeps at most 5 × batch handed rows in memory; the rest
    wait in the store under its lease and are taken once it lapses: none is lost."""
    published = Recorder()
    relay = OutboxRelay(store, publishing(published), lease_s=0.2, batch=1, interval_s=0.1)
    deps = ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=published, relay=relay
    )
    tokens = [f"tok-bound-{i}" for i in range(8)]
    for token in tokens:
        assert (await handle_return(fields(bkm_key, token), "confirmation", deps)).status == 200
    assert len(relay._handed) == 5  # 5 × batch in memory, 3 in the store only
    await asyncio.sleep(0.3)  # their lease lapses
    assert await relay.drain() == len(tokens)
    assert sorted(getattr(e, "token", "") for e in published.events) == sorted(tokens)


async def test_outcomes_handed_within_the_linger_are_published_and_marked_together(
    bkm_key: rsa.RSAPrivateKey, store: PaymentStore
) -> None:
    """After a wake the relay waits ``linger_s`` for more outcomes: under load one pass
    publishes them all and marks them with one statement, not one per outcome."""
    published = Recorder()
    relay = OutboxRelay(store, publishing(published), interval_s=3600, linger_s=0.3)
    assert await relay.drain() == 0  # the (empty) backlog is taken: only handed rows now
    marks: list[list[str]] = []
    mark = store.mark_published_many

    async def counted(tokens: list[str], owner: str) -> int:
        marks.append(list(tokens))
        return await mark(tokens, owner)

    store.mark_published_many = counted  # type: ignore[method-assign]
    deps = ConfirmationDeps(
        verifier=BkmVerifier(bkm_key.public_key()), store=store, publish=published, relay=relay
    )
    running = asyncio.create_task(relay.run())
    try:
        tokens = [f"tok-linger-{i}" for i in range(3)]
        for token in tokens:
            assert (await handle_return(fields(bkm_key, token), "confirmation", deps)).status == 200
            await asyncio.sleep(0.05)
        assert published.events == []  # still lingering
        deadline = asyncio.get_running_loop().time() + 5
        while not marks and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)  # published, then marked
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert sorted(getattr(e, "token", "") for e in published.events) == tokens
    assert marks == [tokens]
