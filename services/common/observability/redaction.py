"""Masking of secrets in anything about to be logged.

Two rules, applied to every value of a log event, nested dicts and lists included:
- a key that names a secret (password, token, private key, zip password, card data, ...)
  has its value replaced whatever it holds;
- any string is scanned for card data (card_data.py: Luhn-valid card numbers, and CVC,
  expiry and holder values after their labels), PEM private-key blocks, JWTs/JWS, bearer tokens and
  passwords inside URLs (`postgresql://user:PASSWORD@host`), and those parts are
  masked in place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.common.observability.card_data import scrub_labelled

MASK = "***"

# Keys are compared lower-cased with "-" and "_" removed.
_SECRET_KEYS = frozenset(
    k.lower().replace("_", "").replace("-", "")
    for k in (
        "password",
        "passwd",
        "pwd",
        "posPwd",
        "mpiPwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "private_key",
        "privatekey",
        "passphrase",
        "zip_password",
        "zipPassword",
        "api_key",
        "checkkey",
        "pan",
        "card_number",
        "cardnumber",
        "cvc",
        "cvv",
        "cvv2",
        "expiry",
        "expire_date",
        "expdate",
        "card_holder",
        "cardholder",
        "holder_name",
        "sasl_password",
        "encryption_key",
    )
)

_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)
# Three base64url segments, the first starting like a JSON object header ("eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")
# scheme://user:password@host: the password part (a store or broker URL with credentials).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(@)")


def redact_text(text: str) -> str:
    if len(text) < 8:
        return text
    text = _PEM_PRIVATE.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub("Bearer " + MASK, text)
    text = _URL_PASSWORD.sub(r"\g<1>" + MASK + r"\g<2>", text)
    return scrub_labelled(text)


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def redact(value: Any, _depth: int = 0) -> Any:
    """Return `value` with secrets masked; containers are copied, never mutated."""
    if _depth > 20:
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {
            k: (MASK if is_secret_key(k) and v is not None else redact(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
        # A card number that arrived as a JSON number.
        return MASK if redact_text(str(value)) == MASK else value
    return value
