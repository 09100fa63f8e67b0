"""Card data never leaves the payment-notifier (BKM posMessage: PAN, CVC/CVV2, expiry and
holder are removed; kopru makes sure). Card data planted in every string field of the POS
message, in unknown extra fields and in the cancel reason is found neither in the store
(the SQLite file's bytes), nor in the logs (JSON lines), nor in the event bytes that go on
the topic (encode_event: what publish_event sends)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.bkm import CancelRedirect, ConfirmationPost, format_ts
from schemas.events import BKM_CONFIRMATIONS, Event
from services.common.bkm.signature import BkmSigner, BkmVerifier
from services.common.kafka.broker import encode_event
from services.common.observability.card_data import luhn_valid, masked, scrub
from services.common.observability.logging import configure_logging
from services.common.settings import LogSettings, StoreSettings
from services.common.signing.certs import generate_rsa_key
from services.common.stores.factory import open_payment_store
from services.payment_notifier.confirmations import ConfirmationDeps, handle_return
from services.payment_notifier.outbox_relay import OutboxRelay, publishing
from services.payment_notifier.pos_message import sanitize

ZONE = "Europe/Istanbul"
BKM_KEY: rsa.RSAPrivateKey = generate_rsa_key(2048)

# Şekil 11, every string field named: each one gets card data planted in it.
POS_STRING_FIELDS = (
    ("Host", "AuthCode"),
    ("Host", "RRN"),
    ("Host", "Date"),
    ("Host", "Time"),
    ("Host", "RC"),
    ("Result", "Code"),
    ("Result", "Text"),
    ("Result", "ErrorMessage"),
    (None, "TrnxID"),
    (None, "TrnxType"),
    (None, "CustomData"),
    (None, "Amount"),
)


@st.composite
def pans(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "37", "6011", "9792", "65"]))
    length = draw(st.sampled_from([13, 15, 16, 19]))
    body = prefix + "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"),
                min_size=length - len(prefix) - 1,
                max_size=length - len(prefix) - 1,
            )
        )
    )
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    return body + check


def grouped(pan: str, sep: str) -> str:
    return sep.join(pan[i : i + 4] for i in range(0, len(pan), 4)) if sep else pan


NAME_WORD = st.text(alphabet="ABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZ", min_size=5, max_size=10)


@st.composite
def card_data(draw: st.DrawFn) -> dict[str, str]:
    pan = draw(pans())
    month = draw(st.integers(1, 12))
    year = draw(st.integers(26, 40))
    return {
        "pan": pan,
        "pan_text": grouped(pan, draw(st.sampled_from(["", " ", "-"]))),
        "cvc": draw(st.from_regex(r"[0-9]{3,4}", fullmatch=True)),
        "cvc_label": draw(st.sampled_from(["cvc", "CVV", "cvv2", "CVC2", "güvenlik kodu"])),
        "sep": draw(st.sampled_from([" ", ": ", "=", " - "])),
        "expiry": f"{month:02d}/{year}" if draw(st.booleans()) else f"{month:02d}/20{year}",
        "exp_label": draw(st.sampled_from(["exp", "expiry", "SKT", "son kullanma", "valid thru"])),
        "holder": f"{draw(NAME_WORD)} {draw(NAME_WORD)}",
        "holder_label": draw(st.sampled_from(["holder", "cardholder", "Kart sahibi"])),
        "noise": draw(st.text(alphabet="abc XYZ.,!", max_size=12)),
    }


def planted_text(c: dict[str, str], form: int) -> str:
    """One of the ways card data shows up in free text."""
    s = c["sep"]
    forms = [
        f"card {c['pan_text']} {c['cvc_label']} {c['cvc']} rejected once",
        f"{c['noise']}{c['pan']}",
        f"{c['exp_label']}{s}{c['expiry']} {c['noise']}",
        f"{c['holder_label']}{s}{c['holder']}",
        f"{c['cvc_label']}{s}{c['cvc']}; {c['exp_label']} {c['expiry']}; {c['pan_text']}",
        f"{c['noise']} {c['holder']} {c['expiry']}",  # bare: known from the card fields
    ]
    return forms[form % len(forms)]


def leaks(c: dict[str, str], text: str) -> list[str]:
    """What of ``c`` is readable in ``text``."""
    found = []
    digits_only = "".join(ch for ch in text if ch.isdigit() or ch == "\n")
    if c["pan"] in digits_only:
        found.append("pan")
    for label in (c["cvc_label"], "cvc", "cvv"):
        for sep in (c["sep"], " ", ""):
            if f"{label}{sep}{c['cvc']}".lower() in text.lower():
                found.append("cvc")
    if c["expiry"] in text:
        found.append("expiry")
    if c["holder"].lower() in text.lower():
        found.append("holder")
    return found


def pos_message(c: dict[str, str], forms: list[int], as_json_number: bool) -> str:
    body: dict[str, Any] = {"Host": {}, "Result": {}}
    for i, (group, name) in enumerate(POS_STRING_FIELDS):
        target = body[group] if group else body
        target[name] = planted_text(c, forms[i % len(forms)])
    body["Host"]["RRN"] = int(c["pan"]) if as_json_number else body["Host"]["RRN"]
    # Unknown extra fields, card data named as such and hidden in unknown names.
    body |= {
        "Pan": c["pan"],
        "Cvv2": c["cvc"],
        "ExpiryDate": c["expiry"],
        "CardHolderName": c["holder"],
        "Note": planted_text(c, forms[0] + 1),
        "Extra": {"Deep": [planted_text(c, forms[-1]), {"x": c["pan_text"]}]},
    }
    top: dict[str, Any] = {"PosResponse": body, "Other": planted_text(c, 3)}
    return json.dumps(top, ensure_ascii=False)


def sign(message: ConfirmationPost | CancelRedirect) -> dict[str, str]:
    signed = BkmSigner(BKM_KEY).sign(message)
    return {k: v for k, v in signed.model_dump().items() if v is not None}


async def scenario(fields: dict[str, str], directory: Path) -> tuple[str, str, str]:
    """One post through the decision: (store bytes, log lines, topic bytes)."""
    logs = io.StringIO()
    configure_logging(LogSettings(level="DEBUG", format="json"), stream=logs)
    store = open_payment_store(StoreSettings(url=f"sqlite:///{directory}/p.db"))
    await store.open()
    topic: list[bytes] = []

    async def publish(event: Event) -> None:
        topic.append(encode_event(BKM_CONFIRMATIONS, event))

    deps = ConfirmationDeps(
        verifier=BkmVerifier(BKM_KEY.public_key()),
        store=store,
        publish=publish,
        ts_tolerance_s=30,
        ts_zone=ZONE,
    )
    source = "cancel_redirect" if "r" in fields else "confirmation"
    first = await handle_return(fields, source, deps)  # type: ignore[arg-type]
    again = await handle_return(fields, source, deps)  # type: ignore[arg-type]
    assert first.status == 200 and again.replay, first
    await OutboxRelay(store, publishing(publish)).drain()  # what the relay sends on the topic
    await store.close()
    logging.getLogger().handlers.clear()
    stored = b"".join(p.read_bytes() for p in directory.iterdir())
    return stored.decode("utf-8", "replace"), logs.getvalue(), b"".join(topic).decode()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    c=card_data(),
    forms=st.lists(st.integers(0, 5), min_size=1, max_size=6),
    as_number=st.booleans(),
    cancel=st.booleans(),
)
def test_card_data_reaches_no_store_log_or_topic(
    c: dict[str, str], forms: list[int], as_number: bool, cancel: bool
) -> None:
    ts = format_ts(datetime.now(UTC), ZONE)
    token = f"tok-{c['cvc']}{forms[0]}"
    if cancel:
        message: ConfirmationPost | CancelRedirect = CancelRedirect(
            # A cancel has no card fields to learn names from: labelled forms only.
            t=token,
            r=planted_text(c, forms[0] % 5),
            posRef="ref",
            xid="xid",
            md="md",
            ts=ts,
        )
    else:
        message = ConfirmationPost(
            t=token, posMessage=pos_message(c, forms, as_number), xid="x1", md="m1", ts=ts
        )
    with tempfile.TemporaryDirectory() as tmp:
        stored, logged, published = asyncio.run(scenario(sign(message), Path(tmp)))
    assert published, "the outcome was published"
    for where, text in (("store", stored), ("logs", logged), ("topic", published)):
        assert not leaks(c, text), (where, leaks(c, text), text[:3000])


def test_the_reported_message_loses_its_cvc_too() -> None:
    """The case from the issue: the PAN was masked, 'cvc 328' was published."""
    pos = {
        "PosResponse": {
            "Result": {"Code": "5", "ErrorMessage": "card 4506349116608409 cvc 328 rejected once"}
        }
    }
    kept = sanitize(json.dumps(pos))
    assert kept["PosResponse"]["Result"]["ErrorMessage"] == "card *** cvc *** rejected once"


def test_only_allowlisted_fields_are_kept_and_structured_ones_keep_their_form() -> None:
    pos = {
        "PosResponse": {
            "Host": {"AuthCode": "123456", "RRN": "4506349116608409", "rc": "00", "Bin": "450634"},
            "Result": {"Code": "0", "Text": "", "ErrorMessage": ""},
            "TrnxID": "830601d3-1808-4c73-8d64-39fae20644b7",
            "TrnxType": "Sale",
            "CustomData": "",
            "Installment": "3",
        },
        "Unknown": "kept nowhere",
    }
    assert sanitize(json.dumps(pos)) == {
        "PosResponse": {
            "Host": {"AuthCode": "123456", "RC": "00"},  # RRN holding a PAN is dropped
            "Result": {"Code": "0", "Text": "", "ErrorMessage": ""},
            "TrnxID": "830601d3-1808-4c73-8d64-39fae20644b7",
            "TrnxType": "Sale",
            "CustomData": "",
        }
    }


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("order 12345 declined", "order 12345 declined"),  # short numbers stay
        ("RRN 126ABA7DFB72 ok", "RRN 126ABA7DFB72 ok"),
        ("4111 1111 1111 1111", "***"),
        ("4111.1111.1111.1111 then", "*** then"),
        ("x4111111111111111y", "x***y"),
        ("cvv2=123", "cvv2=***"),
        ("Son kullanma tarihi: 0927", "Son kullanma tarihi: ***"),
        ("valid 09/27 only", "valid *** only"),
        ("Kart sahibi: Elif Demir", "Kart sahibi: ***"),
    ],
)
def test_scrub(text: str, kept: str) -> None:
    assert scrub(text) == kept


# Letters and digits only, with the pieces card data is made of (labels, values, card
# numbers) run together: the shortcut for such text must mask exactly what every pattern
# applied masks.
_GLUED = st.lists(
    st.one_of(
        st.text(st.characters(categories=["L", "N"]), max_size=8),
        st.sampled_from(["cvc", "cvv2", "CVC2", "exp", "skt", "holder", "kartsahibi", "name"]),
        st.sampled_from(["737", "0927", "1229", "4111111111111111", "79927398713", "AYSE"]),
        st.from_regex(r"[0-9]{12,20}", fullmatch=True),
    ),
    max_size=6,
).map("".join)


@given(_GLUED)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_the_letters_and_digits_shortcut_masks_what_every_pattern_masks(text: str) -> None:
    assert scrub(text) == masked(text)
