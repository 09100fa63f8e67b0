"""Injected faults (deterministic under a seed), §8 service hours, and the admin API."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest

from services.sandbox.mkk.config import FaultConfig
from services.sandbox.mkk.faults import Faults
from services.sandbox.mkk.hours import is_open
from services.sandbox.mkk.state import SandboxState
from tests.unit.test_sandbox_mkk_support import STATUS, MkkClient, code_of

pytest_plugins = ["tests.unit.test_sandbox_mkk_support"]

ISTANBUL = dt.timezone(dt.timedelta(hours=3))


async def _set_faults(http: httpx.AsyncClient, **faults: object) -> None:
    r = await http.put("/_sandbox/faults", json=faults)
    assert r.status_code == 200, r.text


async def test_http500_oi003_keeps_the_reference_free(
    client: MkkClient, http: httpx.AsyncClient
) -> None:
    await client.auth()
    await _set_faults(http, http500_rate=1.0)
    ref = client.ref()
    payload = {"requestHeader": client.header(ref), "refId": "x"}
    r = await client.post(STATUS, payload)
    body = client.verify(r.text)
    assert (r.status_code, code_of(body)) == (500, "OI003")
    assert "messageId" not in body["responseHeader"]
    await _set_faults(http)
    _, body = await client.call(STATUS, payload)
    assert code_of(body) == "RP018"  # same reference accepted


async def test_token_rejection_fault(client: MkkClient, http: httpx.AsyncClient) -> None:
    await client.auth()
    await _set_faults(http, token_reject_rate=1.0)
    r = await client.post(STATUS, {"requestHeader": client.header(), "refId": "x"})
    assert r.status_code == 401 and code_of(client.verify(r.text)) == "OI006"
    rows = (await http.get("/_sandbox/requests", params={"endpoint": "status"})).json()
    assert rows["requests"][-1]["fault"] == "token_reject"


async def test_answer_without_message_id_changes_nothing_and_frees_the_reference(
    client: MkkClient, http: httpx.AsyncClient, state: SandboxState
) -> None:
    """§5.1.5: no messageId means the message never reached MKS, so the fault strikes
    before the call is handled: no report, the reference still free."""
    await client.auth()
    await _set_faults(http, no_message_id_rate=1.0, endpoints=["balance-report"])
    ref = client.ref()
    status, body = await client.balance(reference=ref)
    assert (status, code_of(body)) == (500, "OI031")
    assert "messageId" not in body["responseHeader"] and "refId" not in body
    assert state.reports.reports == {}
    await _set_faults(http)
    _, body = await client.balance(reference=ref)  # §5.1.2: the same reference again
    assert code_of(body) == "0000" and body["responseHeader"]["messageId"]
    rows = (await http.get("/_sandbox/requests", params={"sender_reference": ref})).json()
    assert [r["has_message_id"] for r in rows["requests"]] == [False, True]
    assert [r["fault"] for r in rows["requests"]] == ["no_message_id", None]
    assert len(state.reports.reports) == 1


async def test_dropped_connection_after_processing(
    client: MkkClient, http: httpx.AsyncClient, state: SandboxState
) -> None:
    await client.auth()
    await _set_faults(http, drop_rate=1.0, endpoints=["balance-report"])
    with pytest.raises(Exception, match="dropped"):
        await client.balance()
    # MKS did create the report and burnt the reference; the client never heard.
    assert len(state.reports.reports) == 1
    [rec] = [r for r in state.requests if r.endpoint == "balance-report"]
    assert rec.fault == "dropped" and rec.has_message_id and rec.response_code == "0000"


async def test_dropped_connection_before_processing(
    client: MkkClient, http: httpx.AsyncClient, state: SandboxState
) -> None:
    await client.auth()
    await _set_faults(http, drop_rate=1.0, drop_phase="before", endpoints=["balance-report"])
    with pytest.raises(Exception, match="dropped"):
        await client.balance()
    assert state.reports.reports == {}


async def test_latency(client: MkkClient, http: httpx.AsyncClient) -> None:
    await client.auth()
    await _set_faults(http, latency_ms=200, endpoints=["status"])
    started = time.perf_counter()
    await client.status("x")
    assert time.perf_counter() - started >= 0.2


def test_faults_are_deterministic_under_a_seed() -> None:
    config = FaultConfig(seed=7, http500_rate=0.3, drop_rate=0.2, latency_jitter_ms=50)
    a, b = Faults(config), Faults(config)
    draws_a = [a.draw("status") for _ in range(200)]
    assert draws_a == [b.draw("status") for _ in range(200)]
    hits = sum(d.http500 for d in draws_a)
    assert 30 < hits < 90  # about 30 %
    other = Faults(config.model_copy(update={"seed": 8}))
    assert [other.draw("status") for _ in range(200)] != draws_a
    assert Faults(config).draw("auth").http500 in (True, False)
    quiet = Faults(config.model_copy(update={"endpoints": []}))
    assert not any(quiet.draw("status").http500 for _ in range(50))


async def test_bad_fault_settings_are_refused(http: httpx.AsyncClient) -> None:
    r = await http.put("/_sandbox/faults", json={"http500_rate": 2})
    assert r.status_code == 400 and "http500_rate" in r.text
    r = await http.put("/_sandbox/faults", json={"nonsense": 1})
    assert r.status_code == 400


def test_service_hour_windows() -> None:
    def at(h: int, m: int = 0) -> dt.datetime:
        return dt.datetime(2025, 5, 5, h, m, tzinfo=ISTANBUL)

    assert is_open("balance-report", at(1)) and is_open("balance-report", at(22, 59))
    assert not is_open("balance-report", at(0, 30)) and not is_open("balance-report", at(23))
    assert not is_open("status", at(23, 30)) and not is_open("content", at(0, 59))
    assert is_open("auth", at(0, 30)) and is_open("auth", at(23, 30))  # §3.2.9: 7/24
    # Istanbul time, whatever the zone of the clock: 21:30 UTC is 00:30 in Istanbul.
    assert not is_open("status", dt.datetime(2025, 5, 5, 21, 30, tzinfo=dt.UTC))


async def test_service_hours_answer_oi004_outside_the_window(
    client: MkkClient, http: httpx.AsyncClient, state: SandboxState
) -> None:
    r = await http.put("/_sandbox/settings", json={"service_hours": True})
    assert r.json()["service_hours"] is True
    now = state.clock.now().astimezone(ISTANBUL)
    target = now.replace(hour=23, minute=30, second=0, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    r = await http.post("/_sandbox/clock", json={"set": target.isoformat()})
    assert r.status_code == 200
    assert (await client.auth()).status_code == 200  # the token service runs 7/24
    r = await client.post(STATUS, {"requestHeader": client.header(), "refId": "x"})
    body = client.verify(r.text)
    assert (r.status_code, code_of(body)) == (503, "OI004")
    state.clock.advance(2 * 3600)  # 01:30
    await client.auth()
    _, body = await client.status("x")
    assert code_of(body) == "RP018"


async def test_admin_requests_list_and_filters(
    client: MkkClient, other_client: MkkClient, http: httpx.AsyncClient
) -> None:
    await client.auth()
    _, body = await client.balance()
    await other_client.status("x")
    rows = (await http.get("/_sandbox/requests")).json()["requests"]
    assert [r["endpoint"] for r in rows] == ["auth", "balance-report", "auth", "status"]
    [bal] = (await http.get("/_sandbox/requests", params={"endpoint": "balance-report"})).json()[
        "requests"
    ]
    assert bal["member"] == "TIB" and bal["sender"] == "TIB991"
    assert bal["ref_id"] == body["refId"] and bal["response_code"] == "0000"
    assert bal["http_status"] == 200 and bal["has_message_id"] is True
    assert bal["message_id"] == body["responseHeader"]["messageId"]
    assert bal["sender_reference"] == body["responseHeader"]["senderReference"]
    abc = (await http.get("/_sandbox/requests", params={"member": "ABC"})).json()["requests"]
    assert {r["member"] for r in abc} == {"ABC"} and len(abc) == 2
    reports = (await http.get("/_sandbox/reports")).json()
    assert reports[0]["refId"] == body["refId"]


async def test_admin_clock_moves_forward_only(http: httpx.AsyncClient) -> None:
    before = (await http.get("/_sandbox/clock")).json()
    r = await http.post("/_sandbox/clock", json={"advance_s": 3600})
    assert r.json()["offset_s"] >= 3600
    assert dt.datetime.fromisoformat(r.json()["now"]) > dt.datetime.fromisoformat(before["now"])
    r = await http.post("/_sandbox/clock", json={"advance_s": -1})
    assert r.status_code == 400
    r = await http.post("/_sandbox/clock", json={"set": "2001-01-01T00:00:00+00:00"})
    assert r.status_code == 400
    r = await http.post("/_sandbox/clock", json={})
    assert r.status_code == 400


async def test_admin_unlock_unknown_user_and_info(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    assert (await http.post("/_sandbox/users/NOBODY/unlock")).status_code == 404
    info = (await http.get("/_sandbox/info")).json()
    assert info["mkk_certificate"] == str(state.paths.mkk.cert_path)
    tib = next(m for m in info["members"] if m["code"] == "TIB")
    assert tib["certificate"].endswith("members/TIB/cert.pem")
    assert tib["private_key"].endswith("members/TIB/key.pem")
    assert "password" not in str(info).lower()


async def test_admin_reset_clears_memory(
    client: MkkClient, http: httpx.AsyncClient, state: SandboxState
) -> None:
    for _ in range(3):
        await client.auth(password="Wrong12!")
    await http.post("/_sandbox/clock", json={"advance_s": 10})
    await _set_faults(http, http500_rate=0.5)
    r = await http.post("/_sandbox/reset")
    assert r.json() == {"reset": True}
    assert state.requests == [] and state.locked == set() and state.tokens == {}
    assert state.clock.offset_s == 0 and state.faults.config.http500_rate == 0
