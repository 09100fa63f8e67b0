"""Moka CheckKey and DealerAuthentication (moka-dealer-api.txt)."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import SecretStr, ValidationError

from schemas.moka import ApiResponse, DealerAuthentication
from services.common.moka.auth import check_key, dealer_authentication
from services.common.moka.settings import MokaSettings


def test_check_key_known_value() -> None:
    # printf '%s' '1731MKTestMokaPDHYSYHDS8DU8HU' | sha256sum
    assert (
        check_key("1731", "TestMoka", "HYSYHDS8DU8HU")
        == "23c85d9586e4126e97d2f54f15591f3c4612416a298e90743c65b3ff6f7b0881"
    )


def test_check_key_order_matters() -> None:
    assert check_key("A", "B", "C") == hashlib.sha256(b"AMKBPDC").hexdigest()
    assert check_key("A", "B", "C") != check_key("B", "A", "C")


def test_dealer_authentication_from_settings() -> None:
    settings = MokaSettings(dealer_code="1731", username="TestMoka", password=SecretStr("p@ss"))
    auth = dealer_authentication(settings)
    assert auth.CheckKey == hashlib.sha256(b"1731MKTestMokaPDp@ss").hexdigest()
    wire = json.loads(auth.model_dump_json())
    assert wire == {
        "DealerCode": "1731",
        "Username": "TestMoka",
        "Password": "p@ss",
        "CheckKey": auth.CheckKey,
    }
    assert "p@ss" not in repr(auth) and "p@ss" not in str(auth.model_dump())


def test_dealer_authentication_requires_every_field() -> None:
    with pytest.raises(ValidationError):
        MokaSettings(dealer_code="", username="u", password=SecretStr("p"))
    with pytest.raises(ValidationError):
        MokaSettings(dealer_code="1", username="u", password=SecretStr(" "))
    with pytest.raises(ValidationError):
        DealerAuthentication(DealerCode="1", Username="u", Password=SecretStr("p"), CheckKey="XYZ")


def test_api_response() -> None:
    ok = ApiResponse.model_validate({"Data": {"MokaPosRequestId": 5}, "ResultCode": "Success"})
    assert ok.ok and ok.Data == {"MokaPosRequestId": 5}
    err = ApiResponse.model_validate(
        {"Data": None, "ResultCode": "Dealer.CreateMokaPosRequest.EmailRequired",
         "ResultMessage": "", "Exception": None}
    )  # fmt: skip
    assert not err.ok and err.Data is None
