"""The payment-notifier on the real broker, with SQLite and with PostgreSQL: the whole BKM
path (initializePayment → requestMerchInfo → pay → confirmation, replays, concurrent
copies, tampering → reconciliation of a dropped confirmation) and Moka applications,
against the BKM and Moka sandboxes served on real ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from schemas.events import (
    BKM_CONFIRMATIONS,
    BKM_INITIALIZED,
    BKM_PAYMENT_REQUESTED,
    MOKA_APPLICATION_REQUESTED,
    MOKA_APPLICATION_RESULTS,
    BkmPaymentRequested,
    MokaDealerApplicationRequested,
)
from services.common.bkm.settings import BkmKeySettings
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.local_broker import free_port
from services.common.kafka.topic_admin import create_topics, plan
from services.common.moka.settings import MokaSettings
from services.common.observability.health import health_app
from services.common.settings import HttpSettings, KafkaSettings, StoreSettings
from services.common.stores.factory import open_payment_store
from services.common.stores.payments import CONFIRMED, Decision, Outcome
from services.payment_notifier.app import PaymentsSettings, Settings, build
from services.payment_notifier.confirmations import answer_for, build_event, outcome_event_id
from services.payment_notifier.merch_info import PosSettings
from services.sandbox.bkm.app import SERVICE_PATH, BkmSandboxConfig
from services.sandbox.bkm.app import create_app as bkm_app
from services.sandbox.bkm.keys import BkmDemoKeys, ensure_demo_keys
from services.sandbox.moka.app import create_app as moka_app
from tests.kafka_tools import produce, read_topic
from tests.unit.test_payments_moka import application

pytestmark = pytest.mark.integration
PAYMENT_TOPICS = (
    BKM_PAYMENT_REQUESTED,
    BKM_INITIALIZED,
    BKM_CONFIRMATIONS,
    MOKA_APPLICATION_REQUESTED,
    MOKA_APPLICATION_RESULTS,
)


class QuietServer(uvicorn.Server):
    """uvicorn in a task: no signal handling of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette, port: int) -> AsyncIterator[str]:
    server = QuietServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BkmDemoKeys:
    return ensure_demo_keys(tmp_path_factory.mktemp("bkm-keys"))


@dataclass
class World:
    bootstrap: str
    bkm_url: str
    notifier_url: str


def notifier_settings(
    kafka: KafkaSettings,
    store: StoreSettings,
    keys: BkmDemoKeys,
    http_port: int,
    bkm_url: str,
    moka_url: str,
) -> Settings:
    base = f"http://127.0.0.1:{http_port}"
    return Settings(
        kafka=kafka,
        store=store,
        http=HttpSettings(port=http_port),
        bkm=BkmKeySettings(
            merchant_id="kopru-demo-merchant",
            private_key_file=keys.merchant_private,
            bkm_public_key_file=keys.bkm_public,
        ),
        payments=PaymentsSettings(
            bkm_endpoint=bkm_url + SERVICE_PATH,
            success_url=base + "/bkm/success",
            cancel_url=base + "/bkm/cancel",
            # Long enough that order-1's confirmation post (a few reads and posts after
            # its initialisation, slower on a loaded machine) comes before its first query.
            reconcile_after_s=3.0,
            reconcile_interval_s=0.3,
            reconcile_recheck_s=0.3,
            relay_interval_s=0.3,
        ),
        pos=PosSettings(pos_url="https://pos.example", pos_uid="pos-user"),
        moka=MokaSettings(
            base_url=moka_url,
            dealer_code="1356",
            username="kopru-demo",
            password=SecretStr("demo-password"),
        ),
        _env_file=None,
    )


@pytest.fixture
async def world(
    kafka_settings: KafkaSettings, store_settings: StoreSettings, keys: BkmDemoKeys
) -> AsyncIterator[World]:
    topics = plan(kafka_settings, PAYMENT_TOPICS)
    await create_topics(kafka_settings, topics, with_config=False)
    await wait_for_leaders(kafka_settings.bootstrap_servers, [t.name for t in topics])
    notifier_port, bkm_port, moka_port = free_port(), free_port(), free_port()
    notifier_url = f"http://127.0.0.1:{notifier_port}"
    sandbox = bkm_app(
        BkmSandboxConfig(
            state_dir=keys.bkm_private.parent,
            confirmation_urls=[notifier_url + "/bkm/confirmation"],
            merch_info_url=notifier_url + "/bkm/merchinfo",
        )
    )
    async with serving(sandbox, bkm_port) as bkm_url, serving(moka_app(), moka_port) as moka_url:
        settings = notifier_settings(
            kafka_settings, store_settings, keys, notifier_port, bkm_url, moka_url
        )
        settings.moka.password = SecretStr("demo-password")
        service = build(settings)
        await service.start()
        http = health_app(
            liveness=service.liveness, readiness=service.readiness, routes=service.routes
        )
        try:
            async with serving(http, notifier_port):
                yield World(kafka_settings.bootstrap_servers, bkm_url, notifier_url)
        finally:
            await service.stop()


async def pay(world: World, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        resp = await client.post(world.bkm_url + "/_sandbox/pay", json=body)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def test_bkm_payment_once_replays_and_reconciliation(world: World) -> None:
    orders = [
        BkmPaymentRequested(order_id=f"order-{i}", sale_amount=Decimal("105.99")) for i in (1, 2)
    ]
    for o in orders:
        await produce(
            world.bootstrap,
            BKM_PAYMENT_REQUESTED.name,
            [o.model_dump_json().encode()],
            key=o.kafka_key(),
        )
    initialized = await read_topic(world.bootstrap, BKM_INITIALIZED.name, expect=2)
    tokens = {json.loads(r.value)["order_id"]: json.loads(r.value)["token"] for r in initialized}
    assert set(tokens) == {"order-1", "order-2"}

    paid = await pay(
        world, token=tokens["order-1"], merch_info=True, concurrent=3, replay=2, leak_card_data=True
    )
    assert paid["merch_info"]["verified"] is True
    bodies = {json.dumps(p["body"], sort_keys=True) for p in paid["posts"]}
    assert [p["status"] for p in paid["posts"]] == [200] * 5 and len(bodies) == 1
    assert sum(not p["replay"] for p in paid["posts"]) == 1

    tampered = await pay(world, token=tokens["order-1"], tamper=True)
    stale = await pay(world, token="never-seen", stale_s=3600)
    altered = await pay(world, token=tokens["order-1"], amount="1.00")
    late = await pay(world, token=tokens["order-1"], outcome="cancel")
    assert [p["status"] for p in tampered["posts"]] == [400]
    assert [p["status"] for p in stale["posts"]] == [400]
    assert [p["status"] for p in altered["posts"]] == [409]
    assert [p["status"] for p in late["posts"]] == [409]

    await pay(world, token=tokens["order-2"], drop=True)  # BKM settles, never tells us
    # order-2 is reconciled once due; then no third event follows.
    await read_topic(world.bootstrap, BKM_CONFIRMATIONS.name, expect=2, timeout_s=20)
    events = await read_topic(world.bootstrap, BKM_CONFIRMATIONS.name, expect=3, timeout_s=2.0)
    values = [json.loads(e.value) for e in events]
    assert len(values) == 2
    by_order = {v["order_id"]: v for v in values}
    assert by_order["order-1"]["event_type"] == "PaymentConfirmed"
    assert not by_order["order-1"]["reconciled"]
    assert by_order["order-2"]["event_type"] == "PaymentConfirmed"
    assert by_order["order-2"]["reconciled"] and by_order["order-2"]["source"] == "reconciliation"
    assert "4111111111111111" not in json.dumps(values)


async def test_moka_applications_get_one_result_each(world: World) -> None:
    good = MokaDealerApplicationRequested(application_id="app-ok", application=application())
    bad = MokaDealerApplicationRequested(
        application_id="app-bad", application=application(PhoneNumber="12")
    )
    for e in (good, bad, good):
        await produce(
            world.bootstrap,
            MOKA_APPLICATION_REQUESTED.name,
            [e.model_dump_json().encode()],
            key=e.kafka_key(),
        )
    results = await read_topic(
        world.bootstrap, MOKA_APPLICATION_RESULTS.name, expect=3, timeout_s=2.5
    )
    got = sorted(
        (json.loads(r.value)["application_id"], json.loads(r.value)["outcome"]) for r in results
    )
    assert got == [("app-bad", "rejected"), ("app-ok", "created")]
    # Not even an application: the platform's DLQ, with the reason; nothing is lost.
    await produce(world.bootstrap, MOKA_APPLICATION_REQUESTED.name, [b'{"application_id": 7'])
    dlq = await read_topic(world.bootstrap, MOKA_APPLICATION_REQUESTED.dlq, expect=1)
    assert [d.value for d in dlq] == [b'{"application_id": 7']
    assert any(k == "x-dlq-reason" for k, _ in dlq[0].headers)


async def test_relay_publishes_an_outcome_whose_publisher_crashed(
    world: World, store_settings: StoreSettings
) -> None:
    """A replica recorded an outcome and died before publishing: once its lease expires,
    the running service's relay publishes the stored event, with its deterministic id."""
    store = open_payment_store(store_settings)
    await store.open()
    try:
        event = build_event("crashed-tok", CONFIRMED, "confirmation", None, pos={})
        outcome = Outcome(
            "crashed-tok",
            CONFIRMED,
            "fp",
            answer_for(event, CONFIRMED),
            event.model_dump_json(),
            "confirmation",
        )
        rec = await store.record_outcome(outcome, "dead-replica", lease_s=0.2)
        assert rec.decision is Decision.RECORDED
    finally:
        await store.close()
    events = await read_topic(world.bootstrap, BKM_CONFIRMATIONS.name, expect=2, timeout_s=2.5)
    assert [json.loads(e.value)["event_id"] for e in events] == [
        str(outcome_event_id("crashed-tok"))
    ]
