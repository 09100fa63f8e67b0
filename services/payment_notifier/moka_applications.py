"""Moka dealer applications: MokaDealerApplicationRequested → /Dealer/CreateMokaPosRequest
→ MokaDealerApplicationResult (moka-dealer-api.txt, "Bayi Başvurusu Ekleme").

Decisions:
- an application that breaks the document's field rules is answered with a ``rejected``
  result carrying Moka's own error code for the first broken rule (and every problem in
  the message), without calling Moka: upstream gets an answer on its topic, nothing is
  lost. A message that is not even a MokaDealerApplicationRequested goes to the DLQ
  (platform), as does the same application id reused with other content;
- ResultCode "Success" → ``created`` with MokaPosRequestId; a listed error code →
  ``rejected``; "EX", OperationWasInterrupted and the dealer-authentication codes →
  ``error`` (and an alert for authentication: our credentials are wrong);
- Moka unreachable or 5xx → retry later (CreateMokaPosRequest has no idempotency key of
  its own, so only transport errors before an answer are retried);
- idempotent per application id: a redelivery replays the stored result, no second call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from schemas.events import Event, MokaDealerApplicationRequested, MokaDealerApplicationResult
from schemas.moka import AUTH_ERRORS, SUCCESS, UNEXPECTED_ERROR, ApiResponse, check_pos_request
from services.common.errors import RetryLater
from services.common.kafka.broker import current_correlation_id
from services.common.moka.client import MokaAnswerInvalid, MokaClient, MokaUnavailable
from services.common.observability.logging import get_logger
from services.common.stores.idempotency import IdempotencyStore, run_once
from services.payment_notifier import metrics

log = get_logger(__name__)
NAMESPACE = uuid.UUID("a3d5e4c2-1b7f-4c55-8e0d-5f6a7b8c9d10")
INTERRUPTED = "Dealer.CreateMokaPosRequest.OperationWasInterrupted"
Outcome = Literal["created", "rejected", "error"]


@dataclass
class MokaDeps:
    client: MokaClient
    idempotency: IdempotencyStore
    publish: Callable[[Event], Awaitable[None]]


def classify(resp: ApiResponse) -> tuple[Outcome, int | None]:
    if resp.ResultCode == SUCCESS:
        data = resp.Data if isinstance(resp.Data, dict) else {}
        pos_id = data.get("MokaPosRequestId")
        return "created", int(pos_id) if isinstance(pos_id, int | str) and str(
            pos_id
        ).isdigit() else None
    if resp.ResultCode in (UNEXPECTED_ERROR, INTERRUPTED, *AUTH_ERRORS):
        return "error", None
    return "rejected", None


async def _apply(
    event: MokaDealerApplicationRequested, deps: MokaDeps
) -> MokaDealerApplicationResult:
    event_id = uuid.uuid5(NAMESPACE, f"moka-application:{event.application_id}")
    request, errors = check_pos_request(event.application)
    if request is None:
        text = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return MokaDealerApplicationResult(
            event_id=event_id,
            application_id=event.application_id,
            outcome="rejected",
            result_code=errors[0].code,
            result_message=f"refused before calling Moka: {text}"[:2000],
        )
    try:
        resp = await deps.client.create_pos_request(request)
    except MokaUnavailable as exc:
        raise RetryLater(str(exc)) from None
    except MokaAnswerInvalid as exc:
        return MokaDealerApplicationResult(
            event_id=event_id,
            application_id=event.application_id,
            outcome="error",
            result_code="INVALID_ANSWER",
            result_message=str(exc)[:2000],
        )
    outcome, pos_id = classify(resp)
    if resp.ResultCode in AUTH_ERRORS:
        metrics.ALERTS.labels("moka_auth").inc()
        log.error("ALERT Moka refused our dealer authentication", result_code=resp.ResultCode)
    message = resp.Exception if resp.ResultCode == UNEXPECTED_ERROR else resp.ResultMessage
    return MokaDealerApplicationResult(
        event_id=event_id,
        application_id=event.application_id,
        outcome=outcome,
        moka_pos_request_id=pos_id,
        result_code=resp.ResultCode[:200] or "UNKNOWN",
        result_message=(message or None) and message[:2000],
    )


async def handle_application(event: MokaDealerApplicationRequested, deps: MokaDeps) -> None:
    payload = json.dumps(event.application, sort_keys=True, default=str).encode()

    # The answer carries its request's correlation id (the event's, else its message's).
    correlation_id = event.correlation_id or current_correlation_id()

    async def effect() -> dict[str, str]:
        result = (await _apply(event, deps)).model_copy(update={"correlation_id": correlation_id})
        await deps.publish(result)
        metrics.MOKA_RESULTS.labels(result.outcome).inc()
        log.info(
            "Moka application answered",
            application_id=event.application_id,
            outcome=result.outcome,
            result_code=result.result_code,
        )
        return {"outcome": result.outcome, "result_code": result.result_code}

    await run_once(deps.idempotency, "moka-pos-request", event.application_id, payload, effect)
