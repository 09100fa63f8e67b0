"""Moka: the CreateMokaPosRequest field rules, the sandbox's answers, and the application
handler (created / rejected / error / retry, idempotent per application id)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from pydantic import SecretStr

from schemas.events import Event, MokaDealerApplicationRequested, MokaDealerApplicationResult
from schemas.moka import CREATE_POS_REQUEST_ERRORS, check_pos_request, tr_identity_valid
from services.common.errors import InvalidMessage, RetryLater
from services.common.moka.auth import dealer_authentication
from services.common.moka.client import MokaClient
from services.common.moka.settings import MokaSettings
from services.common.settings import StoreSettings
from services.common.stores.factory import open_store
from services.common.stores.idempotency import IdempotencyStore
from services.payment_notifier.moka_applications import MokaDeps, handle_application
from services.sandbox.moka.app import MokaSandboxConfig, create_app

P = "Dealer.CreateMokaPosRequest."
VALID_TCKN = "10000000146"


def application(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ApplicantType": 2,
        "MokaPosProductId": 1,
        "ContactName": "ilgili kişi",
        "Email": "elif@moka.com",
        "PhoneNumber": "5001112233",
        "Title": "Moka Ödeme Kuruluşu A.Ş",
        "WebSiteURL": "",
        "NaceCode": "471101",
        "RevenueRange": 1,
        "ClientIP": "192.168.1.116",
        "TRIdentityNumber": VALID_TCKN,
        "TaxNumber": "2222222222",
        "CountryCode": "212",
        "CityCode": "34",
    }
    base.update(over)
    return base


def test_tr_identity_checksum() -> None:
    assert tr_identity_valid(VALID_TCKN)
    assert tr_identity_valid("12345678950")
    assert not tr_identity_valid("11111111111")  # the document's sample fails the checksum
    assert not tr_identity_valid("01234567890")  # may not start with 0
    assert not tr_identity_valid("1234567895")  # 10 digits


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"ApplicantType": 1}, P + "InvalidApplicantType"),
        ({"MokaPosProductId": 3}, P + "InvalidMokaPosProductId"),
        ({"ContactName": ""}, P + "ContactNameRequired"),
        ({"ContactName": "x" * 51}, "Kopru.CreateMokaPosRequest.ContactNameTooLong"),
        ({"Email": ""}, P + "EmailRequired"),
        ({"PhoneNumber": ""}, P + "PhoneNumberRequired"),
        ({"PhoneNumber": "05351112233"}, P + "InvalidPhoneNumber"),
        ({"Title": ""}, P + "TitleRequired"),
        ({"MokaPosProductId": 2}, P + "WebSiteURLRequired"),
        ({"WebSiteURL": "not a url"}, P + "InvalidWebSiteURL"),
        ({"NaceCode": ""}, P + "NaceCodeRequired"),
        ({"NaceCode": "47110"}, P + "InvalidNaceCode"),
        ({"RevenueRange": None}, P + "RevenueRangeRequired"),
        ({"RevenueRange": 6}, P + "InvalidRevenueRange"),
        ({"ClientIP": None}, P + "ClientIpRequired"),
        ({"ClientIP": "300.1.1.1"}, P + "InvalidClientIp"),
        ({"TRIdentityNumber": ""}, P + "TRIdentityNumberRequired"),
        ({"TRIdentityNumber": "11111111111"}, P + "InvalidTRIdentityNumber"),
        ({"TaxNumber": ""}, P + "TaxNumberRequired"),
        ({"TaxNumber": "12ab"}, P + "InvalidTaxNumber"),
        ({"CityCode": None}, P + "CityCodeRequired"),
        ({"CityCode": "99"}, P + "InvalidCityCodeOrCountryCode"),
        ({"CountryCode": "100"}, P + "InvalidCityCodeOrCountryCode"),
    ],
)
def test_each_field_rule_gives_its_code(over: dict[str, Any], code: str) -> None:
    request, errors = check_pos_request(application(**over))
    assert request is None
    assert [e.code for e in errors] == [code]
    assert code in CREATE_POS_REQUEST_ERRORS or code.startswith("Kopru.")


def test_valid_application_and_api_product_with_web_site() -> None:
    request, errors = check_pos_request(application(MokaPosProductId=2, WebSiteURL="www.x.com.tr"))
    assert errors == [] and request is not None
    assert request.CityCode == 34 and request.CountryCode == 212
    cyprus, _ = check_pos_request(application(CountryCode=232, CityCode=90))
    assert cyprus is not None


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
async def idem(tmp_path: Path) -> AsyncIterator[IdempotencyStore]:
    s = open_store(StoreSettings(url=f"sqlite:///{tmp_path}/i.db"))
    await s.open()
    yield s
    await s.close()


def sandbox_deps(
    idem: IdempotencyStore, published: Recorder, password: str = "demo-password"
) -> tuple[MokaDeps, Any]:
    app = create_app(MokaSandboxConfig())
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    settings = MokaSettings(
        base_url="http://moka", dealer_code="1356", username="kopru-demo",
        password=SecretStr(password),
    )  # fmt: skip
    client = MokaClient(settings.base_url, dealer_authentication(settings), http)
    return MokaDeps(client, idem, published), app.state.sandbox


def requested(app_id: str, **over: Any) -> MokaDealerApplicationRequested:
    return MokaDealerApplicationRequested(application_id=app_id, application=application(**over))


async def test_created_once_per_application_id(idem: IdempotencyStore) -> None:
    published = Recorder()
    deps, sandbox = sandbox_deps(idem, published)
    await handle_application(requested("app-1"), deps)
    await handle_application(requested("app-1"), deps)  # redelivery
    assert len(sandbox.received) == 1
    assert len(published.events) == 1
    result = published.events[0]
    assert isinstance(result, MokaDealerApplicationResult)
    assert (result.outcome, result.result_code, result.moka_pos_request_id) == (
        "created",
        "Success",
        1787,
    )
    with pytest.raises(InvalidMessage):  # same id, other content
        await handle_application(requested("app-1", Title="Other"), deps)


async def test_invalid_application_is_rejected_without_calling_moka(idem: IdempotencyStore) -> None:
    published = Recorder()
    deps, sandbox = sandbox_deps(idem, published)
    await handle_application(requested("app-2", TRIdentityNumber="11111111111"), deps)
    assert sandbox.received == []
    result = published.events[0]
    assert isinstance(result, MokaDealerApplicationResult)
    assert result.outcome == "rejected"
    assert result.result_code == P + "InvalidTRIdentityNumber"
    assert "11111111111" not in (result.result_message or "")


async def test_moka_codes_map_to_outcomes(idem: IdempotencyStore) -> None:
    published = Recorder()
    deps, sandbox = sandbox_deps(idem, published)
    await handle_application(requested("app-nace", NaceCode="999999"), deps)
    sandbox.next_fault = "EX"
    await handle_application(requested("app-ex"), deps)
    sandbox.next_fault = "Interrupted"
    await handle_application(requested("app-int"), deps)
    got = [(e.outcome, e.result_code) for e in published.events]  # type: ignore[attr-defined]
    assert got == [
        ("rejected", P + "NaceCodeNotFound"),
        ("error", "EX"),
        ("error", P + "OperationWasInterrupted"),
    ]


async def test_wrong_credentials_are_an_error_and_5xx_is_retried(idem: IdempotencyStore) -> None:
    published = Recorder()
    deps, _ = sandbox_deps(idem, published, password="wrong")
    await handle_application(requested("app-auth"), deps)
    assert published.events[0].result_code == "Dealer.CheckDealerAuthentication.InvalidAccount"  # type: ignore[attr-defined]
    deps2, sandbox2 = sandbox_deps(idem, published)
    sandbox2.next_fault = "500"
    with pytest.raises(RetryLater):
        await handle_application(requested("app-500"), deps2)
    await handle_application(requested("app-500"), deps2)  # the retry goes through
    assert published.events[-1].outcome == "created"  # type: ignore[attr-defined]


@pytest.mark.parametrize("outcome_over", [{}, {"TRIdentityNumber": "11111111111"}])
async def test_the_result_carries_the_requests_correlation_id(
    idem: IdempotencyStore, outcome_over: dict[str, Any]
) -> None:
    """Created or refused before calling Moka: the answer is traceable to its request."""
    published = Recorder()
    deps, _ = sandbox_deps(idem, published)
    event = requested("app-cid", **outcome_over).model_copy(update={"correlation_id": "corr-42"})
    await handle_application(event, deps)
    assert [e.correlation_id for e in published.events] == ["corr-42"]


async def test_without_one_in_the_event_the_messages_correlation_id_is_used(
    idem: IdempotencyStore,
) -> None:
    published = Recorder()
    deps, _ = sandbox_deps(idem, published)
    with structlog.contextvars.bound_contextvars(correlation_id="from-header-7"):
        await handle_application(requested("app-hdr"), deps)
    assert published.events[0].correlation_id == "from-header-7"
