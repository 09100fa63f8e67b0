"""The content-fetcher's decision (§6.2): every file of a ready report is downloaded,
decrypted as a stream, published as row batches, then ONE ReportCompleted.

- Per file: download to a temporary file (size limit, SHA-256), read the zip entry
  through pyzipper's decrypting stream (plaintext never on disk), check and encode the
  rows in a worker thread batch by batch (row_encoding.py: the bytes of each
  BalanceRowsBatch, each row held to BalanceRow's rules), publish each batch (seq from
  0, keyed by the request), flush, and record the file as done with its summary.
- A crash mid-file re-publishes that file's batches from seq 0 with the same
  (ref_id, file_name, seq): consumers de-duplicate on it. Files already recorded are
  not published again. The completion is stored then published once (outcome_store).
- Corrupt zip, wrong password, malformed row, a file over the limit or a terminal MKK
  code end in ReportFailed (stage content); file problems also go to the DLQ with the
  reason (InvalidMessage). Transient problems retry later. Never a crash loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.codes import Action
from schemas.events import (
    REPORTS_COMPLETED,
    REPORTS_FAILED,
    BalanceRowsBatch,
    FileSummary,
    ReportCompleted,
    ReportReady,
)
from schemas.mkk import ReportContentRequest, RequestHeader
from services.common.errors import InvalidMessage, RetryLater
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.client import ContentAnswer
from services.common.mkk.hours import seconds_until_open
from services.common.mkk.outcome import MkkTransportError
from services.common.mkk.sender_reference import new_sender_reference
from services.common.mkk.token_cache import TokenUnavailableError
from services.common.mkk.zip_password import zip_password
from services.common.observability.logging import get_logger
from services.common.stores.outcomes import (
    Publish,
    emit_once,
    replay,
    report_failed,
    stable_event_id,
)
from services.common.stores.state import StateStore
from services.content_fetcher.download import TooLarge, save_stream
from services.content_fetcher.parse import ContentError, iter_row_batches
from services.content_fetcher.row_encoding import EncodedRowsBatch, encode_batch

log = get_logger(__name__)

SCOPE = "report-content"

Fetch = Callable[[ReportContentRequest, str, str], AbstractAsyncContextManager[ContentAnswer]]


class BatchSink:
    async def send(self, batch: EncodedRowsBatch) -> int:  # pragma: no cover - protocol
        raise NotImplementedError

    async def flush(self) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass
class FetcherDeps:
    state: StateStore
    publish: Publish
    fetch: Fetch  # (request, member, sender) -> async context manager of ContentAnswer
    rows: BatchSink
    zip_secret: str
    batch_size: int = 1000
    max_file_bytes: int = 2 * 1024**3
    tmp_dir: Path | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=2.0, cap_s=60.0))
    service_hours: bool = True
    max_attempts: int = 30


async def _batches(rows: Iterator[list[str]]) -> AsyncIterator[list[str]]:
    """Parse and check in a worker thread, one batch at a time: the loop stays free."""
    while True:
        batch: list[str] = await asyncio.to_thread(next, rows, [])
        if not batch:
            return
        yield batch


async def _publish_file(
    ev: ReportReady, file_name: str, path: Path, deps: FetcherDeps
) -> tuple[int, int]:
    password = zip_password(deps.zip_secret, ev.member, ev.request_id)
    rows = iter_row_batches(path, password, ev.file_type, deps.batch_size)
    seq = first = 0
    async for batch in _batches(rows):
        envelope = BalanceRowsBatch(
            event_id=stable_event_id("rows", ev.ref_id, file_name, str(seq)),
            request_id=ev.request_id,
            member=ev.member,
            ref_id=ev.ref_id,
            file_name=file_name,
            seq=seq,
            first_row=first,
            rows=[],
            correlation_id=ev.correlation_id,
        )
        await deps.rows.send(encode_batch(envelope, batch))
        seq += 1
        first += len(batch)
    await deps.rows.flush()
    return first, seq


async def _fetch_file(
    ev: ReportReady, file_name: str, attempt: int, deps: FetcherDeps, key: str
) -> dict[str, Any]:
    req = ReportContentRequest(
        request_header=RequestHeader(
            sender_reference=new_sender_reference("CT"), sender_member=ev.member, sender=ev.sender
        ),
        ref_id=ev.ref_id,
        file_name=file_name,
    )
    t0 = time.monotonic()
    async with deps.fetch(req, ev.member, ev.sender) as answer:
        if answer.response is None:
            out = answer.outcome
            if out.action is Action.TERMINAL:  # RP018 (expired refId), BS040, RP025 ...
                await emit_once(
                    deps.state, SCOPE, key, REPORTS_FAILED,
                    report_failed(ev, "content", out.code, out.description), deps.publish,
                )  # fmt: skip
                raise _Ended()
            raise RetryLater(
                f"content {out.code}: {out.description}", deps.backoff.delay(attempt + 1)
            )
        try:
            saved = await save_stream(answer.response, deps.tmp_dir, deps.max_file_bytes)
        except TooLarge as exc:
            await _content_failed(ev, deps, key, "KOPRU_TOO_LARGE", f"{file_name}: {exc}")
            raise AssertionError("unreachable") from None
    t1 = time.monotonic()
    try:
        rows, batches = await _publish_file(ev, file_name, saved.path, deps)
    except ContentError as exc:
        await _content_failed(ev, deps, key, "KOPRU_BAD_CONTENT", f"{file_name}: {exc}")
        raise AssertionError("unreachable") from None
    finally:
        saved.path.unlink(missing_ok=True)
    t2 = time.monotonic()
    log.info("file published", request=key, file=file_name, rows=rows, batches=batches)
    return {
        "summary": FileSummary(
            file_name=file_name,
            rows=rows,
            batches=batches,
            zip_bytes=saved.size,
            zip_sha256=saved.sha256,
        ).model_dump(mode="json"),
        "download_s": t1 - t0,
        "publish_s": t2 - t1,
    }


class _Ended(Exception):
    """The request already ended (terminal event stored and published)."""


async def _content_failed(
    ev: ReportReady, deps: FetcherDeps, key: str, code: str, reason: str
) -> None:
    log.error("report content unusable", request=key, code=code, reason=reason)
    await emit_once(
        deps.state,
        SCOPE,
        key,
        REPORTS_FAILED,
        report_failed(ev, "content", code, reason),
        deps.publish,
    )
    raise InvalidMessage(f"{code}: {reason}")  # the ReportReady goes to the DLQ with the reason


async def handle_ready(ev: ReportReady, attempt: int, deps: FetcherDeps) -> None:
    key = f"{ev.member}:{ev.request_id}"
    rec = await deps.state.get(SCOPE, key) or {"files": {}}
    if rec.get("outcome") is not None:
        await replay(deps.state, SCOPE, key, deps.publish)
        return
    if deps.service_hours:
        wait = seconds_until_open()
        if wait > 0:  # §8 group 4: content 01:00-23:00 Istanbul
            raise RetryLater("outside MKK service hours (§8)", wait)
    try:
        await _fetch_all(ev, attempt, deps, key, rec)
    except RetryLater as exc:
        if isinstance(exc, TokenUnavailableError) or attempt + 1 < deps.max_attempts:
            raise
        await emit_once(
            deps.state, SCOPE, key, REPORTS_FAILED,
            report_failed(ev, "content", "KOPRU_GAVE_UP",
                          f"gave up after {attempt + 1} attempts: {exc.reason}"),
            deps.publish,
        )  # fmt: skip


async def _fetch_all(
    ev: ReportReady, attempt: int, deps: FetcherDeps, key: str, rec: dict[str, Any]
) -> None:
    files: dict[str, Any] = rec.setdefault("files", {})
    for name in ev.file_names:
        if name in files:
            continue  # its batches are all on Kafka already
        try:
            files[name] = await _fetch_file(ev, name, attempt, deps, key)
        except _Ended:
            return
        except MkkTransportError as exc:
            raise RetryLater(f"content: {exc}", deps.backoff.delay(attempt + 1)) from None
        await deps.state.put(SCOPE, key, rec)
    summaries = [FileSummary.model_validate(files[n]["summary"]) for n in ev.file_names]
    done = ReportCompleted(
        event_id=stable_event_id("completed", ev.member, ev.request_id),
        request_id=ev.request_id,
        member=ev.member,
        ref_id=ev.ref_id,
        files=summaries,
        total_rows=sum(s.rows for s in summaries),
        durations_s={
            "mkk_prepare": (ev.occurred_at - ev.submitted_at).total_seconds(),
            "download": sum(float(files[n]["download_s"]) for n in ev.file_names),
            "publish": sum(float(files[n]["publish_s"]) for n in ev.file_names),
        },
        correlation_id=ev.correlation_id,
    )
    await emit_once(deps.state, SCOPE, key, REPORTS_COMPLETED, done, deps.publish, rec)
