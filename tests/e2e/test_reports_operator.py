"""Issue 13 through the MKK sandbox: several MKK users of one member, each with its own
password, token and single /v1/auth; a request for a user auth-token does not know
fails at once; an ambiguous request (answer lost after MKK used the reference, then
RP045) resolved with the refId an operator learnt from MKK, another one retried under
a new senderReference, both as real `kopru report` commands, each run twice."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.events import REPORTS_SUBMITTED, ReportCompleted, ReportFailed, ReportSubmitted
from services.common.kafka.local_broker import LocalBroker
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys
from tests.e2e.conftest import (
    ReportSystem,
    report_request,
    run_kopru,
    start_sandbox,
    stop_process,
    watch_reports,
)

pytestmark = pytest.mark.e2e

OTHER_PASSWORD = "Other992?"  # the second user's sandbox password (FAQ 14: one per user)
TWO_USERS = f"""
durations: {{rp020_s: 0.2, rp021_s: 0.2, rp022_s: 0.2, rp023_s: 0.3}}
ledger: {{rows: 300, accounts: 50, securities: 20}}
faults: {{seed: 7}}
report_lock: "off"
members:
  - code: TIB
    users:
      - {{username: TIB991, password: "{DEMO_PASSWORD}"}}
      - {{username: TIB992, password: "{OTHER_PASSWORD}"}}
"""


@pytest.fixture
async def two_user_system(
    report_broker: LocalBroker, tmp_path: Path
) -> AsyncIterator[ReportSystem]:
    proc, url = start_sandbox(tmp_path, TWO_USERS)
    keys = ensure_demo_keys(tmp_path / "sandbox")
    pw991 = tmp_path / "pw991"
    pw991.write_text(DEMO_PASSWORD)
    pw992 = tmp_path / "pw992"
    pw992.write_text(OTHER_PASSWORD)
    system = ReportSystem(
        bootstrap=report_broker.bootstrap_servers,
        sandbox_url=url,
        tmp=tmp_path,
        store_url=f"sqlite:///{tmp_path}/kopru.db",
        password_file=pw991,  # TIB/TIB991 through the single-user shorthand (mkk_auth)
        keys=keys,
        overrides={"mkk_users": {"TIB992": {"member": "TIB", "password_file": str(pw992)}}},
    )
    system.watcher = await watch_reports(report_broker.bootstrap_servers)
    yield system
    await system.stop()
    await system.watcher.stop()
    stop_process(proc)


async def test_two_mkk_users_of_one_member_each_with_its_own_token(
    two_user_system: ReportSystem,
) -> None:
    system = two_user_system
    await system.start()
    reqs = [
        report_request(i, prefix=f"u{sender[-1]}").model_copy(update={"sender": sender})
        for i in range(4)
        for sender in ("TIB991", "TIB992")
    ]
    unknown = report_request(0, prefix="nobody").model_copy(update={"sender": "TIB993"})
    started = time.monotonic()
    await system.publish([*reqs, unknown])
    assert system.watcher is not None
    done = await system.watcher.wait_terminal([r.request_id for r in [*reqs, unknown]], 90)
    for r in reqs:
        assert isinstance(done[r.request_id][0], ReportCompleted), done[r.request_id]
    # A user auth-token has no password for fails at once, with a code that says so.
    [failed] = done[unknown.request_id]
    assert isinstance(failed, ReportFailed)
    assert (failed.code, failed.stage) == ("KOPRU_UNKNOWN_USER", "request")
    assert time.monotonic() - started < 60
    auths = system.mkk_requests("auth")
    assert Counter(a["sender"] for a in auths) == {"TIB991": 1, "TIB992": 1}, auths
    assert all(a["response_code"] == "0000" for a in auths)
    # Each user's calls carried that user's own token.
    calls = system.mkk_requests("balance-report") + system.mkk_requests("status")
    assert {c["sender"] for c in calls} == {"TIB991", "TIB992"}
    assert all(c["token_user"] == c["sender"] for c in calls), calls


async def _wait_for(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_ambiguous_requests_resolved_and_retried_by_the_operator(
    report_system: ReportSystem,
) -> None:
    system = report_system
    # MKK handles each balance-report, then the answer is lost (HTTP cut after the fact).
    system.admin(
        "/_sandbox/faults", "PUT",
        {"drop_rate": 1.0, "drop_phase": "after", "endpoints": ["balance-report"]},
    )  # fmt: skip
    await system.start()
    resolved, retried = report_request(1, prefix="amb"), report_request(2, prefix="amb")
    await system.publish([resolved, retried])

    def dropped() -> int:
        return sum(c["fault"] == "dropped" for c in system.mkk_requests("balance-report"))

    await _wait_for(lambda: dropped() >= 2, 30)
    system.admin("/_sandbox/faults", "PUT", {"drop_rate": 0.0})
    assert system.watcher is not None
    done = await system.watcher.wait_terminal([resolved.request_id, retried.request_id], 60)
    refs: dict[str, str] = {}
    for r in (resolved, retried):
        [failed] = done[r.request_id]
        assert isinstance(failed, ReportFailed) and failed.code == "KOPRU_AMBIGUOUS", failed
        found = re.search(r"senderReference (\S+)", failed.description)
        assert found is not None
        refs[r.request_id] = found.group(1)
    code, out = await run_kopru(system, "report", "status", resolved.request_id)
    assert "request: ReportFailed KOPRU_AMBIGUOUS" in out and "kopru report resolve" in out, out
    # The operator asks MKK about the reference and learns the refId (the sandbox's record).
    [ref_id] = {
        c["ref_id"]
        for c in system.mkk_requests("balance-report")
        if c["sender_reference"] == refs[resolved.request_id] and c["ref_id"]
    }
    for _ in range(2):  # twice = once
        results = await asyncio.gather(
            run_kopru(system, "report", "resolve", resolved.request_id, "--ref-id", ref_id),
            run_kopru(system, "report", "retry", retried.request_id),
        )
        assert all(code == 0 for code, _ in results), results
    code, out = await run_kopru(system, "report", "resolve", resolved.request_id, "--ref-id", "X1")
    assert code != 0 and "already submitted" in out

    def completed(rid: str) -> list[ReportCompleted]:
        return [e for e in system.watcher.terminal()[rid] if isinstance(e, ReportCompleted)]  # type: ignore[union-attr]

    await _wait_for(lambda: completed(resolved.request_id) and completed(retried.request_id), 60)
    [c_resolved] = completed(resolved.request_id)
    assert c_resolved.ref_id == ref_id and c_resolved.total_rows == 300
    [c_retried] = completed(retried.request_id)
    submitted = {
        e.event_id: e
        for e in system.watcher.events[REPORTS_SUBMITTED.name]
        if isinstance(e, ReportSubmitted)
    }
    by_request = Counter(e.request_id for e in submitted.values())
    assert by_request == {resolved.request_id: 1, retried.request_id: 1}
    new = next(e for e in submitted.values() if e.request_id == retried.request_id)
    assert new.sender_reference != refs[retried.request_id]  # deliberately a new reference
    assert c_retried.ref_id == new.ref_id
    accepted = [
        c for c in system.mkk_requests("balance-report")
        if c["sender_reference"] == new.sender_reference and c["response_code"] == "0000"
    ]  # fmt: skip
    assert len(accepted) == 1  # the retry ran twice, MKK was asked once
    # The resolved request made no new report at MKK: its refId is the first one.
    assert sum(c["ref_id"] is not None for c in system.mkk_requests("balance-report")) == 3
    code, out = await run_kopru(system, "report", "status", resolved.request_id)
    assert code == 0 and f"resolved by operator with refId {ref_id}" in out, out
    assert "content: ReportCompleted" in out
    code, out = await run_kopru(system, "report", "status", retried.request_id)
    assert code == 0 and "retried by operator as generation 1" in out, out
