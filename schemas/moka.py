"""Moka dealer API wire models (moka-dealer-api.txt)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

SUCCESS = "Success"
UNEXPECTED_ERROR = "EX"


class DealerAuthentication(BaseModel):
    """Sent at the start of every call; every field required.

    CheckKey = SHA-256 of DealerCode + "MK" + Username + "PD" + Password, lower-case hex
    (services/common/moka_auth.py builds it).
    """

    model_config = ConfigDict(frozen=True)

    DealerCode: str = Field(min_length=1)
    Username: str = Field(min_length=1)
    Password: SecretStr
    CheckKey: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_serializer("Password", when_used="json")
    def _wire_password(self, value: SecretStr) -> str:
        # The wire needs the password; model_dump() (python mode, logs) keeps it masked.
        return value.get_secret_value()


class ApiResponse(BaseModel):
    """Every answer: ResultCode "Success" with Data, an error code with Data null, or
    "EX" with Exception on an unexpected error."""

    model_config = ConfigDict(extra="ignore")

    Data: Any = None
    ResultCode: str
    ResultMessage: str | None = None
    Exception: str | None = None

    @property
    def ok(self) -> bool:
        return self.ResultCode == SUCCESS


# ----------------------------------------------- /Dealer/CreateMokaPosRequest (Bayi Başvurusu)

_P = "Dealer.CreateMokaPosRequest."
_A = "Dealer.CheckDealerAuthentication."

# Every error code the document lists for CreateMokaPosRequest, in its order (data, not code).
AUTH_ERRORS: tuple[str, ...] = (
    _A + "InvalidRequest",
    _A + "InvalidAccount",
    _A + "DealerNotAllowed",
)
CREATE_POS_REQUEST_ERRORS: tuple[str, ...] = (
    *AUTH_ERRORS,
    _P + "InvalidApplicantType",
    _P + "InvalidMokaPosProductId",
    _P + "ContactNameRequired",
    _P + "EmailRequired",
    _P + "PhoneNumberRequired",
    _P + "InvalidPhoneNumber",
    _P + "TitleRequired",
    _P + "WebSiteURLRequired",
    _P + "InvalidWebSiteURL",
    _P + "NaceCodeRequired",
    _P + "InvalidNaceCode",
    _P + "NaceCodeNotFound",
    _P + "RevenueRangeRequired",
    _P + "InvalidRevenueRange",
    _P + "ClientIpRequired",
    _P + "InvalidClientIp",
    _P + "TRIdentityNumberRequired",
    _P + "InvalidTRIdentityNumber",
    _P + "TaxNumberRequired",
    _P + "InvalidTaxNumber",
    _P + "CityCodeRequired",
    _P + "InvalidCityCodeOrCountryCode",
    _P + "OperationWasInterrupted",
)
# Limits the document states without an error code of their own ("max 50 chars"...):
# kopru refuses them before calling Moka under its own codes, marked as ours.
KOPRU_TOO_LONG = "Kopru.CreateMokaPosRequest.{field}TooLong"
KOPRU_INVALID_EMAIL = "Kopru.CreateMokaPosRequest.InvalidEmail"

APPLICANT_TYPES = frozenset({2, 3})  # 2: Tüzel Kişi (Ltd, A.Ş.), 3: Şahıs Firması
PRODUCT_PANEL, PRODUCT_API = 1, 2  # 2: "Api üzerinden ödeme gönderecek" needs WebSiteURL
COUNTRY_TURKIYE, COUNTRY_CYPRUS = 212, 232
REVENUE_RANGES = range(1, 6)  # 1: 0-10.000 TL ... 5: 100.000 TL üzeri
TURKISH_PLATE_CODES = range(1, 82)

_PHONE = re.compile(r"[0-9]{10}")  # "5351112233 formatında, 10 hane"
_NACE = re.compile(r"[0-9]{6}")  # "6 hane ... faaliyet kodu"
_TAX = re.compile(r"[0-9]{10,11}")  # VKN 10 digits; a sole proprietor's TCKN 11
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def tr_identity_valid(number: str) -> bool:
    """TC Kimlik No: 11 digits, first not 0; d10 = (7*odd - even) mod 10; d11 = sum mod 10."""
    if not re.fullmatch(r"[1-9][0-9]{10}", number):
        return False
    d = [int(c) for c in number]
    odd, even = sum(d[0:9:2]), sum(d[1:8:2])
    return (odd * 7 - even) % 10 == d[9] and sum(d[:10]) % 10 == d[10]


@dataclass(frozen=True)
class FieldError:
    code: str
    field: str
    message: str


class MokaPosRequest(BaseModel):
    """The MokaPosRequest object, typed; build it through ``check_pos_request``."""

    model_config = ConfigDict(frozen=True)

    ApplicantType: int
    MokaPosProductId: int
    ContactName: str
    Email: str
    PhoneNumber: str
    Title: str
    WebSiteURL: str = ""
    CityCode: int
    CountryCode: int | None = None
    TRIdentityNumber: str
    TaxNumber: str
    NaceCode: str
    RevenueRange: int
    # The field list says ClientIp; the sample request sends ClientIP. We send the sample's.
    ClientIP: str


class CreateMokaPosRequestBody(BaseModel):
    DealerAuthentication: DealerAuthentication
    MokaPosRequest: MokaPosRequest


def _text(data: Mapping[str, Any], *names: str) -> str:
    for n in names:
        v = data.get(n)
        if v is not None:
            return str(v).strip()
    return ""


def _int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?[0-9]{1,9}", text) else None


def check_pos_request(data: Mapping[str, Any]) -> tuple[MokaPosRequest | None, list[FieldError]]:
    """Apply the document's field rules; the errors carry Moka's own codes where it has one."""
    errors: list[FieldError] = []

    def err(code: str, name: str, message: str) -> None:
        errors.append(FieldError(code, name, message))

    applicant = _int(_text(data, "ApplicantType"))
    if applicant not in APPLICANT_TYPES:
        err(_P + "InvalidApplicantType", "ApplicantType", "must be 2 or 3")
    product = _int(_text(data, "MokaPosProductId"))
    if product not in (PRODUCT_PANEL, PRODUCT_API):
        err(_P + "InvalidMokaPosProductId", "MokaPosProductId", "must be 1 or 2")
    for name, limit in (("ContactName", 50), ("Email", 100), ("Title", 200)):
        value = _text(data, name)
        if not value:
            err(_P + f"{name}Required", name, "is required")
        elif len(value) > limit:
            err(KOPRU_TOO_LONG.format(field=name), name, f"at most {limit} characters")
    email = _text(data, "Email")
    if email and len(email) <= 100 and not _EMAIL.fullmatch(email):
        err(KOPRU_INVALID_EMAIL, "Email", "is not an e-mail address")
    phone = _text(data, "PhoneNumber")
    if not phone:
        err(_P + "PhoneNumberRequired", "PhoneNumber", "is required")
    elif not _PHONE.fullmatch(phone):
        err(_P + "InvalidPhoneNumber", "PhoneNumber", "10 digits, like 5351112233")
    site = _text(data, "WebSiteURL")
    if product == PRODUCT_API and not site:
        err(_P + "WebSiteURLRequired", "WebSiteURL", "required for MokaPosProductId 2 (API)")
    elif site and not re.fullmatch(r"(https?://)?[A-Za-z0-9.-]+\.[A-Za-z]{2,}(/\S*)?", site):
        err(_P + "InvalidWebSiteURL", "WebSiteURL", "is not a web address")
    nace = _text(data, "NaceCode")
    if not nace:
        err(_P + "NaceCodeRequired", "NaceCode", "is required")
    elif not _NACE.fullmatch(nace):
        err(_P + "InvalidNaceCode", "NaceCode", "6 digits")
    revenue_text = _text(data, "RevenueRange")
    revenue = _int(revenue_text)
    if not revenue_text:
        err(_P + "RevenueRangeRequired", "RevenueRange", "is required")
    elif revenue not in REVENUE_RANGES:
        err(_P + "InvalidRevenueRange", "RevenueRange", "1 to 5")
    ip = _text(data, "ClientIP", "ClientIp")
    if not ip:
        err(_P + "ClientIpRequired", "ClientIp", "is required")
    else:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            err(_P + "InvalidClientIp", "ClientIp", "is not an IP address")
    tckn = _text(data, "TRIdentityNumber")
    if not tckn:
        err(_P + "TRIdentityNumberRequired", "TRIdentityNumber", "is required")
    elif not tr_identity_valid(tckn):
        err(_P + "InvalidTRIdentityNumber", "TRIdentityNumber", "11 digits with a valid checksum")
    tax = _text(data, "TaxNumber")
    if not tax:
        err(_P + "TaxNumberRequired", "TaxNumber", "is required")
    elif not _TAX.fullmatch(tax):
        err(_P + "InvalidTaxNumber", "TaxNumber", "10 digits (VKN) or 11 (TCKN)")
    city_text, country_text = _text(data, "CityCode"), _text(data, "CountryCode")
    city, country = _int(city_text), _int(country_text) if country_text else None
    if not city_text:
        err(_P + "CityCodeRequired", "CityCode", "is required")
    elif (
        city is None
        or (country_text and country not in (COUNTRY_TURKIYE, COUNTRY_CYPRUS))
        or (country in (None, COUNTRY_TURKIYE) and city not in TURKISH_PLATE_CODES)
        or city < 1
    ):
        err(
            _P + "InvalidCityCodeOrCountryCode",
            "CityCode",
            "a plate code 1-81; CountryCode 212 (Türkiye) or 232 (Cyprus)",
        )
    if errors:
        return None, errors
    assert applicant is not None and product is not None and city is not None
    assert revenue is not None
    return (
        MokaPosRequest(
            ApplicantType=applicant,
            MokaPosProductId=product,
            ContactName=_text(data, "ContactName"),
            Email=email,
            PhoneNumber=phone,
            Title=_text(data, "Title"),
            WebSiteURL=site,
            CityCode=city,
            CountryCode=country,
            TRIdentityNumber=tckn,
            TaxNumber=tax,
            NaceCode=nace,
            RevenueRange=revenue,
            ClientIP=ip,
        ),
        [],
    )
