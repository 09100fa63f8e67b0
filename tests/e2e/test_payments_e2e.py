"""Payments end to end: real processes (BKM sandbox, two payment-notifiers sharing
PostgreSQL), the real local broker.

- 1,000 confirmations, 30% with replays (sequential, and concurrent copies of the same t
  over several connections to both notifiers): exactly 1,000 events; every replay got the
  original answer;
- a tampered signature, a stale ts, an altered amount under a known token and a late
  failure after success: refused (400 / 409), nothing published;
- a payment whose confirmation never arrives is found by reconciliation, published once;
- the logs and topics of the whole run hold no PAN, CVC, expiry, holder or POS password.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import (
    BKM_CONFIRMATIONS,
    BKM_INITIALIZED,
    BKM_PAYMENT_REQUESTED,
    BkmPaymentRequested,
)
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.local_broker import die_with_parent, free_port
from services.common.kafka.topic_admin import create_topics, plan
from services.demo.flow_payments import (
    DEMO_POS_PASSWORD,
    bkm_sandbox_argv,
    cli,
    notifier_env,
    publish,
    wait_for,
    write_secrets,
)
from services.sandbox.bkm.keys import ensure_demo_keys
from services.sandbox.bkm.messages import TEST_EXPIRY, TEST_HOLDER, TEST_PAN
from tests.broker_pool import Broker
from tests.conftest import broker_settings, engine_env
from tests.kafka_tools import read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = 1000
LOCAL_KAFKA = {
    "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
    "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
    "KOPRU_KAFKA__FETCH_MAX_WAIT_MS": "100",
    "KOPRU_LOG__FORMAT": "json",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Proc:
    log = logs / f"{name}.log"
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **LOCAL_KAFKA, **env},
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    return Proc(name, popen, log)


async def wait_ready(proc: Proc, url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited:\n{proc.log.read_text()[-3000:]}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{proc.name} not ready:\n{proc.log.read_text()[-3000:]}")


def stop(procs: list[Proc]) -> None:
    for p in procs:
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.popen.wait(15)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()


@dataclass
class System:
    bootstrap: str
    bkm_url: str
    logs: Path
    notifiers: list[str]
    procs: list[Proc]


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
async def system(pg_url: str, tmp_path: Path, fresh_broker: Broker) -> AsyncIterator[System]:
    logs = tmp_path / "logs"
    logs.mkdir()
    broker = fresh_broker
    procs: list[Proc] = []
    try:
        kafka = broker_settings(broker)
        await create_topics(kafka, plan(kafka))
        await wait_for_leaders(kafka.bootstrap_servers, [t.name for t in plan(kafka)])
        keys = ensure_demo_keys(tmp_path / "bkm")
        secrets = write_secrets(tmp_path / "secrets")
        ports = [free_port(), free_port()]
        bkm_port = free_port()
        bkm_url = f"http://127.0.0.1:{bkm_port}"
        notifiers = [f"http://127.0.0.1:{p}" for p in ports]
        bkm = start(
            "sandbox-bkm",
            bkm_sandbox_argv(
                bkm_port,
                tmp_path / "bkm",
                [n + "/bkm/confirmation" for n in notifiers],
                notifiers[0] + "/bkm/merchinfo",
            ),
            {},
            logs,
        )
        procs.append(bkm)
        for i, port in enumerate(ports):
            env = notifier_env(
                http_port=port,
                keys=keys,
                bkm_url=bkm_url,
                moka_url="http://127.0.0.1:9",
                store_url=pg_url,
                secrets_dir=secrets,
                reconcile_after_s=2.0,
            )
            env.update(engine_env(broker))
            env["KOPRU_PAYMENTS__PUBLISH_LEASE_S"] = "2"  # a dead replica's rows, soon
            procs.append(start(f"payment-notifier-{i}", cli("run", "payment-notifier"), env, logs))
        await wait_ready(bkm, bkm_url + "/healthz")
        for proc, url in zip(procs[1:], notifiers, strict=True):
            await wait_ready(proc, url + "/readyz")
        yield System(broker.bootstrap_servers, bkm_url, logs, notifiers, procs[1:])
    finally:
        stop(procs)


def plan_payment(i: int, run: str) -> dict[str, Any]:
    """30% of payments are replayed: concurrent copies, sequential replays, or both."""
    body: dict[str, Any] = {
        "token": f"e2e-{run}-{i:04d}",
        "outcome": "cancel" if i % 10 == 9 else "success",
        "amount": f"{10 + i % 90}.{i % 100:02d}",
        "leak_card_data": True,  # a broken BKM: the notifier must strip it
    }
    if i % 10 == 0:
        body["concurrent"] = 3
    elif i % 10 == 1:
        body["replay"] = 1
    elif i % 10 == 2:
        body |= {"concurrent": 2, "replay": 1}
    return body


async def admin_pay(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(url + "/_sandbox/pay", json=body)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


@pytest.fixture
def run_id() -> Iterator[str]:
    yield uuid.uuid4().hex[:8]


async def test_thousand_confirmations_exactly_once_across_two_notifiers(
    system: System, run_id: str
) -> None:
    started = time.monotonic()
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(i: int) -> dict[str, Any]:
            async with gate:
                return await admin_pay(client, system.bkm_url, plan_payment(i, run_id))

        results = await asyncio.gather(*(one(i) for i in range(PAYMENTS)))
        drive_s = time.monotonic() - started

        # Every post of a token got the same answer; exactly one was not a replay.
        replays = 0
        for i, result in enumerate(results):
            posts = result["posts"]
            assert [p["status"] for p in posts] == [200] * len(posts), (i, posts)
            assert len({json.dumps(p["body"], sort_keys=True) for p in posts}) == 1, posts
            assert sum(not p["replay"] for p in posts) == 1, posts
            expected = "failed" if i % 10 == 9 else "confirmed"
            assert posts[0]["body"]["status"] == expected
            replays += len(posts) - 1
        assert sum(len(r["posts"]) > 1 for r in results) == PAYMENTS * 3 // 10
        served = {p["url"] for r in results for p in r["posts"]}
        assert len(served) == 2  # both notifiers took confirmations

        # Refused or ignored, nothing published.
        known = f"e2e-{run_id}-0005"
        bad = {
            "tampered": await admin_pay(client, system.bkm_url, {"token": known, "tamper": True}),
            "stale": await admin_pay(
                client, system.bkm_url, {"token": f"e2e-{run_id}-stale", "stale_s": 3600}
            ),
            "altered": await admin_pay(
                client, system.bkm_url, {"token": known, "amount": "9999.99"}
            ),
            "late_failure": await admin_pay(
                client, system.bkm_url, {"token": known, "outcome": "cancel"}
            ),
        }
        statuses = {k: [p["status"] for p in v["posts"]] for k, v in bad.items()}
        assert statuses == {
            "tampered": [400],
            "stale": [400],
            "altered": [409],
            "late_failure": [409],
        }

        # A payment whose confirmation never arrives: reconciliation finds it.
        order = f"e2e-{run_id}-lost"
        await publish(
            system.bootstrap,
            BKM_PAYMENT_REQUESTED,
            BkmPaymentRequested(order_id=order, sale_amount=Decimal("49.90")),
        )
        init = await wait_for(system.bootstrap, BKM_INITIALIZED.name, {"order_id": order})
        token = init[0]["token"]
        dropped = await admin_pay(
            client, system.bkm_url, {"token": token, "drop": True, "merch_info": True}
        )
        assert dropped["merch_info"]["verified"] is True  # the POS password went to BKM only

    events = await read_topic(
        system.bootstrap, BKM_CONFIRMATIONS.name, expect=PAYMENTS + 2, timeout_s=10
    )
    values = [json.loads(e.value) for e in events]
    ours = [v for v in values if v["token"].startswith(f"e2e-{run_id}-0")]
    assert len(ours) == PAYMENTS  # exactly 1,000 events for 1,000 payments
    assert len({v["token"] for v in ours}) == PAYMENTS
    assert len({v["event_id"] for v in ours}) == PAYMENTS
    assert sum(v["event_type"] == "PaymentFailed" for v in ours) == PAYMENTS // 10
    reconciled = [v for v in values if v["token"] == token]
    assert len(reconciled) == 1
    assert reconciled[0]["reconciled"] and reconciled[0]["order_id"] == order
    assert len(values) == PAYMENTS + 1  # nothing for the refused posts
    print(f"\n{PAYMENTS} payments, {replays} replayed posts, driven in {drive_s:.1f} s")

    # No card data and no POS password anywhere: logs of every process, every topic.
    texts = [p.read_text(errors="replace") for p in system.logs.iterdir()]
    for name in (BKM_CONFIRMATIONS.name, BKM_INITIALIZED.name, BKM_PAYMENT_REQUESTED.name):
        records = await read_topic(system.bootstrap, name, expect=10**6, timeout_s=1)
        texts.append("\n".join(r.value.decode() for r in records))
    whole = "\n".join(texts)
    assert "payment outcome recorded" in whole  # the logs are really there
    for secret in (TEST_PAN, TEST_EXPIRY, TEST_HOLDER, '"Cvc"', DEMO_POS_PASSWORD):
        assert secret not in whole, secret


async def test_a_notifier_killed_mid_run_loses_nothing_and_publishes_each_outcome_once(
    system: System, run_id: str
) -> None:
    """kill -9 one of the two notifiers while confirmations stream in; BKM (the test)
    retries what failed on the survivor. Every payment ends with one outcome, published
    with one event id; a copy could only come from a crash between publish and mark, and
    it would carry the same id (downstream dedupes on it)."""
    total, kill_after = 200, 60
    urls = [n + "/bkm/confirmation" for n in system.notifiers]
    gate = asyncio.Semaphore(16)
    failed: list[int] = []
    answers: dict[int, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(i: int) -> None:
            async with gate:
                body = {"token": f"kill-{run_id}-{i:04d}", "concurrent": 2,
                        "confirmation_urls": urls}  # fmt: skip
                result = await admin_pay(client, system.bkm_url, body)
                ok = [p for p in result["posts"] if p["status"] == 200]
                if ok:
                    answers[i] = ok[0]["body"]
                if len(ok) < len(result["posts"]):
                    failed.append(i)

        async def killer() -> None:
            deadline = time.monotonic() + 60
            while len(answers) < kill_after:
                assert time.monotonic() < deadline, f"only {len(answers)} payments answered"
                await asyncio.sleep(0.01)
            system.procs[1].popen.kill()  # SIGKILL: no shutdown, no flush

        await asyncio.gather(killer(), *(one(i) for i in range(total)))
        assert failed, "the kill hit no request in flight; nothing was tested"
        for i in sorted(set(failed)):  # BKM posts again, now to the survivor
            body = {"token": f"kill-{run_id}-{i:04d}", "confirmation_urls": urls[:1]}
            retry = await admin_pay(client, system.bkm_url, body)
            assert [p["status"] for p in retry["posts"]] == [200]
            if i in answers:
                assert retry["posts"][0]["body"] == answers[i]  # the original answer
    await asyncio.sleep(4)  # past the dead replica's publish lease: the relay's turn
    events = await read_topic(system.bootstrap, BKM_CONFIRMATIONS.name, expect=10**6, timeout_s=3)
    values = [json.loads(e.value) for e in events]
    ids_by_token: dict[str, set[str]] = {}
    for v in values:
        ids_by_token.setdefault(v["token"], set()).add(v["event_id"])
    assert len(ids_by_token) == total
    assert all(len(ids) == 1 for ids in ids_by_token.values())
    print(f"\nkilled one notifier; {len(set(failed))} payments retried; "
          f"{len(values)} events for {total} payments")  # fmt: skip
