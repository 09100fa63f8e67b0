"""A service's HTTP side over the real broker: health, readiness, metrics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.common.kafka.local_broker import free_port
from tests.broker_pool import Broker
from tests.conftest import broker_settings, engine_env, unique
from tests.integration.apps.echo_service import Ping
from tests.kafka_tools import create_topics, produce, read_topic

pytestmark = pytest.mark.integration


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=3) as c:
        return await c.get(url)


async def test_health_ready_metrics_and_graceful_stop(fresh_broker: Broker, tmp_path: Path) -> None:
    kafka = broker_settings(fresh_broker)
    in_t, out_t = unique("in"), unique("out")
    await create_topics(kafka.bootstrap_servers, [in_t, out_t, in_t + ".dlq"])
    port = free_port()
    log_file = tmp_path / "svc.log"
    env = {
        **os.environ,
        **engine_env(fresh_broker),
        "KOPRU_STORE__URL": f"sqlite:///{tmp_path}/s.db",
        "KOPRU_HTTP__PORT": str(port),
        "KOPRU_LOG__FORMAT": "json",
        "ECHO_IN": in_t,
        "ECHO_OUT": out_t,
    }
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.apps.echo_service"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = await _get(base + "/readyz")
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        assert ready is not None and ready.status_code == 200, log_file.read_text()
        assert ready.json() == {"status": "ready", "failed": {}}
        health = await _get(base + "/healthz")
        assert health.status_code == 200
        assert "server" not in health.headers  # the answer does not name the server software
        assert "date" in health.headers
        await produce(
            kafka.bootstrap_servers, in_t, [b"not json", Ping(id="m1").model_dump_json().encode()]
        )
        assert len(await read_topic(kafka.bootstrap_servers, out_t, expect=1)) == 1
        await asyncio.sleep(0.3)
        metrics = (await _get(base + "/metrics")).text
        assert (
            f'kopru_messages_total{{outcome="done",service="echo",topic="{in_t}"}} 1.0' in metrics
        )
        assert 'kopru_dead_letters_total{error_type="' in metrics
        # The broker goes away: readiness says so, liveness does not restart the pod.
        fresh_broker.stop()
        not_ready = await _get(base + "/readyz")
        assert not_ready.status_code == 503
        assert "kafka" in not_ready.json()["failed"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(x) for x in log_file.read_text().splitlines() if x.startswith("{")]
    events = [line["event"] for line in lines]
    assert "service started" in events and "service stopped" in events
    assert all(
        "correlation_id" in line for line in lines if line["event"] == "message dead-lettered"
    )
