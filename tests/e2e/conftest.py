"""Fixtures of the report pipeline's end-to-end tests: the real local broker, the MKK
sandbox as a real HTTP server (subprocess), the four services (in-process, or as
processes for the kill test). Every fixture here is named report_*."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import (
    REPORTS_COMPLETED,
    REPORTS_FAILED,
    REPORTS_REQUESTED,
    REPORTS_ROWS,
    REPORTS_SUBMITTED,
    Event,
    ReportRequested,
    topic,
)
from services.common.kafka.broker import encode_event
from services.common.kafka.clients import stop_quietly
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.topic_admin import create_topics, plan
from services.common.service import Service
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys
from tests.broker_pool import TEST_ENGINE, Broker
from tests.conftest import broker_settings, local_kafka_settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth-token", "report-requester", "status-poller", "content-fetcher")
SANDBOX_CONFIG = """
durations: {rp020_s: 0.2, rp021_s: 0.2, rp022_s: 0.2, rp023_s: 0.3}
ledger: {rows: 300, accounts: 50, securities: 20}
faults: {seed: 7}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(tmp: Path, config: str = SANDBOX_CONFIG) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cfg = tmp / "mkk.yaml"
    cfg.write_text(config)
    cmd = [sys.executable, "-m", "services.sandbox.mkk", "--port", str(port),
           "--config", str(cfg), "--state-dir", str(tmp / "sandbox"),
           "--log-level", "warning"]  # fmt: skip
    log = (tmp / "sandbox.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((tmp / "sandbox.log").read_text())
        try:
            if httpx.get(url + "/_sandbox/info", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("sandbox did not start")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Watcher:
    """Reads report topics from the beginning (explicit partitions) into memory."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.events: dict[str, list[Event]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        c = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await c.start()
        # Real Kafka creates topics asynchronously: wait until each has its partitions.
        deadline = time.monotonic() + 30
        while True:
            await c._client.force_metadata_update()
            parts = {t: c.partitions_for_topic(t) for t in self.topics}
            if all(parts.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        tps = [TopicPartition(t, p) for t in self.topics for p in sorted(parts[t] or [])]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        self._consumer = c
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                spec = topic(tp.topic)
                for r in records:
                    self.events[tp.topic].append(spec.parse(r.value))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await stop_quietly(self._consumer.stop())

    def terminal(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = defaultdict(list)
        for t in (REPORTS_COMPLETED.name, REPORTS_FAILED.name):
            for ev in self.events[t]:
                out[ev.request_id].append(ev)  # type: ignore[attr-defined]
        return out

    async def wait_terminal(self, ids: list[str], timeout_s: float) -> dict[str, list[Event]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = self.terminal()
            if all(i in done for i in ids):
                await asyncio.sleep(0.5)  # let duplicates (if any) show up
                return self.terminal()
            await asyncio.sleep(0.2)
        done = self.terminal()
        missing = [i for i in ids if i not in done]
        raise AssertionError(f"{len(missing)} requests not finished, e.g. {missing[:5]}")

    def rows_by_request(self) -> dict[str, int]:
        """Rows per request, de-duplicated on (ref_id, file_name, seq)."""
        seen: set[tuple[str, str, int]] = set()
        out: dict[str, int] = defaultdict(int)
        for ev in self.events[REPORTS_ROWS.name]:
            k = (ev.ref_id, ev.file_name, ev.seq)  # type: ignore[attr-defined]
            if k in seen:
                continue
            seen.add(k)
            out[ev.request_id] += len(ev.rows)  # type: ignore[attr-defined]
        return out


REPORT_TOPICS = [
    REPORTS_COMPLETED.name,
    REPORTS_FAILED.name,
    REPORTS_ROWS.name,
    REPORTS_SUBMITTED.name,
]


async def watch_reports(bootstrap: str) -> Watcher:
    """A started Watcher of the report topics (submitted, rows, completed, failed)."""
    watcher = Watcher(bootstrap, REPORT_TOPICS)
    await watcher.start()
    return watcher


@dataclass
class ReportSystem:
    bootstrap: str
    sandbox_url: str
    tmp: Path
    store_url: str
    password_file: Path
    keys: Any
    services: list[Service] = field(default_factory=list)
    watcher: Watcher | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: str = TEST_ENGINE

    def settings_data(self) -> dict[str, Any]:
        kafka = local_kafka_settings(self.bootstrap, self.engine).model_dump(mode="json")
        data: dict[str, Any] = {
            "kafka": kafka,
            "store": {"url": self.store_url},
            "log": {"level": "WARNING", "format": "json"},
            "http": {"port": 0},
            "mkk": {"base_url": self.sandbox_url, "service_hours": False},
            "mkk_signing": {
                "private_key_file": str(self.keys.member_key),
                "mkk_certificate_file": str(self.keys.mkk_certificate),
                "pool_workers": 1,
            },
            "mkk_auth": {"password_file": str(self.password_file)},
            "token": {"wait_s": 5.0, "unavailable_retry_s": 1.0},
            "auth": {"check_every_s": 0.5, "retry_s": 0.5},
            "requester": {"backoff_base_s": 0.5, "backoff_cap_s": 2.0},
            "poller": {"backoff_base_s": 0.3, "backoff_cap_s": 1.5},
            "fetcher": {
                "batch_size": 100,
                "tmp_dir": str(self.tmp / "fetch"),
                "backoff_base_s": 0.3,
                "backoff_cap_s": 1.5,
            },
        }
        for section, values in self.overrides.items():
            data.setdefault(section, {}).update(values)
        return data

    def env(self) -> dict[str, str]:
        """The same settings as KOPRU_* environment variables (for subprocesses)."""
        out: dict[str, str] = {}
        for section, values in self.settings_data().items():
            for k, v in values.items():
                if v is None:
                    continue
                out[f"KOPRU_{section.upper()}__{k.upper()}"] = (
                    json.dumps(v) if isinstance(v, list | dict) else str(v)
                )
        return out

    async def start(
        self,
        names: tuple[str, ...] = SERVICES,
        per_service: dict[str, dict[str, dict[str, Any]]] | None = None,
    ) -> None:
        from services.registry import entry

        for name in names:
            e = entry(name)
            data = self.settings_data()
            for section, values in (per_service or {}).get(name, {}).items():
                data.setdefault(section, {}).update(values)
            settings = e.settings_cls().model_validate(data)
            svc = e.builder()(settings)
            await svc.start()
            self.services.append(svc)

    async def stop(self) -> None:
        for svc in reversed(self.services):
            with contextlib.suppress(Exception):
                await svc.stop()
            if svc.left_behind:  # a stop step that hung: logged with where it waited
                warnings.warn(f"{svc.name} stop left behind {svc.left_behind}", stacklevel=1)
        self.services.clear()

    def report_rows(self) -> dict[str, int | None]:
        """Rows of each report the sandbox made, by refId."""
        return {r["refId"]: r["rows"] for r in self.admin("/_sandbox/reports")}

    def admin(self, path: str, method: str = "GET", body: Any = None) -> Any:
        r = httpx.request(method, self.sandbox_url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def mkk_requests(self, endpoint: str) -> list[dict[str, Any]]:
        data = self.admin(f"/_sandbox/requests?endpoint={endpoint}")
        return list(data["requests"])

    async def publish(self, events: list[ReportRequested]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futs = [
                await producer.send(
                    REPORTS_REQUESTED.name,
                    encode_event(REPORTS_REQUESTED, ev),
                    key=ev.kafka_key(),
                    headers=[("x-event-type", b"ReportRequested")],
                )
                for ev in events
            ]
            await asyncio.gather(*futs)
        finally:
            await producer.stop()


def report_request(
    i: int, *, prefix: str = "r", file_type: str | None = None, **kw: Any
) -> ReportRequested:
    return ReportRequested(
        request_id=f"{prefix}-{i}",
        member="TIB",
        sender="TIB991",
        process_date=kw.pop("process_date", date(2025, 5, 5)),
        file_type=file_type or ("json" if i % 2 == 0 else "csv"),  # type: ignore[arg-type]
        **kw,
    )


@pytest.fixture
async def report_broker(fresh_broker: Broker) -> AsyncIterator[Broker]:
    """An empty broker of its own with the topic catalogue."""
    settings = broker_settings(fresh_broker)
    await create_topics(settings)
    await wait_for_leaders(settings.bootstrap_servers, [t.name for t in plan(settings)])
    yield fresh_broker


@pytest.fixture
def report_sandbox(tmp_path: Path) -> Iterator[str]:
    proc, url = start_sandbox(tmp_path)
    yield url
    stop_process(proc)


@pytest.fixture
async def report_system(
    report_broker: Broker, report_sandbox: str, tmp_path: Path
) -> AsyncIterator[ReportSystem]:
    keys = ensure_demo_keys(tmp_path / "sandbox")
    pw = tmp_path / "mkk_password"
    pw.write_text(DEMO_PASSWORD)
    system = ReportSystem(
        bootstrap=report_broker.bootstrap_servers,
        sandbox_url=report_sandbox,
        tmp=tmp_path,
        store_url=f"sqlite:///{tmp_path}/kopru.db",
        password_file=pw,
        keys=keys,
        engine=report_broker.engine,
    )
    system.admin("/_sandbox/settings", "PUT", {"report_lock": "off"})
    system.watcher = await watch_reports(report_broker.bootstrap_servers)
    yield system
    await system.stop()
    await system.watcher.stop()


async def run_kopru(system: ReportSystem, *args: str) -> tuple[int, str]:
    """`kopru ARGS` as the operator runs it, against this system: (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args,
        cwd=ROOT, env={**os.environ, **system.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode()
