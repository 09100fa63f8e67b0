"""Streaming readers of a report file (§5.1.6), decrypted from the zip on disk.

The zip's single entry is read through pyzipper's decrypting stream: no plaintext is
written to disk. json (an array of row objects) is parsed incrementally with
JSONDecoder.raw_decode over a bounded buffer; csv by its header line (the delimiter is
read from it). Rows become `schemas.events.BalanceRow` (MKK's names mapped, Decimal
balance, date types); a malformed row raises ContentError naming the row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

import pyzipper

from schemas.events import BalanceRow
from schemas.mkk import CSV_TO_JSON, JSON_FIELDS

_BAD_ZIP = (zipfile.BadZipFile, pyzipper.BadZipFile)
CHUNK = 64 * 1024
MAX_OBJECT_CHARS = 1_000_000


class ContentError(Exception):
    """The file cannot be read: corrupt zip, wrong password, malformed row."""


def _iter_json_array(text: io.TextIOBase) -> Iterator[dict[str, Any]]:
    dec = json.JSONDecoder(parse_float=Decimal)
    buf, i, eof, started = "", 0, False, False
    while True:
        while i < len(buf) and buf[i] in " \t\r\n,":
            if buf[i] == "," and not started:
                raise ContentError("json: ',' before '['")
            i += 1
        if i >= len(buf):
            if eof:
                raise ContentError("json: the array is not closed")
            chunk = text.read(CHUNK)
            eof = not chunk
            buf, i = buf[i:] + chunk, 0
            continue
        c = buf[i]
        if not started:
            if c != "[":
                raise ContentError("json: the file is not an array")
            started, i = True, i + 1
            continue
        if c == "]":
            return
        if c != "{":
            raise ContentError(f"json: unexpected {c!r} between rows")
        try:
            obj, end = dec.raw_decode(buf, i)
        except json.JSONDecodeError:
            if eof or len(buf) - i > MAX_OBJECT_CHARS:
                raise ContentError("json: malformed row") from None
            chunk = text.read(CHUNK)
            eof = not chunk
            buf, i = buf[i:] + chunk, 0
            continue
        yield obj
        i = end


_dates: dict[str, dt.date] = {}


def _date(value: str) -> dt.date:
    d = _dates.get(value)
    if d is None:
        s = value.replace("-", "")
        if len(s) != 8 or not s.isdigit():
            raise ValueError(f"bad date {value!r}")
        d = dt.date(int(s[0:4]), int(s[4:6]), int(s[6:8]))
        if len(_dates) < 1000:
            _dates[value] = d
    return d


_validate = BalanceRow.__pydantic_validator__.validate_python

# §5.1.6 json name -> our field name (schemas.events.BalanceRow).
OURS: dict[str, str] = {
    "balanceDate": "balance_date",
    "mbrId": "member",
    "mbrAccNo": "account",
    "subAccCode": "sub_account",
    "secClassCode": "sec_class",
    "mic": "mic",
    "isin": "isin",
    "addDefCode": "add_def_code",
    "balanceAmount": "balance",
}
_OPTIONAL = ("sub_account", "sec_class", "mic", "add_def_code")


def _build(fields: dict[str, Any], n: int) -> BalanceRow:
    """Validate one row (types, lengths, Decimal balance) into our BalanceRow."""
    try:
        fields["balance_date"] = _date(str(fields["balance_date"]))
        for name in _OPTIONAL:
            if not fields.get(name):
                fields[name] = None
        bal = fields["balance"]
        if isinstance(bal, str | int):
            fields["balance"] = Decimal(bal)
        if not fields["balance"].is_finite():
            raise InvalidOperation
        row: BalanceRow = _validate(fields)
        return row
    except (KeyError, ValueError, TypeError, InvalidOperation, AttributeError) as exc:
        what = " ".join(str(exc).split())[:300]
        raise ContentError(f"row {n}: malformed ({type(exc).__name__}: {what})") from None


def to_row(data: dict[str, Any], n: int) -> BalanceRow:
    """One §5.1.6 row (MKK's json names) as our BalanceRow; ContentError names the row."""
    return _build({OURS[k]: v for k, v in data.items() if k in OURS}, n)


def _iter_csv(text: io.TextIOBase) -> Iterator[dict[str, Any]]:
    header = text.readline()
    delim = max((",", ";", "|"), key=header.count)
    names = next(csv.reader([header], delimiter=delim), [])
    if set(names) != set(CSV_TO_JSON):
        raise ContentError(f"csv: unexpected columns {names[:12]}")
    keys = [OURS[CSV_TO_JSON[n]] for n in names]
    for n, values in enumerate(csv.reader(text, delimiter=delim), start=1):
        if len(values) != len(keys):
            raise ContentError(f"csv row {n}: {len(values)} columns, {len(keys)} expected")
        yield dict(zip(keys, values, strict=True))


def iter_rows(path: Path, password: str, file_type: str) -> Iterator[BalanceRow]:
    """Rows of the report zip at `path`, decrypted as a stream."""
    try:
        zf = pyzipper.AESZipFile(path)
    except (*_BAD_ZIP, OSError, ValueError) as exc:
        raise ContentError(f"corrupt zip: {exc}") from None
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise ContentError(f"zip holds {len(names)} entries, 1 expected")
        zf.setpassword(password.encode())
        try:
            raw: BinaryIO = zf.open(names[0])  # type: ignore[assignment]
        except RuntimeError as exc:  # pyzipper: "Bad password for file"
            raise ContentError(f"cannot decrypt: {exc}") from None
        except (*_BAD_ZIP, NotImplementedError, ValueError) as exc:
            raise ContentError(f"corrupt zip: {exc}") from None
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        n = 0
        try:
            if file_type == "json":
                for n, data in enumerate(_iter_json_array(text), start=1):
                    if not isinstance(data, dict):
                        raise ContentError(f"row {n}: not an object")
                    yield to_row(data, n)
            else:
                for n, fields in enumerate(_iter_csv(text), start=1):
                    yield _build(fields, n)
        except (*_BAD_ZIP, zlib.error, RuntimeError, EOFError, UnicodeDecodeError, OSError) as exc:
            raise ContentError(f"zip stream broken near row {n}: {exc}") from None
        except csv.Error as exc:
            raise ContentError(f"csv row {n}: {exc}") from None


__all__ = ["JSON_FIELDS", "ContentError", "iter_rows", "to_row"]
