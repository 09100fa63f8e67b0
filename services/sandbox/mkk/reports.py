"""Report lifecycle (§5.1, §6.1, §6.2): refIds, statuses over sandbox time, files.

A balance-report request creates a `Report` and starts writing its zip in a worker
thread at once. Its status walks RP020 → RP021 → RP022 → RP023 over the configured
durations (sandbox clock), stays RP023 while the file is still being written, then
ends in 0000 with fileNames, RP026 when no row matched, or RP025 when a fault was
injected or writing failed. After 24 h (sandbox time) the refId is unknown: RP018.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import string
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from schemas.codes import PENDING_REPORT_CODES
from services.sandbox.mkk.config import Durations, LedgerConfig
from services.sandbox.mkk.content import write_report_zip
from services.sandbox.mkk.hours import ISTANBUL
from services.sandbox.mkk.ledger import Ledger

REF_ID_ALPHABET = string.ascii_letters + string.digits
REF_ID_LENGTH = 20  # as in §5.1.6 "e7M7RhX2xUzR3uAjsb2s"


def new_ref_id() -> str:
    return "".join(secrets.choice(REF_ID_ALPHABET) for _ in range(REF_ID_LENGTH))


@dataclass
class Report:
    ref_id: str
    member: str
    created: float  # sandbox epoch seconds
    file_type: str
    process_date: str
    filters: dict[str, str]
    function: str  # RP013 (today) or RP166 (a past date), §5.1.1
    file_names: list[str]
    directory: Path
    fail: bool = False
    builds: list[Future[int]] = field(default_factory=list)

    def path(self, file_name: str) -> Path:
        return self.directory / file_name

    def built(self) -> bool:
        return all(f.done() for f in self.builds)

    def failed(self) -> bool:
        return self.fail or any(f.cancelled() or f.exception() for f in self.builds if f.done())

    def row_count(self) -> int | None:
        """Rows written over all files, once every file is complete."""
        if not self.built() or self.failed():
            return None
        return sum(f.result() for f in self.builds)

    def status(self, now: float, durations: Durations) -> str:
        """The §6.1.7 code of this report at sandbox time `now` (RP018 once expired)."""
        elapsed = now - self.created
        if elapsed >= durations.ref_id_ttl_s:
            return "RP018"
        bounds = (durations.rp020_s, durations.rp021_s, durations.rp022_s, durations.rp023_s)
        edge = 0.0
        for code, span in zip(PENDING_REPORT_CODES, bounds, strict=True):
            edge += span
            if elapsed < edge:
                return code
        if self.failed():
            return "RP025"
        if not self.built():
            return "RP023"
        return "RP026" if not self.row_count() else "0000"


class ReportStore:
    def __init__(self, root: Path, ledger_config: LedgerConfig) -> None:
        self.root = root
        self.ledger = Ledger(ledger_config)
        self.reports: dict[str, Report] = {}
        self._cancel = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mkk-report")
        shutil.rmtree(self.root, ignore_errors=True)

    def create(
        self,
        *,
        member: str,
        now: float,
        file_type: str,
        zip_password: bytes,
        process_date: str,
        filters: dict[str, str],
        today: dt.date,
        fail: bool,
    ) -> Report:
        ref_id = new_ref_id()
        while ref_id in self.reports:
            ref_id = new_ref_id()
        function = "RP013" if process_date == today.strftime("%Y%m%d") else "RP166"
        stamp = dt.datetime.fromtimestamp(now, ISTANBUL).strftime("%Y%m%d%H%M%S")
        parts = self.ledger.config.files_per_report
        stems = [f"MKK_{function}_{stamp}" + (f"_{p + 1}" if p else "") for p in range(parts)]
        report = Report(
            ref_id=ref_id,
            member=member,
            created=now,
            file_type=file_type,
            process_date=process_date,
            filters=dict(filters),
            function=function,
            file_names=[s + ".zip" for s in stems],
            directory=self.root / ref_id,
            fail=fail,
        )
        self.reports[ref_id] = report
        if not fail:
            report.builds = [
                self._pool.submit(self._build, report, stem, part, zip_password)
                for part, stem in enumerate(stems)
            ]
        return report

    def _build(self, report: Report, stem: str, part: int, password: bytes) -> int:
        rows = self.ledger.rows(
            report.member,
            report.process_date,
            report.filters,
            files=len(report.file_names),
            part=part,
        )
        return write_report_zip(
            report.path(stem + ".zip"),
            f"{stem}.{report.file_type}",
            rows,
            file_type=report.file_type,
            password=password,
            delimiter=self.ledger.config.csv_delimiter,
            cancel=self._cancel,
        )

    def get(self, ref_id: str) -> Report | None:
        return self.reports.get(ref_id)

    def in_progress(self, now: float, durations: Durations, member: str | None) -> bool:
        return any(
            r.status(now, durations) in PENDING_REPORT_CODES
            for r in self.reports.values()
            if member is None or r.member == member
        )

    def reset(self) -> None:
        """Forget every report and delete its files (writers still running stop early)."""
        self._cancel.set()
        for report in self.reports.values():
            for f in report.builds:
                f.cancel()
        for report in self.reports.values():
            for f in report.builds:
                if not f.cancelled():
                    f.exception()  # wait for the writer to stop
        self.reports.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        self._cancel = threading.Event()

    def close(self) -> None:
        self._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
