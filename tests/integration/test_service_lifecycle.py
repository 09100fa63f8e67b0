"""A service process starts within a deadline or fails clearly, and always stops in time.

Kubernetes sends SIGTERM and SIGKILLs after its grace period (30 s by default): a
service must never hang at "starting", never stay up half-started, and never ignore
SIGTERM (issue #12's restarted payment-notifier did all three).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.kafka.local_broker import LocalBroker, free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _spawn(tmp: Path, bootstrap: str, **env: str) -> subprocess.Popen[str]:
    full = {
        **os.environ,
        "KOPRU_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
        "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
        "KOPRU_KAFKA__REQUEST_TIMEOUT_MS": "2000",
        "KOPRU_STORE__URL": f"sqlite:///{tmp}/echo.db",
        "KOPRU_HTTP__PORT": str(free_port()),
        "KOPRU_LOG__FORMAT": "json",
        "ECHO_IN": "lifecycle-in",
        "ECHO_OUT": "lifecycle-out",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.apps.echo_service"],
        cwd=ROOT,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_line(proc: subprocess.Popen[str], needle: str, timeout_s: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if needle in line or not line:
            break
    assert any(needle in x for x in lines), "".join(lines)
    return lines


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An address that accepts connections and never answers a request."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"127.0.0.1:{s.getsockname()[1]}"


def test_a_refused_connection_fails_start_up_at_once(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc = _spawn(tmp_path, dead)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out
    assert "start-up failed" in out and dead in out, out
    assert "Traceback" not in out, out


def test_a_broker_that_never_answers_fails_start_up_at_the_deadline(
    tmp_path: Path, black_hole: str
) -> None:
    dead = black_hole
    started = time.monotonic()
    proc = _spawn(tmp_path, dead, KOPRU_LIFECYCLE__STARTUP_TIMEOUT_S="4")
    out, _ = proc.communicate(timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 3, out
    assert "start-up failed" in out and dead in out, out
    assert "Traceback" not in out, out
    assert took < 30, took


def test_sigterm_during_start_up_stops_at_once(tmp_path: Path, black_hole: str) -> None:
    dead = black_hole
    proc = _spawn(tmp_path, dead, KOPRU_LIFECYCLE__STARTUP_TIMEOUT_S="120")
    _wait_line(proc, '"starting"')
    time.sleep(1.0)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=40)
    assert time.monotonic() - sent < 25, out
    assert proc.returncode == 0, out
    assert "start-up interrupted" in out, out


async def test_sigterm_when_running_stops_within_the_grace_period(
    fresh_broker: LocalBroker, tmp_path: Path
) -> None:
    proc = _spawn(tmp_path, fresh_broker.bootstrap_servers)
    lines = _wait_line(proc, "service started")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=40)
    assert time.monotonic() - sent < 25, out
    assert proc.returncode == 0, "".join(lines) + out
    assert "service stopped" in out, out
