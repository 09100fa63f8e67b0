"""The payment-notifier's HTTP endpoints: clear 4xx for bad requests, raw values through,
the cancel redirect as GET parameters, 503 before the service started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.bkm.signature import BkmSigner, BkmVerifier
from services.common.observability.health import health_app
from services.common.settings import StoreSettings
from services.common.signing.certs import generate_rsa_key
from services.common.stores.factory import open_payment_store
from services.common.stores.payments import PaymentStore
from services.payment_notifier.confirmations import ConfirmationDeps
from services.payment_notifier.http_routes import payment_routes
from services.sandbox.bkm.messages import PayOptions, signed_fields


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_rsa_key(2048)


@pytest.fixture
async def client(key: rsa.RSAPrivateKey, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store: PaymentStore = open_payment_store(StoreSettings(url=f"sqlite:///{tmp_path}/h.db"))
    await store.open()

    async def publish(_: object) -> None:
        return None

    deps = ConfirmationDeps(verifier=BkmVerifier(key.public_key()), store=store, publish=publish)
    app = health_app(
        liveness=lambda: [], readiness={}, routes=payment_routes(lambda: deps, lambda: None)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as c:
        yield c
    await store.close()


async def test_confirmation_form_post_and_clear_4xx(
    client: httpx.AsyncClient, key: rsa.RSAPrivateKey
) -> None:
    fields = signed_fields("tok-h", PayOptions(), BkmSigner(key), "Europe/Istanbul")
    ok = await client.post("/bkm/confirmation", data=fields)
    assert ok.status_code == 200 and ok.json()["status"] == "confirmed"
    replay = await client.post("/bkm/confirmation", data=fields)
    assert replay.json() == ok.json() and replay.headers["x-kopru-replay"] == "true"

    as_json = await client.post("/bkm/confirmation", json=fields)
    assert as_json.status_code == 415 and "x-www-form-urlencoded" in as_json.json()["error"]
    repeated = await client.post(
        "/bkm/confirmation",
        content="t=a&t=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 400 and "repeated" in repeated.json()["error"]
    huge = await client.post("/bkm/confirmation", data={"t": "x" * 70_000})
    assert huge.status_code == 413
    long_token = await client.post("/bkm/confirmation", data={**fields, "t": "t" * 200})
    assert long_token.status_code == 400 and "t must be" in long_token.json()["error"]
    wrong_method = await client.get("/bkm/confirmation")
    assert wrong_method.status_code == 405


async def test_cancel_redirect_as_get_parameters_even_with_an_unescaped_plus(
    client: httpx.AsyncClient, key: rsa.RSAPrivateKey
) -> None:
    fields = signed_fields(
        "tok-g",
        PayOptions(outcome="cancel", reason="iptal edildi"),
        BkmSigner(key),
        "Europe/Istanbul",
    )
    # A sender that forgets to escape "+" in the base64 signature.
    query = "&".join(f"{k}={v if k == 's' else quote(v, safe='')}" for k, v in fields.items())
    reply = await client.get("/bkm/cancel?" + query)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "failed"


async def test_merch_info_before_start_is_503(client: httpx.AsyncClient) -> None:
    reply = await client.post("/bkm/merchinfo", content=b"<x/>")
    assert reply.status_code == 503
