"""schemas/mkk.py: the guide's field rules, samples, secrets masked."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.mkk import (
    CSV_COLUMNS,
    JSON_FIELDS,
    AuthAnswer,
    AuthFailure,
    AuthRequest,
    BalanceReportAnswer,
    BalanceReportRequest,
    BalanceRow,
    ReportContentError,
    ReportContentRequest,
    ReportStatusAnswer,
    ReportStatusRequest,
    RequestHeader,
    check_process_date,
)

HEAD = {"senderReference": "MKKTEST100", "senderMember": "TIB", "sender": "TIB991"}
BALANCE: dict[str, Any] = {
    "requestHeader": HEAD,
    "processDate": "20250505",
    "subAccNo": "SERB",
    "isin": "TRAGARAN91N1",
    "secClass": "HS",
    "secType": "HS",
    "accNo": "1",
    "zipPassword": "Mkktest1*",
    "fileType": "json",
}


def test_guide_samples_validate_and_round_trip() -> None:
    auth = AuthRequest.model_validate(
        {
            "requestHeader": HEAD | {"senderReference": "GK20230601Token001"},
            "username": "TIB991",
            "password": "*******",
        }
    )
    assert json.loads(auth.to_wire_json())["password"] == "*******"
    req = BalanceReportRequest.model_validate(BALANCE)
    assert json.loads(req.to_wire_json()) == BALANCE
    assert req.filters() == {
        "sub_acc_no": "SERB",
        "isin": "TRAGARAN91N1",
        "sec_class": "HS",
        "sec_type": "HS",
        "acc_no": "1",
    }
    status = ReportStatusRequest.model_validate(
        {"requestHeader": HEAD, "refId": "e7M7RhX2xUzR3uAjsb2s"}
    )
    assert status.ref_id == "e7M7RhX2xUzR3uAjsb2s"
    content = ReportContentRequest.model_validate(
        {
            "requestHeader": HEAD,
            "refId": "1UKwQWHOP0PQTwH38U0D",
            "fileName": "MKK_RP166_20250728132033.zip",
        }
    )
    assert content.to_wire()["fileName"] == "MKK_RP166_20250728132033.zip"


def test_answers_of_the_guide_parse() -> None:
    a = BalanceReportAnswer.model_validate(
        {
            "responseHeader": {
                "senderReference": "MKKTEST100",
                "receiverMember": "TIB",
                "messageId": "875569523",
            },
            "response": {"responseCode": "0000", "responseDesc": "Başarılı"},
            "refId": "e7M7RhX2xUzR3uAjsb2s",
        }
    )
    assert a.code == "0000" and a.ref_id and a.response_header.message_id == "875569523"
    s = ReportStatusAnswer.model_validate(
        {
            "responseHeader": {
                "senderReference": "MKKTEST100",
                "receiverMember": "TRASLDS",
                "messageId": "875569523",
            },
            "response": {"responseCode": "0000", "responseDesc": "Başarılı"},
            "fileNames": ["MKK_RP166_20250729100251.zip"],
        }
    )
    assert s.file_names == ["MKK_RP166_20250729100251.zip"]
    e = ReportContentError.model_validate(
        {
            "responseHeader": {
                "senderReference": "MKKTEST100",
                "receiverMember": "TIB",
                "messageId": "875534969",
            },
            "responseCode": "BS040",
            "responseDesc": "Kayıt bulunamamıştır.",
        }
    )
    assert e.code == "BS040"
    mf04 = BalanceReportAnswer.model_validate(
        {
            "response": {"responseCode": "MF04", "responseDesc": "MF04: ..."},
            "responseHeader": {"receiverMember": "MKK", "senderReference": "ME_TEST_YF_121"},
        }
    )
    assert mf04.response_header.message_id is None
    tok = AuthAnswer.model_validate(
        {
            "tokenType": "Bearer",
            "token": "eyJ.x.y",
            "Created": "2023-07-31T10:24:22+03:00",
            "LifeTime": "3600",
        }
    )
    assert "eyJ" not in repr(tok) and "eyJ" not in str(tok.to_wire())
    assert tok.to_wire(reveal_secrets=True)["token"] == "eyJ.x.y"
    f = AuthFailure.model_validate(
        {
            "error_message": "Geçersiz kullanıcı adı veya şifre!",
            "transaction_id": "2513270547",
            "error_code": "0x00d30003",
            "error_subcode": "0x00d30003",
        }
    )
    assert f.error_code == "0x00d30003"


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("senderReference", "x" * 255, True),
        ("senderReference", "x" * 256, False),
        ("senderReference", "", False),
        ("senderReference", "a b", False),
        ("senderMember", "TIB", True),
        ("senderMember", "AB", False),
        ("senderMember", "ABCDEFGHI", False),
        ("senderMember", "tib", False),
        ("sender", "TIB9912345", True),
        ("sender", "TIB99123456", False),
    ],
)
def test_request_header_rules(field: str, value: str, ok: bool) -> None:
    data = HEAD | {field: value}
    if ok:
        RequestHeader.model_validate(data)
    else:
        with pytest.raises(ValidationError):
            RequestHeader.model_validate(data)


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("fileType", "csv", True),
        ("fileType", "JSON", False),
        ("zipPassword", "Abcdefg1", True),
        ("zipPassword", "Abcdef1", False),  # 7 characters
        ("zipPassword", "A1" + "b" * 48, True),  # 50
        ("zipPassword", "A1" + "b" * 49, False),  # 51
        ("zipPassword", "abcdefg1", False),
        ("zipPassword", "Abcdefgh", False),
        ("subAccNo", "SER", False),
        ("isin", "TRAGARAN91N1X", False),
        ("secClass", "ABCDEFGHI", True),
        ("secClass", "ABCDEFGHIJ", False),
        ("accClass", "", False),
        ("portfolioCode", "P1", True),
        ("accNo", "A" * 15, True),
        ("accNo", "1-2", False),
        ("processDate", "18991231", False),
        ("processDate", "20250231", False),
        ("unknownField", "x", False),
    ],
)
def test_balance_report_rules(field: str, value: str, ok: bool) -> None:
    data = BALANCE | {field: value}
    if ok:
        BalanceReportRequest.model_validate(data)
    else:
        with pytest.raises(ValidationError):
            BalanceReportRequest.model_validate(data)


def test_process_date_not_in_the_future() -> None:
    today = dt.date(2025, 5, 5)
    assert check_process_date("20250505", today) == "20250505"
    with pytest.raises(ValueError, match="past"):
        check_process_date("20250506", today)
    ctx = {"today": dt.date(2025, 5, 4)}
    with pytest.raises(ValidationError):
        BalanceReportRequest.model_validate(BALANCE, context=ctx)


def test_secrets_never_show() -> None:
    req = BalanceReportRequest.model_validate(BALANCE)
    assert "Mkktest1*" not in repr(req) and "Mkktest1*" not in str(req.to_wire())
    with pytest.raises(ValidationError) as err:
        BalanceReportRequest.model_validate(BALANCE | {"zipPassword": "lowercase1secret"})
    assert "lowercase1secret" not in str(err.value)


def test_report_fields_of_section_5_1_6() -> None:
    assert CSV_COLUMNS == (
        "BAKIYE_TARIHI",
        "UYE",
        "HESAP",
        "ALT_HESAP",
        "KIYMET_SINIFI",
        "MIC",
        "ISIN",
        "EK_TANIM",
        "BAKIYE",
    )
    assert JSON_FIELDS == (
        "balanceDate",
        "mbrId",
        "mbrAccNo",
        "subAccCode",
        "secClassCode",
        "mic",
        "isin",
        "addDefCode",
        "balanceAmount",
    )
    row = BalanceRow.from_csv(
        dict(
            zip(
                CSV_COLUMNS,
                ["20250505", "TIB", "1", "SERB", "HS", "XIST", "TRAGARAN91N1", "", "12.500"],
                strict=True,
            )
        )
    )
    assert str(row.balance_amount) == "12.500" and row.mbr_acc_no == "1"
