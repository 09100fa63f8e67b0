"""What of BKM's posMessage (the POS answer, JSON) may leave the payment-notifier.

BKM "İşyerine Başarılı İşlem Sonucu Yönlendirme", Şekil 10-11: the POS answer converted to
JSON, card data (PAN, CVC/CVV2, expiry date, holder name) taken out. Its fields depend on
the virtual POS; this allowlist is the one BKM shows (Şekil 11). Anything else, known or
not, is dropped. A structured value must have its form; free text (``FREE_TEXT``) is kept
after card data is masked (services/common/observability/card_data.py).

    {"PosResponse": {"Host": {"AuthCode", "RRN", "Date", "Time", "RC"},
                     "Result": {"Code", "Text", "ErrorMessage"},
                     "TrnxID", "TrnxType", "Amount", "CustomData"}}

Keys are matched without regard to case and written as listed here.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final, Union

FREE_TEXT: Final = None
Allowed = Union[re.Pattern[str], None, "MappingProxyType[str, Allowed]"]


def _fields(**spec: Allowed) -> MappingProxyType[str, Allowed]:
    return MappingProxyType(spec)


POS_RESULT_FIELDS: Final[MappingProxyType[str, Allowed]] = _fields(
    PosResponse=_fields(
        Host=_fields(
            AuthCode=re.compile(r"[A-Za-z0-9]{1,12}"),
            RRN=re.compile(r"[A-Za-z0-9]{1,24}"),
            Date=re.compile(r"[0-9]{1,8}"),
            Time=re.compile(r"[0-9]{1,6}"),
            RC=re.compile(r"[A-Za-z0-9]{1,4}"),
        ),
        Result=_fields(
            Code=re.compile(r"[A-Za-z0-9_.-]{1,16}"),
            Text=FREE_TEXT,
            ErrorMessage=FREE_TEXT,
        ),
        TrnxID=re.compile(r"[A-Za-z0-9-]{1,64}"),
        TrnxType=re.compile(r"[A-Za-z]{1,32}"),
        # Not in Şekil 11, sent by common POS answers: the amount as BKM writes it
        # ("105,99", bkm-express "Güvenlik"), needed downstream to match the order.
        Amount=re.compile(r"[0-9]{1,15}(?:[,.][0-9]{1,2})?"),
        CustomData=FREE_TEXT,
    )
)

# Keys whose values are card data (compared lower-case without "_", "-", " "): never
# kept, and their values are masked wherever else they appear in the same message.
CARD_DATA_KEYS: Final = frozenset(
    {
        "pan",
        "cardno",
        "cardnumber",
        "creditcardnumber",
        "cardnum",
        "maskedpan",
        "cvc",
        "cvc2",
        "cvv",
        "cvv2",
        "cav2",
        "securitycode",
        "expiry",
        "expirydate",
        "expiredate",
        "expdate",
        "expmonth",
        "expyear",
        "expirationdate",
        "cardexpiry",
        "cardholder",
        "cardholdername",
        "holdername",
        "holder",
        "nameoncard",
    }
)
FREE_TEXT_MAX_CHARS: Final = 2000
