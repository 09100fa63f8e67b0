"""An operator's way out of a request that ended at the request stage
(`kopru report resolve|retry`), recorded in the request's own state record.

- **resolve** (`ReportFailed(KOPRU_AMBIGUOUS)` after RP045, FAQ 18): MKK used the
  senderReference but its answer, with the refId, was lost, and MKK offers no lookup by
  senderReference (§5-§6 are refId-based). The operator learns the refId from MKK by the
  reference and hands it over: the record's outcome becomes a `ReportSubmitted` with that
  refId (published on mks.reports.submitted, so status-poller and content-fetcher go on as
  usual); the failure moves to `history`. The refId's 24 hours (§5.1.5) are counted from
  the first send of the reference, an upper bound of MKK's creation time.
- **retry**: deliberately a NEW balance-report under a NEW senderReference (§3.2.2):
  the failure moves to `history`, the record starts generation n+1 with no reference,
  and the stored request is published again on mks.reports.requested. Never offered for
  a request MKK accepted (a second report) nor after a refId was known (status/content
  failures): those ask for a new request id.

Both are idempotent: resolving twice with the same refId, or retrying the same failure
twice (while the retry runs, or after it succeeded), is done once; each step is stored
before it is published, and a crash between the two is finished by running the command
again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from schemas.events import (
    REPORTS_SUBMITTED,
    Event,
    ReportFailed,
    ReportRequested,
    ReportSubmitted,
    topic,
)
from services.common.stores.outcomes import Publish, emit_once, replay, report_event_id
from services.common.stores.state import StateStore
from services.report_requester.handler import SCOPE

REF_ID_LIFE = timedelta(hours=24)  # §5.1.5: a refId is valid 24 hours
PublishRequest = Callable[[ReportRequested], Awaitable[None]]


class OperatorError(Exception):
    """The command does not apply to this request; the message says why and what does."""


def _stored_outcome(rec: dict[str, Any]) -> Event | None:
    stored = rec.get("outcome")
    if stored is None:
        return None
    return topic(stored["topic"]).parse(json.dumps(stored["event"]).encode())


def _summary(ev: Event, rec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "generation": int(rec.get("generation", 0)),
        "event_type": ev.event_type,
        "event_id": str(ev.event_id),
        "sender_reference": rec.get("ref"),
    }
    if isinstance(ev, ReportFailed):
        out.update(code=ev.code, stage=ev.stage)
    return out


async def _load(state: StateStore, key: str) -> dict[str, Any]:
    rec = await state.get(SCOPE, key)
    if rec is None:
        raise OperatorError(f"{key}: not seen by report-requester")
    if "request" not in rec:
        raise OperatorError(f"{key}: recorded before resolve/retry existed; request it anew")
    return rec


async def resolve(
    state: StateStore,
    publish: Publish,
    member: str,
    request_id: str,
    ref_id: str,
    now: datetime,
) -> str:
    """Hand kopru the refId of an ambiguous request; returns what was done."""
    key = f"{member}:{request_id}"
    rec = await _load(state, key)
    ev = _stored_outcome(rec)
    if isinstance(ev, ReportSubmitted):
        if ev.ref_id != ref_id:
            raise OperatorError(f"{key}: already submitted with refId {ev.ref_id}")
        await replay(state, SCOPE, key, publish)  # a crash before publishing: finish it
        return f"{key}: already resolved with refId {ref_id}"
    if ev is None:
        raise OperatorError(f"{key}: still in progress (phase {rec.get('phase')})")
    if not isinstance(ev, ReportFailed) or ev.stage != "request" or not rec.get("ref"):
        stage = getattr(ev, "stage", "?")
        raise OperatorError(
            f"{key}: failed at stage {stage} ({getattr(ev, 'code', '?')}); resolve is for a "
            "request whose balance-report answer was lost (KOPRU_AMBIGUOUS)"
        )
    first_sent = datetime.fromisoformat(rec["ref_first_sent_at"])
    expires_at = first_sent + REF_ID_LIFE
    if now >= expires_at:
        raise OperatorError(
            f"{key}: the reference was first sent at {first_sent.isoformat()}; its refId's "
            "24 hours are over (§5.1.5): `kopru report retry` requests it anew"
        )
    request = ReportRequested.model_validate(rec["request"])
    try:
        submitted = ReportSubmitted(
            event_id=report_event_id("submitted", member, request_id, ref_id),
            request_id=request_id,
            member=member,
            sender=request.sender,
            ref_id=ref_id,
            sender_reference=rec["ref"],
            file_type=request.file_type,
            process_date=request.process_date,
            submitted_at=now,
            expires_at=expires_at,
            correlation_id=request.correlation_id,
        )
    except ValidationError as exc:
        raise OperatorError(f"invalid refId {ref_id!r}: {exc.errors()[0]['msg']}") from None
    history = list(rec.get("history", []))
    history.append(
        {**_summary(ev, rec), "then": "resolved", "ref_id": ref_id, "at": now.isoformat()}
    )
    rec.update(outcome=None, published=False, phase="done", history=history)
    await emit_once(state, SCOPE, key, REPORTS_SUBMITTED, submitted, publish, rec)
    return f"{key}: resolved with refId {ref_id}; status polling and content follow"


async def retry(
    state: StateStore,
    publish_request: PublishRequest,
    member: str,
    request_id: str,
    now: datetime,
) -> str:
    """Request again under a new senderReference; returns what was done."""
    key = f"{member}:{request_id}"
    rec = await _load(state, key)
    ev = _stored_outcome(rec)
    pending = rec.get("retry")
    if ev is None:
        if pending is None:
            raise OperatorError(f"{key}: still in progress (phase {rec.get('phase')})")
        if not pending.get("published"):
            await _republish(state, publish_request, key, rec)
        return f"{key}: retry (generation {pending['generation']}) already under way"
    own = pending is not None and pending.get("generation") == rec.get("generation")
    if isinstance(ev, ReportSubmitted) and own and pending is not None:  # its own success
        return f"{key}: already retried as generation {pending['generation']}; " + (
            f"MKK accepted it (refId {ev.ref_id})"
        )
    if isinstance(ev, ReportSubmitted):
        raise OperatorError(
            f"{key}: MKK accepted it (refId {ev.ref_id}); a retry would make a second "
            "report. Request again under a new request id if you mean it"
        )
    if not isinstance(ev, ReportFailed) or ev.stage not in ("intake", "request"):
        raise OperatorError(
            f"{key}: failed at stage {getattr(ev, 'stage', '?')} with refId "
            f"{getattr(ev, 'ref_id', None)}; request again under a new request id"
        )
    generation = int(rec.get("generation", 0)) + 1
    history = list(rec.get("history", []))
    history.append({**_summary(ev, rec), "then": "retried", "at": now.isoformat()})
    rec.update(
        outcome=None,
        published=False,
        phase=None,
        uncertain=False,
        generation=generation,
        history=history,
        retry={"of": str(ev.event_id), "generation": generation, "published": False},
    )
    await state.put(SCOPE, key, rec)  # durable before the request goes out again
    await _republish(state, publish_request, key, rec)
    return f"{key}: retried as generation {generation} with a new senderReference"


async def _republish(
    state: StateStore, publish_request: PublishRequest, key: str, rec: dict[str, Any]
) -> None:
    data = dict(rec["request"])
    data.update(event_id=str(uuid.uuid4()), occurred_at=datetime.now().astimezone().isoformat())
    await publish_request(ReportRequested.model_validate(data))
    rec["retry"] = {**rec["retry"], "published": True}
    await state.put(SCOPE, key, rec)
