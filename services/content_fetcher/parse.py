"""Streaming readers of a report file (§5.1.6), decrypted from the zip on disk.

The zip's single entry is read through pyzipper's decrypting stream: no plaintext is
written to disk. json (an array of row objects) is read incrementally over a bounded
buffer; csv by its header line (the delimiter is read from it). Each row comes out as
the JSON of a valid `schemas.events.BalanceRow` (MKK's names mapped, the field rules
checked, see row_encoding.py); a malformed row raises ContentError naming the row.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyzipper

from schemas.events import BalanceRow
from schemas.mkk import CSV_TO_JSON, JSON_FIELDS
from services.content_fetcher.row_encoding import (
    JSON_ROW,
    CsvRows,
    RowError,
    exact_row_json,
    json_fast_row,
)

_BAD_ZIP = (zipfile.BadZipFile, pyzipper.BadZipFile)
CHUNK = 64 * 1024
MAX_OBJECT_CHARS = 1_000_000


class ContentError(Exception):
    """The file cannot be read: corrupt zip, wrong password, malformed row."""


def _iter_json_array(text: io.TextIOBase) -> Iterator[str]:
    """Row JSON of each object of the array: the fast pattern where it matches, else
    json's decoder and the exact path."""
    dec = json.JSONDecoder(parse_float=str)  # the balance's text, exactly
    match = JSON_ROW.match
    buf, i, eof, started, n = "", 0, False, False, 0
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
        m = match(buf, i)
        if m is not None:
            row = json_fast_row(m)
            if row is not None:
                n += 1
                yield row
                i = m.end()
                continue
        try:
            obj, end = dec.raw_decode(buf, i)
        except json.JSONDecodeError:
            if eof or len(buf) - i > MAX_OBJECT_CHARS:
                raise ContentError(f"json: malformed row {n + 1}") from None
            chunk = text.read(CHUNK)
            eof = not chunk
            buf, i = buf[i:] + chunk, 0
            continue
        n += 1
        if not isinstance(obj, dict):
            raise ContentError(f"row {n}: not an object")
        yield to_row_json(obj, n)
        i = end


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


def to_row_json(data: dict[str, Any], n: int) -> str:
    """One §5.1.6 row (MKK's json names) as BalanceRow JSON; ContentError names the row."""
    try:
        return exact_row_json({OURS[k]: v for k, v in data.items() if k in OURS}, n)
    except RowError as exc:
        raise ContentError(str(exc)) from None


def to_row(data: dict[str, Any], n: int) -> BalanceRow:
    """One §5.1.6 row (MKK's json names) as our BalanceRow; ContentError names the row."""
    return BalanceRow.model_validate_json(to_row_json(data, n))


def _csv_batches(text: io.TextIOBase, size: int) -> Iterator[list[str]]:
    header = text.readline()
    delim = max((",", ";", "|"), key=header.count)
    names = next(csv.reader([header], delimiter=delim), [])
    if set(names) != set(CSV_TO_JSON) or len(names) != len(CSV_TO_JSON):
        raise ContentError(f"csv: unexpected columns {names[:12]}")
    rows = CsvRows([OURS[CSV_TO_JSON[n]] for n in names])
    try:
        yield from rows.batches(csv.reader(text, delimiter=delim), size)
    except RowError as exc:
        raise ContentError(str(exc)) from None


def _json_batches(text: io.TextIOBase, size: int) -> Iterator[list[str]]:
    out: list[str] = []
    for row in _iter_json_array(text):
        out.append(row)
        if len(out) >= size:
            yield out
            out = []
    if out:
        yield out


def iter_row_batches(path: Path, password: str, file_type: str, size: int) -> Iterator[list[str]]:
    """Row JSON (a valid BalanceRow each) of the report zip at `path`, decrypted as a
    stream, in lists of `size` rows."""
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
            batches = _json_batches(text, size) if file_type == "json" else _csv_batches(text, size)
            for batch in batches:
                n += len(batch)
                yield batch
        except (*_BAD_ZIP, zlib.error, RuntimeError, EOFError, UnicodeDecodeError, OSError) as exc:
            raise ContentError(f"zip stream broken after row {n}: {exc}") from None
        except csv.Error as exc:
            raise ContentError(f"csv: {exc} (after row {n})") from None


def iter_row_json(path: Path, password: str, file_type: str) -> Iterator[str]:
    """Row JSON of the report zip at `path`, one row at a time."""
    for batch in iter_row_batches(path, password, file_type, 1000):
        yield from batch


def iter_rows(path: Path, password: str, file_type: str) -> Iterator[BalanceRow]:
    """Rows of the report zip at `path` as BalanceRow models (tests, tools)."""
    for row in iter_row_json(path, password, file_type):
        yield BalanceRow.model_validate_json(row)


__all__ = [
    "JSON_FIELDS",
    "ContentError",
    "iter_row_batches",
    "iter_row_json",
    "iter_rows",
    "to_row",
    "to_row_json",
]
