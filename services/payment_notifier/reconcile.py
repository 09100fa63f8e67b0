"""Reconciliation with QueryPaymentResult (BKM "İşlem Bilgileri Sorgulama", mandatory).

Initialized payments with no outcome after ``reconcile_after_s`` are queried; a verified
``success=true`` is published as PaymentConfirmed marked reconciled, through the same
store decision as a confirmation (so it is published once, even if the confirmation
arrives at the same moment). ``success=false`` stays pending until ``give_up_after_s``,
then PaymentFailed. The query is the authority: a callback that disagrees with a
reconciled outcome is refused and alerted (confirmations.py); a failure known only from
BKM's cancel post is queried once more after ``reconcile_after_s``, and if BKM says it was
paid after all, an alert is raised (no second event: one outcome per token). Replicas never take the
same payment at once (take_due moves it ``recheck_s`` ahead in the same statement).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.common.bkm.client import BkmAnswerInvalid, BkmClient, BkmUnavailable
from services.common.observability.logging import get_logger
from services.common.stores.payments import CONFIRMED, FAILED, INITIALIZED, Outcome, PaymentRow
from services.payment_notifier import metrics
from services.payment_notifier.confirmations import (
    ConfirmationDeps,
    answer_for,
    build_event,
    fingerprint,
    record_and_publish,
)

log = get_logger(__name__)


@dataclass
class ReconcileDeps:
    bkm: BkmClient
    confirm: ConfirmationDeps
    recheck_s: float = 300.0
    give_up_after_s: float = 86_400.0
    batch: int = 50


async def recheck_failure(row: PaymentRow, succeeded: bool, deps: ReconcileDeps) -> str:
    """A failure recorded from a cancel post, checked against the authority once."""
    await deps.confirm.store.clear_due(row.token)
    if not succeeded:
        metrics.RECONCILED.labels("agrees").inc()
        return "agrees"
    # States only move forward and the topic carries one outcome per token: no second
    # event; a human settles it (refund, or fulfil by hand).
    metrics.RECONCILED.labels("disagrees").inc()
    metrics.ALERTS.labels("query_disagrees").inc()
    log.error(
        "ALERT QueryPaymentResult says paid, the recorded outcome is failed",
        alert="query_disagrees",
        bkm_t=row.token,
        order_id=row.order_id,
        recorded_source=row.source,
    )
    return "disagrees"


async def reconcile_one(row: PaymentRow, deps: ReconcileDeps) -> str:
    try:
        answer = await deps.bkm.query_payment_result(row.token)
    except (BkmUnavailable, BkmAnswerInvalid) as exc:
        metrics.RECONCILED.labels("error").inc()
        log.warning("QueryPaymentResult failed; retried later", bkm_t=row.token, error=str(exc))
        return "error"
    if row.state == FAILED:
        return await recheck_failure(row, answer.succeeded, deps)
    if row.state != INITIALIZED:  # pragma: no cover - only these two are ever due
        await deps.confirm.store.clear_due(row.token)
        return row.state
    age = time.time() - (row.initialized_at or row.updated_at)
    if answer.succeeded:
        state, reason = CONFIRMED, None
    elif age >= deps.give_up_after_s:
        state, reason = FAILED, f"QueryPaymentResult: not paid {age:.0f} s after initialization"
    else:
        metrics.RECONCILED.labels("pending").inc()
        return "pending"
    event = build_event(row.token, state, "reconciliation", row, reason=reason, reconciled=True)
    outcome = Outcome(
        row.token,
        state,
        fingerprint({"state": state, "via": "QueryPaymentResult"}),
        answer_for(event, state),
        event.model_dump_json(),
        "reconciliation",
    )
    reply = await record_and_publish(deps.confirm, outcome, event, "reconciliation")
    metrics.RECONCILED.labels(state).inc()
    log.info("payment reconciled", bkm_t=row.token, state=state, status=reply.status)
    return state


async def reconcile_due(deps: ReconcileDeps) -> int:
    """Query every payment that is due now; return how many were looked at."""
    rows = await deps.confirm.store.take_due(deps.recheck_s, deps.batch)
    for row in rows:
        await reconcile_one(row, deps)
    return len(rows)
