"""Report pipeline events: request, submission, readiness, rows, completion, failure (§5.1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from schemas.events.base import (
    Event,
    FileName,
    FileType,
    Member,
    RefId,
    RequestId,
    ResultCode,
    Sender,
    SenderReference,
    Sha256Hex,
    UtcDatetime,
)


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
