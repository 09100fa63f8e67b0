"""§3.2 token service of the sandbox, driven as a plain HTTP client."""

from __future__ import annotations

import datetime as dt

import httpx
from joserfc import jws

from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.state import SandboxState
from tests.unit.test_sandbox_mkk_support import (
    AUTH,
    SAMPLE_AUTH,
    MkkClient,
    b64json,
    sample,
)

pytest_plugins = ["tests.unit.test_sandbox_mkk_support"]


async def test_token_is_rs256_jwt_signed_by_mkk_with_sample_claims(
    client: MkkClient, state: SandboxState
) -> None:
    r = await client.auth()
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"tokenType", "token", "Created", "LifeTime"}  # §3.2.5
    assert body["tokenType"] == "Bearer" and body["LifeTime"] == "3600"
    created = dt.datetime.fromisoformat(body["Created"])
    assert created.utcoffset() == dt.timedelta(hours=3)  # Istanbul, as in §3.2.6
    token = jws.deserialize_compact(body["token"], client.mkk, algorithms=["RS256"])
    assert b64json(body["token"].split(".")[0]) == {"alg": "RS256"}
    claims = b64json(body["token"].split(".")[1])
    assert abs(claims["exp"] - (state.clock.time() + 3600)) < 5
    assert claims["jti"] and token.payload
    assert claims["claim"]["auth"] == "OK"
    assert claims["claim"]["ipList"] == [None]
    assert "TIB991" in claims["claim"]["reason"]
    head = claims["claim"]["responseHeader"]
    assert head["receiverMember"] == "MKK" and head["messageId"].isdigit()


async def test_guide_sample_body_is_accepted_by_the_schema(http: httpx.AsyncClient) -> None:
    # §3.2.4 verbatim: the password is masked in the guide, so it is a wrong password,
    # not a schema error; with the member's real password the same body gets a token.
    r = await http.post(AUTH, json=SAMPLE_AUTH)
    assert r.status_code == 401
    assert r.json()["error_code"] == "0x00d30003"
    r = await http.post(AUTH, json=sample(SAMPLE_AUTH, password=DEMO_PASSWORD))
    assert r.status_code == 200 and r.json()["tokenType"] == "Bearer"


async def test_failure_body_has_the_guide_fields(client: MkkClient) -> None:
    r = await client.auth(password="Wrong12!")
    assert r.status_code == 401
    body = r.json()
    assert set(body) == {"error_message", "transaction_id", "error_code", "error_subcode"}
    assert body["error_message"] == "Geçersiz kullanıcı adı veya şifre!"
    assert "Wrong12!" not in r.text


async def test_three_wrong_passwords_lock_until_admin_unlocks(
    client: MkkClient, http: httpx.AsyncClient
) -> None:
    for _ in range(3):
        assert (await client.auth(password="Wrong12!")).status_code == 401
    r = await client.auth()  # right password, but locked (FAQ 15)
    assert r.status_code == 422 and r.json()["error_code"] == "RP040"
    info = (await http.get("/_sandbox/info")).json()
    assert info["locked_users"] == ["TIB991"]
    r = await http.post("/_sandbox/users/TIB991/unlock")
    assert r.json() == {"username": "TIB991", "locked": False}
    assert (await client.auth()).status_code == 200


async def test_a_success_resets_the_wrong_password_count(client: MkkClient) -> None:
    for _ in range(2):
        await client.auth(password="Wrong12!")
    assert (await client.auth()).status_code == 200
    for _ in range(2):
        await client.auth(password="Wrong12!")
    assert (await client.auth()).status_code == 200


async def test_unknown_member_user_and_inactive_user(
    client: MkkClient, state: SandboxState
) -> None:
    r = await client.auth(requestHeader=client.header() | {"senderMember": "XYZ"})
    assert (r.status_code, r.json()["error_code"]) == (422, "RP043")
    r = await client.auth(username="TIB992", requestHeader=client.header() | {"sender": "TIB992"})
    assert (r.status_code, r.json()["error_code"]) == (422, "RP039")
    member = state.config.member("TIB")
    assert member is not None
    member.users[0].active = False
    r = await client.auth()
    assert (r.status_code, r.json()["error_code"]) == (422, "RP041")


async def test_user_without_the_auth_function_gets_rp048(
    client: MkkClient, state: SandboxState
) -> None:
    member = state.config.member("TIB")
    assert member is not None
    member.users[0].functions = ["RP013"]
    r = await client.auth()
    assert (r.status_code, r.json()["error_code"]) == (422, "RP048")


async def test_schema_errors(client: MkkClient, http: httpx.AsyncClient) -> None:
    r = await client.auth(password="12345")  # shorter than 6 (§3.2.2)
    assert (r.status_code, r.json()["error_code"]) == (500, "OI002")
    r = await http.post(AUTH, json={"username": "TIB991", "password": "Demo991!"})
    assert (r.status_code, r.json()["error_code"]) == (500, "SP001")
    r = await http.post(AUTH, content=b"not json")
    assert r.json()["error_code"] == "OI002"


async def test_schema_errors_do_not_count_as_wrong_passwords(
    client: MkkClient, state: SandboxState
) -> None:
    for _ in range(4):
        await client.auth(password="1")
    assert state.locked == set()


async def test_a_token_reference_is_burnt_only_on_success(client: MkkClient) -> None:
    ref = client.ref()
    r = await client.auth(requestHeader=client.header(ref), password="Wrong12!")
    assert r.status_code == 401  # no messageId: the reference stays free
    r = await client.auth(requestHeader=client.header(ref))
    assert r.status_code == 200
    r = await client.auth(requestHeader=client.header(ref))
    assert (r.status_code, r.json()["error_code"]) == (422, "RP045")


async def test_auth_calls_are_recorded_without_secrets(
    client: MkkClient, http: httpx.AsyncClient
) -> None:
    await client.auth(password="Wrong12!")
    await client.auth()
    r = await http.get("/_sandbox/requests", params={"endpoint": "auth"})
    rows = r.json()["requests"]
    assert [(x["http_status"], x["has_message_id"]) for x in rows] == [(401, False), (200, True)]
    assert DEMO_PASSWORD not in r.text and "Wrong12!" not in r.text
    assert client.token is not None and client.token not in r.text
