"""Report rows (§5.1.6) checked and encoded as the JSON of `schemas.events.BalanceRow`,
and row batches as the exact bytes of a `BalanceRowsBatch` event.

Two paths give the same bytes:

- the fast path: one precompiled regular expression per row checks every field rule
  of BalanceRow (lengths, a real date, a balance of at most 28 digits with at most 8
  decimals) and writes the row's JSON from a template. It only takes values whose
  JSON is the text itself (printable ASCII without quote or backslash) and balances
  in the plain notation pydantic prints back unchanged;
- the exact path, for every row the fast path declines: pydantic validates the row as
  a BalanceRow and its serializer writes the JSON. A malformed row fails here, named.

The tests hold the two paths to byte equality with pydantic's own output, so a batch
on Kafka is byte for byte `BalanceRowsBatch(...).model_dump_json()`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.events import BalanceRow, BalanceRowsBatch
from services.common.kafka.broker import MAX_EVENT_BYTES, EventTooLarge


class RowError(ValueError):
    """A row breaks a §5.1.6 field rule; the message names the row."""


# BalanceRow's fields in order: (name, max length, optional). §5.1.6 names in comments.
FIELDS: tuple[tuple[str, int, bool], ...] = (
    ("balance_date", 10, False),  # balanceDate / BAKIYE_TARIHI
    ("member", 16, False),  # mbrId / UYE
    ("account", 32, False),  # mbrAccNo / HESAP
    ("sub_account", 16, True),  # subAccCode / ALT_HESAP
    ("sec_class", 16, True),  # secClassCode / KIYMET_SINIFI
    ("mic", 8, True),  # mic / MIC
    ("isin", 12, False),  # isin / ISIN
    ("add_def_code", 32, True),  # addDefCode / EK_TANIM
    ("balance", 0, False),  # balanceAmount / BAKIYE
)
_LIMITS = {name: limit for name, limit, _ in FIELDS}
OPTIONAL = tuple(name for name, _, optional in FIELDS if optional)

# Printable ASCII but '"' and '\\': its JSON string is the text itself.
_SAFE = r"[ !#-\[\]-~]"
_DATE = r"\d{4}-?\d{2}-?\d{2}"
# Decimal(max_digits=28, decimal_places=8) in the notation str(Decimal) prints back:
# no leading zeros, no exponent, and not 0.000000x (which prints as 1E-7).
_BALANCE = r"-?(?:[1-9]\d{0,19}(?:\.\d{1,8})?|0(?:\.(?!0{6})\d{1,8})?)"


def _value(name: str) -> str:
    if name == "balance_date":
        return f"({_DATE})"
    if name == "balance":
        return f"({_BALANCE})"
    return f"({_SAFE}{{0,{_LIMITS[name]}}})"


_ROW_TEMPLATE = (
    '{"balance_date":"%s","member":"%s","account":"%s","sub_account":%s,"sec_class":%s,'
    '"mic":%s,"isin":"%s","add_def_code":%s,"balance":"%s"}'
)
_dates: dict[str, str] = {}


def _iso_date(text: str) -> str:
    iso = _dates.get(text)
    if iso is None:
        s = text.replace("-", "")
        if len(s) != 8 or not s.isdigit():
            raise ValueError(f"bad date {text!r}")
        iso = dt.date(int(s[0:4]), int(s[4:6]), int(s[6:8])).isoformat()  # ValueError if bad
        if len(_dates) < 1000:
            _dates[text] = iso
    return iso


def _opt(value: str) -> str:
    return f'"{value}"' if value else "null"


def _fast(values: tuple[str, ...]) -> str:
    """Row JSON from values in BalanceRow order, already matched by a fast pattern."""
    date, member, account, sub, cls, mic, isin, add_def, balance = values
    return _ROW_TEMPLATE % (
        _iso_date(date), member, account, _opt(sub), _opt(cls), _opt(mic), isin,
        _opt(add_def), balance,
    )  # fmt: skip


_validate = BalanceRow.__pydantic_validator__.validate_python
_to_json = BalanceRow.__pydantic_serializer__.to_json


def exact_row_json(fields: dict[str, Any], n: int) -> str:
    """The exact path: pydantic validates the row (our field names) and writes it."""
    try:
        fields["balance_date"] = dt.date.fromisoformat(_iso_date(str(fields["balance_date"])))
        for name in OPTIONAL:
            if not fields.get(name):
                fields[name] = None
        bal = fields["balance"]
        if isinstance(bal, str | int):
            fields["balance"] = Decimal(bal)
        if not fields["balance"].is_finite():
            raise InvalidOperation
        row = _validate(fields)
    except (KeyError, ValueError, TypeError, InvalidOperation, AttributeError) as exc:
        what = " ".join(str(exc).split())[:300]
        raise RowError(f"row {n}: malformed ({type(exc).__name__}: {what})") from None
    return str(_to_json(row), "utf-8")


class CsvRows:
    """Values of csv rows (in the file's column order) to row JSON, batch by batch."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys  # our field name of each column
        order = {name: i for i, name in enumerate(keys)}
        parts = [""] * len(keys)
        for name, _, _ in FIELDS:
            parts[order[name]] = _value(name)
        self._match = re.compile("\x1f".join(parts)).fullmatch
        # Positions of BalanceRow's fields among the groups (columns may come in any order).
        pick = [order[name] for name, _, _ in FIELDS]
        self._pick = None if pick == list(range(len(FIELDS))) else pick

    def row_json(self, values: list[str], n: int) -> str:
        """One row: the fast pattern, else the exact path (RowError names row `n`)."""
        m = self._match("\x1f".join(values))
        if m is not None:
            g = m.groups()
            try:
                return _fast(g if self._pick is None else tuple(g[i] for i in self._pick))
            except ValueError:
                pass  # not a date: the exact path names the error
        return exact_row_json(dict(zip(self.keys, values, strict=True)), n)

    def batches(self, reader: Iterator[list[str]], size: int) -> Iterator[list[str]]:
        """Row JSON in lists of `size`; the hot loop of a big report, hence inlined."""
        match, width, dates, slow = self._match, len(self.keys), _dates, self.row_json
        template, join = _ROW_TEMPLATE, "\x1f".join
        identity = self._pick is None
        out: list[str] = []
        n = 0
        for values in reader:
            n += 1
            if len(values) != width:
                raise RowError(f"csv row {n}: {len(values)} columns, {width} expected")
            m = match(join(values)) if identity else None
            if m is not None:
                d, member, account, sub, cls, mic, isin, add_def, balance = m.groups()
                iso = dates.get(d)
                if iso is not None:
                    out.append(template % (
                        iso, member, account,
                        f'"{sub}"' if sub else "null", f'"{cls}"' if cls else "null",
                        f'"{mic}"' if mic else "null", isin,
                        f'"{add_def}"' if add_def else "null", balance,
                    ))  # fmt: skip
                    if len(out) >= size:
                        yield out
                        out = []
                    continue
            out.append(slow(values, n))
            if len(out) >= size:
                yield out
                out = []
        if out:
            yield out


# A §5.1.6 json row in the guide's field order, as MKK and the sandbox write it.
_JSON_NAMES = (
    "balanceDate", "mbrId", "mbrAccNo", "subAccCode", "secClassCode", "mic", "isin",
    "addDefCode", "balanceAmount",
)  # fmt: skip


def _json_member(json_name: str, name: str, optional: bool) -> str:
    key = rf'"{json_name}"\s*:\s*'
    if name == "balance":
        return key + rf'(?:"({_BALANCE})"|({_BALANCE}))'
    value = f'"{_value(name)}"'
    return key + (f"(?:{value}|null)" if optional else value)


JSON_ROW = re.compile(
    r"\{\s*"
    + r"\s*,\s*".join(
        _json_member(j, name, optional)
        for j, (name, _, optional) in zip(_JSON_NAMES, FIELDS, strict=True)
    )
    + r"\s*\}"
)


def json_fast_row(m: re.Match[str]) -> str | None:
    """Row JSON from a JSON_ROW match, or None when the exact path must decide (the
    hot loop of a big json report, hence inlined)."""
    d, member, account, sub, cls, mic, isin, add_def, quoted, number = m.groups()
    iso = _dates.get(d)
    if iso is None:
        try:
            iso = _iso_date(d)
        except ValueError:
            return None
    return _ROW_TEMPLATE % (
        iso, member, account,
        f'"{sub}"' if sub else "null", f'"{cls}"' if cls else "null",
        f'"{mic}"' if mic else "null", isin,
        f'"{add_def}"' if add_def else "null", quoted or number,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class EncodedRowsBatch:
    """A BalanceRowsBatch as the bytes that go on Kafka, with its envelope for the key
    and headers (the envelope's own `rows` is empty)."""

    envelope: BalanceRowsBatch
    data: bytes
    rows: int

    def decode(self) -> BalanceRowsBatch:
        return BalanceRowsBatch.model_validate_json(self.data)


_EMPTY_ROWS = b'"rows":[]'


def encode_batch(envelope: BalanceRowsBatch, rows_json: list[str]) -> EncodedRowsBatch:
    """The event's JSON with these rows: pydantic writes the envelope, the rows (each
    already pydantic's JSON of a valid BalanceRow) go into its `rows` array."""
    if envelope.rows:
        raise ValueError("the envelope carries no rows")
    if len(rows_json) > 2000:  # BalanceRowsBatch.rows max_length
        raise ValueError(f"{len(rows_json)} rows in one batch, at most 2000")
    head = envelope.model_dump_json().encode()
    before, sep, after = head.partition(_EMPTY_ROWS)
    if not sep or _EMPTY_ROWS in after:
        raise ValueError("envelope JSON without exactly one empty rows array")
    data = b"".join((before, b'"rows":[', ",".join(rows_json).encode(), b"]", after))
    if len(data) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"BalanceRowsBatch is {len(data)} bytes (> {MAX_EVENT_BYTES})")
    return EncodedRowsBatch(envelope, data, len(rows_json))


__all__ = [
    "JSON_ROW",
    "CsvRows",
    "EncodedRowsBatch",
    "RowError",
    "encode_batch",
    "exact_row_json",
    "json_fast_row",
]
