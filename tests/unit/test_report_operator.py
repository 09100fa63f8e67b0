"""`kopru report resolve|retry` decisions (services/report_requester/operator.py) with the
real requester handler and fakes for MKK: an ambiguous request (RP045 after a lost
answer, FAQ 18) resolved with the operator's refId, or retried under a new reference;
both idempotent, both refused where they would make a second report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import ReportFailed, ReportRequested, ReportSubmitted
from services.common.mkk.outcome import MkkTransportError
from services.common.mkk.token_cache import UnknownMkkUserError
from services.common.stores.state import MemoryStateStore
from services.report_requester.handler import AMBIGUOUS, SCOPE, handle_requested
from services.report_requester.operator import OperatorError, resolve, retry
from tests.unit.test_report_requester import Fake, code, ok, req

NOW = datetime.now(UTC)


async def ambiguous(f: Fake, event: ReportRequested | None = None) -> ReportFailed:
    """Lost answer, then RP045 for the same reference: KOPRU_AMBIGUOUS."""
    event = event or req()
    f.answers += [MkkTransportError("cut after send"), code("RP045")]
    with pytest.raises(Exception):  # noqa: B017 - RetryLater
        await handle_requested(event, 0, f.deps())
    await handle_requested(event, 1, f.deps())
    failed = f.published[-1]
    assert isinstance(failed, ReportFailed) and failed.code == AMBIGUOUS
    return failed


class Requests:
    def __init__(self) -> None:
        self.sent: list[ReportRequested] = []

    async def __call__(self, event: ReportRequested) -> None:
        self.sent.append(event)


async def test_resolve_publishes_submitted_with_the_operators_ref_id_once() -> None:
    f = Fake([])
    failed = await ambiguous(f)
    reference = f.sent[0][0]
    sent_by = datetime.now(UTC)
    later = sent_by + timedelta(hours=3)  # the operator found the refId three hours on
    out = await resolve(f.state, f.publish, "TIB", "r-1", "REF-FROM-MKK", later)
    assert "resolved" in out
    sub = f.published[-1]
    assert isinstance(sub, ReportSubmitted)
    assert (sub.ref_id, sub.sender_reference, sub.request_id) == ("REF-FROM-MKK", reference, "r-1")
    assert sub.event_id != failed.event_id
    # The refId's 24 h run from the first send of the reference, not from now (§5.1.5).
    assert sub.expires_at <= sent_by + timedelta(hours=24)
    assert sub.submitted_at == later
    n = len(f.published)
    # Twice = once: no second event, no second MKK call.
    assert "already" in await resolve(f.state, f.publish, "TIB", "r-1", "REF-FROM-MKK", NOW)
    assert len(f.published) == n
    with pytest.raises(OperatorError, match="already submitted"):
        await resolve(f.state, f.publish, "TIB", "r-1", "OTHER", NOW)
    # A redelivered request now replays the submission, never sends again.
    await handle_requested(req(), 0, f.deps())
    assert f.published[-1] == sub and len(f.sent) == 2
    rec = await f.state.get(SCOPE, "TIB:r-1")
    assert rec is not None and [h["then"] for h in rec["history"]] == ["resolved"]
    assert rec["history"][0]["code"] == AMBIGUOUS


async def test_resolve_after_the_ref_ids_24_hours_is_refused() -> None:
    f = Fake([])
    await ambiguous(f)
    with pytest.raises(OperatorError, match="24 hours"):
        await resolve(f.state, f.publish, "TIB", "r-1", "REF", NOW + timedelta(hours=25))


async def test_resolve_refuses_a_bad_ref_id_and_unknown_requests() -> None:
    f = Fake([])
    await ambiguous(f)
    with pytest.raises(OperatorError, match="invalid refId"):
        await resolve(f.state, f.publish, "TIB", "r-1", "has space", NOW)
    with pytest.raises(OperatorError, match="not seen"):
        await resolve(f.state, f.publish, "TIB", "nope", "REF", NOW)


async def test_retry_sends_a_new_reference_once_and_the_new_events_are_new() -> None:
    f = Fake([])
    failed = await ambiguous(f)
    old_reference = f.sent[0][0]
    requests = Requests()
    out = await retry(f.state, requests, "TIB", "r-1", NOW)
    assert "generation 1" in out
    # Twice = once: the second call sees the retry under way and publishes nothing.
    assert "already under way" in await retry(f.state, requests, "TIB", "r-1", NOW)
    assert len(requests.sent) == 1
    [again] = requests.sent
    assert again.event_id != req().event_id
    f.answers.append(ok())
    await handle_requested(again, 0, f.deps())
    assert f.sent[-1][0] != old_reference  # §3.2.2: a new senderReference
    sub = f.published[-1]
    assert isinstance(sub, ReportSubmitted) and sub.sender_reference == f.sent[-1][0]
    assert sub.event_id not in {p.event_id for p in f.published[:-1]}
    assert failed.event_id != sub.event_id
    # The same retry once more after it succeeded: done once, nothing sent.
    assert "already retried as generation 1" in await retry(f.state, requests, "TIB", "r-1", NOW)
    assert len(requests.sent) == 1
    # Accepted without an operator's retry: a retry would make a second report.
    g = Fake([ok()])
    await handle_requested(req(), 0, g.deps())
    with pytest.raises(OperatorError, match="second"):
        await retry(g.state, requests, "TIB", "r-1", NOW)


async def test_a_second_failure_after_retry_is_a_new_event() -> None:
    f = Fake([])
    first = await ambiguous(f)
    requests = Requests()
    await retry(f.state, requests, "TIB", "r-1", NOW)
    f.answers.append(code("RP036"))  # terminal this time
    await handle_requested(requests.sent[0], 0, f.deps())
    second = f.published[-1]
    assert isinstance(second, ReportFailed) and second.code == "RP036"
    assert second.event_id != first.event_id  # consumers must not drop it as a copy


async def test_retry_is_refused_while_in_progress_and_after_a_ref_id() -> None:
    f = Fake([MkkTransportError("cut")])
    with pytest.raises(Exception):  # noqa: B017 - RetryLater: in progress
        await handle_requested(req(), 0, f.deps())
    with pytest.raises(OperatorError, match="in progress"):
        await retry(f.state, Requests(), "TIB", "r-1", NOW)
    state = MemoryStateStore()
    failed_at_status: dict[str, Any] = {
        "fp": "x",
        "request": req().model_dump(mode="json"),
        "outcome": {
            "topic": "mks.reports.failed",
            "event": ReportFailed(
                request_id="r-2", member="TIB", stage="status", ref_id="R", code="RP025",
                description="error",
            ).model_dump(mode="json"),
        },
    }  # fmt: skip
    await state.put(SCOPE, "TIB:r-2", failed_at_status)
    with pytest.raises(OperatorError, match="new request id"):
        await retry(state, Requests(), "TIB", "r-2", NOW)


async def test_unknown_mkk_user_fails_the_request_at_once() -> None:
    f = Fake([])

    async def unknown(member: str, sender: str) -> Any:
        raise UnknownMkkUserError(f"auth-token has no MKK user {member}/{sender}", 1.0)

    deps = f.deps()
    deps.get_token = unknown
    await handle_requested(req(sender="TIB999"), 0, deps)
    [failed] = f.published
    assert isinstance(failed, ReportFailed)
    assert (failed.code, failed.stage) == ("KOPRU_UNKNOWN_USER", "request")
    assert f.sent == []
