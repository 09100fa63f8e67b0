"""Report files: a zip holding one json or csv entry, AES-256 encrypted with the
request's zipPassword (§5.1.2, §6.2.6), written streaming to disk.

Rows go through a small text buffer into pyzipper's entry stream, which deflates and
encrypts chunk by chunk: memory stays flat whatever the number of rows. The file is
written under a temporary name and renamed when complete, so a download never sees a
partial zip and repeated downloads are byte-identical.

The json entry is a JSON array with one row object per line; the csv entry has the
§5.1.6 column names as its header line.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyzipper

from schemas.mkk import CSV_COLUMNS, JSON_FIELDS
from services.sandbox.mkk.ledger import Row

FLUSH_EVERY = 2000  # rows per write into the zip stream


class Cancelled(Exception):
    """The sandbox was reset while the file was being written."""


# Values come from the synthetic ledger: ASCII letters, digits and '.', never a quote
# or a backslash, so plain formatting yields valid JSON. balanceAmount is a number.
_JSON_ROW = (
    "{" + ",".join(f'"{name}":"%s"' for name in JSON_FIELDS[:-1]) + f',"{JSON_FIELDS[-1]}":%s}}'
)


class _Counter:
    def __init__(self) -> None:
        self.rows = 0


def _csv_chunks(rows: Iterable[Row], delimiter: str, counter: _Counter) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(row)
        counter.rows += 1
        if counter.rows % FLUSH_EVERY == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _json_chunks(rows: Iterable[Row], counter: _Counter) -> Iterator[str]:
    parts: list[str] = ["["]
    sep = "\n"
    for row in rows:
        parts.append(sep + _JSON_ROW % row)
        sep = ",\n"
        counter.rows += 1
        if counter.rows % FLUSH_EVERY == 0:
            yield "".join(parts)
            parts.clear()
    parts.append("\n]\n")
    yield "".join(parts)


def write_report_zip(
    path: Path,
    entry_name: str,
    rows: Iterable[Row],
    *,
    file_type: str,
    password: bytes,
    delimiter: str = ",",
    cancel: threading.Event | None = None,
) -> int:
    """Write the zip at `path` (atomically) and return the number of rows written."""
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    counter = _Counter()
    chunks = (
        _csv_chunks(rows, delimiter, counter) if file_type == "csv" else _json_chunks(rows, counter)
    )
    try:
        with pyzipper.AESZipFile(
            tmp, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
        ) as zf:
            zf.setpassword(password)
            zf.setencryption(pyzipper.WZ_AES, nbits=256)
            with zf.open(entry_name, "w", force_zip64=True) as raw:
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    raw.write(chunk.encode())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counter.rows
