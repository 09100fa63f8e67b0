"""Wire models of MKK's MKS Online REST API (reports), with the guide's field rules.

Python names are snake_case; on the wire every field has its camelCase name (aliases,
both accepted on input). Requests refuse unknown fields (the gateway validates the
schema, §7 OI002); answers ignore them. Secrets (password, zipPassword, token) are
`SecretStr`: they print masked and are only revealed by `to_wire_json()`.

Sections cited are those of "MKS Raporları Online Entegrasyon REST API 1.0".
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationInfo,
    field_serializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

ISTANBUL = ZoneInfo("Europe/Istanbul")

# Paths (§3.2, §5.1, §6.1, §6.2).
AUTH_PATH = "/v1/auth"
BALANCE_REPORT_PATH = "/v1/reports/account/balance-report"
REPORT_STATUS_PATH = "/v1/reports/async-report-status"
REPORT_CONTENT_PATH = "/v1/reports/async-report-content"

# Field patterns (§3.2.2, §5.1.2, §5.1.5). Lookaheads are checked in validators: the
# pydantic pattern engine has none.
SENDER_REFERENCE_RE = r"^\S{1,255}$"
MEMBER_RE = r"^[A-Z0-9]{3,8}$"
SENDER_RE = r"^[A-Z0-9]{3,10}$"
CODE9_RE = r"^[A-Z0-9]{1,9}$"
MESSAGE_ID_RE = r"^[0-9]{1,22}$"
RESPONSE_CODE_RE = r"^[A-Z0-9]{3,5}$"
# §5.1.2 processDate; the guide's "[1,2]" in the day part is read as [12].
PROCESS_DATE_RE = re.compile(r"^(19[0-9]{2}|2[0-9]{3})(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$")
ZIP_PASSWORD_RE = re.compile(r"^(?=.*[A-Z])(?=.*\d).+$")  # §5.1.2

REVEAL = "reveal_secrets"  # serialization context key: {"reveal_secrets": True}


def istanbul_today() -> dt.date:
    return dt.datetime.now(ISTANBUL).date()


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
    )

    def to_wire(self, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """The JSON object as MKK sees it (None fields left out); secrets masked unless asked."""
        data: dict[str, Any] = self.model_dump(
            mode="json", exclude_none=True, context={REVEAL: reveal_secrets}
        )
        return data

    def to_wire_json(self) -> bytes:
        """The exact bytes to send (or sign): secrets revealed. Never log the result."""
        return json.dumps(self.to_wire(reveal_secrets=True), ensure_ascii=False).encode()


class WireRequest(_Wire):
    # Validation errors never echo the input: it may hold a password.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class WireAnswer(_Wire):
    model_config = ConfigDict(extra="ignore")


def _secret_out(value: SecretStr, info: SerializationInfo) -> str:
    ctx = info.context or {}
    return value.get_secret_value() if ctx.get(REVEAL) else str(value)


# ---------------------------------------------------------------- common parts


class RequestHeader(WireRequest):
    """requestHeader of every request (§3.2.2, §5.1.2, §6.1.2, §6.2.2)."""

    # Unique per member; reusable only when MKK's answer carried no messageId.
    sender_reference: str = Field(pattern=SENDER_REFERENCE_RE)
    sender_member: str = Field(pattern=MEMBER_RE)
    sender: str = Field(pattern=SENDER_RE)


class ResponseHeader(WireAnswer):
    """responseHeader of every answer (§5.1.5, §6.1.5, §6.2.5)."""

    sender_reference: str = Field(min_length=1, max_length=255)
    receiver_member: str = Field(pattern=MEMBER_RE)
    # Absent when the message failed before reaching MKS: then the senderReference
    # may be sent again (§5.1.2).
    message_id: str | None = Field(default=None, pattern=MESSAGE_ID_RE)
    mkk_sender_reference: str | None = Field(default=None, pattern=MESSAGE_ID_RE)


class ResponseBody(WireAnswer):
    """response {responseCode, responseDesc} (§5.1.5)."""

    response_code: str = Field(pattern=RESPONSE_CODE_RE)
    response_desc: str = Field(default="", max_length=255)


class MkkAnswer(WireAnswer):
    response_header: ResponseHeader
    response: ResponseBody

    @property
    def code(self) -> str:
        return self.response.response_code


# ---------------------------------------------------------------- §3.2 token


class AuthRequest(WireRequest):
    """POST /v1/auth body, plain JSON, not signed (§3.2.2, §3.2.4)."""

    request_header: RequestHeader
    username: str = Field(pattern=SENDER_RE)
    # 6-10 characters (§3.2.2); its composition is MKK's rule when it is created (YT25).
    password: SecretStr = Field(min_length=6, max_length=10)

    @field_serializer("password")
    def _password_out(self, value: SecretStr, info: SerializationInfo) -> str:
        return _secret_out(value, info)


class AuthAnswer(WireAnswer):
    """Successful token answer (§3.2.5, §3.2.6)."""

    token_type: Literal["Bearer"] = "Bearer"
    token: SecretStr
    created: str = Field(alias="Created")
    life_time: str = Field(alias="LifeTime", pattern=r"^[0-9]+$")

    @field_serializer("token")
    def _token_out(self, value: SecretStr, info: SerializationInfo) -> str:
        return _secret_out(value, info)


class AuthFailure(BaseModel):
    """Failed token answer (§3.2.6); names are snake_case on the wire."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    error_message: str
    transaction_id: str
    error_code: str
    error_subcode: str


# ---------------------------------------------------------------- §5.1 balance report


def check_process_date(value: str, today: dt.date) -> str:
    """§5.1.2: YYYYMMDD, a real date, today or in the past (Istanbul date)."""
    if not PROCESS_DATE_RE.match(value):
        raise ValueError("processDate must be YYYYMMDD")
    try:
        day = dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise ValueError("processDate is not a calendar date") from None
    if day > today:
        raise ValueError("processDate must be today or in the past")
    return value


class BalanceReportRequest(WireRequest):
    """POST /v1/reports/account/balance-report (§5.1.2, §5.1.4).

    `processDate` is checked against today in Istanbul, or against `context={"today":
    date}` given to `model_validate` (the sandbox passes its own clock).
    """

    request_header: RequestHeader
    file_type: Literal["json", "csv"]
    zip_password: SecretStr = Field(min_length=8, max_length=50)
    process_date: str
    sub_acc_no: str | None = Field(default=None, pattern=r"^[A-Z]{4}$")
    isin: str | None = Field(default=None, pattern=r"^[A-Z0-9]{12}$")
    sec_class: str | None = Field(default=None, pattern=CODE9_RE)
    sec_type: str | None = Field(default=None, pattern=CODE9_RE)
    acc_class: str | None = Field(default=None, pattern=CODE9_RE)
    portfolio_code: str | None = Field(default=None, pattern=CODE9_RE)
    acc_no: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,15}$")

    @field_validator("zip_password")
    @classmethod
    def _zip_password_rule(cls, value: SecretStr) -> SecretStr:
        if not ZIP_PASSWORD_RE.match(value.get_secret_value()):
            raise ValueError("zipPassword needs at least one upper-case letter and one digit")
        return value

    @field_validator("process_date")
    @classmethod
    def _process_date_rule(cls, value: str, info: ValidationInfo) -> str:
        ctx = info.context or {}
        today = ctx.get("today")
        return check_process_date(value, today if isinstance(today, dt.date) else istanbul_today())

    @field_serializer("zip_password")
    def _zip_password_out(self, value: SecretStr, info: SerializationInfo) -> str:
        return _secret_out(value, info)

    def filters(self) -> dict[str, str]:
        """The optional filters that were given, by Python name."""
        names = ("sub_acc_no", "isin", "sec_class", "sec_type", "acc_class", "portfolio_code")
        out = {n: getattr(self, n) for n in (*names, "acc_no")}
        return {k: v for k, v in out.items() if v is not None}


class BalanceReportAnswer(MkkAnswer):
    """§5.1.5: on 0000 the answer carries refId, valid for 24 hours."""

    ref_id: str | None = Field(default=None, max_length=50)


# ---------------------------------------------------------------- §6.1 / §6.2


class ReportStatusRequest(WireRequest):
    """POST /v1/reports/async-report-status (§6.1.2, §6.1.4)."""

    request_header: RequestHeader
    ref_id: str = Field(max_length=50)


class ReportStatusAnswer(MkkAnswer):
    """§6.1.5: on 0000 the answer lists the report's files."""

    file_names: list[str] | None = None


class ReportContentRequest(WireRequest):
    """POST /v1/reports/async-report-content (§6.2.2, §6.2.4)."""

    request_header: RequestHeader
    ref_id: str = Field(max_length=50)
    file_name: str = Field(min_length=10, max_length=2_147_483_647)


class ReportContentError(WireAnswer):
    """§6.2.5 / §6.2.6: an error answer of async-report-content; the code is not nested.

    On success the answer is the zip itself (application/octet-stream).
    """

    response_header: ResponseHeader
    response_code: str = Field(pattern=RESPONSE_CODE_RE)
    response_desc: str | None = Field(default=None, max_length=255)

    @property
    def code(self) -> str:
        return self.response_code


# ---------------------------------------------------------------- §5.1.6 report rows


@dataclass(frozen=True, slots=True)
class ReportField:
    json_name: str
    csv_name: str
    label: str  # the guide's Turkish label


# The fields of the zipped json / csv file, in the guide's order (§5.1.6).
REPORT_FIELDS: tuple[ReportField, ...] = (
    ReportField("balanceDate", "BAKIYE_TARIHI", "Bakiye Tarihi"),
    ReportField("mbrId", "UYE", "Üye Kodu"),
    ReportField("mbrAccNo", "HESAP", "Hesap"),
    ReportField("subAccCode", "ALT_HESAP", "Alt Hesap"),
    ReportField("secClassCode", "KIYMET_SINIFI", "Kıymet Sınıfı"),
    ReportField("mic", "MIC", "MIC"),
    ReportField("isin", "ISIN", "ISIN"),
    ReportField("addDefCode", "EK_TANIM", "Ek Tanım"),
    ReportField("balanceAmount", "BAKIYE", "Bakiye"),
)
JSON_FIELDS: tuple[str, ...] = tuple(f.json_name for f in REPORT_FIELDS)
CSV_COLUMNS: tuple[str, ...] = tuple(f.csv_name for f in REPORT_FIELDS)
CSV_TO_JSON: dict[str, str] = {f.csv_name: f.json_name for f in REPORT_FIELDS}


class BalanceRow(WireAnswer):
    """One row of the balance report (§5.1.6), read from its json or csv form."""

    balance_date: str = Field(alias="balanceDate")
    mbr_id: str = Field(alias="mbrId")
    mbr_acc_no: str = Field(alias="mbrAccNo")
    sub_acc_code: str = Field(alias="subAccCode")
    sec_class_code: str = Field(alias="secClassCode")
    mic: str = Field(alias="mic")
    isin: str = Field(alias="isin")
    add_def_code: str = Field(default="", alias="addDefCode")
    balance_amount: Decimal = Field(alias="balanceAmount")

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> BalanceRow:
        return cls.model_validate({CSV_TO_JSON[k]: v for k, v in row.items() if k in CSV_TO_JSON})
