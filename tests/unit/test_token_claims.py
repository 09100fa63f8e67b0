"""MKK token claims read without trust (§3.2.6 sample token)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from structlog.testing import capture_logs

from services.common.mkk.token_claims import (
    TokenClaimsError,
    decode_token_claims,
    reason_says_no_ip,
    warn_on_claims,
)

# §9.1 RESPONSE "token", joined from the guide's wrapped lines.
SAMPLE_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJpZGciLCJzdWIiOiJhZG1pblRva2VuIiwiZXhwIjoxNjkwOTg"
    "4MTYzLCJqdGkiOiJhZmE4NmY1NC1iNjc1LTRmNjctYTM5Mi02YjIxM2NkZjY3NTQiLCJjbGFpbSI6eyJhdXRoIjoiT0siL"
    "CJpcExpc3QiOltudWxsXSwicmVhc29uIjoiVElCOTkxIGnDp2luIHRhbsSxbWzEsSBpcCBhZHJlc2kgYnVsdW5hbWFkaSE"
    "uICIsInJlc3BvbnNlSGVhZGVyIjp7Im1lc3NhZ2VJZCI6IjkwODM2NjA0MyIsInJlY2VpdmVyTWVtYmVyIjoiTUtLIiwic"
    "2VuZGVyUmVmZXJlbmNlIjoiTUtLNjQ1ODc5MDAyIn19fQ.Us5cmltUuiKNT6eME8vgOHMXV8lJHnhUpkVRtPV2wVANPk7N"
    "L6x55NPMXJeOMv_x21-UcfRnWge52NpVlUIlkSFVmYKLIvrcBdfD5Ttqsoyf4kb6-"
    "0rnc2tS9bwygeoB7LYZSQDrjTpFkwoHuD53reAGzqXSBE-"
    "ezttM8FshGGLnpp047o7gXVYJAjSr30_nsxfn_3QoYhPUrfsUnUbyhYDg_gQ2v7M2OrTGhKqqV09n9P_182DCeEs3bJTp_"
    "mIobQz6bM-6RvsEaJ1RpPVe4ZegWbcm7treGBP55-a5GHQJHyw5EoJMJTe6UXISSnZMlq1XV1YthYBfzz1PnPqgLw"
)


def enc(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# §3.2.6 "Başarılı Response" token (the space the guide shows inside it removed).
SECTION_3_2_6_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJpZGciLCJzdWIiOiJhZG1pblRva2VuIiwiZXhwIjoxNjkwNzkxODYyLCJqdG"
    "kiOiIzNzUyYzU3Ni04NzhmLTQxMWQtOThjYy02YjIxM2NkZmVkYTIiLCJjbGFpbSI6eyJhdXRoIjoiT0siLCJpcExpc3QiOltudWxsX"
    "SwicmVhc29uIjoiVElCOTkxIGnDp2luIHRhbsSxbWzEsSBpcCBhZHJlc2kgYnVsdW5hbWFkaSEuICIsInJlc3BvbnNlSGVhZGVyIjp7"
    "Im1lc3NhZ2VJZCI6IjkwNjk5NzM5NiIsInJlY2VpdmVyTWVtYmVyIjoiTUtLIiwic2VuZGVyUmVmZXJlbmNlIjoiTUVfVEVTVF9BVV"
    "RIXzAwMiJ9fX0.hk1oWFhGxpo8jK0Ulizt4MVmXARJhjCX_ZJBwzkO6e_T1lLKmOSslE040d4qDv1DCW6X3CzE6DMbOxMy5c5GY396Z"
    "dEARlcCNFiRlLKZtf9Dc1IpHIhxSPXjc3W1w_dDh2EyJVnOvSk5cp72gcbBk8FLBoYSkf_7jKs6Qz6v14gG_QbzFAttqanOLf7kC6NJ"
    "uUqjUqKwv-lglR_5RJGhEh65pbRVSLVSbZxuc4m0j3YbI9FE4dTOBjeWaTghD4QavJtH92yhmPiR8PabKLthtC1d0FYcjIpGX95Hnej"
    "9VgKMhvRJrLiBJ1oiPJMsG7QVlV3wE_6iUkvV2fksJK6uxw"
)


def make_token(claims: object) -> str:
    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.c2ln"


def test_guide_sample_token() -> None:
    claims = decode_token_claims(SAMPLE_TOKEN)
    assert claims.iss == "idg" and claims.sub == "adminToken"
    assert claims.exp == 1690988163
    # Created "2023-08-02T16:56:03+03:00", LifeTime 3600 (§9.1)
    assert claims.expires_at == datetime(2023, 8, 2, 14, 56, 3, tzinfo=UTC)
    assert claims.jti == "afa86f54-b675-4f67-a392-6b213cdf6754"
    assert claims.claim.auth == "OK" and claims.auth_ok
    assert claims.claim.ip_list == [None]
    assert claims.claim.reason == "TIB991 için tanımlı ip adresi bulunamadi!. "
    assert claims.no_ip_defined
    header = claims.claim.response_header
    assert header is not None
    assert header.message_id == "908366043"
    assert header.receiver_member == "MKK"
    assert header.sender_reference == "MKK645879002"


def test_section_3_2_6_token() -> None:
    claims = decode_token_claims(SECTION_3_2_6_TOKEN)
    # Created "2023-07-31T10:24:22+03:00" + LifeTime 3600 s
    assert claims.expires_at == datetime(2023, 7, 31, 11, 24, 22, tzinfo=UTC) - timedelta(hours=3)
    assert claims.jti == "3752c576-878f-411d-98cc-6b213cdfeda2"
    assert claims.no_ip_defined and claims.auth_ok
    assert claims.claim.response_header is not None
    assert claims.claim.response_header.sender_reference == "ME_TEST_AUTH_002"


def test_renewal_schedule() -> None:
    claims = decode_token_claims("Bearer " + SAMPLE_TOKEN)
    assert claims.renew_at() == claims.expires_at - timedelta(minutes=5)
    assert claims.renew_at(timedelta(minutes=10)) == datetime(2023, 8, 2, 14, 46, 3, tzinfo=UTC)
    assert claims.is_expired()
    assert not claims.is_expired(now=datetime(2023, 8, 2, 14, 0, tzinfo=UTC))
    assert claims.is_expired(
        now=datetime(2023, 8, 2, 14, 55, tzinfo=UTC), leeway=timedelta(minutes=2)
    )


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("TIB991 için tanımlı ip adresi bulunamadi!. ", True),
        ("TIB991 İÇİN TANIMLI IP ADRESİ BULUNAMADI", True),
        ("IP adresi tanımlı değil", True),
        ("", False),
        (None, False),
        ("OK", False),
        ("Kullanıcı bulunamadı", False),  # not about an IP address
        ("Mesaj tipi bulunamadı", False),
    ],
)
def test_reason_no_ip(reason: str | None, expected: bool) -> None:
    assert reason_says_no_ip(reason) is expected


def test_warning_logged_without_token() -> None:
    with capture_logs() as logs:
        assert warn_on_claims(decode_token_claims(SAMPLE_TOKEN), structlog.get_logger())
    assert logs[0]["event"] == "mkk_token_no_ip_defined"
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["jti"] == "afa86f54-b675-4f67-a392-6b213cdf6754"
    assert SAMPLE_TOKEN not in json.dumps(logs, default=str)

    fine = decode_token_claims(make_token({"exp": 2, "claim": {"auth": "OK", "reason": ""}}))
    with capture_logs() as logs:
        assert not warn_on_claims(fine, structlog.get_logger())
    assert logs == []


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", make_token({"jti": "no exp"}),
     make_token([1, 2])],
)  # fmt: skip
def test_unreadable_tokens(token: str) -> None:
    with pytest.raises(TokenClaimsError):
        decode_token_claims(token)
