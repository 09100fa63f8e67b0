"""The confirmation path's JSON and ids (orjson, a direct uuid5) write exactly what
json.dumps and uuid.uuid5 wrote: stored fingerprints and answers still match after an
upgrade, and a replay recorded before it is still a replay. And a posMessage whose text
JSON-escapes a lone surrogate is recorded like any other, not answered with a 500."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.bkm import ConfirmationPost, format_ts
from services.payment_notifier.confirmations import (
    EVENT_NAMESPACE,
    Reply,
    fingerprint,
    outcome_event_id,
    to_json,
)
from services.payment_notifier.pos_message import sanitize
from tests.unit.test_payments_card_data import ZONE, scenario, sign

# Text as the content holds it: any character but a surrogate (those are made valid
# before, see the last test), with the ones JSON escapes or could escape made likely.
TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from('"\\/\n\r\t\b\f\x00\x1f\x7f\u2028\u2029ğüşİıçö€😀'),
    ),
    max_size=30,
)
CONTENT = st.recursive(
    st.dictionaries(TEXT, st.one_of(st.none(), TEXT), max_size=6),
    lambda inner: st.dictionaries(TEXT, st.one_of(st.none(), TEXT, inner), max_size=5),
    max_leaves=20,
)


@settings(max_examples=500)
@given(CONTENT)
def test_answers_and_fingerprints_are_the_bytes_json_dumps_wrote(content: dict[str, Any]) -> None:
    compact = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    assert to_json(content) == compact
    assert Reply.of(200, content).body == compact.encode()
    ordered = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert fingerprint(content) == hashlib.sha256(ordered.encode()).hexdigest()


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
