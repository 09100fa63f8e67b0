"""Payment events: BKM Express payments and confirmations, Moka dealer applications."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from schemas.events.base import (
    Event,
    ResultCode,
)

# --- payments: BKM Express ------------------------------------------------------------
Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
OrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


class BkmInstallment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nof_inst: int = Field(ge=1, le=36)  # nofInst=1: single payment
    amount_inst: Amount
    c_amount: Amount
    t_amount: Amount
    c_paid_1st_inst: bool
    exp_inst: str | None = Field(default=None, max_length=200)


class BkmBin(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(pattern=r"^[0-9]{6,8}$|^\*$")
    installments: list[BkmInstallment] = Field(min_length=1, max_length=36)


class BkmBank(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9]{1,4}$")  # 9999: one amount for every bank
    name: str = Field(max_length=100)
    exp_bank: str | None = Field(default=None, max_length=200)
    bins: list[BkmBin] = Field(min_length=1, max_length=200)


class _OrderKeyed(Event):
    order_id: OrderId

    def kafka_key(self) -> bytes:
        return self.order_id.encode()


class BkmPaymentRequested(_OrderKeyed):
    """Upstream asks to start a BKM Express payment (initializePayment)."""

    event_type: Literal["BkmPaymentRequested"] = "BkmPaymentRequested"
    sale_amount: Amount
    cargo_amount: Amount = Decimal("0.00")
    banks: list[BkmBank] = Field(default_factory=list, max_length=100)


class BkmPaymentInitialized(_OrderKeyed):
    event_type: Literal["BkmPaymentInitialized"] = "BkmPaymentInitialized"
    token: str = Field(max_length=128)  # BKM's payment token `t` (not a secret credential)
    redirect_url: str = Field(max_length=2000)


class BkmPaymentInitFailed(_OrderKeyed):
    event_type: Literal["BkmPaymentInitFailed"] = "BkmPaymentInitFailed"
    code: ResultCode
    description: str = Field(max_length=2000)


class _PaymentOutcome(Event):
    token: str = Field(max_length=128)
    order_id: OrderId | None = None
    xid: str | None = Field(default=None, max_length=128)
    source: Literal["confirmation", "success_redirect", "cancel_redirect", "reconciliation"]
    reconciled: bool = False

    def kafka_key(self) -> bytes:
        return self.token.encode()


class PaymentConfirmed(_PaymentOutcome):
    """BKM reported approval from the virtual POS: fulfil exactly once."""

    event_type: Literal["PaymentConfirmed"] = "PaymentConfirmed"
    pos_result: dict[str, Any] = Field(default_factory=dict)  # card data removed


class PaymentFailed(_PaymentOutcome):
    event_type: Literal["PaymentFailed"] = "PaymentFailed"
    reason: str = Field(max_length=2000)


# --- payments: Moka -------------------------------------------------------------------
class _ApplicationKeyed(Event):
    application_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]

    def kafka_key(self) -> bytes:
        return self.application_id.encode()


class MokaDealerApplicationRequested(_ApplicationKeyed):
    """Upstream asks Moka for a POS (CreateMokaPosRequest). Field rules: schemas/moka.py."""

    event_type: Literal["MokaDealerApplicationRequested"] = "MokaDealerApplicationRequested"
    application: dict[str, Any]


class MokaDealerApplicationResult(_ApplicationKeyed):
    event_type: Literal["MokaDealerApplicationResult"] = "MokaDealerApplicationResult"
    outcome: Literal["created", "rejected", "error"]
    moka_pos_request_id: int | None = None
    result_code: str = Field(max_length=200)
    result_message: str | None = Field(default=None, max_length=2000)
