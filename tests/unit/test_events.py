"""Events and the topic catalogue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas.events import (
    AUTH_TOKENS,
    CATALOGUE,
    EVENT_TYPES,
    REPORTS_COMPLETED,
    REPORTS_REQUESTED,
    REPORTS_ROWS,
    BalanceRow,
    BalanceRowsBatch,
    FileSummary,
    ReportCompleted,
    ReportRequested,
    TokenIssued,
    TokenUnavailable,
)
from services.common.kafka.broker import MAX_EVENT_BYTES, EventTooLarge, encode_event


def _request(**over: object) -> ReportRequested:
    base: dict[str, object] = {
        "request_id": "up-1",
        "member": "TIB",
        "sender": "TIB991",
        "process_date": "2025-05-05",
        "file_type": "csv",
    }
    base.update(over)
    return ReportRequested.model_validate(base)


def test_catalogue_is_consistent() -> None:
    names = [t.name for t in CATALOGUE]
    assert len(names) == len(set(names))
    assert all(t.dlq == t.name + ".dlq" for t in CATALOGUE)
    # Every event type belongs to exactly one topic.
    owners = [et for t in CATALOGUE for et in t.event_types]
    assert sorted(e.__name__ for e in owners) == sorted(e.__name__ for e in EVENT_TYPES)
    assert AUTH_TOKENS.cleanup_policy == "compact"


def test_spec_field_rules() -> None:
    with pytest.raises(ValidationError):
        _request(member="tib")  # §3.2 senderMember [A-Z0-9]{3,8}
    with pytest.raises(ValidationError):
        _request(sender="TOOLONGSENDER")
    with pytest.raises(ValidationError):
        _request(file_type="xlsx")
    with pytest.raises(ValidationError):
        _request(filters={"isin": "TRA"})  # §5.1.2 isin [A-Z0-9]{12}
    with pytest.raises(ValidationError):
        _request(extra_field=1)
    assert _request(filters={"isin": "TRAEREGL91E2"}).filters.isin == "TRAEREGL91E2"


def test_keys_keep_a_request_on_one_partition() -> None:
    a, b = _request(), _request(file_type="json")
    assert a.kafka_key() == b.kafka_key() == b"TIB:up-1"
    assert a.event_id != b.event_id


def test_timestamps_are_utc_and_must_be_aware() -> None:
    ev = _request(occurred_at="2025-05-05T10:00:00+03:00")
    assert ev.occurred_at == dt.datetime(2025, 5, 5, 7, 0, tzinfo=dt.UTC)
    assert ev.model_dump(mode="json")["occurred_at"].endswith("Z")
    with pytest.raises(ValidationError):
        _request(occurred_at="2025-05-05T10:00:00")


def test_topic_parses_its_own_types_only() -> None:
    data = TokenUnavailable(
        member="TIB", sender="TIB991", code="RP040", description="x", retry_blocked=True
    ).model_dump_json()
    assert isinstance(AUTH_TOKENS.parse(data.encode()), TokenUnavailable)
    with pytest.raises(ValidationError):
        REPORTS_REQUESTED.parse(data.encode())
    with pytest.raises(TypeError):
        encode_event(REPORTS_REQUESTED, TokenUnavailable.model_validate_json(data))


def test_completion_rows_must_add_up() -> None:
    f = FileSummary(file_name="a.zip", rows=3, batches=1, zip_bytes=10, zip_sha256="0" * 64)
    ReportCompleted(request_id="r", member="TIB", files=[f], total_rows=3)
    with pytest.raises(ValidationError):
        ReportCompleted(request_id="r", member="TIB", files=[f], total_rows=4)
    assert REPORTS_COMPLETED.event_types == (ReportCompleted,)


def test_largest_rows_batch_stays_under_one_megabyte() -> None:
    """The biggest batch the schema allows must fit real Kafka's 1 MB default."""
    row = BalanceRow(
        balance_date=dt.date(2025, 5, 5),
        member="M" * 16,
        account="A" * 32,
        sub_account="S" * 16,
        sec_class="C" * 16,
        mic="XIST",
        isin="TRAEREGL91E2",
        add_def_code="D" * 32,
        balance=Decimal("-12345678901234567890.12345678"),
    )
    batch = BalanceRowsBatch(
        request_id="r" * 100,
        member="TIBTIB12",
        ref_id="x" * 64,
        file_name="f" * 200,
        seq=10**9,
        first_row=10**12,
        rows=[row] * 2000,
    )
    assert len(encode_event(REPORTS_ROWS, batch)) < MAX_EVENT_BYTES


def test_oversized_event_refused() -> None:
    big = TokenIssued(
        member="TIB",
        sender="TIB991",
        jti="j",
        issued_at=dt.datetime.now(dt.UTC),
        expires_at=dt.datetime.now(dt.UTC),
        key_id="k",
        nonce_b64="n",
        ciphertext_b64="c",
    )
    assert len(encode_event(AUTH_TOKENS, big)) < 2000
    from schemas.events import TopicSpec

    loose = TopicSpec("t", (TokenIssued,), key="k")
    huge = big.model_copy(update={"ciphertext_b64": "x" * (MAX_EVENT_BYTES + 1)})
    with pytest.raises(EventTooLarge):
        encode_event(loose, huge)
