"""schemas/codes.py: every MKK code of the guide and FAQ maps to one action."""

from __future__ import annotations

import pytest

from schemas.codes import CODES, PENDING_REPORT_CODES, Action, action_for, description, lookup

GUIDE_CODES = (
    ["0000", "OI000", "SP001", "XS013", "SYS0", "MF04", "MY04", "BS040", "0x00d30003"]
    + [
        f"OI{n:03d}"
        for n in (1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 20, 21, 30, 31, 32, 40, 44, 45)
    ]
    + ["RP003", "RP015", "RP018", "RP020", "RP021", "RP022", "RP023", "RP025", "RP026"]
    + [f"RP{n:03d}" for n in range(36, 50) if n != 44]
)


def test_every_code_of_the_guide_is_known() -> None:
    missing = [c for c in GUIDE_CODES if c not in CODES]
    assert missing == []
    assert all(lookup(c).known for c in GUIDE_CODES)


def test_descriptions_are_the_guides_words() -> None:
    assert description("RP018") == "Geçersiz refId değeri girilmiştir."
    assert description("BS040") == "Kayıt bulunamamıştır."
    assert description("OI016") == "Request not signed."
    assert description("SP001") == "Eksik Parametre"
    assert description("0000") == "BAŞARILI"
    assert description("RP045") == "Mesajı gönderenin referansı tanımlı olmamalıdır"


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("0000", Action.DONE),
        ("RP026", Action.DONE),
        ("RP020", Action.PENDING),
        ("RP023", Action.PENDING),
        ("RP003", Action.RETRY_LATER),
        ("OI003", Action.RETRY_LATER),
        ("OI004", Action.RETRY_LATER),
        ("XS013", Action.RETRY_LATER),
        ("OI006", Action.REAUTH),
        ("RP025", Action.TERMINAL),
        ("RP018", Action.TERMINAL),
        ("RP045", Action.TERMINAL),
        ("OI002", Action.TERMINAL),
        ("OI012", Action.TERMINAL),
        ("0x00d30003", Action.TERMINAL),  # never retry a rejected password
    ],
)
def test_actions(code: str, action: Action) -> None:
    assert action_for(code) is action


def test_pending_codes_are_pending() -> None:
    assert all(action_for(c) is Action.PENDING for c in PENDING_REPORT_CODES)
    assert {c for c, i in CODES.items() if i.action is Action.PENDING} == set(PENDING_REPORT_CODES)


def test_unknown_code_is_terminal_and_says_so() -> None:
    info = lookup("ZZ999")
    assert info.action is Action.TERMINAL and not info.known
    assert "Unknown" in info.description and info.code == "ZZ999"
    assert lookup(" RP018 ").code == "RP018"
