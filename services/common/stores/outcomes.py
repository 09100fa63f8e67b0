"""Terminal events stored before they are published, replayed instead of recomputed.

FastStream has no transactions, so "exactly once" for an outcome event is: the event
(with an event_id derived from the request, so every copy is the same event) is
stored, then published, then marked published. A redelivery finds it stored and
re-publishes the SAME event (same event_id) only if the mark is missing: a copy can
appear only when the process died between publish and mark, and consumers drop it
by event_id (schemas/events/base.py: consumers de-duplicate on event_id).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from schemas.events import (
    Event,
    FailureStage,
    ReportFailed,
    ReportReady,
    ReportRequested,
    ReportSubmitted,
    TopicSpec,
    topic,
)
from services.common.stores.state import StateStore

NAMESPACE = uuid.UUID("6f1c7f0e-4b9e-4c47-9a53-0b8d2c1e5a10")

Publish = Callable[[TopicSpec, Event], Awaitable[None]]


def stable_event_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(parts))


def report_event_id(kind: str, member: str, request_id: str, *more: str) -> uuid.UUID:
    """The id of a request's outcome event; `more` names a later try of the same request
    (an operator's retry generation `g2`, a resolved refId) so it is not taken for a copy."""
    return stable_event_id(kind, member, request_id, *[m for m in more if m])


def report_failed(
    source: ReportRequested | ReportSubmitted | ReportReady,
    stage: FailureStage,
    code: str,
    description: str,
    *,
    generation: int = 0,
) -> ReportFailed:
    """The terminal failure of a request, from whichever stage gave up. The event_id is
    derived from (member, request_id) and the refId or retry generation, so every copy
    of one failure is one event, and the failure of a later try is a new one."""
    ref_id: str | None = getattr(source, "ref_id", None)
    more = ref_id or (f"g{generation}" if generation else "")
    return ReportFailed(
        event_id=report_event_id("failed", source.member, source.request_id, more),
        request_id=source.request_id,
        member=source.member,
        stage=stage,
        ref_id=getattr(source, "ref_id", None),
        code=code,
        description=description[:2000],
        correlation_id=source.correlation_id,
    )


async def emit_once(
    state: StateStore,
    scope: str,
    key: str,
    spec: TopicSpec,
    event: Event,
    publish: Publish,
    record: dict[str, Any] | None = None,
) -> Event:
    """Store `event` as the outcome of (scope, key) unless one is stored; publish it."""
    rec = dict(record or await state.get(scope, key) or {})
    stored = rec.get("outcome")
    if stored is None:
        rec["outcome"] = {"topic": spec.name, "event": event.model_dump(mode="json")}
        rec["published"] = False
        await state.put(scope, key, rec)
    else:
        event = topic(stored["topic"]).parse(_json(stored["event"]))
        spec = topic(stored["topic"])
        if rec.get("published"):
            return event
    await publish(spec, event)
    rec["published"] = True
    await state.put(scope, key, rec)
    return event


async def replay(
    state: StateStore, scope: str, key: str, publish: Publish, *, force: bool = False
) -> Event | None:
    """Re-publish the stored outcome (when not yet marked published, or when forced)."""
    rec = await state.get(scope, key)
    if rec is None or rec.get("outcome") is None:
        return None
    stored = rec["outcome"]
    spec = topic(stored["topic"])
    event = spec.parse(_json(stored["event"]))
    if force or not rec.get("published"):
        await publish(spec, event)
        if not rec.get("published"):
            rec["published"] = True
            await state.put(scope, key, rec)
    return event


def _json(data: Any) -> bytes:
    import json

    return json.dumps(data).encode()
