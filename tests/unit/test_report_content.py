"""Content-fetcher parts with real zips (pyzipper AES, as the sandbox and MKK write
them): streaming json and csv parsing, wrong password, corrupt zip, malformed rows,
and the handler's one completion with batches keyed for de-duplication."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyzipper

from schemas.events import BalanceRowsBatch, ReportCompleted, ReportFailed, ReportReady
from schemas.mkk import ReportContentRequest
from services.common.errors import InvalidMessage, RetryLater
from services.common.mkk.client import ContentAnswer
from services.common.mkk.outcome import MkkOutcome
from services.common.mkk.zip_password import zip_password
from services.common.stores.state import MemoryStateStore
from services.content_fetcher.handler import FetcherDeps, handle_ready
from services.content_fetcher.parse import ContentError, iter_rows
from services.content_fetcher.row_encoding import EncodedRowsBatch
from services.sandbox.mkk.config import LedgerConfig
from services.sandbox.mkk.content import write_report_zip
from services.sandbox.mkk.ledger import Ledger

PW = "K7SECRET9PASSWORD"


def _zip(tmp: Path, file_type: str, rows: int, password: str = PW, delim: str = ",") -> Path:
    ledger = Ledger(LedgerConfig(rows=rows))
    path = tmp / f"r_{file_type}_{rows}.zip"
    write_report_zip(path, f"r.{file_type}", ledger.rows("TIB", "20250505", {}),
                     file_type=file_type, password=password.encode(), delimiter=delim)  # fmt: skip
    return path


def _raw_zip(tmp: Path, text: str, name: str = "r.json") -> Path:
    path = tmp / "raw.zip"
    with pyzipper.AESZipFile(path, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as zf:  # fmt: skip
        zf.setpassword(PW.encode())
        zf.writestr(name, text)
    return path


@pytest.mark.parametrize("file_type", ["json", "csv"])
def test_rows_stream_out_with_types(tmp_path: Path, file_type: str) -> None:
    rows = list(iter_rows(_zip(tmp_path, file_type, 5000), PW, file_type))
    assert len(rows) == 5000
    first = rows[0]  # §5.1.3 sample position is row 0
    assert first.balance_date == date(2025, 5, 5)
    assert (first.member, first.account, first.sub_account, first.isin) == (
        "TIB", "1", "SERB", "TRAGARAN91N1",
    )  # fmt: skip
    assert isinstance(first.balance, Decimal)
    assert all(r.add_def_code in (None, "TMN") for r in rows)


def test_csv_semicolon_delimiter(tmp_path: Path) -> None:
    assert len(list(iter_rows(_zip(tmp_path, "csv", 50, delim=";"), PW, "csv"))) == 50


def test_wrong_password(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="decrypt"):
        list(iter_rows(_zip(tmp_path, "csv", 10), "K7WRONG1PASSWORD", "csv"))


def test_corrupt_zip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip at all" * 10)
    with pytest.raises(ContentError, match="corrupt"):
        list(iter_rows(bad, PW, "json"))


def test_truncated_zip(tmp_path: Path) -> None:
    good = _zip(tmp_path, "json", 2000).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ContentError):
        list(iter_rows(cut, PW, "json"))


def test_malformed_row_names_the_row(tmp_path: Path) -> None:
    text = (
        '[{"balanceDate":"20250505","mbrId":"TIB","mbrAccNo":"1","subAccCode":"SERB",'
        '"secClassCode":"HS","mic":"XIST","isin":"TRAGARAN91N1","addDefCode":"",'
        '"balanceAmount":1.5},\n{"balanceDate":"2025","mbrId":"TIB"}]'
    )
    with pytest.raises(ContentError, match="row 2"):
        list(iter_rows(_raw_zip(tmp_path, text), PW, "json"))


def test_json_rows_across_chunk_boundaries(tmp_path: Path) -> None:
    row = ('{"balanceDate":"20250505","mbrId":"TIB","mbrAccNo":"%d","subAccCode":"SERB",'
           '"secClassCode":"HS","mic":"XIST","isin":"TRAGARAN91N1","addDefCode":"%s",'
           '"balanceAmount":12.345}')  # fmt: skip
    text = "[" + ",".join(row % (i, "X" * (i % 30)) for i in range(3000)) + "]"
    rows = list(iter_rows(_raw_zip(tmp_path, text), PW, "json"))
    assert [r.account for r in rows] == [str(i) for i in range(3000)]
    assert rows[5].balance == Decimal("12.345")


class Sink:
    def __init__(self) -> None:
        self.batches: list[BalanceRowsBatch] = []

    async def send(self, batch: EncodedRowsBatch) -> int:
        event = batch.decode()  # the bytes are a valid BalanceRowsBatch ...
        assert event.model_dump_json().encode() == batch.data  # ... exactly pydantic's
        assert event.model_copy(update={"rows": []}) == batch.envelope
        self.batches.append(event)
        return len(batch.data)

    async def flush(self) -> None:
        return None


def _ready(files: list[str]) -> ReportReady:
    now = datetime.now(UTC)
    return ReportReady(request_id="r-1", member="TIB", sender="TIB991", ref_id="REF",
                       file_type="csv", file_names=files, polls=2, submitted_at=now)  # fmt: skip


def _deps(
    tmp: Path, serve: dict[str, bytes | MkkOutcome], sink: Sink, published: list[Any]
) -> FetcherDeps:
    @asynccontextmanager
    async def fetch(
        req: ReportContentRequest, member: str, sender: str
    ) -> AsyncIterator[ContentAnswer]:
        what = serve[req.file_name]
        if isinstance(what, MkkOutcome):
            yield ContentAnswer(what)
            return
        resp = httpx.Response(200, stream=httpx.ByteStream(what))
        yield ContentAnswer(MkkOutcome.from_code("0000", 200), resp)

    async def publish(spec: Any, event: Any) -> None:
        published.append(event)

    return FetcherDeps(state=MemoryStateStore(), publish=publish, fetch=fetch, rows=sink,  # type: ignore[arg-type]
                       zip_secret="zk", batch_size=100, tmp_dir=tmp / "dl",
                       service_hours=False, max_attempts=3)  # fmt: skip


async def test_handler_publishes_batches_then_one_completion(tmp_path: Path) -> None:
    pw = zip_password("zk", "TIB", "r-1")
    data = {f"MKK_RP166_{i}.zip": _zip(tmp_path, "csv", 250 + i, pw).read_bytes() for i in (1, 2)}
    sink, published = Sink(), []
    deps = _deps(tmp_path, dict(data), sink, published)
    ev = _ready(list(data))
    await handle_ready(ev, 0, deps)
    await handle_ready(ev, 0, deps)  # redelivered: no second completion, no new batches
    [done] = published
    assert isinstance(done, ReportCompleted) and done.total_rows == 251 + 252
    assert [f.rows for f in done.files] == [251, 252]
    keys = [(b.ref_id, b.file_name, b.seq) for b in sink.batches]
    assert len(keys) == len(set(keys)) == 6
    assert sum(len(b.rows) for b in sink.batches) == 503
    assert all(b.kafka_key() == b"TIB:r-1" for b in sink.batches)
    assert not list((tmp_path / "dl").iterdir())  # the encrypted zip is gone too


async def test_handler_wrong_password_fails_and_dead_letters(tmp_path: Path) -> None:
    data = {"MKK_RP166_1.zip": _zip(tmp_path, "csv", 20, "K7OTHER1PASSWORD").read_bytes()}
    sink, published = Sink(), []
    with pytest.raises(InvalidMessage, match="KOPRU_BAD_CONTENT"):
        await handle_ready(_ready(list(data)), 0, _deps(tmp_path, dict(data), sink, published))
    [failed] = published
    assert isinstance(failed, ReportFailed) and failed.stage == "content"


async def test_handler_expired_ref_id_fails(tmp_path: Path) -> None:
    serve: dict[str, bytes | MkkOutcome] = {"MKK_RP166_1.zip": MkkOutcome.from_code("RP018", 422)}
    sink, published = Sink(), []
    await handle_ready(_ready(list(serve)), 0, _deps(tmp_path, serve, sink, published))
    [failed] = published
    assert isinstance(failed, ReportFailed) and failed.code == "RP018"


__all__ = ["io"]


def test_field_rules_are_checked(tmp_path: Path) -> None:
    text = (
        '[{"balanceDate":"20250505","mbrId":"TIB","mbrAccNo":"1","subAccCode":"SERB",'
        '"secClassCode":"HS","mic":"XIST","isin":"TRAGARAN91N1XX","addDefCode":"",'
        '"balanceAmount":"NaN"}]'
    )
    with pytest.raises(ContentError, match="row 1"):
        list(iter_rows(_raw_zip(tmp_path, text), PW, "json"))


async def test_handler_gives_up_after_max_attempts(tmp_path: Path) -> None:
    serve: dict[str, bytes | MkkOutcome] = {"MKK_RP166_1.zip": MkkOutcome.from_code("OI003", 500)}
    sink, published = Sink(), []
    deps = _deps(tmp_path, serve, sink, published)
    with pytest.raises(RetryLater):
        await handle_ready(_ready(list(serve)), 0, deps)
    await handle_ready(_ready(list(serve)), 2, deps)
    [failed] = published
    assert isinstance(failed, ReportFailed) and failed.code == "KOPRU_GAVE_UP"
