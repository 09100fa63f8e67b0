"""The MKK client against the sandbox's real ASGI app (in memory, no socket): signed
requests, verified answers, codes mapped to one outcome, the streamed content."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from schemas.codes import Action
from schemas.mkk import (
    AuthRequest,
    BalanceReportRequest,
    ReportContentRequest,
    ReportStatusRequest,
    RequestHeader,
)
from services.common.mkk.client import MkkClient, tls_verify
from services.common.mkk.outcome import MkkNotSent, MkkTransportError, MkkUnverifiedAnswer
from services.common.mkk.settings import MkkApiSettings
from services.common.signing.jws import JwsSigner, JwsVerifier, verifier_from_settings
from services.common.signing.settings import MkkSigningSettings
from services.sandbox.mkk import create_app, sandbox_state
from services.sandbox.mkk.config import DEMO_PASSWORD, load_config
from services.sandbox.mkk.keys import ensure_demo_keys, load_certificate, load_private_key


def head(ref: str) -> RequestHeader:
    return RequestHeader(sender_reference=ref, sender_member="TIB", sender="TIB991")


@pytest.fixture
async def mkk(tmp_path: Path) -> AsyncIterator[tuple[MkkClient, Any, Any]]:
    keys = ensure_demo_keys(tmp_path / "state")
    config = load_config(None, state_dir=tmp_path / "state")
    config.durations.rp020_s = config.durations.rp021_s = 0.0
    config.durations.rp022_s = config.durations.rp023_s = 0.0
    config.ledger.rows = 10
    app = create_app(config)
    client = MkkClient(
        MkkApiSettings(base_url="http://mkk.test"),
        JwsSigner(load_private_key(keys.member_key)),
        JwsVerifier(load_certificate(keys.mkk_certificate)),
        transport=httpx.ASGITransport(app=app),
    )
    await client.start()
    yield client, sandbox_state(app), keys
    await client.close()
    sandbox_state(app).close()


async def _token(client: MkkClient) -> str:
    res = await client.auth(
        AuthRequest(
            request_header=head("a-1"), username="TIB991", password=SecretStr(DEMO_PASSWORD)
        )
    )
    assert res.outcome.action is Action.DONE and res.token
    return res.token


async def test_report_calls_end_to_end(mkk: tuple[MkkClient, Any, Any]) -> None:
    client, _, _ = mkk
    token = await _token(client)
    req = BalanceReportRequest(
        request_header=head("b-1"),
        file_type="csv",
        zip_password=SecretStr("Secret123X"),
        process_date="20250505",
    )
    out = await client.balance_report(req, token)
    assert (out.action, out.code, out.http_status) == (Action.DONE, "0000", 200)
    assert out.ref_id and out.message_id and out.reached_mks
    status = await client.report_status(
        ReportStatusRequest(request_header=head("s-1"), ref_id=out.ref_id), token
    )
    for _ in range(50):
        if status.code == "0000":
            break
        await asyncio.sleep(0.05)
        status = await client.report_status(
            ReportStatusRequest(request_header=head(f"s-{_ + 2}"), ref_id=out.ref_id), token
        )
    assert status.action is Action.DONE and status.file_names
    creq = ReportContentRequest(request_header=head("c-1"), ref_id=out.ref_id,
                                file_name=status.file_names[0])  # fmt: skip
    async with client.report_content(creq, token) as answer:
        assert answer.response is not None
        data = b"".join([c async for c in answer.response.aiter_bytes()])
    assert data[:2] == b"PK"


async def test_codes_map_with_turkish_description(mkk: tuple[MkkClient, Any, Any]) -> None:
    client, _, _ = mkk
    token = await _token(client)
    out = await client.report_status(
        ReportStatusRequest(request_header=head("s-x"), ref_id="nope"), token
    )
    assert (out.code, out.action, out.http_status) == ("RP018", Action.TERMINAL, 422)
    assert "refId" in out.description
    again = await client.report_status(
        ReportStatusRequest(request_header=head("s-x"), ref_id="nope"), token
    )
    assert again.code == "RP045"  # the reference was burnt (FAQ 18)
    bad = await client.report_status(
        ReportStatusRequest(request_header=head("s-y"), ref_id="nope"), "not-a-token"
    )
    assert (bad.code, bad.action, bad.http_status, bad.message_id) == (
        "OI006", Action.REAUTH, 401, None,
    )  # fmt: skip


async def test_answer_signed_by_another_key_is_not_acted_on(
    mkk: tuple[MkkClient, Any, Any], tmp_path: Path
) -> None:
    client, _, _ = mkk
    token = await _token(client)
    other = ensure_demo_keys(tmp_path / "other")
    client.verifier = JwsVerifier(load_certificate(other.mkk_certificate))
    with pytest.raises(MkkUnverifiedAnswer):
        await client.report_status(
            ReportStatusRequest(request_header=head("s-z"), ref_id="nope"), token
        )


async def test_wrong_password_maps_to_terminal(mkk: tuple[MkkClient, Any, Any]) -> None:
    client, _, _ = mkk
    res = await client.auth(
        AuthRequest(request_header=head("a-2"), username="TIB991", password=SecretStr("Wrong99!"))
    )
    assert res.token is None
    assert (res.outcome.code, res.outcome.http_status) == ("0x00d30003", 401)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
async def test_answers_signed_rs256_384_512_accepted_with_default_settings(
    tmp_path: Path, alg: str
) -> None:
    """§3 "RSA SHA-256 or above": the sandbox plays an MKK signing with `alg`; the
    client's verifier comes from default settings (only MKK's certificate given)."""
    keys = ensure_demo_keys(tmp_path / "state")
    config = load_config(None, state_dir=tmp_path / "state", answer_alg=alg)
    app = create_app(config)
    verifier = verifier_from_settings(MkkSigningSettings(mkk_certificate_file=keys.mkk_certificate))
    client = MkkClient(
        MkkApiSettings(base_url="http://mkk.test"),
        JwsSigner(load_private_key(keys.member_key)),
        verifier,
        transport=httpx.ASGITransport(app=app),
    )
    await client.start()
    try:
        token = await _token(client)
        out = await client.report_status(
            ReportStatusRequest(request_header=head("s-alg"), ref_id="nope"), token
        )
        assert (out.code, out.action) == ("RP018", Action.TERMINAL)  # read, after verifying
        other = ensure_demo_keys(tmp_path / "other")  # the same alg, any key but MKK's
        client.verifier = JwsVerifier(load_certificate(other.mkk_certificate))
        with pytest.raises(MkkUnverifiedAnswer):
            await client.report_status(
                ReportStatusRequest(request_header=head("s-alg2"), ref_id="nope"), token
            )
    finally:
        await client.close()
        sandbox_state(app).close()


def _forged(header: dict[str, str], payload: dict[str, Any], signature: bytes) -> bytes:
    def b64u(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64u(json.dumps(header).encode()) + b"." + b64u(json.dumps(payload).encode())
    return head + b"." + b64u(signature)


@pytest.mark.parametrize("alg", ["none", "HS256", "HS384", "HS512"])
async def test_answers_signed_none_or_hmac_refused_with_default_settings(
    tmp_path: Path, alg: str
) -> None:
    """An answer MKK never sends: `none` or an HMAC keyed with MKK's public certificate
    (algorithm confusion); with default settings it is never acted on."""
    keys = ensure_demo_keys(tmp_path / "state")
    cert_pem = keys.mkk_certificate.read_bytes()
    answer = {
        "responseHeader": {"senderReference": "s-1", "receiverMember": "TIB", "messageId": "1"},
        "response": {"responseCode": "0000", "responseDesc": "Başarılı"},
        "fileNames": ["MKK_RP166_20250729100251.zip"],
    }

    def forge(request: httpx.Request) -> httpx.Response:
        header = {"alg": alg}
        signing_input = _forged(header, answer, b"").rsplit(b".", 1)[0]
        mac = b"" if alg == "none" else hmac.new(
            cert_pem, signing_input, "sha" + alg[2:]
        ).digest()  # fmt: skip
        return httpx.Response(200, content=_forged(header, answer, mac))

    client = MkkClient(
        MkkApiSettings(base_url="http://mkk.test"),
        JwsSigner(load_private_key(keys.member_key)),
        verifier_from_settings(MkkSigningSettings(mkk_certificate_file=keys.mkk_certificate)),
        transport=httpx.MockTransport(forge),
    )
    await client.start()
    try:
        with pytest.raises(MkkUnverifiedAnswer, match=r"alg not allowed|empty header or signature"):
            await client.report_status(
                ReportStatusRequest(request_header=head("s-1"), ref_id="r"), "tok"
            )
    finally:
        await client.close()


async def test_a_connection_never_made_is_told_apart_from_a_lost_answer(tmp_path: Path) -> None:
    """Refused connection -> MkkNotSent (nothing reached MKS); a cut after sending stays a
    plain MkkTransportError (outcome unknown)."""
    keys = ensure_demo_keys(tmp_path / "state")

    def client(exc: Exception) -> MkkClient:
        def fail(request: httpx.Request) -> httpx.Response:
            raise exc

        return MkkClient(
            MkkApiSettings(base_url="http://mkk.test"),
            JwsSigner(load_private_key(keys.member_key)),
            JwsVerifier(load_certificate(keys.mkk_certificate)),
            transport=httpx.MockTransport(fail),
        )

    req = AuthRequest(request_header=head("a-9"), username="TIB991", password=SecretStr("Demo991!"))
    refused = client(httpx.ConnectError("[Errno 111] Connection refused"))
    await refused.start()
    with pytest.raises(MkkNotSent):
        await refused.auth(req)
    await refused.close()
    cut = client(httpx.ReadError("connection reset by peer"))
    await cut.start()
    with pytest.raises(MkkTransportError) as lost:
        await cut.auth(req)
    assert not isinstance(lost.value, MkkNotSent)
    await cut.close()


@pytest.mark.parametrize(
    ("base_url", "verify_tls", "verified"),
    [
        (None, True, True),  # MKK's own https hosts
        ("https://mkk.example", True, True),
        ("https://mkk.example", False, False),  # the operator's explicit choice
        ("http://127.0.0.1:8080", True, False),  # no TLS on the wire: no CA bundle loaded
        ("HTTP://sandbox:8080", True, False),
    ],
)
def test_the_ca_bundle_is_loaded_only_for_an_https_base_url(
    base_url: str | None, verify_tls: bool, verified: bool
) -> None:
    assert tls_verify(MkkApiSettings(base_url=base_url, verify_tls=verify_tls)) is verified


async def test_an_https_base_url_keeps_certificate_verification() -> None:
    client = MkkClient(MkkApiSettings(base_url="https://mkk.example"), None, None)
    await client.start()
    try:
        pool = client._client()._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context.verify_mode.name == "CERT_REQUIRED"
        assert pool._ssl_context.check_hostname
    finally:
        await client.close()
