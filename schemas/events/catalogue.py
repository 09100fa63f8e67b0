"""The topic catalogue: every topic, its events, key, partitions, retention and owners."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import reduce
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    TypeAdapter,
)

from schemas.events.auth import TokenIssued, TokenRequested, TokenUnavailable
from schemas.events.base import (
    Event,
)
from schemas.events.payments import (
    BkmPaymentInitFailed,
    BkmPaymentInitialized,
    BkmPaymentRequested,
    MokaDealerApplicationRequested,
    MokaDealerApplicationResult,
    PaymentConfirmed,
    PaymentFailed,
)
from schemas.events.reports import (
    BalanceRowsBatch,
    ReportCompleted,
    ReportFailed,
    ReportReady,
    ReportRequested,
    ReportSubmitted,
)

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
