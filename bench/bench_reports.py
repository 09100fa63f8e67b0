"""Report pipeline: a 1,000,000-row report through the content-fetcher, and reports/s
through the whole pipeline next to the machine's RSA-4096 signing bound.

Everything real: the local broker, the MKK sandbox and the four services as separate
processes (`kopru run ...`), a SQLite store.

Part 1, throughput of one big report, csv and json (1M rows): rows/s from the start of
the download to the last batch published (the content-fetcher's own durations in
ReportCompleted) and the content-fetcher's peak RSS (VmHWM), also at 100k rows to show
it flat; next to a bare script on the same zip file: pyzipper + csv / json + a raw
aiokafka producer (1000-row JSON batches), in this process. Ratio = kopru / bare. Each
report runs on a fresh broker and stack, the bare script on a fresh broker.

Part 2, small reports through everything (request -> balance-report -> polls ->
content -> rows -> completed): reports/s, next to the signing bound: RSA-4096 signs/s
on all cores divided by the signed calls each report needed (from the sandbox log).

Run: `python -m bench reports` (KOPRU_BENCH_REPORT_ROWS, KOPRU_BENCH_REPORTS to scale,
KOPRU_BENCH_REPORT_PARTS=big or many for one part).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pyzipper
from aiokafka import AIOKafkaProducer

from schemas.events import REPORTS_COMPLETED, ReportCompleted, ReportRequested
from services.cli.report import publish_request
from services.common.kafka.local_broker import LocalBroker, free_port
from services.common.kafka.topic_admin import create_topics
from services.common.mkk.zip_password import zip_password
from services.common.settings import KafkaSettings
from services.common.signing.jws import JwsSigner
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys, load_private_key

ROWS = int(os.environ.get("KOPRU_BENCH_REPORT_ROWS", "1000000"))
REPORTS = int(os.environ.get("KOPRU_BENCH_REPORTS", "100"))
ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("auth-token", "report-requester", "status-poller", "content-fetcher")
ZIP_KEY = "bench-zip-key"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack:
    """Sandbox + four services as processes, against a running local broker."""

    def __init__(self, tmp: Path, bootstrap: str, ledger_rows: int, batch: int) -> None:
        self.tmp, self.bootstrap = tmp, bootstrap
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        cfg = tmp / "mkk.yaml"
        cfg.write_text(
            "durations: {rp020_s: 0.1, rp021_s: 0.1, rp022_s: 0.1, rp023_s: 0.1}\n"
            f"ledger: {{rows: {ledger_rows}}}\nreport_lock: 'off'\n"
        )
        self.keys = ensure_demo_keys(tmp / "sandbox")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._spawn("sandbox", ["sandbox", "mkk", "--port", str(port), "--state-dir",
                                str(tmp / "sandbox"), "--config", str(cfg)], {})  # fmt: skip
        pw = tmp / "pw"
        pw.write_text(DEMO_PASSWORD)
        self.env = {
            "KOPRU_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
            "KOPRU_KAFKA__FETCH_MAX_WAIT_MS": "100",
            "KOPRU_STORE__URL": f"sqlite:///{tmp / 'kopru.db'}",
            "KOPRU_LOG__LEVEL": "WARNING",
            "KOPRU_LOG__FORMAT": "json",
            "KOPRU_MKK__BASE_URL": self.url,
            "KOPRU_MKK__SERVICE_HOURS": "false",
            "KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE": str(self.keys.member_key),
            "KOPRU_MKK_SIGNING__MKK_CERTIFICATE_FILE": str(self.keys.mkk_certificate),
            "KOPRU_MKK_AUTH__PASSWORD_FILE": str(pw),
            "KOPRU_PIPELINE__ZIP_KEY": ZIP_KEY,
            "KOPRU_POLLER__BACKOFF_BASE_S": "0.5",
            "KOPRU_POLLER__BACKOFF_CAP_S": "1",
            "KOPRU_FETCHER__BATCH_SIZE": str(batch),
            "KOPRU_FETCHER__TMP_DIR": str(tmp / "fetch"),
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    async def start(self) -> None:
        for _ in range(300):
            try:
                if httpx.get(self.url + "/_sandbox/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        ports = {}
        for name in SERVICES:
            ports[name] = free_port()
            self._spawn(name, ["run", name], {**self.env, "KOPRU_HTTP__PORT": str(ports[name])})
        async with httpx.AsyncClient() as client:
            for port in ports.values():
                for _ in range(600):
                    try:
                        r = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                        if r.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # consumer groups joined

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def mkk_calls(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.url + "/_sandbox/requests", timeout=30).json()["requests"])


async def _completions(bootstrap: str, n: int, timeout_s: float) -> list[ReportCompleted]:
    from tests.kafka_tools import read_topic

    recs = await read_topic(bootstrap, REPORTS_COMPLETED.name, expect=n, timeout_s=timeout_s)
    return [ReportCompleted.model_validate_json(r.value) for r in recs]


def _bare_rows_csv(text: io.TextIOWrapper) -> Iterator[dict[str, str]]:
    reader = csv.reader(text)
    header = next(reader)
    for values in reader:
        yield dict(zip(header, values, strict=True))


def _bare_rows_json(text: io.TextIOWrapper) -> Iterator[dict[str, Any]]:
    # The sandbox writes one row object per line: the simplest streaming reader there is.
    for line in text:
        line = line.strip().rstrip(",")
        if line.startswith("{"):
            yield json.loads(line)


async def bare_script(path: Path, password: str, bootstrap: str, file_type: str) -> float:
    """pyzipper + csv / json + raw aiokafka producer, 1000-row JSON batches: rows/s."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1_000_000
    )
    await producer.start()
    t0 = time.perf_counter()
    rows = 0
    futs = []
    with pyzipper.AESZipFile(path) as zf:
        zf.setpassword(password.encode())
        name = zf.namelist()[0]
        with zf.open(name) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            source = _bare_rows_csv(text) if file_type == "csv" else _bare_rows_json(text)
            batch: list[dict[str, Any]] = []
            for row in source:
                batch.append(row)
                if len(batch) == 1000:
                    futs.append(await producer.send("bench.bare", json.dumps(batch).encode()))
                    rows += len(batch)
                    batch = []
                    if len(futs) >= 500:
                        await asyncio.gather(*futs)
                        futs = []
            if batch:
                futs.append(await producer.send("bench.bare", json.dumps(batch).encode()))
                rows += len(batch)
    await asyncio.gather(*futs)
    elapsed = time.perf_counter() - t0
    await producer.stop()
    return rows / elapsed


def signing_rate(key_path: Path) -> float:
    signer = JwsSigner(load_private_key(key_path))
    body = b'{"requestHeader":{"senderReference":"x","senderMember":"TIB","sender":"TIB991"}}'
    workers = len(os.sched_getaffinity(0))
    n = 40 * workers
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: signer.sign(body), range(n)))
    return n / (time.perf_counter() - t0)


@dataclass
class BigRun:
    file_type: str
    rows: int
    rate: float  # rows/s, download + decrypt/parse/publish, from ReportCompleted
    peak_rss_mb: float
    zip_mb: float
    zip_path: Path
    password: str


async def _big_run(tmp: Path, rows: int, file_type: str) -> BigRun:
    """One report of `rows` rows through a fresh broker and a fresh stack."""
    tmp.mkdir(parents=True)
    async with LocalBroker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await create_topics(kafka, with_config=False)
        stack = Stack(tmp, broker.bootstrap_servers, rows, batch=2000)
        try:
            await stack.start()
            request_id = f"big-{rows}-{file_type}"
            ev = ReportRequested(request_id=request_id, member="TIB", sender="TIB991",
                                 process_date=date(2025, 5, 5), file_type=file_type)  # fmt: skip
            await publish_request(kafka, ev)
            done = await _completions(broker.bootstrap_servers, 1, 600)
            if not done:
                raise RuntimeError(f"{file_type} report of {rows:,} rows did not complete")
            c = done[0]
            work = c.durations_s["download"] + c.durations_s["publish"]
            zips = list((tmp / "sandbox" / "reports").glob(f"{c.ref_id}/*.zip"))
            return BigRun(file_type, c.total_rows, c.total_rows / work,
                          _peak_rss_mb(stack.procs["content-fetcher"].pid),
                          c.files[0].zip_bytes / 1e6, zips[0],
                          zip_password(ZIP_KEY, "TIB", request_id))  # fmt: skip
        finally:
            stack.stop()


async def part_big(tmp: Path) -> None:
    """Each report on a fresh broker and stack; the bare script on a fresh broker too
    (a broker holding earlier runs' rows is slower to write to)."""
    small_rows = max(1, ROWS // 10)
    for file_type in ("csv", "json"):
        small = await _big_run(tmp / f"small-{file_type}", small_rows, file_type)
        big = await _big_run(tmp / f"large-{file_type}", ROWS, file_type)
        async with LocalBroker() as broker:
            bare = await bare_script(
                big.zip_path, big.password, broker.bootstrap_servers, big.file_type
            )
        print(f"  {big.file_type:4} {big.rows:,} rows (zip {big.zip_mb:.1f} MB): "
              f"content-fetcher {big.rate:,.0f} rows/s, bare script {bare:,.0f} rows/s, "
              f"ratio {big.rate / bare:.2f} (target >= 0.80); "
              f"peak RSS {big.peak_rss_mb:.0f} MB "
              f"(target <= 60), {small.rows:,} rows {small.peak_rss_mb:.0f} MB, "
              f"RSS ratio {big.peak_rss_mb / small.peak_rss_mb:.2f} (target <= 1.20)",
              flush=True)  # fmt: skip
    load = os.getloadavg()
    print(f"  load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"on {len(os.sched_getaffinity(0))} cores")  # fmt: skip


async def _publish_many(bootstrap: str, reqs: list[ReportRequested]) -> None:
    from schemas.events import REPORTS_REQUESTED
    from services.common.kafka.broker import encode_event

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futs = [
            await producer.send(REPORTS_REQUESTED.name, encode_event(REPORTS_REQUESTED, r),
                                key=r.kafka_key(), headers=[("x-event-type", b"ReportRequested")])
            for r in reqs
        ]  # fmt: skip
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def part_many(tmp: Path) -> None:
    async with LocalBroker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await create_topics(kafka, with_config=False)
        stack = Stack(tmp, broker.bootstrap_servers, 50, batch=1000)
        try:
            await stack.start()
            reqs = [
                ReportRequested(request_id=f"many-{i}", member="TIB", sender="TIB991",
                                process_date=date(2025, 5, 5), file_type="json" if i % 2 else "csv")
                for i in range(REPORTS)
            ]  # fmt: skip
            t0 = time.perf_counter()
            await _publish_many(broker.bootstrap_servers, reqs)
            done = await _completions(broker.bootstrap_servers, REPORTS, 300)
            elapsed = time.perf_counter() - t0
            signed = [c for c in stack.mkk_calls() if c["endpoint"] != "auth"]
        finally:
            stack.stop()
    per_report = len(signed) / max(1, len(done))
    rate = signing_rate(stack.keys.member_key)  # measured with the pipeline stopped
    print(f"  {len(done)}/{REPORTS} small reports through the pipeline in {elapsed:.1f} s: "
          f"{len(done) / elapsed:.2f} reports/s")  # fmt: skip
    print(f"  signed MKK calls per report: {per_report:.1f} (balance-report, polls, content)")
    print(f"  RSA-4096 signing on {len(os.sched_getaffinity(0))} cores: {rate:.0f} signs/s "
          f"-> bound {rate / per_report:.1f} reports/s; pipeline at "
          f"{(len(done) / elapsed) / (rate / per_report):.0%} of it")  # fmt: skip


PARTS = os.environ.get("KOPRU_BENCH_REPORT_PARTS", "many,big").split(",")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kopru-bench-") as d:
        (Path(d) / "many").mkdir()
        (Path(d) / "big").mkdir()
        if "many" in PARTS:
            print("-- reports/s through the whole pipeline --", flush=True)
            asyncio.run(part_many(Path(d) / "many"))
        if "big" in PARTS:
            print(f"-- one {ROWS:,}-row report, csv and json, next to a bare script "
                  "(baseline 2026-11-29, csv: 78,279 rows/s, ratio 0.32, 97 MB) --",
                  flush=True)  # fmt: skip
            asyncio.run(part_big(Path(d) / "big"))


if __name__ == "__main__":
    main()
