"""`kopru broker` and the test fixture: ready, topics created, stopped, nothing left."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from schemas.events import CATALOGUE
from services.common.kafka.local_broker import LocalBroker, free_port
from tests.broker_pool import Broker

pytestmark = pytest.mark.integration


def _broker_children(pid: int, names: tuple[str, ...] = ("tansu",)) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
        return [p for p in kids if any(n in p.name() for n in names)]
    except psutil.NoSuchProcess:
        return []


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_kopru_broker_creates_catalogue_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 30
        while "broker ready" not in line and time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stdout.readline)
        assert "broker ready" in line, line
        children = _broker_children(proc.pid)
        assert len(children) == 1
        topics = await _topics(f"127.0.0.1:{port}")
        for spec in CATALOGUE:
            assert spec.name in topics and spec.dlq in topics
        assert "mks.reports.submitted.retry.status-poller.5s" in topics
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        await asyncio.sleep(0.2)
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_broker_dies_with_its_parent() -> None:
    """Even a SIGKILLed parent (no cleanup at all) leaves no broker behind."""
    script = (
        "import asyncio, os, time\n"
        "from services.common.kafka.local_broker import LocalBroker\n"
        "b = LocalBroker(); b.start(); asyncio.run(b.wait_ready())\n"
        "print(b.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(await asyncio.to_thread(parent.stdout.readline))
    assert psutil.pid_exists(broker_pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and psutil.pid_exists(broker_pid):
        try:
            if psutil.Process(broker_pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        await asyncio.sleep(0.05)
    alive = psutil.pid_exists(broker_pid) and psutil.Process(broker_pid).status() != "zombie"
    assert not alive


async def test_fixture_style_start_stop_leaves_nothing() -> None:
    broker = LocalBroker()
    broker.start()
    await broker.wait_ready()
    pid = broker.pid
    assert pid is not None and psutil.pid_exists(pid)
    broker.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_session_has_no_stray_brokers(kafka_broker: Broker) -> None:
    """Only the session broker, per-test brokers being torn down and the pool's one
    spare Kafka node are our children."""
    mine = _broker_children(os.getpid(), ("tansu", "java"))
    assert kafka_broker.pid in {p.pid for p in mine}
    assert len([p for p in mine if p.status() != psutil.STATUS_ZOMBIE]) <= 3
