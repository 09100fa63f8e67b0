"""Token, headers, signature, schema, rights and senderReference checks on report calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import RSAKey

from services.sandbox.mkk import create_app, sandbox_state
from services.sandbox.mkk.state import SandboxState
from tests.unit.test_sandbox_mkk_support import (
    BALANCE,
    STATUS,
    MkkClient,
    b64json,
    code_of,
    make_config,
)

pytest_plugins = ["tests.unit.test_sandbox_mkk_support"]


def _status_payload(client: MkkClient, ref: str | None = None) -> dict[str, object]:
    return {"requestHeader": client.header(ref), "refId": "e7M7RhX2xUzR3uAjsb2s"}


async def test_answers_are_jws_signed_by_the_mkk_key(client: MkkClient) -> None:
    r = await client.post(STATUS, _status_payload(client))
    assert r.headers["content-type"].startswith("text/plain")
    assert b64json(r.text.split(".")[0]) == {"alg": "RS256"}  # §9.2
    body = client.verify(r.text)  # raises if not signed by the sandbox's MKK cert
    assert r.status_code == 422 and code_of(body) == "RP018"


async def test_missing_or_bad_token_is_401_oi006(client: MkkClient) -> None:
    payload = _status_payload(client)
    r = await client.post(STATUS, payload, headers={"Sender": "TIB"})
    assert r.status_code == 401 and code_of(client.verify(r.text)) == "OI006"
    r = await client.post(STATUS, payload, token="not-a-jwt")
    assert r.status_code == 401
    # A token signed by someone else's key is refused too.
    forged = jws.serialize_compact({"alg": "RS256"}, b'{"jti":"x","exp":9999999999}', client.key)
    r = await client.post(STATUS, payload, token=forged)
    assert r.status_code == 401


async def test_expired_token_after_60_minutes(client: MkkClient, state: SandboxState) -> None:
    await client.auth()
    state.clock.advance(3599)
    r = await client.post(STATUS, _status_payload(client))
    assert r.status_code == 422  # still valid
    state.clock.advance(2)
    r = await client.post(STATUS, _status_payload(client))
    assert r.status_code == 401 and code_of(client.verify(r.text)) == "OI006"


async def test_token_of_another_member_is_refused(
    client: MkkClient, other_client: MkkClient
) -> None:
    await other_client.auth()
    r = await client.post(STATUS, _status_payload(client), token=other_client.token)
    assert r.status_code == 401


async def test_sender_header_missing_or_unknown_is_oi021(client: MkkClient) -> None:
    await client.auth()
    h = {"Authorization": f"Bearer {client.token}"}
    r = await client.post(STATUS, _status_payload(client), headers=h)
    assert r.status_code == 500 and code_of(client.verify(r.text)) == "OI021"
    r = await client.post(STATUS, _status_payload(client), sender="NOPE")
    assert code_of(client.verify(r.text)) == "OI021"


async def test_unsigned_body_is_oi016(client: MkkClient) -> None:
    r = await client.post(STATUS, body=json.dumps(_status_payload(client)))
    assert r.status_code == 500 and code_of(client.verify(r.text)) == "OI016"
    unsigned = jws.serialize_compact({"alg": "RS256"}, b"{}", client.key).rsplit(".", 1)[0] + "."
    r = await client.post(STATUS, body=unsigned)
    assert code_of(client.verify(r.text)) == "OI016"


async def test_wrong_key_is_oi012(client: MkkClient) -> None:
    stranger = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    body = jws.serialize_compact({"alg": "RS256"}, json.dumps(_status_payload(client)), stranger)
    r = await client.post(STATUS, body=body)
    assert r.status_code == 500 and code_of(client.verify(r.text)) == "OI012"
    # HS256 is not an RSA signature (§3): refused as a failed verification.
    hs = "eyJhbGciOiJIUzI1NiJ9." + body.split(".")[1] + ".c2lnbmF0dXJl"
    r = await client.post(STATUS, body=hs)
    assert code_of(client.verify(r.text)) == "OI012"


async def test_member_without_certificate_is_oi010(
    keys_dir: Path, tmp_path: Path, client: MkkClient
) -> None:
    import httpx

    members = [
        {
            "code": "TIB",
            "has_certificate": False,
            "users": [{"username": "TIB991", "password": "Demo991!"}],
        }
    ]
    app = create_app(make_config(keys_dir, tmp_path / "s2", members=members))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http2:
            c = MkkClient(http2, keys_dir / "members/TIB/key.pem", keys_dir / "mkk/cert.pem")
            r = await c.post(STATUS, _status_payload(c))
            assert r.status_code == 500 and code_of(c.verify(r.text)) == "OI010"
    finally:
        sandbox_state(app).close()


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"refId": None}, "SP001", 422),  # a required field missing
        ({"fileName": "x"}, "OI002", 500),  # a field not in the schema
        ({"refId": "x" * 51}, "OI002", 500),  # §6.1.2: 0-50
        (
            {
                "requestHeader": {
                    "senderReference": "a b",
                    "senderMember": "TIB",
                    "sender": "TIB991",
                }
            },
            "OI002",
            500,
        ),
        (
            {"requestHeader": {"senderReference": "a", "senderMember": "tib", "sender": "TIB991"}},
            "OI002",
            500,
        ),
    ],
)
async def test_schema_rules_of_status(
    client: MkkClient, change: dict[str, object], code: str, status: int
) -> None:
    payload = _status_payload(client)
    for k, v in change.items():
        if v is None:
            payload.pop(k)
        else:
            payload[k] = v
    r = await client.post(STATUS, payload)
    body = client.verify(r.text)
    assert (r.status_code, code_of(body)) == (status, code)
    assert "messageId" not in body["responseHeader"]


async def test_sender_reference_reuse_is_rp045_without_message_id(client: MkkClient) -> None:
    ref = client.ref()
    status, body = await client.call(STATUS, _status_payload(client, ref))
    assert body["responseHeader"]["messageId"]
    status, body = await client.call(STATUS, _status_payload(client, ref))
    assert (status, code_of(body)) == (422, "RP045")
    assert "messageId" not in body["responseHeader"]
    # The same reference on another endpoint is a reuse too (unique per member).
    status, body = await client.balance(reference=ref)
    assert code_of(body) == "RP045"


async def test_rejected_before_mks_does_not_burn_the_reference(client: MkkClient) -> None:
    ref = client.ref()
    payload = _status_payload(client, ref)
    r = await client.post(STATUS, body=json.dumps(payload))  # unsigned: OI016
    assert code_of(client.verify(r.text)) == "OI016"
    _, body = await client.call(STATUS, payload)
    assert code_of(body) == "RP018" and body["responseHeader"]["messageId"]


async def test_the_same_reference_is_free_for_another_member(
    client: MkkClient, other_client: MkkClient
) -> None:
    ref = client.ref()
    await client.call(STATUS, _status_payload(client, ref))
    _, body = await other_client.call(STATUS, _status_payload(other_client, ref))
    assert code_of(body) == "RP018"


async def test_rights_and_member_codes(client: MkkClient, state: SandboxState) -> None:
    member = state.config.member("TIB")
    assert member is not None
    hdr = client.header()
    status, body = await client.call(STATUS, {"requestHeader": hdr | {"senderMember": "ZZZ"},
                                              "refId": "x"})  # fmt: skip
    assert (status, code_of(body)) == (422, "RP043")
    status, body = await client.call(STATUS, {"requestHeader": client.header() | {"senderMember":
                                              "ABC"}, "refId": "x"})  # fmt: skip
    assert code_of(body) == "RP039"  # TIB991 is not a user of ABC
    status, body = await client.call(STATUS, {"requestHeader": client.header() | {"sender":
                                              "TIB999"}, "refId": "x"})  # fmt: skip
    assert code_of(body) == "RP039"
    await client.auth()
    state.locked.add("TIB991")
    status, body = await client.status("x")
    assert code_of(body) == "RP040"
    state.locked.clear()
    member.users[0].active = False
    status, body = await client.status("x")
    assert code_of(body) == "RP041"
    member.users[0].active = True
    member.users[0].functions = ["RP013", "RP166", "COMMON_CREATE_REPORT"]
    status, body = await client.status("x")
    assert code_of(body) == "RP048"
    assert "messageId" not in body["responseHeader"]
    member.users[0].functions.append("ASYNC_REPORT_STATUS_QUERY")
    member.functions = ["RP013"]
    status, body = await client.status("x")
    assert code_of(body) == "MY04"


async def test_body_member_other_than_sender_header_is_rp036(
    client: MkkClient, state: SandboxState
) -> None:
    abc = state.config.member("ABC")
    assert abc is not None
    abc.users.append(abc.users[0].model_copy(update={"username": "TIB991"}))
    status, body = await client.call(STATUS, {"requestHeader": client.header() | {"senderMember":
                                              "ABC"}, "refId": "x"})  # fmt: skip
    assert (status, code_of(body)) == (422, "RP036")
    assert body["responseHeader"]["messageId"]


async def test_balance_report_path_checks_token_too(client: MkkClient) -> None:
    r = await client.post(BALANCE, {}, headers={"Sender": "TIB"})
    assert r.status_code == 401
