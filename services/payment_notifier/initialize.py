"""initializePayment: a BkmPaymentRequested becomes a signed SOAP call to BKM (Şekil 6),
and BKM's verified answer (Şekil 7) becomes BkmPaymentInitialized or BkmPaymentInitFailed.

Idempotent per order id (services/common/idempotency.run_once): a redelivered request
replays the stored result and never calls BKM twice. Amounts are TRY with a comma and two
decimals; bank id 9999 means one amount for every bank; nofInst=1 a single payment.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from schemas.bkm import ALL_BANKS_ID, SINGLE_PAYMENT, Bank, Bin, Installment
from schemas.bkm import InitializePaymentRequest as InitRequest
from schemas.events import BkmPaymentInitFailed, BkmPaymentInitialized, BkmPaymentRequested, Event
from services.common.bkm.client import BkmAnswerInvalid, BkmClient, BkmUnavailable
from services.common.errors import RetryLater
from services.common.observability.logging import get_logger
from services.common.stores.idempotency import IdempotencyStore, run_once
from services.common.stores.payments import PaymentStore

log = get_logger(__name__)
NAMESPACE = uuid.UUID("0b7c6b53-6c11-4f35-9d0e-1c2a6b9e4f10")
ALL_BINS = "*"
_CODE = re.compile(r"[A-Za-z0-9._-]{1,100}")  # events.ResultCode


@dataclass
class InitDeps:
    bkm: BkmClient
    idempotency: IdempotencyStore
    payments: PaymentStore
    publish: Callable[[Event], Awaitable[None]]
    success_url: str
    cancel_url: str
    reconcile_after_s: float


def build_request(event: BkmPaymentRequested, deps: InitDeps) -> InitRequest:
    """The unsigned request. No banks given: one option for all banks, single payment."""
    total = event.sale_amount + event.cargo_amount
    banks = [
        Bank(
            id=b.id,
            name=b.name,
            expBank=b.exp_bank,
            bins=[
                Bin(
                    value=bn.value,
                    insts=[
                        Installment(
                            nofInst=i.nof_inst,
                            amountInst=i.amount_inst,
                            cAmount=i.c_amount,
                            tAmount=i.t_amount,
                            cPaid1stInst=i.c_paid_1st_inst,
                            expInst=i.exp_inst,
                        )
                        for i in bn.installments
                    ],
                )
                for bn in b.bins
            ],
        )
        for b in event.banks
    ] or [
        Bank(
            id=ALL_BANKS_ID,
            name="ALL",
            expBank=None,
            bins=[
                Bin(
                    value=ALL_BINS,
                    insts=[
                        Installment(
                            nofInst=SINGLE_PAYMENT,
                            amountInst=total,
                            cAmount=event.cargo_amount,
                            tAmount=total,
                            cPaid1stInst=True,
                            expInst=None,
                        )
                    ],
                )
            ],
        )
    ]
    return InitRequest(
        mId=deps.bkm.merchant_id,
        sUrl=deps.success_url,
        cUrl=deps.cancel_url,
        sAmount=event.sale_amount,
        cAmount=event.cargo_amount if event.cargo_amount != Decimal(0) else Decimal("0.00"),
        instOpts=banks,
        ts=deps.bkm.now_ts(),
    )


async def _initialize(event: BkmPaymentRequested, deps: InitDeps) -> Event:
    event_id = uuid.uuid5(NAMESPACE, f"bkm-init:{event.order_id}")
    request = build_request(event, deps)
    try:
        result = await deps.bkm.initialize_payment(request)
    except BkmUnavailable as exc:
        raise RetryLater(str(exc)) from None
    except BkmAnswerInvalid as exc:
        log.warning("BKM initializePayment answer refused", order_id=event.order_id, error=str(exc))
        return BkmPaymentInitFailed(
            event_id=event_id, order_id=event.order_id, code="INVALID_ANSWER", description=str(exc)
        )
    if not result.ok or result.token is None or result.url is None:
        res = result.result
        code = (res.resCode.strip() if res else "") or "UNKNOWN"
        desc = " ".join(x for x in (res.resMsg, res.resDet) if x) if res else ""
        return BkmPaymentInitFailed(
            event_id=event_id,
            order_id=event.order_id,
            code=code if _CODE.fullmatch(code) else "UNKNOWN",
            description=(desc or "refused by BKM")[:2000],
        )
    await deps.payments.record_initialized(
        result.token, event.order_id, due_at=time.time() + deps.reconcile_after_s
    )
    return BkmPaymentInitialized(
        event_id=event_id, order_id=event.order_id, token=result.token, redirect_url=result.url
    )


async def handle_payment_requested(event: BkmPaymentRequested, deps: InitDeps) -> None:
    payload = event.model_dump_json(include={"order_id", "sale_amount", "cargo_amount", "banks"})

    async def effect() -> dict[str, str]:
        out = await _initialize(event, deps)
        await deps.publish(out)
        log.info("initializePayment done", order_id=event.order_id, result=out.event_type)
        return {"event_type": out.event_type, "event_id": str(out.event_id)}

    await run_once(deps.idempotency, "bkm-initialize", event.order_id, payload.encode(), effect)
