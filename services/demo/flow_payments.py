"""The demo's payments flow: the BKM and Moka sandboxes and the payment-notifier.

`processes(ctx)` says what to start; `run(ctx)` drives one BKM payment (initialize →
requestMerchInfo → pay → confirmation → replay ignored) and one Moka application, and
prints the outcomes read from Kafka. The helpers (`notifier_env`, `bkm_sandbox_argv`...)
are also used by the end-to-end tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import (
    BKM_CONFIRMATIONS,
    BKM_INITIALIZED,
    BKM_PAYMENT_REQUESTED,
    MOKA_APPLICATION_REQUESTED,
    MOKA_APPLICATION_RESULTS,
    BkmPaymentRequested,
    Event,
    MokaDealerApplicationRequested,
    TopicSpec,
)
from services.common.kafka.broker import encode_event
from services.demo.context import DemoContext, ProcessSpec
from services.sandbox.bkm.app import SERVICE_PATH
from services.sandbox.bkm.keys import BkmDemoKeys, ensure_demo_keys

MERCHANT_ID = "kopru-demo-merchant"
MOKA_DEALER, MOKA_USER, MOKA_DEMO_PASSWORD = "1356", "kopru-demo", "demo-password"
DEMO_POS_PASSWORD = "demo-pos-Pa55!"
DEMO_APPLICATION: dict[str, Any] = {
    "ApplicantType": 2,
    "MokaPosProductId": 2,
    "ContactName": "Elif Demir",
    "Email": "elif@example.com.tr",
    "PhoneNumber": "5351112233",
    "Title": "Demo Aracı Kurum A.Ş.",
    "WebSiteURL": "https://www.example.com.tr",
    "CityCode": 34,
    "CountryCode": 212,
    "TRIdentityNumber": "10000000146",
    "TaxNumber": "1234567890",
    "NaceCode": "471101",
    "RevenueRange": 3,
    "ClientIP": "192.168.1.116",
}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


def bkm_sandbox_argv(
    port: int, state_dir: Path, confirmation_urls: list[str], merch_info_url: str | None
) -> list[str]:
    argv = cli("sandbox", "bkm", "--port", str(port), "--state-dir", str(state_dir))
    argv += ["--merchant-id", MERCHANT_ID]
    for url in confirmation_urls:
        argv += ["--confirmation-url", url]
    if merch_info_url:
        argv += ["--merch-info-url", merch_info_url]
    return argv


def moka_sandbox_argv(port: int) -> list[str]:
    return cli("sandbox", "moka", "--port", str(port))


def write_secrets(directory: Path) -> Path:
    """The notifier's secrets as files (a mounted Kubernetes Secret in production)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pos__pos_pwd").write_text(DEMO_POS_PASSWORD)
    (directory / "moka__password").write_text(MOKA_DEMO_PASSWORD)
    for f in directory.iterdir():
        f.chmod(0o600)
    return directory


def notifier_env(
    *,
    http_port: int,
    keys: BkmDemoKeys,
    bkm_url: str,
    moka_url: str,
    store_url: str,
    secrets_dir: Path,
    reconcile_after_s: float = 5.0,
) -> dict[str, str]:
    base = f"http://127.0.0.1:{http_port}"
    return {
        "KOPRU_HTTP__PORT": str(http_port),
        "KOPRU_STORE__URL": store_url,
        "KOPRU_SECRETS_DIR": str(secrets_dir),
        "KOPRU_BKM__MERCHANT_ID": MERCHANT_ID,
        "KOPRU_BKM__PRIVATE_KEY_FILE": str(keys.merchant_private),
        "KOPRU_BKM__BKM_PUBLIC_KEY_FILE": str(keys.bkm_public),
        "KOPRU_PAYMENTS__BKM_ENDPOINT": bkm_url + SERVICE_PATH,
        "KOPRU_PAYMENTS__SUCCESS_URL": base + "/bkm/success",
        "KOPRU_PAYMENTS__CANCEL_URL": base + "/bkm/cancel",
        "KOPRU_PAYMENTS__RECONCILE_AFTER_S": str(reconcile_after_s),
        "KOPRU_PAYMENTS__RECONCILE_INTERVAL_S": "0.5",
        "KOPRU_PAYMENTS__RECONCILE_RECHECK_S": "1",
        "KOPRU_PAYMENTS__RELAY_INTERVAL_S": "1",
        "KOPRU_POS__POS_URL": "https://pos.example.com.tr/fim/api",
        "KOPRU_POS__POS_UID": "demo-pos-user",
        "KOPRU_MOKA__BASE_URL": moka_url,
        "KOPRU_MOKA__DEALER_CODE": MOKA_DEALER,
        "KOPRU_MOKA__USERNAME": MOKA_USER,
    }


def processes(ctx: DemoContext) -> list[ProcessSpec]:
    notifier, bkm, moka = ctx.port("payment-notifier"), ctx.port("bkm"), ctx.port("moka")
    bkm_dir = ctx.state_dir / "sandbox-bkm"
    keys = ensure_demo_keys(bkm_dir)
    base = f"http://127.0.0.1:{notifier}"
    bkm_url, moka_url = f"http://127.0.0.1:{bkm}", f"http://127.0.0.1:{moka}"
    env = notifier_env(
        http_port=notifier,
        keys=keys,
        bkm_url=bkm_url,
        moka_url=moka_url,
        store_url=f"sqlite:///{ctx.state_dir / 'payments.db'}",
        secrets_dir=write_secrets(ctx.state_dir / "secrets-payment-notifier"),
    )
    return [
        ProcessSpec(
            "sandbox-bkm",
            bkm_sandbox_argv(bkm, bkm_dir, [base + "/bkm/confirmation"], base + "/bkm/merchinfo"),
            {},
            bkm_url + "/healthz",
        ),
        ProcessSpec("sandbox-moka", moka_sandbox_argv(moka), {}, moka_url + "/healthz"),
        ProcessSpec("payment-notifier", cli("run", "payment-notifier"), env, base + "/readyz"),
    ]


# ------------------------------------------------------------------ Kafka helpers


async def publish(bootstrap: str, spec: TopicSpec, event: Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            spec.name,
            encode_event(spec, event),
            key=event.kafka_key(),
            headers=[("x-event-type", event.event_type.encode())],
        )
    finally:
        await producer.stop()


async def wait_for(
    bootstrap: str, topic: str, match: dict[str, Any], timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every event on ``topic`` whose fields equal ``match``, once at least one arrived."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        parts: set[int] | None = None
        while not parts and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await asyncio.sleep(0.1)
        if not parts:
            return found
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    value = json.loads(r.value)
                    if all(value.get(k) == v for k, v in match.items()):
                        found.append(value)
            if found and quiet_until is None:
                quiet_until = time.monotonic() + 1.0  # anything more would show up now
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
        return found
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------ the flow


async def run(ctx: DemoContext) -> None:
    bkm_url = f"http://127.0.0.1:{ctx.port('bkm')}"
    order_id = f"demo-order-{int(time.time())}"
    ctx.say("\n== payments: one BKM Express payment ==")
    await publish(
        ctx.bootstrap,
        BKM_PAYMENT_REQUESTED,
        BkmPaymentRequested(order_id=order_id, sale_amount=Decimal("249.90")),
    )
    init = await wait_for(ctx.bootstrap, BKM_INITIALIZED.name, {"order_id": order_id})
    if not init or init[0]["event_type"] != "BkmPaymentInitialized":
        ctx.say(f"initializePayment failed: {init}")
        return
    token = init[0]["token"]
    ctx.say(
        f"initializePayment: order {order_id} -> token {token}, redirect {init[0]['redirect_url']}"
    )
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(
            bkm_url + "/_sandbox/pay",
            json={"token": token, "amount": "249.90", "merch_info": True, "replay": 1},
        )
    paid = resp.json()
    ctx.say(
        f"requestMerchInfo: answered and signature verified = {paid['merch_info'].get('verified')}"
    )
    for i, post in enumerate(paid["posts"]):
        kind = "confirmation" if i == 0 else "replay of the same confirmation"
        note = " (replay: same answer, nothing published)" if post.get("replay") else ""
        ctx.say(f"{kind}: HTTP {post['status']} {post['body'].get('status')}{note}")
    outcomes = await wait_for(ctx.bootstrap, BKM_CONFIRMATIONS.name, {"token": token})
    ctx.say(
        f"payments.bkm.confirmations: {len(outcomes)} event(s) for the token: "
        + ", ".join(f"{o['event_type']} (event_id {o['event_id']})" for o in outcomes)
    )

    ctx.say("\n== payments: one Moka dealer application ==")
    app_id = f"demo-app-{int(time.time())}"
    await publish(
        ctx.bootstrap,
        MOKA_APPLICATION_REQUESTED,
        MokaDealerApplicationRequested(application_id=app_id, application=DEMO_APPLICATION),
    )
    results = await wait_for(
        ctx.bootstrap, MOKA_APPLICATION_RESULTS.name, {"application_id": app_id}
    )
    for r in results:
        ctx.say(
            f"CreateMokaPosRequest: {r['outcome']} ({r['result_code']}), "
            f"MokaPosRequestId {r.get('moka_pos_request_id')}"
        )
