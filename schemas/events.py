"""Every Kafka event of kopru, and the topic catalogue.

Rules for every event:
- `event_type` names the model (a discriminator: one topic may carry a few types);
- `schema_version` is bumped on any incompatible change;
- `event_id` is unique per emitted event (consumers de-duplicate on it);
- timestamps are timezone-aware and normalised to UTC (ISO 8601 on the wire);
- no secret ever: no password, zip password, token in clear or card data. A token
  travels only encrypted (AES-GCM) in `TokenIssued`.

Field rules come from the MKK guide (§3.2 common header, §5.1.2 balance-report fields,
§5.1.6 report rows), BKM's integration document and Moka's dealer API.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import reduce
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)


def _utc(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("timestamp must carry a time zone")
    return v.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- field types from the specs ------------------------------------------------------
RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,100}$")]
Member = Annotated[str, Field(pattern=r"^[A-Z0-9]{3,8}$")]  # §3.2 senderMember
Sender = Annotated[str, Field(pattern=r"^[A-Z0-9]{3,10}$")]  # §3.2 sender
SenderReference = Annotated[str, Field(pattern=r"^\S{1,255}$")]  # §3.2 senderReference
RefId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]  # §5.1.3 refId
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,200}$")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
FileType = Literal["json", "csv"]  # §5.1.2 fileType
ResultCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    event_type: str
    schema_version: int = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    correlation_id: str | None = Field(default=None, max_length=128)

    def kafka_key(self) -> bytes:  # pragma: no cover - every concrete event overrides
        raise NotImplementedError


class _ReportKeyed(Event):
    """Report events are keyed by (member, request id): one request stays in order."""

    request_id: RequestId
    member: Member

    def kafka_key(self) -> bytes:
        return f"{self.member}:{self.request_id}".encode()


# --- report pipeline ----------------------------------------------------------------
class BalanceReportFilters(BaseModel):
    """Optional filters of the balance report (§5.1.2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sub_acc_no: str | None = Field(default=None, pattern=r"^[A-Z]{4}$")
    isin: str | None = Field(default=None, pattern=r"^[A-Z0-9]{12}$")
    sec_class: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,10}$")
    sec_type: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,10}$")
    acc_class: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,10}$")
    portfolio_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,9}$")
    acc_no: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,15}$")


class ReportRequested(_ReportKeyed):
    """Upstream asks for a balance report (topic mks.reports.requested)."""

    event_type: Literal["ReportRequested"] = "ReportRequested"
    sender: Sender
    process_date: date  # §5.1.2: current or past day (checked in Istanbul time on intake)
    file_type: FileType
    filters: BalanceReportFilters = Field(default_factory=BalanceReportFilters)


class ReportSubmitted(_ReportKeyed):
    """MKK accepted the request (0000) and gave a refId valid 24 hours (§5.1.3)."""

    event_type: Literal["ReportSubmitted"] = "ReportSubmitted"
    sender: Sender
    ref_id: RefId
    sender_reference: SenderReference
    message_id: str | None = None
    file_type: FileType
    process_date: date
    submitted_at: UtcDatetime
    expires_at: UtcDatetime  # submitted_at + 24 h: the poll deadline


class ReportReady(_ReportKeyed):
    """The report is ready: async-report-status answered 0000 with file names (§6.1)."""

    event_type: Literal["ReportReady"] = "ReportReady"
    sender: Sender
    ref_id: RefId
    file_type: FileType
    file_names: list[FileName] = Field(min_length=1, max_length=1000)
    polls: int = Field(ge=1)
    submitted_at: UtcDatetime


class BalanceRow(BaseModel):
    """One balance line of the report (§5.1.6), MKK's names mapped to ours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    balance_date: date  # balanceDate / BAKIYE_TARIHI
    member: str = Field(max_length=16)  # mbrId / UYE
    account: str = Field(max_length=32)  # mbrAccNo / HESAP
    sub_account: str | None = Field(default=None, max_length=16)  # subAccCode / ALT_HESAP
    sec_class: str | None = Field(default=None, max_length=16)  # secClassCode / KIYMET_SINIFI
    mic: str | None = Field(default=None, max_length=8)  # mic / MIC
    isin: str = Field(max_length=12)  # isin / ISIN
    add_def_code: str | None = Field(default=None, max_length=32)  # addDefCode / EK_TANIM
    balance: Decimal = Field(max_digits=28, decimal_places=8)  # balanceAmount / BAKIYE


class BalanceRowsBatch(_ReportKeyed):
    """A batch of rows of one file. Consumers de-duplicate on (ref_id, file_name, seq)."""

    event_type: Literal["BalanceRowsBatch"] = "BalanceRowsBatch"
    ref_id: RefId
    file_name: FileName
    seq: int = Field(ge=0)
    first_row: int = Field(ge=0)
    # 2,000 rows of the widest allowed values stay under real Kafka's 1 MB (tested).
    rows: list[BalanceRow] = Field(max_length=2000)


class FileSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file_name: FileName
    rows: int = Field(ge=0)
    batches: int = Field(ge=0)
    zip_bytes: int = Field(ge=0)
    zip_sha256: Sha256Hex


class ReportCompleted(_ReportKeyed):
    """All rows of every file were published (or the query had no data, RP026)."""

    event_type: Literal["ReportCompleted"] = "ReportCompleted"
    ref_id: RefId | None = None
    files: list[FileSummary] = Field(default_factory=list)
    total_rows: int = Field(ge=0)
    no_data: bool = False
    durations_s: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rows_add_up(self) -> ReportCompleted:
        if sum(f.rows for f in self.files) != self.total_rows:
            raise ValueError("total_rows must equal the sum of rows per file")
        return self


FailureStage = Literal["intake", "request", "status", "content"]


class ReportFailed(_ReportKeyed):
    """The request ended without a report. `code`/`description` are MKK's when it spoke."""

    event_type: Literal["ReportFailed"] = "ReportFailed"
    stage: FailureStage
    ref_id: RefId | None = None
    code: ResultCode
    description: str = Field(max_length=2000)


# --- auth token -----------------------------------------------------------------------
class _TokenKeyed(Event):
    member: Member
    sender: Sender

    def kafka_key(self) -> bytes:
        return f"{self.member}:{self.sender}".encode()


class TokenRequested(_TokenKeyed):
    """A service needs a token for (member, sender): none, expired or rejected by MKK."""

    event_type: Literal["TokenRequested"] = "TokenRequested"
    reason: Literal["missing", "expired", "rejected"]
    requested_by: str = Field(max_length=64)
    rejected_jti: str | None = Field(default=None, max_length=128)


class TokenIssued(_TokenKeyed):
    """A live token, encrypted with AES-GCM under a key only kopru's services hold."""

    event_type: Literal["TokenIssued"] = "TokenIssued"
    jti: str = Field(max_length=128)
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    key_id: str = Field(max_length=64)
    nonce_b64: str = Field(max_length=64)
    ciphertext_b64: str = Field(max_length=16384)


class TokenUnavailable(_TokenKeyed):
    """No token can be had; `code` is MKK's. Wrong password: no retry until reset."""

    event_type: Literal["TokenUnavailable"] = "TokenUnavailable"
    code: ResultCode
    description: str = Field(max_length=2000)
    retry_blocked: bool


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


# --- the topic catalogue --------------------------------------------------------------
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: everything operators and code need to know about it, in one place."""

    name: str
    event_types: tuple[type[Event], ...]
    key: str
    partitions: int = 6
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = 7 * DAY_MS
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    description: str = ""
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    dlq_suffix: ClassVar[str] = ".dlq"

    def __post_init__(self) -> None:
        union: Any = (
            self.event_types[0]
            if len(self.event_types) == 1
            else Annotated[
                reduce(operator.or_, self.event_types), Field(discriminator="event_type")
            ]
        )
        object.__setattr__(self, "adapter", TypeAdapter(union))

    @property
    def dlq(self) -> str:
        return self.name + self.dlq_suffix

    def parse(self, data: bytes) -> Event:
        """Validate raw bytes into one of this topic's event types (raises ValidationError)."""
        event: Event = self.adapter.validate_json(data)
        return event


REPORTS_REQUESTED = TopicSpec(
    "mks.reports.requested",
    (ReportRequested,),
    key="member:request_id",
    producers=("upstream",),
    consumers=("report-requester",),
    description="Balance report requests from the trading and settlement systems.",
)
REPORTS_SUBMITTED = TopicSpec(
    "mks.reports.submitted",
    (ReportSubmitted,),
    key="member:request_id",
    producers=("report-requester",),
    consumers=("status-poller",),
    description="MKK accepted the request; refId to poll.",
)
REPORTS_READY = TopicSpec(
    "mks.reports.ready",
    (ReportReady,),
    key="member:request_id",
    producers=("status-poller",),
    consumers=("content-fetcher",),
    description="Report files are ready to download.",
)
REPORTS_ROWS = TopicSpec(
    "mks.reports.rows",
    (BalanceRowsBatch,),
    key="member:request_id",
    partitions=12,
    retention_ms=3 * DAY_MS,
    producers=("content-fetcher",),
    consumers=("downstream",),
    description="Balance rows in batches; de-duplicate on (ref_id, file_name, seq).",
)
REPORTS_COMPLETED = TopicSpec(
    "mks.reports.completed",
    (ReportCompleted,),
    key="member:request_id",
    retention_ms=30 * DAY_MS,
    producers=("content-fetcher", "status-poller"),
    consumers=("downstream",),
    description="One completion per request: row counts and checksums per file.",
)
REPORTS_FAILED = TopicSpec(
    "mks.reports.failed",
    (ReportFailed,),
    key="member:request_id",
    retention_ms=30 * DAY_MS,
    producers=("report-requester", "status-poller", "content-fetcher"),
    consumers=("downstream",),
    description="Terminal failures with MKK's code and description.",
)
AUTH_TOKEN_REQUESTS = TopicSpec(
    "mks.auth.token-requests",
    (TokenRequested,),
    key="member:sender",
    partitions=3,
    retention_ms=1 * DAY_MS,
    producers=("report-requester", "status-poller", "content-fetcher"),
    consumers=("auth-token",),
    description="Asks the auth-token service for a token (missing, expired, rejected).",
)
AUTH_TOKENS = TopicSpec(
    "mks.auth.tokens",
    (TokenIssued, TokenUnavailable),
    key="member:sender",
    partitions=3,
    cleanup_policy="compact",
    retention_ms=-1,
    producers=("auth-token",),
    consumers=("report-requester", "status-poller", "content-fetcher"),
    description="Latest token state per (member, sender), token encrypted. Compacted.",
)
BKM_PAYMENT_REQUESTED = TopicSpec(
    "payments.bkm.payment-requested",
    (BkmPaymentRequested,),
    key="order_id",
    producers=("upstream",),
    consumers=("payment-notifier",),
    description="Start a BKM Express payment.",
)
BKM_INITIALIZED = TopicSpec(
    "payments.bkm.initialized",
    (BkmPaymentInitialized, BkmPaymentInitFailed),
    key="order_id",
    producers=("payment-notifier",),
    consumers=("upstream",),
    description="BKM token and redirect URL for the customer, or why not.",
)
BKM_CONFIRMATIONS = TopicSpec(
    "payments.bkm.confirmations",
    (PaymentConfirmed, PaymentFailed),
    key="token",
    retention_ms=30 * DAY_MS,
    producers=("payment-notifier",),
    consumers=("downstream",),
    description="Exactly one outcome per BKM payment token.",
)
MOKA_APPLICATION_REQUESTED = TopicSpec(
    "payments.moka.dealer-application-requested",
    (MokaDealerApplicationRequested,),
    key="application_id",
    partitions=3,
    producers=("upstream",),
    consumers=("payment-notifier",),
    description="Moka POS applications (CreateMokaPosRequest).",
)
MOKA_APPLICATION_RESULTS = TopicSpec(
    "payments.moka.dealer-application-results",
    (MokaDealerApplicationResult,),
    key="application_id",
    partitions=3,
    retention_ms=30 * DAY_MS,
    producers=("payment-notifier",),
    consumers=("upstream",),
    description="Moka's answer per application.",
)

CATALOGUE: tuple[TopicSpec, ...] = (
    REPORTS_REQUESTED,
    REPORTS_SUBMITTED,
    REPORTS_READY,
    REPORTS_ROWS,
    REPORTS_COMPLETED,
    REPORTS_FAILED,
    AUTH_TOKEN_REQUESTS,
    AUTH_TOKENS,
    BKM_PAYMENT_REQUESTED,
    BKM_INITIALIZED,
    BKM_CONFIRMATIONS,
    MOKA_APPLICATION_REQUESTED,
    MOKA_APPLICATION_RESULTS,
)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in CATALOGUE}

EVENT_TYPES: tuple[type[Event], ...] = tuple(
    dict.fromkeys(et for t in CATALOGUE for et in t.event_types)
)


def topic(name: str) -> TopicSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the topic catalogue") from None
