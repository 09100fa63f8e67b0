"""The report-requester's decisions with fakes: the senderReference phases (§3.2.2,
§5.1.2, FAQ 18), the crash window, replay, terminal codes, intake rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from schemas.events import ReportFailed, ReportRequested, ReportSubmitted
from schemas.mkk import BalanceReportRequest
from services.common.errors import InvalidMessage, RetryLater
from services.common.mkk.outcome import MkkNotSent, MkkOutcome, MkkTransportError
from services.common.mkk.token_cache import CachedToken
from services.common.stores.state import MemoryStateStore
from services.report_requester.handler import AMBIGUOUS, RequesterDeps, handle_requested

TOKEN = CachedToken("jti-1", datetime.now(UTC) + timedelta(hours=1), datetime.now(UTC), "tok-1")
TOKEN2 = CachedToken("jti-2", datetime.now(UTC) + timedelta(hours=1), datetime.now(UTC), "tok-2")


class Fake:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str, str]] = []  # (reference, token, zip password)
        self.published: list[Any] = []
        self.rejected: list[str] = []
        self.state = MemoryStateStore()

    async def send(self, req: BalanceReportRequest, token: str) -> MkkOutcome:
        self.sent.append(
            (req.request_header.sender_reference, token, req.zip_password.get_secret_value())
        )
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        assert isinstance(a, MkkOutcome)
        return a

    async def get_token(self, member: str, sender: str) -> CachedToken:
        return TOKEN

    async def rejected_token(self, member: str, sender: str, jti: str) -> CachedToken:
        self.rejected.append(jti)
        return TOKEN2

    async def publish(self, spec: Any, event: Any) -> None:
        self.published.append(event)

    def deps(self) -> RequesterDeps:
        return RequesterDeps(
            state=self.state,
            publish=self.publish,
            get_token=self.get_token,
            rejected_token=self.rejected_token,
            send=self.send,
            zip_secret="zip-secret",
            service_hours=False,
            today=lambda: date(2025, 5, 6),
        )


def ok(mid: str | None = "1") -> MkkOutcome:
    return MkkOutcome.from_code("0000", 200, message_id=mid, ref_id="REF123")


def code(c: str, status: int = 422, mid: str | None = "2") -> MkkOutcome:
    return MkkOutcome.from_code(c, status, message_id=mid)


def req(**kw: Any) -> ReportRequested:
    base: dict[str, Any] = dict(
        request_id="r-1", member="TIB", sender="TIB991", process_date=date(2025, 5, 5),
        file_type="csv",
    )  # fmt: skip
    base.update(kw)
    return ReportRequested(**base)


async def test_accepted_request_is_submitted_and_replayed_without_a_second_call() -> None:
    f = Fake([ok()])
    ev = req()
    await handle_requested(ev, 0, f.deps())
    [sub] = f.published
    assert isinstance(sub, ReportSubmitted) and sub.ref_id == "REF123"
    assert sub.expires_at - sub.submitted_at == timedelta(hours=24)  # §5.1.5
    # Redelivered, and re-published under a new event id: the same outcome, no call.
    await handle_requested(ev, 0, f.deps())
    await handle_requested(req(), 0, f.deps())
    assert len(f.sent) == 1
    assert [p.event_id for p in f.published] == [sub.event_id] * 3


async def test_zip_password_meets_the_rules_and_is_not_in_the_event() -> None:
    f = Fake([ok()])
    await handle_requested(req(), 0, f.deps())
    pw = f.sent[0][2]
    assert 8 <= len(pw) <= 50 and any(c.isupper() for c in pw) and any(c.isdigit() for c in pw)
    assert pw not in f.published[0].model_dump_json()


async def test_answer_without_message_id_reuses_the_reference() -> None:
    f = Fake([code("OI003", 500, mid=None), ok()])
    with pytest.raises(RetryLater):
        await handle_requested(req(), 0, f.deps())
    await handle_requested(req(), 1, f.deps())
    assert f.sent[0][0] == f.sent[1][0]  # §5.1.2: no messageId, same reference allowed


async def test_rp003_with_message_id_takes_a_new_reference() -> None:
    f = Fake([code("RP003"), ok()])
    with pytest.raises(RetryLater) as exc:
        await handle_requested(req(), 0, f.deps())
    assert exc.value.delay_s is not None and exc.value.delay_s > 0
    await handle_requested(req(), 1, f.deps())
    assert f.sent[0][0] != f.sent[1][0]  # FAQ 18: burnt, a new one


async def test_crash_window_resends_same_reference_and_rp045_is_ambiguous_not_a_second_report() -> (
    None
):
    f = Fake([MkkTransportError("connection cut"), code("RP045")])
    with pytest.raises(RetryLater):
        await handle_requested(req(), 0, f.deps())
    await handle_requested(req(), 1, f.deps())
    assert f.sent[0][0] == f.sent[1][0]  # never a new reference after an unknown outcome
    [failed] = f.published
    assert isinstance(failed, ReportFailed) and failed.code == AMBIGUOUS
    assert f.sent[0][0] in failed.description


async def test_mkk_unreachable_is_not_an_unknown_outcome() -> None:
    """A refused connection sent nothing: the same reference goes again, and an RP045 for
    it later is MKK's plain answer, not KOPRU_AMBIGUOUS."""
    f = Fake([MkkNotSent("ConnectError"), MkkNotSent("ConnectError"), code("RP045")])
    for attempt in (0, 1):
        with pytest.raises(RetryLater):
            await handle_requested(req(), attempt, f.deps())
    await handle_requested(req(), 2, f.deps())
    assert f.sent[0][0] == f.sent[1][0] == f.sent[2][0]
    [failed] = f.published
    assert isinstance(failed, ReportFailed) and failed.code == "RP045"


async def test_process_killed_after_reserving_resends_the_reserved_reference() -> None:
    f = Fake([ok()])
    ev = req()
    # What a process killed mid-send leaves behind: the reserved reference.
    from services.report_requester.handler import SCOPE, request_fingerprint

    await f.state.put(
        SCOPE, "TIB:r-1", {"fp": request_fingerprint(ev), "ref": "KPR-BR-x", "phase": "reserved",
                           "sends": 1},
    )  # fmt: skip
    await handle_requested(ev, 0, f.deps())
    assert f.sent[0][0] == "KPR-BR-x"
    assert isinstance(f.published[0], ReportSubmitted)


async def test_terminal_code_ends_in_report_failed_with_mkk_description() -> None:
    f = Fake([code("RP038")])
    await handle_requested(req(), 0, f.deps())
    [failed] = f.published
    assert isinstance(failed, ReportFailed)
    assert (failed.stage, failed.code) == ("request", "RP038")
    assert failed.description  # MKK's Turkish description kept


async def test_token_rejected_once_is_refreshed_and_retried_once() -> None:
    f = Fake([code("OI006", 401, mid=None), ok()])
    await handle_requested(req(), 0, f.deps())
    assert f.rejected == ["jti-1"]
    assert [s[1] for s in f.sent] == ["tok-1", "tok-2"]
    assert f.sent[0][0] == f.sent[1][0]


async def test_future_process_date_fails_at_intake_without_calling_mkk() -> None:
    f = Fake([])
    await handle_requested(req(process_date=date(2025, 5, 7)), 0, f.deps())
    [failed] = f.published
    assert isinstance(failed, ReportFailed) and failed.stage == "intake"
    assert f.sent == []


async def test_same_request_id_with_other_content_is_refused() -> None:
    f = Fake([ok()])
    await handle_requested(req(), 0, f.deps())
    with pytest.raises(InvalidMessage):
        await handle_requested(req(file_type="json"), 0, f.deps())


async def test_gives_up_after_max_attempts_with_last_code() -> None:
    f = Fake([code("RP003")])
    deps = f.deps()
    deps.max_attempts = 3
    await handle_requested(req(), 2, deps)
    [failed] = f.published
    assert isinstance(failed, ReportFailed) and "RP003" in failed.description
