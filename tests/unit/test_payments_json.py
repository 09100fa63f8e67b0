"""The confirmation's event id (a direct uuid5) is exactly uuid.uuid5's: events and
answers recorded before still carry the same id. And a posMessage whose text JSON-escapes
a lone surrogate is recorded like any other, not answered with a 500."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.bkm import ConfirmationPost, format_ts
from services.payment_notifier.confirmations import (
    EVENT_NAMESPACE,
    outcome_event_id,
)
from services.payment_notifier.pos_message import sanitize
from tests.unit.test_payments_card_data import ZONE, scenario, sign


@settings(max_examples=500)
@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=128))
def test_the_event_id_is_uuid5_of_the_token(token: str) -> None:
    expected = uuid.uuid5(EVENT_NAMESPACE, f"bkm-outcome:{token}")
    got = outcome_event_id(token)
    assert got == expected and str(got) == str(expected)
    assert got.version == 5 and got.variant == uuid.RFC_4122


def test_lone_surrogates_in_the_pos_message_become_question_marks() -> None:
    pos = '{"PosResponse":{"Result":{"ErrorMessage":"bad \\ud800 text"},"TrnxID":"t\\udc00"}}'
    kept = sanitize(pos)
    assert kept["PosResponse"]["Result"]["ErrorMessage"] == "bad ? text"
    assert json.dumps(kept, ensure_ascii=False).encode()  # valid UTF-8 throughout


def test_a_verified_confirmation_with_an_escaped_lone_surrogate_is_recorded() -> None:
    """Before: the fingerprint's UTF-8 encoding raised, the post got a 500 and BKM's
    confirmation was never recorded."""
    pos = '{"PosResponse":{"Result":{"Code":"5","ErrorMessage":"bad \\ud800 text"}}}'
    ts = format_ts(datetime.now(UTC), ZONE)
    fields = sign(ConfirmationPost(t="tok-sur", posMessage=pos, xid="x", md="m", ts=ts))
    with tempfile.TemporaryDirectory() as tmp:
        stored, _, published = asyncio.run(scenario(fields, Path(tmp)))  # answered 200, once
    event = json.loads(published)
    assert event["token"] == "tok-sur"
    assert event["pos_result"]["PosResponse"]["Result"]["ErrorMessage"] == "bad ? text"
    assert "bad ? text" in stored
