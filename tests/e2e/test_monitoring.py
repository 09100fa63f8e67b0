"""The monitoring against the running system (`kopru demo --keep`: the local broker, the
sandboxes, the five services as processes):

- every metric the dashboards and alerts name is exported on the services' /metrics;
- a real Prometheus (Debian's package) scrapes them with kopru's alert rules, and a
  poison message makes KopruDeadLetters fire (read back from Prometheus' HTTP API);
- `kopru top` live and `--once` under a pseudo-terminal, and `kopru dlq list`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from services.common.kafka.local_broker import free_port
from services.common.monitoring.dashboard_panels import expressions
from services.common.monitoring.promql_names import exported_names, metric_names
from services.common.monitoring.rules import RULES, alerts
from tests.conftest import unavailable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KOPRU = [sys.executable, "-m", "services.cli"]
SERVICES = {
    "auth-token",
    "report-requester",
    "status-poller",
    "content-fetcher",
    "payment-notifier",
}
POISON = b'{"event_type": "ReportRequested", "member": "not a member"}'


class System:
    def __init__(self, state_dir: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.state_dir = state_dir
        self.proc = proc
        self.log = log
        data = json.loads((state_dir / "endpoints.json").read_text())
        self.bootstrap: str = data["bootstrap"]
        self.services: dict[str, str] = data["services"]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KOPRU_DEMO_DIR": str(self.state_dir),
            "KOPRU_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "KOPRU_LOG__FORMAT": "json",
        }


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    state = tmp_path_factory.mktemp("demo")
    log = state / "demo.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*KOPRU, "demo", "--keep"],
            cwd=ROOT,
            env={**os.environ, "KOPRU_DEMO_DIR": str(state), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while "flows done" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield System(state, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "everything stopped" in log.read_text()


@pytest.fixture(scope="module")
def poisoned(system: System) -> str:
    """One message report-requester cannot parse, on mks.reports.requested."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("mks.reports.requested", POISON, key=b"TIB:poison")
        finally:
            await producer.stop()

    asyncio.run(send())
    return "mks.reports.requested"


def test_dashboards_and_alerts_name_only_metrics_the_services_export(system: System) -> None:
    assert set(system.services) == SERVICES
    exported: set[str] = {"up"}  # made by Prometheus for every target
    for url in system.services.values():
        exported |= exported_names(httpx.get(url + "/metrics", timeout=10).text)
    used: dict[str, set[str]] = {}
    for expr in expressions() + [a["expr"] for a in alerts()]:
        for name in metric_names(expr):
            used.setdefault(name, set()).add(expr)
    missing = {name: sorted(exprs)[0] for name, exprs in used.items() if name not in exported}
    assert not missing, f"not exported by any service: {missing}"
    assert len(used) > 25


def _prometheus_config(system: System, path: Path) -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / RULES)],
        "scrape_configs": [
            {
                "job_name": "kopru",
                "static_configs": [
                    {"targets": [url.removeprefix("http://")], "labels": {"kopru_service": name}}
                    for name, url in sorted(system.services.items())
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def prometheus(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus (Debian package prometheus; `make monitoring-tools`)")
    assert binary is not None
    work = tmp_path_factory.mktemp("prometheus")
    _prometheus_config(system, work / "prometheus.yml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}",
         f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (work / "prometheus.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _api(url: str, path: str, **params: str) -> Any:
    answer = httpx.get(url + "/api/v1/" + path, params=params, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]


def _wait(what: str, check: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_prometheus_scrapes_the_services_and_a_poison_message_fires_the_dead_letter_alert(
    system: System, prometheus: str, poisoned: str
) -> None:
    def all_up() -> bool:
        targets = _api(prometheus, "targets")["activeTargets"]
        return len(targets) == len(SERVICES) and all(t["health"] == "up" for t in targets)

    _wait("every service scraped", all_up)
    ready = _wait(
        "kopru_ready of every service",
        lambda: (
            [r for r in _api(prometheus, "query", query="kopru_ready == 1")["result"]]
            if len(_api(prometheus, "query", query="kopru_ready == 1")["result"]) == len(SERVICES)
            else None
        ),
    )
    assert {r["metric"]["kopru_service"] for r in ready} == SERVICES

    def dead_letter_alert() -> list[dict[str, Any]]:
        return [
            a
            for a in _api(prometheus, "alerts")["alerts"]
            if a["labels"]["alertname"] == "KopruDeadLetters" and a["state"] == "firing"
        ]

    firing = _wait("KopruDeadLetters firing", dead_letter_alert, timeout_s=90)
    labels = firing[0]["labels"]
    assert (labels["service"], labels["topic"], labels["error_type"]) == (
        "report-requester", poisoned, "ValidationError",
    )  # fmt: skip
    assert f"kopru dlq show {poisoned}" in firing[0]["annotations"]["description"]
    firing_now = {
        a["labels"]["alertname"]
        for a in _api(prometheus, "alerts")["alerts"]
        if a["state"] == "firing"
    }
    assert firing_now == {"KopruDeadLetters"}, firing_now  # nothing else is wrong
    # The rules Prometheus loaded are kopru's, all healthy.
    groups = _api(prometheus, "rules")["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"]}
    assert loaded == {a["alert"] for a in alerts()}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"])


def _spawn(system: System, *args: str) -> pexpect.spawn:
    # Ctrl-C through a pty makes the line discipline flush its output queue (no NOFLSH),
    # which can cut a box-drawing character in half: decode what arrives leniently.
    return pexpect.spawn(
        KOPRU[0], [*KOPRU[1:], *args], cwd=str(ROOT), env=system.env(),
        dimensions=(60, 200), timeout=60, encoding="utf-8", codec_errors="replace",
    )  # fmt: skip


def test_kopru_top_once_prints_one_snapshot_under_a_pty(system: System, poisoned: str) -> None:
    child = _spawn(system, "top", "--once", "--interval", "1")
    child.expect(pexpect.EOF)
    child.close()
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before or "")  # colours off
    assert child.exitstatus == 0, out[-3000:]
    for name in SERVICES:
        line = next(line for line in out.splitlines() if f" {name} " in line and "│" in line)
        assert "ready" in line and "NOT READY" not in line, line
    row = next(line for line in out.splitlines() if f"│ {poisoned} " in line)
    cells = [c.strip() for c in row.split("│")]
    assert "report-requester=0" in cells, row
    assert cells[6] == "1", row  # one dead letter waits in mks.reports.requested.dlq
    assert "validation failed" in cells[7], row
    assert "completed" in out and "bkm recorded" in out and "moka created" in out


def test_kopru_top_live_refreshes_until_ctrl_c(system: System) -> None:
    child = _spawn(system, "top", "--interval", "0.5")
    child.expect("rates over")
    child.expect("payment-notifier")
    child.expect("rates over")  # redrawn with new figures
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_kopru_dlq_list_shows_depth_and_newest_reason(system: System, poisoned: str) -> None:
    out = subprocess.run(
        [*KOPRU, "dlq", "list"], cwd=ROOT, env=system.env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith(poisoned + ".dlq"))
    assert line.split()[1] == "1"
    assert "report-requester" in line and "ValidationError" in line
    assert "1 dead letter(s) in 1 topic(s)" in out.stdout
