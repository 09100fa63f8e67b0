"""BKM Express wire models and their field rules (bkm-express-xml-integration.md).

Signed field order lives in ONE place, ``SIGNED_FIELDS`` below: a tuple per message of
field names, in signing order; ``Nested(list_field, spec)`` repeats ``spec`` for each item
of a list (initializePayment's loops over banks, bins and installments). The success,
confirmation and cancel field tables are pictures in the BKM document; their order
follows the public travijuu/bkm-express reading (specs README, "Where the BKM document
shows only pictures"). Correct them here and nowhere else.

Text rules (document "Güvenlik" and FAQ "İmzalama ile ilgili sorunlar"):
- an absent or nil field is signed as ``null``; a present-but-empty one (``<expInst/>``)
  as the empty string;
- booleans as ``true`` / ``false``, exactly as in the message;
- amounts TRY with a comma and two decimals, ``105,99``;
- ``ts`` is ``YYYYMMDD-HH:MM:SS`` with no zone: read and written as Istanbul time.

Messages we build hold typed values (Decimal, bool, int) rendered by ``wire_text``;
messages BKM sends us hold the raw received strings, signed back exactly as received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import ClassVar, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_TS_ZONE: Final = "Europe/Istanbul"
TS_FORMAT: Final = "%Y%m%d-%H:%M:%S"
_TS_RE = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}")
_AMOUNT_RE = re.compile(r"\d+,\d{2}")
CENT = Decimal("0.01")
ALL_BANKS_ID: Final = "9999"  # one amount for every bank
SINGLE_PAYMENT: Final = 1  # nofInst=1: no installments


@dataclass(frozen=True, slots=True)
class Nested:
    """Repeat ``spec`` for every item of the list field ``field``, in list order."""

    field: str
    spec: FieldSpec


FieldSpec = tuple["str | Nested", ...]

_INSTALLMENT: FieldSpec = ("nofInst", "amountInst", "cAmount", "tAmount", "cPaid1stInst", "expInst")
_BIN: FieldSpec = ("value", Nested("insts", _INSTALLMENT))
_BANK: FieldSpec = ("id", "name", "expBank", Nested("bins", _BIN))
_POS_RESULT: FieldSpec = ("t", "posMessage", "xid", "md", "ts")

SIGNED_FIELDS: Final[MappingProxyType[str, FieldSpec]] = MappingProxyType(
    {
        # Java sample under Şekil 6: mId sUrl cUrl sAmount cAmount, banks → bins → insts, ts.
        "initializePayment": (
            "mId",
            "sUrl",
            "cUrl",
            "sAmount",
            "cAmount",
            Nested("instOpts", _BANK),
            "ts",
        ),
        # Picture only; travijuu: sign(t + url + ts) with BKM's key.
        "initializePaymentAnswer": ("t", "url", "ts"),
        # travijuu: the hidden form to BKM's url, sign(t + ts) with the merchant's key.
        "redirect": ("t", "ts"),
        # Picture only; travijuu verifyRequest: t bid bName cBin nofInst ts.
        "requestMerchInfo": ("t", "bid", "bName", "cBin", "nofInst", "ts"),
        # Java sample under Şekil 9.
        "requestMerchInfoAnswer": (
            "t",
            "posUrl",
            "posUid",
            "posPwd",
            "s3DAuth",
            "mpiUrl",
            "mpiUid",
            "mpiPwd",
            "md",
            "xid",
            "s3DFDec",
            "cIp",
            "extra",
            "ts",
        ),
        # Picture only; travijuu IncomingResult: t posMessage xid md ts.
        "success": _POS_RESULT,
        # "aynı parametrelerle": the confirmation post carries the success fields.
        "confirmation": _POS_RESULT,
        # Picture only; travijuu IncomingResult with r set: t posRef xid md ts.
        "cancel": ("t", "posRef", "xid", "md", "ts"),
        # "İşlem Bilgileri Sorgulama": s = imza {mId, t, ts}.
        "queryPaymentResult": ("mId", "t", "ts"),
        # s = imza {t, success, ts}.
        "queryPaymentResultAnswer": ("t", "success", "ts"),
    }
)


# ------------------------------------------------------------------- text formatting


def format_amount(value: Decimal) -> str:
    """TRY with a comma and two decimals: Decimal('105.99') -> '105,99'.

    An amount with fractions of a kuruş is refused rather than rounded.
    """
    if not value.is_finite() or value < 0:
        raise ValueError(f"amount must be a finite non-negative number, got {value}")
    cents = value.quantize(CENT)
    if cents != value:
        raise ValueError(f"amount {value} has more than two decimals")
    return f"{cents:.2f}".replace(".", ",")


def parse_amount(text: str) -> Decimal:
    """'105,99' -> Decimal('105.99'); anything else is refused."""
    if not _AMOUNT_RE.fullmatch(text):
        raise ValueError(f"amount {text!r} is not TRY with a comma and two decimals")
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - regex guards this
        raise ValueError(f"amount {text!r}") from exc


def format_ts(moment: datetime, zone: str = DEFAULT_TS_ZONE) -> str:
    """An aware datetime as BKM's ``YYYYMMDD-HH:MM:SS`` in ``zone`` (default Istanbul)."""
    if moment.tzinfo is None:
        raise ValueError("ts needs an aware datetime")
    return moment.astimezone(ZoneInfo(zone)).strftime(TS_FORMAT)


def parse_ts(text: str, zone: str = DEFAULT_TS_ZONE) -> datetime:
    """BKM's zone-less ``YYYYMMDD-HH:MM:SS`` read as a time in ``zone``."""
    if not _TS_RE.fullmatch(text):
        raise ValueError(f"ts {text!r} is not YYYYMMDD-HH:MM:SS")
    # The form is checked: the fields are read by position (what strptime with TS_FORMAT
    # reads, at a tenth of its cost); an impossible date or time raises ValueError.
    return datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[9:11]),
        int(text[12:14]),
        int(text[15:17]),
        tzinfo=ZoneInfo(zone),
    )


def ts_within(text: str, now: datetime, tolerance: timedelta, zone: str = DEFAULT_TS_ZONE) -> bool:
    """Is a received ts within ``tolerance`` of ``now``? (travijuu: 30 s, a setting here)."""
    try:
        moment = parse_ts(text, zone)
    except ValueError:
        return False
    return abs(moment - now) <= tolerance


def wire_text(value: object) -> str | None:
    """The text of a value as written in the message and in the signed string.

    None stays None (signed as ``null``); bool -> true/false; Decimal -> '105,99'.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_amount(value)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"no BKM text for {type(value).__name__}")


# --------------------------------------------------------------------------- models


class BkmMessage(BaseModel):
    """A signed BKM message; ``message`` names its entry in SIGNED_FIELDS."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message: ClassVar[str]
    s: str | None = None


class Installment(BaseModel):
    model_config = ConfigDict(frozen=True)

    nofInst: int = Field(ge=1)
    amountInst: Decimal
    cAmount: Decimal | None = None
    tAmount: Decimal
    cPaid1stInst: bool | None = None
    expInst: str | None = None


class Bin(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    insts: list[Installment] = Field(min_length=1)


class Bank(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # 9999: one amount for every bank
    name: str | None = None
    expBank: str | None = None
    bins: list[Bin] = Field(min_length=1)


class InitializePaymentRequest(BkmMessage):
    """Merchant -> BKM (Şekil 6), signed with the merchant's key."""

    message: ClassVar[str] = "initializePayment"
    mId: str
    sUrl: str
    cUrl: str
    sAmount: Decimal
    cAmount: Decimal | None = None
    instOpts: list[Bank] = Field(min_length=1)
    ts: str = Field(pattern=_TS_RE.pattern)


class BkmResult(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    resCode: str
    resMsg: str | None = None
    resDet: str | None = None

    @property
    def ok(self) -> bool:
        return self.resCode.strip() == "0"


class InitializePaymentAnswer(BkmMessage):
    """BKM -> merchant (Şekil 7), raw strings, signed with BKM's key."""

    message: ClassVar[str] = "initializePaymentAnswer"
    t: str | None = None
    url: str | None = None
    ts: str | None = None
    res: BkmResult | None = None


class RedirectForm(BkmMessage):
    """Merchant -> user's browser -> BKM ``url``: hidden form t, ts, s (merchant key)."""

    message: ClassVar[str] = "redirect"
    t: str
    ts: str = Field(pattern=_TS_RE.pattern)


class RequestMerchInfoRequest(BkmMessage):
    """BKM -> merchant web service (Şekil 8), raw strings, BKM's key."""

    message: ClassVar[str] = "requestMerchInfo"
    t: str | None = None
    bid: str | None = None
    bName: str | None = None
    cBin: str | None = None
    nofInst: str | None = None
    ts: str | None = None


class RequestMerchInfoAnswer(BkmMessage):
    """Merchant -> BKM (Şekil 9): POS and MPI data, merchant's key.

    Non-3D-Secure merchants send the MPI fields empty (FAQ), i.e. ``""``, not null.
    """

    message: ClassVar[str] = "requestMerchInfoAnswer"
    t: str
    posUrl: str | None = None
    posUid: str | None = None
    posPwd: SecretStr | None = None
    s3DAuth: int | str | None = None
    mpiUrl: str | None = None
    mpiUid: str | None = None
    mpiPwd: SecretStr | None = None
    md: str | None = None
    xid: str | None = None
    s3DFDec: int | str | None = None
    cIp: str | None = None
    extra: str | None = None
    ts: str = Field(pattern=_TS_RE.pattern)
    res: BkmResult | None = None


class PosResultPost(BkmMessage):
    """BKM -> merchant success post / confirmation post (raw form fields)."""

    message: ClassVar[str] = "success"
    t: str | None = None
    posMessage: str | None = None  # the POS answer as JSON, card data removed
    xid: str | None = None
    md: str | None = None
    ts: str | None = None
    pData: str | None = None
    eKey1: str | None = None
    eKey2: str | None = None


class SuccessPost(PosResultPost):
    message: ClassVar[str] = "success"


class ConfirmationPost(PosResultPost):
    message: ClassVar[str] = "confirmation"


class CancelRedirect(BkmMessage):
    """BKM -> merchant cUrl (GET): a post carrying ``r`` is a failure (travijuu)."""

    message: ClassVar[str] = "cancel"
    t: str | None = None
    r: str | None = None
    posRef: str | None = None
    xid: str | None = None
    md: str | None = None
    ts: str | None = None


class QueryPaymentResultRequest(BkmMessage):
    """Merchant -> BKM QueryPaymentResult: s = sign(mId, t, ts)."""

    message: ClassVar[str] = "queryPaymentResult"
    mId: str
    t: str
    ts: str = Field(pattern=_TS_RE.pattern)


class QueryPaymentResultAnswer(BkmMessage):
    """BKM -> merchant: t, success (boolean), ts, s = sign(t, success, ts); raw strings."""

    message: ClassVar[str] = "queryPaymentResultAnswer"
    t: str | None = None
    success: str | None = None
    ts: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.success == "true"


def parse_return(
    fields: dict[str, str], *, confirmation: bool = False
) -> PosResultPost | CancelRedirect:
    """A post or redirect back from BKM: with ``r`` a cancel, without it a success."""
    if "r" in fields:
        return CancelRedirect.model_validate(fields)
    if confirmation:
        return ConfirmationPost.model_validate(fields)
    return SuccessPost.model_validate(fields)
