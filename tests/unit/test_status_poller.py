"""The status-poller's decisions (§6.1) with fakes: pending codes, ready, no data,
failures, the 24 h deadline, duplicated poll chains."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from schemas.events import ReportCompleted, ReportFailed, ReportReady, ReportSubmitted
from schemas.mkk import ReportStatusRequest
from services.common.errors import RetryLater
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.outcome import MkkOutcome
from services.common.stores.state import MemoryStateStore
from services.status_poller.handler import DEADLINE, PollerDeps, handle_submitted

NOW = datetime(2025, 5, 5, 10, 0, tzinfo=UTC)


class Fake:
    def __init__(self, answers: list[MkkOutcome]) -> None:
        self.answers = answers
        self.refs: list[str] = []
        self.published: list[Any] = []
        self.state = MemoryStateStore()
        self.now = NOW

    async def poll(self, req: ReportStatusRequest, member: str, sender: str) -> MkkOutcome:
        self.refs.append(req.request_header.sender_reference)
        return self.answers.pop(0)

    async def publish(self, spec: Any, event: Any) -> None:
        self.published.append(event)

    def deps(self) -> PollerDeps:
        return PollerDeps(
            state=self.state,
            publish=self.publish,
            poll=self.poll,
            backoff=Backoff(base_s=5.0, cap_s=60.0),
            service_hours=False,
            now=lambda: self.now,
        )


def submitted() -> ReportSubmitted:
    return ReportSubmitted(
        request_id="r-1", member="TIB", sender="TIB991", ref_id="REF", sender_reference="s",
        file_type="json", process_date=date(2025, 5, 5), submitted_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )  # fmt: skip


def st(code: str, files: list[str] | None = None) -> MkkOutcome:
    return MkkOutcome.from_code(code, 200 if code == "0000" else 422, message_id="9",
                                file_names=files)  # fmt: skip


async def test_pending_codes_wait_on_the_delay_path_then_ready() -> None:
    f = Fake([st("RP020"), st("RP023"), st("0000", ["MKK_RP166_1.zip"])])
    ev = submitted()
    with pytest.raises(RetryLater) as e0:
        await handle_submitted(ev, 0, "t:0:0", f.deps())
    assert 2.5 <= (e0.value.delay_s or 0) <= 5.0  # 5 s first, with jitter
    with pytest.raises(RetryLater):
        await handle_submitted(ev, 1, "t.retry:0:0", f.deps())
    await handle_submitted(ev, 2, "t.retry:0:1", f.deps())
    [ready] = f.published
    assert isinstance(ready, ReportReady) and ready.file_names == ["MKK_RP166_1.zip"]
    assert ready.polls == 3
    assert len(set(f.refs)) == 3  # a fresh senderReference per poll


async def test_backoff_is_capped() -> None:
    f = Fake([st("RP021")])
    with pytest.raises(RetryLater) as e:
        await handle_submitted(submitted(), 40, "t:0:0", f.deps())
    assert 30.0 <= (e.value.delay_s or 0) <= 60.0


async def test_rp026_completes_with_zero_rows() -> None:
    f = Fake([st("RP026")])
    await handle_submitted(submitted(), 0, "t:0:0", f.deps())
    [done] = f.published
    assert isinstance(done, ReportCompleted) and done.no_data and done.total_rows == 0


@pytest.mark.parametrize("code", ["RP025", "RP018"])
async def test_rp025_and_rp018_fail(code: str) -> None:
    f = Fake([st(code)])
    await handle_submitted(submitted(), 0, "t:0:0", f.deps())
    [failed] = f.published
    assert isinstance(failed, ReportFailed) and (failed.stage, failed.code) == ("status", code)


async def test_deadline_after_24h_fails_without_polling() -> None:
    f = Fake([])
    f.now = NOW + timedelta(hours=24, seconds=1)
    await handle_submitted(submitted(), 7, "t:0:0", f.deps())
    [failed] = f.published
    assert isinstance(failed, ReportFailed) and failed.code == DEADLINE
    assert f.refs == []


async def test_duplicated_poll_chain_is_dropped_and_redelivery_is_handled() -> None:
    f = Fake([st("RP020"), st("RP021"), st("RP022")])
    ev = submitted()
    with pytest.raises(RetryLater):
        await handle_submitted(ev, 1, "retry:0:5", f.deps())
    # A copy of attempt 1 from another record: a duplicated chain, dropped.
    await handle_submitted(ev, 1, "retry:0:6", f.deps())
    # An older attempt: dropped.
    await handle_submitted(ev, 0, "main:0:1", f.deps())
    assert len(f.refs) == 1
    # The same record delivered again (its first handling died): handled.
    with pytest.raises(RetryLater):
        await handle_submitted(ev, 1, "retry:0:5", f.deps())
    assert len(f.refs) == 2


async def test_final_outcome_is_not_published_twice() -> None:
    f = Fake([st("0000", ["a_file_name.zip"])])
    ev = submitted()
    await handle_submitted(ev, 0, "t:0:0", f.deps())
    await handle_submitted(ev, 0, "t:0:0", f.deps())
    assert len(f.published) == 1
