"""The local Apache Kafka engine: `kopru broker --engine kafka`, KafkaCluster's node
faults on 3 KRaft nodes, and nothing left running afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.events import CATALOGUE
from services.common.kafka.kafka_cluster import KafkaCluster
from services.common.kafka.kafka_dist import KafkaDist
from services.common.kafka.local_broker import free_port
from tests.kafka_tools import create_topics, produce, read_topic

pytestmark = pytest.mark.integration


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


async def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return {name: value for name, value, *_ in res[0].resources[0][4]}
    finally:
        await admin.close()


async def test_kopru_broker_kafka_three_nodes_catalogue_and_sigterm(
    kafka_dist: KafkaDist, tmp_path: Path
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "broker", "--engine", "kafka", "--nodes", "3",
         "--port", str(port), "--data-dir", str(tmp_path / "kafka")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        out: list[str] = []
        deadline = time.monotonic() + 120
        while not any("broker ready" in line for line in out) and time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stdout.readline)
            if not line:
                break
            out.append(line)
        assert any("broker ready" in line for line in out), "".join(out)
        text = "".join(out)
        bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        assert f"bootstrap servers: {bootstrap}" in text
        assert "KOPRU_KAFKA__IDEMPOTENT_PRODUCER=true" in text
        java = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(_alive(java)) == 3
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topics = await admin.describe_topics([s.name for s in CATALOGUE])
        finally:
            await admin.close()
        for t in topics:  # every catalogue topic on all three nodes
            assert all(len(p["replicas"]) == 3 for p in t["partitions"]), t
        cfg = await _topic_config(bootstrap, CATALOGUE[0].name)
        assert cfg["min.insync.replicas"] == "2"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        assert _alive(java) == []
        # The data directory is kept: the same command starts the same cluster again.
        assert (tmp_path / "kafka" / "node-1" / "data" / "meta.properties").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_three_nodes_survive_a_killed_leader_and_a_full_stop(
    kafka_dist: KafkaDist,
) -> None:
    cluster = KafkaCluster(3, dist=kafka_dist, heap="256m")
    try:
        started = time.monotonic()
        cluster.start()
        await cluster.wait_ready()
        print(f"3 nodes ready in {time.monotonic() - started:.1f} s")
        await create_topics(cluster.bootstrap_servers, ["t3"], partitions=1, replication=3)
        await produce(cluster.bootstrap_servers, "t3", [b"a", b"b"])
        leader = await cluster.leader_of("t3", 0)
        assert leader in cluster.nodes
        cluster.kill(leader)
        deadline = time.monotonic() + 30
        new = leader
        while new in (leader, None) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            new = await cluster.leader_of("t3", 0)
        assert new not in (leader, None), "no new leader after the old one was killed"
        await produce(cluster.bootstrap_servers, "t3", [b"c"])  # acks=all: 2 in sync
        cluster.start(leader)
        await cluster.wait_ready()
        # Whole cluster down and up again: nothing written is lost.
        await asyncio.to_thread(cluster.stop_all)
        assert cluster.pids() == {}
        cluster.start_all()
        await cluster.wait_ready()
        got = await read_topic(cluster.bootstrap_servers, "t3", expect=3, timeout_s=30)
        assert sorted(m.value for m in got) == [b"a", b"b", b"c"]
    finally:
        cluster.close()
    assert not cluster.data_dir.exists()


async def test_nodes_die_with_their_parent(kafka_dist: KafkaDist) -> None:
    """Even a SIGKILLed parent (no cleanup at all) leaves no Kafka JVM behind."""
    script = (
        "import asyncio, time\n"
        "from services.common.kafka.kafka_cluster import KafkaCluster\n"
        "from services.common.kafka.kafka_dist import fetch\n"
        "c = KafkaCluster(1, dist=fetch(), heap='256m'); c.start()\n"
        "print(c.pid, flush=True); asyncio.run(c.wait_ready()); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert parent.stdout is not None
    pid = int(await asyncio.to_thread(parent.stdout.readline))
    assert _alive([pid]) == [pid]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive([pid]) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _alive([pid]) == []
