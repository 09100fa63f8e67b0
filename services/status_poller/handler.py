"""The status-poller's decision (§6.1): poll async-report-status until the report is
ready, failed, empty or the refId's 24 hours are over.

Each poll is one message on the durable delay path: a pending answer raises
RetryLater(delay) (capped exponential backoff with jitter), so the next poll waits in
a retry tier topic, not in memory; a restart loses nothing. Every poll is a new call
with a fresh senderReference (§3.2.2: unique per member).

No duplicated poll chain: the state records the highest attempt seen and the Kafka
record (topic:partition:offset) that holds it. A copy of the chain (a successor
produced twice when a process died between producing it and committing) carries the
same attempt from another record and is dropped; a redelivery of the same record is
handled again (its first handling may have died before producing the next poll).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.codes import Action
from schemas.events import (
    REPORTS_COMPLETED,
    REPORTS_FAILED,
    REPORTS_READY,
    ReportCompleted,
    ReportReady,
    ReportSubmitted,
)
from schemas.mkk import ReportStatusRequest, RequestHeader
from services.common.errors import RetryLater
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.hours import seconds_until_open
from services.common.mkk.outcome import MkkOutcome, MkkTransportError
from services.common.mkk.sender_reference import new_sender_reference
from services.common.observability.logging import get_logger
from services.common.stores.outcomes import (
    Publish,
    emit_once,
    replay,
    report_failed,
    stable_event_id,
)
from services.common.stores.state import StateStore

log = get_logger(__name__)

SCOPE = "report-poll"
DEADLINE = "KOPRU_DEADLINE"


@dataclass
class PollerDeps:
    state: StateStore
    publish: Publish
    # (request, member, sender) -> outcome; the token refresh-once lives in the caller
    poll: Callable[[ReportStatusRequest, str, str], Awaitable[MkkOutcome]]
    backoff: Backoff = field(
        default_factory=lambda: Backoff(base_s=5.0, cap_s=60.0)
    )  # §6.1: 5 s -> 60 s
    service_hours: bool = True
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


async def handle_submitted(
    ev: ReportSubmitted, attempt: int, holder: str, deps: PollerDeps
) -> None:
    key = f"{ev.member}:{ev.request_id}"
    rec = await deps.state.get(SCOPE, key) or {"seen": -1, "holder": None, "polls": 0}
    if rec.get("outcome") is not None:
        await replay(deps.state, SCOPE, key, deps.publish)
        return
    seen = int(rec["seen"])
    if attempt < seen or (attempt == seen and rec["holder"] != holder):
        log.info("duplicate poll dropped", request=key, attempt=attempt, seen=seen)
        return
    rec["seen"], rec["holder"] = attempt, holder
    await deps.state.put(SCOPE, key, rec)

    now = deps.now()
    if now >= ev.expires_at:  # the refId's 24 h are over (§5.1.5)
        await emit_once(
            deps.state, SCOPE, key, REPORTS_FAILED,
            report_failed(ev, "status", DEADLINE,
                          "the report was not ready within the refId's 24 hours"),
            deps.publish, rec,
        )  # fmt: skip
        return
    left = (ev.expires_at - now).total_seconds()
    if deps.service_hours:
        wait = seconds_until_open(now)
        if wait > 0:  # §8 group 4: 01:00-23:00
            raise RetryLater("outside MKK service hours (§8)", min(wait, left))

    req = ReportStatusRequest(
        request_header=RequestHeader(
            sender_reference=new_sender_reference("ST"),
            sender_member=ev.member,
            sender=ev.sender,
        ),
        ref_id=ev.ref_id,
    )
    delay = min(deps.backoff.delay(attempt + 1), max(left, 0.1))
    try:
        outcome = await deps.poll(req, ev.member, ev.sender)
    except MkkTransportError as exc:
        raise RetryLater(f"status outcome unknown: {exc}", delay) from None
    rec["polls"] = int(rec.get("polls", 0)) + 1
    log.info("report status", request=key, code=outcome.code, attempt=attempt)

    if outcome.code == "RP026":  # §6.1.7: the query has no data: complete with 0 rows
        done = ReportCompleted(
            event_id=stable_event_id("completed", ev.member, ev.request_id),
            request_id=ev.request_id,
            member=ev.member,
            ref_id=ev.ref_id,
            total_rows=0,
            no_data=True,
            durations_s={"mkk_prepare": (now - ev.submitted_at).total_seconds()},
            correlation_id=ev.correlation_id,
        )
        await emit_once(deps.state, SCOPE, key, REPORTS_COMPLETED, done, deps.publish, rec)
        return
    if outcome.action is Action.DONE:
        if not outcome.file_names:
            raise RetryLater("status 0000 without fileNames", delay)
        ready = ReportReady(
            event_id=stable_event_id("ready", ev.member, ev.request_id),
            request_id=ev.request_id,
            member=ev.member,
            sender=ev.sender,
            ref_id=ev.ref_id,
            file_type=ev.file_type,
            file_names=outcome.file_names,
            polls=rec["polls"],
            submitted_at=ev.submitted_at,
            correlation_id=ev.correlation_id,
        )
        await emit_once(deps.state, SCOPE, key, REPORTS_READY, ready, deps.publish, rec)
        return
    if outcome.action is Action.TERMINAL:  # RP025, RP018, ...
        await emit_once(
            deps.state, SCOPE, key, REPORTS_FAILED,
            report_failed(ev, "status", outcome.code, outcome.description), deps.publish, rec,
        )  # fmt: skip
        return
    await deps.state.put(SCOPE, key, rec)
    raise RetryLater(f"report {outcome.code}: {outcome.description}", delay)  # RP020-RP023
