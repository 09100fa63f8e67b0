"""The fast form-value decoder reads every value exactly as urllib's reference does: the
signature check runs over the decoded values, so one differing character would refuse a
genuine BKM post (or verify other bytes than BKM signed)."""

from __future__ import annotations

from urllib.parse import quote, unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from services.payment_notifier.form_decode import unquote_plus

# Text rich in what matters: escapes (valid, malformed, cut short), "+", backslashes
# (escape_decode's own escape character), quotes, non-ASCII, surrogates.
PIECES = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["%", "+", "\\", "\\x", "\\\\", "%2", "%zz", "%%", "%5C", "%5c", "%x41"]),
    st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    st.integers(0, 255).map(lambda b: f"%{b:02x}"),
    st.text(max_size=4).map(quote),
    st.sampled_from(["\ud800", "é", "ş", "€", "\x00", "'", '"']),
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=12).map("".join))
def test_equals_the_reference_on_arbitrary_text(text: str) -> None:
    assert unquote_plus(text) == unquote(text.replace("+", " "))


def test_a_signed_confirmation_value() -> None:
    signature = "ab+/cd=="
    assert unquote_plus(quote(signature, safe="")) == signature
    assert unquote_plus("a+b%2Bc") == "a b+c"
    assert unquote_plus("%7B%22Text%22%3A%22%C3%B6deme%22%7D") == '{"Text":"ödeme"}'
    assert unquote_plus("%FF%C3") == "\ufffd\ufffd"  # invalid UTF-8, replaced as urllib does
    assert unquote_plus("50%") == "50%" and unquote_plus("\\x41%41") == "\\x41A"
