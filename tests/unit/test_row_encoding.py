"""Row checks and encoding (§5.1.6): the fast patterns decide exactly as pydantic's
BalanceRow does and write the same bytes; a batch is byte for byte the event."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import BalanceRow, BalanceRowsBatch
from schemas.mkk import CSV_COLUMNS
from services.common.kafka.broker import EventTooLarge
from services.content_fetcher.parse import OURS, ContentError, _csv_batches, _iter_json_array
from services.content_fetcher.row_encoding import (
    FIELDS,
    CsvRows,
    RowError,
    encode_batch,
    exact_row_json,
)

KEYS = [name for name, _, _ in FIELDS]
EID = "8c1f6a2e-0b5b-4e8e-9d7e-1a2b3c4d5e6f"


def envelope(**kw: Any) -> BalanceRowsBatch:
    base: dict[str, Any] = dict(event_id=EID, request_id="r-1", member="TIB", ref_id="REF",
                                file_name="MKK_RP166_1.zip", seq=3, first_row=6000, rows=[],
                                correlation_id="c-1",
                                occurred_at=datetime(2026, 11, 29, 7, 0, tzinfo=UTC))  # fmt: skip
    base.update(kw)
    return BalanceRowsBatch(**base)


def pydantic_json(values: dict[str, Any]) -> str:
    """What BalanceRow itself makes of a row, the old way (a model per row)."""
    return BalanceRow.model_validate_json(exact_row_json(dict(values), 1)).model_dump_json()


TEXT = st.text(
    alphabet=st.sampled_from(list('AZaz09 .-_/"\\,;|\x1fçŞİ\t')) | st.characters(),
    max_size=40,
)
PLAIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DATES = st.sampled_from(
    ["20250505", "2025-05-05", "20240229", "20250229", "2025-13-01", "2025", "", "2025-0505",
     "20250505T1", "１２３４５６７８"]
)  # fmt: skip
BALANCES = (
    st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str)
    | st.decimals(min_value=-(10**21), max_value=10**21, places=8).map(str)
    | st.integers(-(10**22), 10**22).map(str)
    | st.sampled_from(["0", "-0", "0.0000001", "0.000001", "0.00000000", "007", "1e3", "1.5E-3",
                       "+5", " 5", "1,5", "12345678901234567890.12345678",
                       "123456789012345678901.1", "1.123456789", "NaN", "", "abc"])
)  # fmt: skip


@st.composite
def rows(draw: st.DrawFn) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, limit, _ in FIELDS:
        if name == "balance_date":
            out[name] = draw(DATES)
        elif name == "balance":
            out[name] = draw(BALANCES)
        else:  # near the limit, around it, and any text
            out[name] = draw(st.one_of(st.text(alphabet=PLAIN, max_size=limit + 1), TEXT))
    return out


def _outcome(make: Any) -> str:
    try:
        return str(make())
    except (RowError, ContentError):
        return "refused"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows())
def test_csv_fast_path_decides_and_writes_as_pydantic(row: dict[str, str]) -> None:
    exact = _outcome(lambda: exact_row_json(dict(row), 1))
    if exact != "refused":
        assert exact == pydantic_json(row)
    fast = _outcome(lambda: next(CsvRows(KEYS).batches(iter([list(row.values())]), 10))[0])
    assert fast == exact
    # The columns in another order: the same row.
    keys = KEYS[::-1]
    again = _outcome(lambda: CsvRows(keys).row_json([row[k] for k in keys], 1))
    assert again == exact


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows(), as_number=st.booleans(), nulls=st.booleans())
def test_json_fast_path_decides_and_writes_as_pydantic(
    row: dict[str, str], as_number: bool, nulls: bool
) -> None:
    wire = {json_name: row[ours] for json_name, ours in OURS.items()}
    if nulls:  # MKK may write an empty optional field as null
        wire.update({k: None for k in ("subAccCode", "mic") if not wire[k]})  # type: ignore[misc]
    text = json.dumps(wire, ensure_ascii=False)
    if as_number:  # balanceAmount as a JSON number, as the sandbox writes it
        try:
            Decimal(row["balance"])
            number = json.dumps(json.loads(row["balance"]))
            text = text.replace(json.dumps(row["balance"]), number)
        except (ArithmeticError, ValueError):
            pass
    parsed = json.loads(text, parse_float=str)
    exact = _outcome(lambda: exact_row_json({OURS[k]: v for k, v in parsed.items()}, 1))
    fast = _outcome(lambda: next(_iter_json_array(io.StringIO(f"[\n{text}\n]"))))
    assert fast == exact


def test_malformed_csv_row_is_named() -> None:
    good = "20250505,TIB,1,SERB,HS,XIST,TRAGARAN91N1,,12.5"
    text = ",".join(CSV_COLUMNS) + "\r\n" + "\r\n".join([good, good, good.replace("12.5", "1e")])
    with pytest.raises(ContentError, match="row 3: malformed"):
        list(_csv_batches(io.StringIO(text), 2))
    too_long = good.replace("TRAGARAN91N1", "TRAGARAN91N1X")
    with pytest.raises(ContentError, match="row 1: malformed"):
        list(_csv_batches(io.StringIO(",".join(CSV_COLUMNS) + "\n" + too_long), 2))


def test_batch_bytes_are_the_event_exactly() -> None:
    values = ["20250505", "TIB", "1", "", "HS", "XIST", "TRAGARAN91N1", "TMN", "-12.50"]
    rows_json = [CsvRows(KEYS).row_json(values, i) for i in range(3)]
    batch = encode_batch(envelope(), rows_json)
    model = [BalanceRow.model_validate_json(r) for r in rows_json]
    assert batch.data == envelope(rows=model).model_dump_json().encode()
    assert batch.rows == 3 and batch.decode().rows[0].balance == Decimal("-12.50")
    assert batch.decode().rows[0].sub_account is None


def test_batch_limits() -> None:
    row = CsvRows(KEYS).row_json(["20250505", "T", "1", "", "", "", "I", "", "1"], 1)
    with pytest.raises(ValueError, match="at most 2000"):
        encode_batch(envelope(), [row] * 2001)
    with pytest.raises(ValueError, match="no rows"):
        encode_batch(envelope(rows=[BalanceRow.model_validate_json(row)]), [row])
    wide = CsvRows(KEYS).row_json(["20250505", "M" * 16, "A" * 32, "S" * 16, "C" * 16, "X" * 8,
                                   "I" * 12, "D" * 32, "1" * 20 + "." + "1" * 8], 1)  # fmt: skip
    assert len(encode_batch(envelope(), [wide] * 2000).data) < 1_000_000  # real Kafka's limit
    with pytest.raises(EventTooLarge):  # whatever the rows, never a record over 1 MB
        encode_batch(envelope(), [wide + " " * 300] * 2000)
