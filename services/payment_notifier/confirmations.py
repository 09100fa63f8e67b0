"""The decision for BKM's confirmation post and the success / cancel redirects.

BKM "Confirmation URL": before redirecting the user to sUrl, BKM posts the same signed
fields to the merchant's confirmation URL; the merchant verifies the signature and, when
the POS approved, fulfils. "Önemli Not": once a confirmation verified, a bad signature
on the redirect alone is no reason to cancel (advisory). The field lists and signed order
live in schemas/bkm.py (SIGNED_FIELDS, travijuu reading of the pictured tables).

Order of checks: required fields → signature over the raw received values with BKM's
pinned key (fail closed) → ts within the tolerance → the store decides (first outcome per
token wins, forward-only; a replay gets the original answer; other content is refused).
Card data is never stored, logged or published: posMessage is reduced to its allowlist
and every free-text value (posMessage's, r, xid) is scrubbed first (pos_message.py).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.bkm import CancelRedirect, PosResultPost, parse_return, parse_ts
from schemas.events import Event, PaymentConfirmed, PaymentFailed
from services.common.bkm.signature import BkmVerifier
from services.common.observability.card_data import scrub
from services.common.observability.logging import get_logger
from services.common.stores.idempotency import new_owner
from services.common.stores.payments import (
    CONFIRMED,
    FAILED,
    FINAL_STATES,
    ORDER_ID_MARK,
    Decision,
    Outcome,
    PaymentRow,
    PaymentStore,
)
from services.payment_notifier import metrics
from services.payment_notifier.outbox_relay import OutboxRelay
from services.payment_notifier.pos_message import sanitize

log = get_logger(__name__)

Source = Literal["confirmation", "success_redirect", "cancel_redirect", "reconciliation"]
Publish = Callable[[Event], Awaitable[None]]
EVENT_NAMESPACE = uuid.UUID("6f2b7c1e-5d0a-4e8e-9a43-3c1b8f0d6a01")
MAX_FIELD_CHARS = 20_000
MAX_TOKEN_CHARS = 128  # schemas/events/payments.py: token max_length


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes
# RFC 4122 §4.3 name-based, SHA-1: version 5 in the time_hi field, the RFC variant.
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V5_SET = (0x5000 << 64) | (0x8000 << 48)


def outcome_event_id(token: str) -> uuid.UUID:
    """One event id per payment token: every copy of its outcome carries the same one.

    ``uuid.uuid5(EVENT_NAMESPACE, f"bkm-outcome:{token}")``, computed in half its time
    (one per confirmation); a test holds it to uuid5."""
    name = _NAMESPACE_BYTES + f"bkm-outcome:{token}".encode()
    # SHA-1 is what RFC 4122 names for version 5: a name hash, not a security one.
    digest = hashlib.sha1(name, usedforsecurity=False).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)


JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: a recorded one's body is the stored bytes, replayed as they are."""

    status: int
    body: bytes
    replay: bool = False
    content_type: str = JSON

    def json(self) -> Any:
        return json.loads(self.body)

    @classmethod
    def of(cls, status: int, content: Mapping[str, Any]) -> Reply:
        return cls(status, to_json(content).encode())


def to_json(content: Mapping[str, Any]) -> str:
    """Keys in the order given, compact, UTF-8: the one way an answer is written."""
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


@dataclass
class ConfirmationDeps:
    verifier: BkmVerifier
    store: PaymentStore
    publish: Publish
    ts_tolerance_s: float = 300.0
    ts_zone: str = "Europe/Istanbul"
    lease_s: float = 30.0
    # A failure seen only through BKM's cancel post is double-checked with
    # QueryPaymentResult after this long (None: not); a disagreement is alerted.
    recheck_failures_after_s: float | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # This process's outbox relay (outbox_relay.py): a recorded outcome is recorded under
    # its lease and handed to it; it publishes off the request path, in batches. Without
    # one (tests, tools) the row is left unleased, for any relay to take.
    relay: OutboxRelay | None = None


def fingerprint(content: Mapping[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bad(source: Source, result: str, status: int, message: str) -> Reply:
    metrics.count_return(source, result)
    return Reply.of(status, {"error": message})


def _content(msg: PosResultPost | CancelRedirect) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(state, fingerprinted content, sanitised POS result) of a verified message. Every
    value is free of card data: the fingerprint, the store and the event see only this."""
    if isinstance(msg, CancelRedirect):
        content = {"state": FAILED, "r": msg.r, "posRef": msg.posRef, "xid": msg.xid, "md": msg.md}
        return FAILED, _scrubbed(content), {}
    pos = sanitize(msg.posMessage)
    content = _scrubbed({"state": CONFIRMED, "xid": msg.xid, "md": msg.md})
    return CONFIRMED, {**content, "pos": pos}, pos


def _scrubbed(content: dict[str, str | None]) -> dict[str, Any]:
    return {k: None if v is None else scrub(v) for k, v in content.items()}


def build_event(
    token: str,
    state: str,
    source: Source,
    row: PaymentRow | None,
    *,
    order_id: str | None = None,
    xid: str | None = None,
    pos: dict[str, Any] | None = None,
    reason: str | None = None,
    reconciled: bool = False,
) -> Event:
    common: dict[str, Any] = {
        "event_id": outcome_event_id(token),
        "token": token,
        "order_id": row.order_id if row else order_id,
        "xid": xid[:128] if xid else None,
        "source": source,
        "reconciled": reconciled,
    }
    if state == CONFIRMED:
        return PaymentConfirmed(pos_result=pos or {}, **common)
    return PaymentFailed(reason=(reason or "cancelled")[:2000], **common)


def answer_for(event: Event, state: str) -> str:
    """The first answer's body, written once; the store keeps these exact bytes."""
    return to_json(
        {
            "token": getattr(event, "token", None),
            "status": state,
            "order_id": getattr(event, "order_id", None),
            "event_id": str(event.event_id),
        }
    )


async def record_and_publish(
    deps: ConfirmationDeps, outcome: Outcome, event: Event, source: Source
) -> Reply:
    """Record once (the store decides) and answer in every case. The outcome and its event
    (the outbox row) are durable before the answer; the relay publishes it.

    The owner is new per call: concurrent calls in one process compete like replicas do.
    It is under this process's relay's lease, and the recorded row is handed to that
    relay (no statement to take it); without a relay the lease is 0 s.
    """
    relay = deps.relay
    owner, lease_s = (new_owner(), 0.0) if relay is None else (relay.lease_owner(), relay.lease_s)
    rec = await deps.store.record_outcome(outcome, owner, lease_s)
    if rec.decision is Decision.RECORDED:
        if relay is not None:
            relay.hand_over(rec.row)
        metrics.count_return(source, "recorded")
        log.info(
            "payment outcome recorded", bkm_t=outcome.token, state=outcome.state, source=source
        )
        # The stored text (the store wrote the order id in): replays send the same bytes.
        return Reply(200, (rec.row.answer or outcome.answer).encode())
    return _existing(rec.row, rec.decision, outcome, source)


def _existing(row: PaymentRow, decision: Decision, outcome: Outcome, source: Source) -> Reply:
    if decision is Decision.REPLAY:
        metrics.count_return(source, "replay")
        return Reply(200, (row.answer or "{}").encode(), replay=True)
    kind = "late_failure" if outcome.state == FAILED and row.state == CONFIRMED else "altered"
    if row.source == "reconciliation":
        kind = "query_disagrees"
    metrics.count_return(source, "conflict")
    metrics.ALERTS.labels(kind).inc()
    log.warning(
        "ALERT payment token reused with other content",
        alert=kind,
        bkm_t=outcome.token,
        recorded_state=row.state,
        received_state=outcome.state,
        recorded_source=row.source,
        source=source,
    )
    return Reply.of(
        409,
        {
            "error": f"token {outcome.token} already has a {row.state} outcome with other content;"
            " states only move forward",
            "status": row.state,
        },
    )


async def handle_return(fields: Mapping[str, str], source: Source, deps: ConfirmationDeps) -> Reply:
    """One post or redirect from BKM → the HTTP answer (status and JSON body)."""
    if any(len(v) > MAX_FIELD_CHARS for v in fields.values()):
        return _bad(source, "invalid", 413, f"a field is longer than {MAX_FIELD_CHARS} characters")
    missing = [f for f in ("t", "ts", "s") if not fields.get(f)]
    if missing:
        return _bad(source, "invalid", 400, f"missing field(s): {', '.join(missing)}")
    if len(fields["t"]) > MAX_TOKEN_CHARS or not fields["t"].isprintable():
        return _bad(source, "invalid", 400, f"t must be 1-{MAX_TOKEN_CHARS} printable characters")
    msg = parse_return(dict(fields), confirmation=source == "confirmation")
    token = msg.t or ""
    if source == "cancel_redirect" and not isinstance(msg, CancelRedirect):
        return _bad(source, "invalid", 400, "a cancel redirect must carry r (the reason)")
    if not deps.verifier.verify(msg):
        return await _bad_signature(token, source, deps)
    try:
        sent_at = parse_ts(msg.ts or "", deps.ts_zone)
    except ValueError:
        return _bad(source, "invalid", 400, "ts is not YYYYMMDD-HH:MM:SS")
    skew = (deps.clock() - sent_at).total_seconds()
    metrics.TS_SKEW.observe(skew)
    metrics.LAST_TS_SKEW.set(skew)
    if abs(skew) > deps.ts_tolerance_s:
        log.warning("BKM ts out of tolerance", bkm_t=token, skew_s=round(skew, 1), source=source)
        return _bad(
            source,
            "stale",
            400,
            f"Request Not Synchronized: ts is {skew:.0f} s from our clock "
            f"(tolerance {deps.ts_tolerance_s:.0f} s)",
        )
    state, content, pos = _content(msg)
    reason = content.get("r")
    # One round trip: the store fills in the order id it knows (ORDER_ID_MARK) and
    # decides; a replay or a conflict is answered from the row it returns.
    event = build_event(
        token, state, source, None, order_id=ORDER_ID_MARK, xid=content["xid"], pos=pos,
        reason=reason,
    )  # fmt: skip
    recheck = deps.recheck_failures_after_s
    outcome = Outcome(
        token,
        state,
        fingerprint(content),
        answer_for(event, state),
        event.model_dump_json(),
        source,
        recheck_at=time.time() + recheck if state == FAILED and recheck is not None else None,
    )
    return await record_and_publish(deps, outcome, event, source)


async def _bad_signature(token: str, source: Source, deps: ConfirmationDeps) -> Reply:
    if source in ("success_redirect", "cancel_redirect") and token:
        row = await deps.store.get(token)
        if row is not None and row.state in FINAL_STATES and row.source == "confirmation":
            # "Önemli Not": the verified confirmation stands; the redirect is advisory.
            metrics.count_return(source, "advisory")
            log.warning("redirect signature does not verify; confirmation stands", bkm_t=token)
            body = json.loads(row.answer or "{}")
            body["advisory"] = "redirect signature did not verify; the verified confirmation stands"
            return Reply.of(200, body)
    log.warning("BKM signature does not verify", bkm_t=token[:64], source=source)
    return _bad(source, "bad_signature", 400, "signature does not verify with BKM's key")
