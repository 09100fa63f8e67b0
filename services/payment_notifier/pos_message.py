"""posMessage: the POS answer as JSON, card data removed (BKM "İşyerine Başarılı İşlem
Sonucu Yönlendirme": PAN, CVC/CVV2, expiry and holder name are taken out by BKM).

kopru does not rely on that. Only the allowlisted fields (schemas/bkm_pos.py, Şekil 11)
are kept; a structured value that does not have its form, or that holds a card number, is
dropped; free text is kept with every card datum masked (card_data.py), including any
value that another field of the same message names as card data. Nothing else of the
message is stored, logged or published.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from schemas.bkm_pos import CARD_DATA_KEYS, FREE_TEXT_MAX_CHARS, POS_RESULT_FIELDS, Allowed
from services.common.observability.card_data import scrub
from services.common.observability.redaction import is_secret_key

MAX_POS_MESSAGE_CHARS = 16_000
MAX_DEPTH = 20


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(" ", "")


@functools.lru_cache(maxsize=4096)
def _is_card_key(key: str) -> bool:
    """Does this key name card data (or a secret)? Keys repeat from message to message."""
    return _normal(key) in CARD_DATA_KEYS or is_secret_key(key)


# An allowlist level as (its names by their lower case, its entries), computed once per
# level (each is kept with its entry: its id cannot be reused by another while cached).
_NAMES: dict[int, tuple[Mapping[str, Allowed], dict[str, tuple[str, Allowed]]]] = {}
# json.loads builds exactly these types: exact type checks instead of isinstance with
# ABCs (a third of sanitize's time, bench payments profile).
_SCALARS = (str, int, float)


def _names(allowed: Mapping[str, Allowed]) -> dict[str, tuple[str, Allowed]]:
    entry = _NAMES.get(id(allowed))
    if entry is None or entry[0] is not allowed:
        names = {k.lower(): (k, v) for k, v in allowed.items()}
        entry = _NAMES[id(allowed)] = (allowed, names)
    return entry[1]


def card_values(value: Any, depth: int = 0) -> Iterator[str]:
    """Every scalar held under a key that names card data, anywhere in the message."""
    if depth > MAX_DEPTH:
        return
    kind = type(value)
    if kind is dict:
        for key, sub in value.items():
            if _is_card_key(str(key)):
                yield from _scalars(sub, depth + 1)
            elif type(sub) is dict or type(sub) is list:
                yield from card_values(sub, depth + 1)
    elif kind is list:
        for item in value:
            if type(item) is dict or type(item) is list:
                yield from card_values(item, depth + 1)


def _scalars(value: Any, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for sub in value.values():
            yield from _scalars(sub, depth + 1)
    elif isinstance(value, list):
        for sub in value:
            yield from _scalars(sub, depth + 1)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)


def _keep(value: Any, allowed: Allowed, known: list[str]) -> Any:
    """The allowed part of ``value``; None when nothing of it may be kept."""
    if allowed is not None and type(allowed) is not re.Pattern:  # a level: a mapping
        if type(value) is not dict:
            return None
        names = _names(allowed)
        kept: dict[str, Any] = {}
        for key, sub in value.items():
            entry = names.get(key.lower() if type(key) is str else str(key).lower())
            if entry is None or entry[0] in kept:
                continue
            cleaned = _keep(sub, entry[1], known)
            if cleaned is not None:
                kept[entry[0]] = cleaned
        return kept
    if type(value) not in _SCALARS:  # bool, None, list, dict or another type
        return None
    text = value if type(value) is str else str(value)
    if not text.isascii():
        # JSON's \uD800-style escapes give lone surrogates, which no UTF-8 store, log or
        # topic can hold: each becomes "?" (a verified outcome is recorded, not a 500).
        text = text.encode("utf-8", "replace").decode("utf-8")
    if allowed is None:  # free text
        return scrub(text[:FREE_TEXT_MAX_CHARS], known)
    assert isinstance(allowed, re.Pattern)
    if not allowed.fullmatch(text) or scrub(text, known) != text:
        return None
    return text


def sanitize(pos_message: str | None) -> dict[str, Any]:
    """The POS result as a dict of allowlisted fields without card data."""
    if not pos_message:
        return {}
    if len(pos_message) > MAX_POS_MESSAGE_CHARS:
        return {"unparsed": True, "reason": "posMessage too long"}
    try:
        data = json.loads(pos_message)
    except ValueError:
        return {"unparsed": True, "reason": "posMessage is not JSON"}
    kept = _keep(data, POS_RESULT_FIELDS, list(card_values(data)))
    return kept if isinstance(kept, dict) else {}
