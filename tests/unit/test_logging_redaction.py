"""Secrets never reach the log output: passwords from settings, PANs inside events."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import BaseModel, SecretStr

from services.common.observability.card_data import luhn_valid
from services.common.observability.logging import bind_correlation_id, configure_logging, get_logger
from services.common.observability.redaction import MASK, redact, redact_text
from services.common.settings import LogSettings

PAN = "4111111111111111"  # Luhn-valid test Visa
PAN_SPACED = "5555 5555 5555 4444"  # Luhn-valid test Mastercard


def _capture() -> io.StringIO:
    out = io.StringIO()
    configure_logging(LogSettings(format="json", level="DEBUG"), service="test", stream=out)
    return out


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


class MkkSection(BaseModel):
    username: str = "TIB991"
    password: SecretStr = SecretStr("Demo991!")


def test_password_from_settings_and_pan_in_event_never_logged() -> None:
    out = _capture()
    settings = MkkSection()
    log = get_logger("t")
    bind_correlation_id("cid-1")
    # The ways a careless line could leak them:
    log.info("settings loaded", settings=settings.model_dump(mode="python"))
    log.info("auth body", body={"username": "TIB991", "password": "Demo991!"})
    log.info("raw", password=settings.password.get_secret_value())
    log.info(
        "pos answer", pos_message=json.dumps({"pan": PAN, "cvc": "123", "note": f"card {PAN}"})
    )
    log.warning("free text with card " + PAN_SPACED)
    logging.getLogger("stdlib").error("stdlib line with %s", PAN)
    text = out.getvalue()
    assert "Demo991!" not in text
    assert PAN not in text
    assert PAN_SPACED not in text and PAN_SPACED.replace(" ", "") not in text
    assert '"123"' not in text  # the CVC under its key
    lines = _lines(out)
    assert len(lines) == 6
    assert all(line.get("correlation_id") == "cid-1" for line in lines[:5])
    assert lines[0]["service"] == "test"


def test_non_card_numbers_survive() -> None:
    assert redact_text("order 1234567890123 done") == "order 1234567890123 done"  # not Luhn
    assert redact_text("ref 20250505") == "ref 20250505"
    assert redact({"count": 1000, "amount": "105,99"}) == {"count": 1000, "amount": "105,99"}


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", True),
        ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", True),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", True),
        ("eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.sig-nature_x", True),
        ("plain text", False),
    ],
)
def test_tokens_and_keys_in_text(value: str, masked: bool) -> None:
    assert (redact_text(value) != value) is masked


def test_secret_keys_masked_at_any_depth() -> None:
    event = {
        "a": {"b": [{"zipPassword": "Abcdefg1"}, {"zip_password": "x"}]},
        "Authorization": "Bearer abc",
        "posPwd": "p",
        "token": None,  # nothing to hide
    }
    assert redact(event) == {
        "a": {"b": [{"zipPassword": MASK}, {"zip_password": MASK}]},
        "Authorization": MASK,
        "posPwd": MASK,
        "token": None,
    }
    assert redact({"n": int(PAN)}) == {"n": MASK}


def test_luhn() -> None:
    assert luhn_valid(PAN)
    assert not luhn_valid("4111111111111112")


def test_password_inside_a_url_is_masked() -> None:
    from services.common.observability.redaction import redact

    out = redact({"event": "store opened", "dsn": "postgresql://kopru:s3cr3t-pw@db:5432/kopru"})
    assert "s3cr3t-pw" not in str(out)
    assert out["dsn"] == "postgresql://kopru:***@db:5432/kopru"
    assert redact("http://127.0.0.1:8080/bkm/success") == "http://127.0.0.1:8080/bkm/success"


def test_the_level_is_read_at_each_call() -> None:
    """get_logger's shortcut drops a call below the level without structlog; the level is
    read at each call (a reconfigured level applies to loggers made before)."""
    log = get_logger("t.level")
    out = io.StringIO()
    configure_logging(LogSettings(format="json", level="WARNING"), service="test", stream=out)
    log.info("below the level", card=PAN)
    log.warning("at the level", card=PAN)
    assert [line["event"] for line in _lines(out)] == ["at the level"]
    assert PAN not in out.getvalue()
    out = _capture()  # DEBUG now, same logger object
    log.debug("now shown")
    log.bind(step="x").info("bound")
    assert [line["event"] for line in _lines(out)] == ["now shown", "bound"]
