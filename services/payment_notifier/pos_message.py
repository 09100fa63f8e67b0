"""posMessage: the POS answer as JSON, card data removed (BKM "İşyerine Başarılı İşlem
Sonucu Yönlendirme": PAN, CVC/CVV2, expiry and holder name are taken out by BKM).

kopru does not rely on that: it drops every key that names card data and masks any
card-number-like digit run before the result is stored, logged or published.
"""

from __future__ import annotations

import json
from typing import Any

from services.common.observability.redaction import is_secret_key, redact_text

MAX_POS_MESSAGE_CHARS = 16_000

# Compared lower-cased without "_" and "-"; in addition to redaction's secret keys.
_CARD_KEYS = frozenset(
    {
        "pan",
        "cardno",
        "cardnumber",
        "creditcardnumber",
        "cardnum",
        "cvc",
        "cvc2",
        "cvv",
        "cvv2",
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
        "nameoncard",
    }
)


def _card_key(key: str) -> bool:
    k = key.lower().replace("_", "").replace("-", "")
    return k in _CARD_KEYS or is_secret_key(key)


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for k, v in value.items() if not _card_key(str(k))}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        return redact_text(text) if redact_text(text) != text else value
    return value


def sanitize(pos_message: str | None) -> dict[str, Any]:
    """The POS result as a dict without card data; unparseable text is not kept."""
    if not pos_message:
        return {}
    if len(pos_message) > MAX_POS_MESSAGE_CHARS:
        return {"unparsed": True, "reason": "posMessage too long"}
    try:
        data = json.loads(pos_message)
    except ValueError:
        return {"unparsed": True, "reason": "posMessage is not JSON"}
    cleaned = _clean(data)
    return cleaned if isinstance(cleaned, dict) else {"value": cleaned}
