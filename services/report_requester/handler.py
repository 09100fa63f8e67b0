"""The report-requester's decision: one MKK balance-report per (member, request id).

The senderReference registry and the crash window (§3.2.2, §5.1.2, FAQ 18):

1. The reference is reserved and stored (phase "reserved") BEFORE the request is sent.
2. The answer decides the next phase:
   - 0000 with a refId: ReportSubmitted is stored, published, replayed on redelivery;
   - no messageId (the message never reached MKS, e.g. OI003 / HTTP 500): "reusable",
     the same reference is sent next time (§5.1.2 allows it);
   - a messageId with a transient code (RP003 ...): "burnt", a new reference next time;
   - a terminal code: ReportFailed with MKK's code and description.
3. If the process dies (or the connection is cut) after sending, the phase is still
   "reserved": the outcome is unknown. On redelivery the SAME reference is re-sent,
   never a new one, so MKK can never make a second report for the request:
   - if the first send never reached MKS, MKK accepts it now: exactly one report;
   - if it did, MKK answers RP045 (reference already used). MKK offers no lookup by
     senderReference (§5-§6 have refId-based calls only), so the refId of that first
     report cannot be learnt. kopru then ends the request with
     ReportFailed(code="KOPRU_AMBIGUOUS") naming the reference, for an operator to
     resolve (MKK can find the report by the reference; upstream may re-request under
     a new request id). It never sends a second balance-report on its own.

The operator's way out (services/report_requester/operator.py, `kopru report
resolve|retry`): the record keeps the request itself and a `generation`. Resolve stores
the refId learnt from MKK as the request's outcome (a ReportSubmitted, polled and fetched
as usual); retry moves the failure to `history`, starts generation n+1 (a new
senderReference) and re-publishes the request. Events of generation n > 0 carry it in
their event_id, so consumers never take them for copies of the first try's events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from schemas.codes import Action
from schemas.events import (
    REPORTS_FAILED,
    REPORTS_SUBMITTED,
    ReportRequested,
    ReportSubmitted,
)
from schemas.mkk import BalanceReportRequest, RequestHeader, istanbul_today
from services.common.errors import InvalidMessage, RetryLater
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.hours import seconds_until_open
from services.common.mkk.outcome import MkkNotSent, MkkOutcome, MkkTransportError
from services.common.mkk.sender_reference import new_sender_reference
from services.common.mkk.token_cache import (
    UNKNOWN_USER,
    CachedToken,
    TokenUnavailableError,
    UnknownMkkUserError,
)
from services.common.mkk.zip_password import zip_password
from services.common.observability.logging import get_logger
from services.common.stores.outcomes import (
    Publish,
    emit_once,
    replay,
    report_event_id,
    report_failed,
)
from services.common.stores.state import StateStore

log = get_logger(__name__)

SCOPE = "report-request"
AMBIGUOUS = "KOPRU_AMBIGUOUS"
GAVE_UP = "KOPRU_GAVE_UP"
INVALID = "KOPRU_INVALID_REQUEST"


@dataclass
class RequesterDeps:
    state: StateStore
    publish: Publish
    get_token: Callable[[str, str], Awaitable[CachedToken]]
    rejected_token: Callable[[str, str, str], Awaitable[CachedToken]]
    send: Callable[[BalanceReportRequest, str], Awaitable[MkkOutcome]]
    zip_secret: str
    service_hours: bool = True
    max_attempts: int = 30
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=5.0, cap_s=60.0))
    today: Callable[[], dt.date] = istanbul_today
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def request_key(event: ReportRequested) -> str:
    return f"{event.member}:{event.request_id}"


def request_fingerprint(event: ReportRequested) -> str:
    """The request's content, without the envelope (event_id, time, correlation)."""
    body = event.model_dump(mode="json", exclude={"event_id", "occurred_at", "correlation_id"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def handle_requested(event: ReportRequested, attempt: int, deps: RequesterDeps) -> None:
    key = request_key(event)
    fp = request_fingerprint(event)
    rec = await deps.state.get(SCOPE, key)
    if rec is not None and rec.get("fp") != fp:
        raise InvalidMessage(f"request {key} was used before with different content")
    if rec is not None and rec.get("outcome") is not None:
        # Redelivered or re-published: the stored outcome again, never a second call.
        await replay(deps.state, SCOPE, key, deps.publish, force=True)
        log.info("request replayed from store", request=key)
        return

    rec = dict(rec or {"fp": fp, "sends": 0, "request": event.model_dump(mode="json")})
    generation = int(rec.get("generation", 0))
    if event.process_date > deps.today():  # §5.1.2: today or in the past (Istanbul)
        failed = report_failed(
            event, "intake", INVALID, "processDate must be today or in the past",
            generation=generation,
        )  # fmt: skip
        await emit_once(deps.state, SCOPE, key, REPORTS_FAILED, failed, deps.publish, rec)
        return
    if deps.service_hours:
        wait = seconds_until_open(deps.now())
        if wait > 0:  # §8: reports run 01:00-23:00 Istanbul time
            raise RetryLater("outside MKK service hours (§8)", wait)

    try:
        token = await deps.get_token(event.member, event.sender)
    except UnknownMkkUserError as exc:  # waiting cannot help: fail at once
        failed = report_failed(event, "request", UNKNOWN_USER, str(exc), generation=generation)
        await emit_once(deps.state, SCOPE, key, REPORTS_FAILED, failed, deps.publish, rec)
        return

    # Reserve the reference durably BEFORE sending (see the module doc).
    phase = rec.get("phase")
    if phase is None or phase == "burnt":
        rec["ref"] = new_sender_reference("BR")
        rec["ref_first_sent_at"] = deps.now().isoformat()  # bounds its refId's 24 h
        rec["uncertain"] = False
    elif phase == "reserved":
        rec["uncertain"] = True  # the previous send may have reached MKS
    else:  # "reusable": the last answer had no messageId
        rec["uncertain"] = bool(rec.get("uncertain"))
    rec["phase"] = "reserved"
    rec["sends"] = int(rec.get("sends", 0)) + 1
    await deps.state.put(SCOPE, key, rec)
    reference: str = rec["ref"]

    req = BalanceReportRequest(
        request_header=RequestHeader(
            sender_reference=reference, sender_member=event.member, sender=event.sender
        ),
        file_type=event.file_type,
        zip_password=SecretStr(zip_password(deps.zip_secret, event.member, event.request_id)),
        process_date=event.process_date.strftime("%Y%m%d"),
        **event.filters.model_dump(exclude_none=True),
    )
    try:
        outcome = await deps.send(req, token.token)
        if outcome.action is Action.REAUTH and not outcome.reached_mks:
            rec["phase"] = "reusable"  # OI006 never reached MKS: same reference again
            await deps.state.put(SCOPE, key, rec)
            token = await deps.rejected_token(event.member, event.sender, token.jti)
            rec["phase"] = "reserved"
            await deps.state.put(SCOPE, key, rec)
            outcome = await deps.send(req, token.token)
    except MkkNotSent as exc:
        # No connection was made: the reference did not reach MKS, send it again as is.
        rec["phase"] = "reusable"
        await deps.state.put(SCOPE, key, rec)
        raise RetryLater(f"balance-report not sent, MKK unreachable: {exc}") from None
    except MkkTransportError as exc:
        # Unknown outcome: the phase stays "reserved", the same reference goes next time.
        raise RetryLater(f"balance-report outcome unknown: {exc}") from None
    except TokenUnavailableError:
        raise

    log.info(
        "balance-report answered",
        request=key,
        code=outcome.code,
        http=outcome.http_status,
        message_id=outcome.message_id,
        reused_reference=rec["sends"] > 1,
    )
    if outcome.action is Action.DONE and outcome.ref_id:
        now = deps.now()
        submitted = ReportSubmitted(
            event_id=report_event_id(
                "submitted", event.member, event.request_id, f"g{generation}" if generation else ""
            ),
            request_id=event.request_id,
            member=event.member,
            sender=event.sender,
            ref_id=outcome.ref_id,
            sender_reference=reference,
            message_id=outcome.message_id,
            file_type=event.file_type,
            process_date=event.process_date,
            submitted_at=now,
            expires_at=now + timedelta(hours=24),  # §5.1.5: refId valid 24 hours
            correlation_id=event.correlation_id,
        )
        rec["phase"] = "done"
        await emit_once(deps.state, SCOPE, key, REPORTS_SUBMITTED, submitted, deps.publish, rec)
        return
    if outcome.code in ("RP045", "MF04"):
        description = (
            f"senderReference {reference} had reached MKS before and its answer was lost; "
            "MKK offers no lookup by senderReference, so the refId is unknown. "
            "kopru does not send a second balance-report by itself: `kopru report resolve "
            f"{event.request_id} --ref-id REF` with the refId MKK names for the reference, or "
            f"`kopru report retry {event.request_id}` for a new report. "
            f"MKK said {outcome.code}: {outcome.description}"
            if rec.get("uncertain")
            else f"{outcome.code}: {outcome.description}"
        )
        code = AMBIGUOUS if rec.get("uncertain") else outcome.code
        log.error("balance-report reference refused", request=key, code=outcome.code)
        await emit_once(
            deps.state, SCOPE, key, REPORTS_FAILED,
            report_failed(event, "request", code, description, generation=generation),
            deps.publish, rec,
        )  # fmt: skip
        return
    if outcome.action is Action.TERMINAL:
        await emit_once(
            deps.state, SCOPE, key, REPORTS_FAILED,
            report_failed(event, "request", outcome.code, outcome.description,
                          generation=generation),
            deps.publish, rec,
        )  # fmt: skip
        return
    # Transient (RP003, OI003, a token refused twice ...): retry later.
    rec["phase"] = "burnt" if outcome.reached_mks else "reusable"
    if attempt + 1 >= deps.max_attempts:
        await emit_once(
            deps.state, SCOPE, key, REPORTS_FAILED,
            report_failed(event, "request", GAVE_UP,
                    f"gave up after {attempt + 1} attempts; last {outcome.code}: "
                    f"{outcome.description}", generation=generation),
            deps.publish, rec,
        )  # fmt: skip
        return
    await deps.state.put(SCOPE, key, rec)
    delay: float = deps.backoff.delay(attempt + 1)
    if outcome.code == "OI004" and deps.service_hours:
        delay = max(delay, seconds_until_open(deps.now()))
    raise RetryLater(f"balance-report {outcome.code}: {outcome.description}", delay)
