"""Card data in free text: found and masked before anything is stored, logged or published.

BKM (posMessage, "İşyerine Başarılı İşlem Sonucu Yönlendirme"): card data (PAN, CVC/CVV2,
expiry date, holder name) is taken out of the POS answer. kopru does not rely on that; in
any free-text value it masks:
- card numbers: runs of 13 or more digits (single spaces, dashes or dots between groups)
  holding a 13-19 digit window that passes the Luhn check; the whole run is masked;
- CVC / CVV / CVV2 / CVC2 / CAV2 / CID values after their label;
- expiry dates after their label (exp, expiry, valid thru, SKT, son kullanma) and every
  bare MM/YY or MM/YYYY;
- holder names after their label (holder, cardholder, name on card, kart sahibi);
- any value known to be card data (taken from fields that name card data in the same
  message), wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_SEP = r"\s*[:=#-]?\s*"
_RUN = re.compile(r"(?<![0-9])[0-9](?:[ .-]?[0-9]){12,}(?![0-9])")
_CVC = re.compile(
    r"(?i)\b(cvc2?|cvv2?|cav2|cvn2?|cid|csc|security\s*code|g[üu]venlik\s*kodu)\b"
    rf"({_SEP})[0-9]{{3,4}}(?![0-9])"
)
_EXPIRY_LABELLED = re.compile(
    r"(?i)\b(exp(?:iry|iration)?(?:\s*date)?|expires?|valid\s*(?:thru|through|until)"
    r"|skt|son\s*kullanma(?:\s*tarihi)?)\b"
    rf"({_SEP})[0-9]{{2}}\s*[/.-]?\s*[0-9]{{2,4}}(?![0-9])"
)
_EXPIRY_BARE = re.compile(r"(?<![0-9/])(?:0[1-9]|1[0-2])\s?/\s?(?:20[0-9]{2}|[0-9]{2})(?![0-9/])")
_HOLDER = re.compile(
    r"(?i)\b(card\s*holder(?:\s*name)?|holder(?:\s*name)?|name\s*on\s*card"
    r"|kart\s*sahibi(?:\s*ad[ıi])?)\b"
    rf"({_SEP})[^\W\d_]+(?:[ '.-][^\W\d_]+){{0,3}}"
)


_DIGIT = re.compile(r"[0-9]")
_LABEL_HINT = re.compile(r"(?i)holder|name|sahib")  # every holder label has one of these


def _scoped(pattern: re.Pattern[str]) -> str:
    """A pattern's text with its leading (?i) made local, to sit in an alternation."""
    text = pattern.pattern
    return f"(?i:{text[4:]})" if text.startswith("(?i)") else f"(?:{text})"


# One search that finds a place where any of the patterns above matches (a holder label
# stands in for the holder pattern it precedes). Where it finds none, no pattern matches
# the text and every substitution below would leave it as it is: the text is card-free,
# told in one pass instead of five.
_ANY = re.compile(
    "|".join(_scoped(p) for p in (_RUN, _CVC, _EXPIRY_LABELLED, _LABEL_HINT, _EXPIRY_BARE))
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def holds_pan(digits: str) -> bool:
    """True if any 13-19 digit window of ``digits`` passes Luhn (a card number in it)."""
    n = len(digits)
    return any(
        luhn_valid(digits[start : start + size])
        for size in range(13, min(19, n) + 1)
        for start in range(n - size + 1)
    )


MAX_RUN_CHECKED = 64  # a longer digit run is masked whole, without looking for a PAN in it


def _mask_run(match: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", match.group(0))
    if len(digits) > MAX_RUN_CHECKED or holds_pan(digits):
        return MASK
    return match.group(0)


def mask_pans(text: str) -> str:
    return _RUN.sub(_mask_run, text)


def scrub_labelled(text: str) -> str:
    """Card numbers, and CVC / expiry / holder values after their labels."""
    if _DIGIT.search(text):  # card numbers, CVC and expiry values all have digits
        text = mask_pans(text)
        text = _CVC.sub(rf"\1\2{MASK}", text)
        text = _EXPIRY_LABELLED.sub(rf"\1\2{MASK}", text)
    if _LABEL_HINT.search(text) is None:
        return text
    return _HOLDER.sub(rf"\1\2{MASK}", text)


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every card datum masked (see the module doc)."""
    if not text:
        return text
    if not known:
        if text.isalnum():
            # Letters and digits only (as re's \w reads them): no label can be set apart
            # from a value (each needs a separator or a word boundary) and there is no "/",
            # so only a card number can be in it, and that needs 13 digits in a row.
            return text if len(text) < 13 else mask_pans(text)
        if _ANY.search(text) is None:
            return text
    return masked(text, known)


def masked(text: str, known: Iterable[str] = ()) -> str:
    """``scrub`` without its shortcuts: every pattern applied."""
    for value in sorted({k.strip() for k in known if len(k.strip()) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), MASK, text, flags=re.IGNORECASE)
    text = scrub_labelled(text)
    return _EXPIRY_BARE.sub(MASK, text) if "/" in text else text
