"""Report pipeline: a 1,000,000-row report through the content-fetcher, and reports/s
through the whole pipeline next to the machine's RSA-4096 signing bound.

Everything real: the local broker, the MKK sandbox and the four services as separate
processes (`kopru run ...`), a SQLite store.

Part 1, throughput of one big report (csv, 1M rows): rows/s from the start of the
download to the last batch published (the content-fetcher's own durations in
ReportCompleted) and the content-fetcher's peak RSS (VmHWM); next to a bare script on
the same zip file: pyzipper + csv parser + a raw aiokafka producer (1000-row JSON
batches), in this process. Ratio = kopru / bare.

Part 2, small reports through everything (request -> balance-report -> polls ->
content -> rows -> completed): reports/s, next to the signing bound: RSA-4096 signs/s
on all cores divided by the signed calls each report needed (from the sandbox log).

Run: `python -m bench reports` (KOPRU_BENCH_REPORT_ROWS, KOPRU_BENCH_REPORTS to scale).
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
from concurrent.futures import ThreadPoolExecutor
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


async def bare_script(path: Path, password: str, bootstrap: str) -> tuple[int, float]:
    """pyzipper + csv + raw aiokafka producer, 1000-row JSON batches, on the same zip."""
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
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            header = next(reader)
            batch: list[dict[str, str]] = []
            for values in reader:
                batch.append(dict(zip(header, values, strict=True)))
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
    return rows, elapsed


def signing_rate(key_path: Path) -> float:
    signer = JwsSigner(load_private_key(key_path))
    body = b'{"requestHeader":{"senderReference":"x","senderMember":"TIB","sender":"TIB991"}}'
    workers = len(os.sched_getaffinity(0))
    n = 40 * workers
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: signer.sign(body), range(n)))
    return n / (time.perf_counter() - t0)


async def part_big(tmp: Path) -> None:
    async with LocalBroker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await create_topics(kafka, with_config=False)
        stack = Stack(tmp, broker.bootstrap_servers, ROWS, batch=2000)
        try:
            await stack.start()
            ev = ReportRequested(request_id="big-1", member="TIB", sender="TIB991",
                                 process_date=date(2025, 5, 5), file_type="csv")  # fmt: skip
            t0 = time.perf_counter()
            await publish_request(kafka, ev)
            done = await _completions(broker.bootstrap_servers, 1, 600)
            total = time.perf_counter() - t0
            fetcher_pid = stack.procs["content-fetcher"].pid
            rss = _peak_rss_mb(fetcher_pid)
            if not done:
                print("  big report did not complete")
                return
            c = done[0]
            work = c.durations_s["download"] + c.durations_s["publish"]
            rate = c.total_rows / work
            zips = list((tmp / "sandbox" / "reports").glob(f"{c.ref_id}/*.zip"))
            pw = zip_password(ZIP_KEY, "TIB", "big-1")
            bare_rows, bare_s = await bare_script(zips[0], pw, broker.bootstrap_servers)
            bare_rate = bare_rows / bare_s
            print(f"  1 report, {c.total_rows:,} rows csv, zip {c.files[0].zip_bytes / 1e6:.1f} MB")
            print(f"  request to completion: {total:.1f} s (MKK preparing: "
                  f"{c.durations_s['mkk_prepare']:.1f} s)")  # fmt: skip
            print(f"  kopru content-fetcher: download {c.durations_s['download']:.2f} s + "
                  f"decrypt/parse/publish {c.durations_s['publish']:.2f} s = {rate:,.0f} rows/s; "
                  f"peak RSS {rss:.0f} MB")  # fmt: skip
            print(f"  bare script (pyzipper + csv + raw aiokafka, same zip): "
                  f"{bare_rate:,.0f} rows/s")  # fmt: skip
            print(f"  ratio kopru / bare: {rate / bare_rate:.2f}")
        finally:
            stack.stop()


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


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kopru-bench-") as d:
        (Path(d) / "many").mkdir()
        (Path(d) / "big").mkdir()
        print("-- reports/s through the whole pipeline --", flush=True)
        asyncio.run(part_many(Path(d) / "many"))
        print(f"-- one {ROWS:,}-row report --", flush=True)
        asyncio.run(part_big(Path(d) / "big"))


if __name__ == "__main__":
    main()
