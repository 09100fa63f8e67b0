"""A replay of a BKM post gets exactly the first answer: status, body bytes and content
type, whichever replica answers and after a restart, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from schemas.events import Event
from services.common.bkm.signature import BkmSigner, BkmVerifier
from services.common.settings import StoreSettings
from services.common.signing.certs import generate_rsa_key
from services.common.stores.factory import open_payment_store
from services.common.stores.payments import PaymentStore
from services.payment_notifier.confirmations import ConfirmationDeps
from services.payment_notifier.http_routes import payment_routes
from services.payment_notifier.outbox_relay import OutboxRelay, publishing
from services.sandbox.bkm.messages import PayOptions, signed_fields

pytestmark = pytest.mark.integration
ZONE = "Europe/Istanbul"


@pytest.fixture(scope="module")
def bkm_key() -> rsa.RSAPrivateKey:
    return generate_rsa_key(2048)


def replica(store: PaymentStore, key: rsa.RSAPrivateKey) -> httpx.AsyncClient:
    """One notifier replica's HTTP side on its own store connection."""

    async def publish(event: Event) -> None:
        return None

    deps = ConfirmationDeps(BkmVerifier(key.public_key()), store, publish, 30, ZONE)
    app = Starlette(routes=payment_routes(lambda: deps, lambda: None))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n")


Answer = tuple[int, bytes, str | None]


async def settle(store: PaymentStore) -> None:
    """Leave no outbox row behind for a later test's relay on the shared database."""

    async def nowhere(event: Event) -> None:
        return None

    await OutboxRelay(store, publishing(nowhere)).drain()


async def post(client: httpx.AsyncClient, path: str, fields: dict[str, str]) -> Answer:
    resp = await client.post(path, data=fields)
    return resp.status_code, resp.content, resp.headers.get("content-type")


@pytest.mark.parametrize(
    "opts",
    [PayOptions(), PayOptions(outcome="cancel")],
    ids=["confirmed", "cancelled"],
)
async def test_replays_are_byte_identical_across_replicas_and_restarts(
    store_settings: StoreSettings, bkm_key: rsa.RSAPrivateKey, opts: PayOptions
) -> None:
    token = f"t-{uuid.uuid4().hex[:12]}"
    fields = signed_fields(token, opts, BkmSigner(bkm_key), ZONE, datetime.now(UTC))
    path = "/bkm/cancel" if opts.outcome == "cancel" else "/bkm/confirmation"
    stores = [open_payment_store(store_settings) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        a, b = (replica(s, bkm_key) for s in stores)
        first = await post(a, path, fields)
        assert first[0] == 200 and first[2] == "application/json", first
        assert (await post(a, path, fields)) == first  # same replica
        assert (await post(b, path, fields)) == first  # the other replica
    finally:
        for s in stores:
            await s.close()
    restarted = open_payment_store(store_settings)
    await restarted.open()
    try:
        assert (await post(replica(restarted, bkm_key), path, fields)) == first
    finally:
        await settle(restarted)
        await restarted.close()


async def test_the_answer_keeps_its_key_order(
    store_settings: StoreSettings, bkm_key: rsa.RSAPrivateKey
) -> None:
    fields = signed_fields(f"t-{uuid.uuid4().hex[:12]}", PayOptions(), BkmSigner(bkm_key), ZONE)
    store = open_payment_store(store_settings)
    await store.open()
    try:
        client = replica(store, bkm_key)
        first = await post(client, "/bkm/confirmation", fields)
        replay = await post(client, "/bkm/confirmation", fields)
    finally:
        await settle(store)
        await store.close()
    assert list(json.loads(first[1])) == ["token", "status", "order_id", "event_id"]
    assert replay[1] == first[1]
