"""The report pipeline end to end: real local broker, MKK sandbox over real HTTP, the
four services in-process (their real wiring). What the issue asks to be shown."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from schemas.events import (
    AUTH_TOKENS,
    REPORTS_READY,
    REPORTS_SUBMITTED,
    BalanceReportFilters,
    ReportCompleted,
    ReportFailed,
    TokenUnavailable,
)
from services.sandbox.mkk.config import DEMO_PASSWORD
from tests.e2e.conftest import ReportSystem, Watcher, report_request
from tests.kafka_tools import read_topic

pytestmark = pytest.mark.e2e


def _balance_reports(system: ReportSystem) -> list[dict[str, Any]]:
    return system.mkk_requests("balance-report")


def _assert_no_reused_reference(system: ReportSystem) -> None:
    """No senderReference reached MKS twice (FAQ 18), and MKK never said RP045 / MF04."""
    records = [
        r for ep in ("auth", "balance-report", "status", "content") for r in system.mkk_requests(ep)
    ]
    burnt = Counter(r["sender_reference"] for r in records if r["has_message_id"])
    assert [ref for ref, n in burnt.items() if n > 1] == []
    assert [r for r in records if r["response_code"] in ("RP045", "MF04")] == []


def _assert_one_report_per_request(system: ReportSystem, completed: list[ReportCompleted]) -> None:
    made = [r for r in _balance_reports(system) if r["response_code"] == "0000"]
    ref_ids = [r["ref_id"] for r in made]
    assert len(ref_ids) == len(set(ref_ids)) == len(completed)
    assert sorted(ref_ids) == sorted(str(c.ref_id) for c in completed)


async def test_fifty_concurrent_mixed_requests_complete_once(report_system: ReportSystem) -> None:
    await report_system.start()
    reqs = [report_request(i, prefix="c50") for i in range(46)]
    reqs += [
        report_request(100 + i, prefix="c50", filters=BalanceReportFilters(sub_acc_no=s))
        for i, s in enumerate(("SERB", "TEMN", "KRDI", "MARJ"))
    ]
    await report_system.publish(reqs)
    w = report_system.watcher
    assert w is not None
    done = await w.wait_terminal([r.request_id for r in reqs], 150)
    completed: list[ReportCompleted] = []
    for r in reqs:
        events = done[r.request_id]
        assert len({e.event_id for e in events}) == 1, events  # one completion
        assert isinstance(events[0], ReportCompleted), events[0]
        completed.append(events[0])
    _assert_one_report_per_request(report_system, completed)
    _assert_no_reused_reference(report_system)
    # Rows published (de-duplicated on ref_id, file, seq) = rows in the sandbox's files.
    sandbox_rows = report_system.report_rows()
    published = w.rows_by_request()
    for c in completed:
        assert c.total_rows == sandbox_rows[str(c.ref_id)] == published[c.request_id]
    assert any(c.total_rows < 300 for c in completed)  # the filtered ones
    # One /v1/auth per token life under load (FAQ 13).
    assert len(report_system.mkk_requests("auth")) == 1


async def test_faults_http500_and_no_message_id_all_complete(report_system: ReportSystem) -> None:
    report_system.admin(
        "/_sandbox/faults", "PUT", {"http500_rate": 0.2, "no_message_id_rate": 0.1, "seed": 11}
    )
    await report_system.start()
    reqs = [report_request(i, prefix="flt") for i in range(16)]
    await report_system.publish(reqs)
    assert report_system.watcher is not None
    done = await report_system.watcher.wait_terminal([r.request_id for r in reqs], 150)
    completed = []
    for r in reqs:
        assert len(done[r.request_id]) == 1
        assert isinstance(done[r.request_id][0], ReportCompleted), done[r.request_id][0]
        completed.append(done[r.request_id][0])
    faults = Counter(
        r["fault"]
        for ep in ("auth", "balance-report", "status", "content")
        for r in report_system.mkk_requests(ep)
    )
    assert faults["http500"] > 0 and faults["no_message_id"] > 0, faults
    _assert_one_report_per_request(report_system, completed)  # type: ignore[arg-type]
    _assert_no_reused_reference(report_system)


async def test_rp003_report_lock_retries_later(report_system: ReportSystem) -> None:
    report_system.admin("/_sandbox/settings", "PUT", {"report_lock": "member"})
    await report_system.start()
    reqs = [report_request(i, prefix="lock") for i in range(3)]
    await report_system.publish(reqs)
    assert report_system.watcher is not None
    done = await report_system.watcher.wait_terminal([r.request_id for r in reqs], 90)
    assert all(isinstance(done[r.request_id][0], ReportCompleted) for r in reqs)
    codes = Counter(r["response_code"] for r in _balance_reports(report_system))
    assert codes["RP003"] >= 1 and codes["0000"] == 3, codes
    _assert_no_reused_reference(report_system)


async def test_terminal_outcomes(report_system: ReportSystem) -> None:
    w = report_system.watcher
    assert w is not None
    # RP026: a filter no position matches (account 99999 does not exist).
    # RP025: the sandbox fails the next report.
    # Wrong zip password: the content-fetcher derives another password than the requester.
    # Expired refId: sandbox time moves 25 h on before the poller runs.
    report_system.admin("/_sandbox/reports/fail-next", "POST", {"count": 1})
    await report_system.start(("auth-token", "report-requester", "status-poller"))
    rp025 = report_request(1, prefix="t25")
    await report_system.publish([rp025])
    await w.wait_terminal([rp025.request_id], 30)
    nodata = report_request(2, prefix="t26", filters=BalanceReportFilters(acc_no="99999"))
    await report_system.publish([nodata])
    await w.wait_terminal([nodata.request_id], 30)
    await report_system.stop()

    await report_system.start(
        per_service={"content-fetcher": {"pipeline": {"zip_key": "another-key"}}},
    )
    badzip = report_request(3, prefix="tzip")
    await report_system.publish([badzip])
    await w.wait_terminal([badzip.request_id], 30)
    await report_system.stop()

    # Expired refId: submitted, then sandbox time moves 25 h on before the poller runs.
    await report_system.start(("auth-token", "report-requester"))
    expired = report_request(4, prefix="texp")
    await report_system.publish([expired])
    for _ in range(100):
        if any(e.request_id == expired.request_id for e in w.events[REPORTS_SUBMITTED.name]):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.1)
    report_system.admin("/_sandbox/clock", "POST", {"advance_s": 25 * 3600})
    await report_system.start(("status-poller",))
    done = await w.wait_terminal([expired.request_id], 30)

    def one(rid: str) -> Any:
        events = done[rid]
        assert len(events) == 1, events
        return events[0]

    f25 = one(rp025.request_id)
    assert isinstance(f25, ReportFailed) and (f25.stage, f25.code) == ("status", "RP025")
    assert "hata" in f25.description
    c26 = one(nodata.request_id)
    assert isinstance(c26, ReportCompleted) and c26.no_data and c26.total_rows == 0
    fz = one(badzip.request_id)
    assert isinstance(fz, ReportFailed) and (fz.stage, fz.code) == ("content", "KOPRU_BAD_CONTENT")
    assert "decrypt" in fz.description or "password" in fz.description.lower()
    dlq = await read_topic(report_system.bootstrap, REPORTS_READY.dlq, expect=1, timeout_s=10)
    assert len(dlq) == 1
    fe = one(expired.request_id)
    assert isinstance(fe, ReportFailed) and (fe.stage, fe.code) == ("status", "RP018")


async def test_wrong_password_one_attempt_then_resumes(report_system: ReportSystem) -> None:
    report_system.password_file.write_text("Wrong99!")
    await report_system.start()
    reqs = [report_request(i, prefix="pw") for i in range(2)]
    await report_system.publish(reqs)
    tokens = Watcher(report_system.bootstrap, [AUTH_TOKENS.name])
    await tokens.start()
    try:
        for _ in range(100):
            if tokens.events[AUTH_TOKENS.name]:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(4.0)  # requests keep asking for a token meanwhile
        unavailable = [
            e for e in tokens.events[AUTH_TOKENS.name] if isinstance(e, TokenUnavailable)
        ]
    finally:
        await tokens.stop()
    assert unavailable and unavailable[0].retry_blocked
    auths = report_system.mkk_requests("auth")
    assert len(auths) == 1, auths  # one attempt, never three (FAQ 15)
    assert auths[0]["response_code"] == "0x00d30003"
    # The secret is corrected: work resumes without restarting any service.
    report_system.password_file.write_text(DEMO_PASSWORD)
    assert report_system.watcher is not None
    done = await report_system.watcher.wait_terminal([r.request_id for r in reqs], 60)
    assert all(isinstance(done[r.request_id][0], ReportCompleted) for r in reqs)
    assert [a["response_code"] for a in report_system.mkk_requests("auth")] == [
        "0x00d30003",
        "0000",
    ]


async def test_rejected_token_is_refreshed_once_and_the_call_retried(
    report_system: ReportSystem,
) -> None:
    report_system.admin(
        "/_sandbox/faults",
        "PUT",
        {"token_reject_rate": 0.3, "endpoints": ["balance-report", "status"], "seed": 5},
    )
    await report_system.start()
    reqs = [report_request(i, prefix="rej") for i in range(6)]
    await report_system.publish(reqs)
    assert report_system.watcher is not None
    done = await report_system.watcher.wait_terminal([r.request_id for r in reqs], 90)
    assert all(isinstance(done[r.request_id][0], ReportCompleted) for r in reqs)
    calls = report_system.mkk_requests("balance-report") + report_system.mkk_requests("status")
    assert any(c["fault"] == "token_reject" for c in calls)
    assert len(report_system.mkk_requests("auth")) > 1  # a new token after a rejection
    _assert_no_reused_reference(report_system)
