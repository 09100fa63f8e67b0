"""One node of a local Apache Kafka KRaft cluster: its ports and its server.properties."""

from __future__ import annotations

import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from services.common.kafka.local_broker import free_port

# One cluster id for every local cluster: each is alone on its own ports.
CLUSTER_ID = "a29wcnUtbG9jYWwta2Fma2E"
LOST_QUORUM_GRACE_S = 2.0


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def node_config(node: KafkaNode, voters: str, nodes: int, host: str) -> dict[str, str]:
    """server.properties of one combined node; replication fits 1 or 3 nodes."""
    rf = "3" if nodes >= 3 else "1"
    isr = "2" if nodes >= 3 else "1"
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{node.port},CONTROLLER://{host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.dir / "data"),
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        # Local runs and tests use 2 s consumer sessions (a killed consumer's partitions
        # move fast); the broker default minimum is 6 s.
        "group.min.session.timeout.ms": "1000",
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "share.coordinator.state.topic.num.partitions": "1",
        "unclean.leader.election.enable": "false",
        # Fence a killed node after 3 s, not 9 s: leaders move soon after a crash.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        # A laptop / CI box, not a data centre: few threads, a small cleaner buffer.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def node_port(host: str) -> int:
    """A free port below the ephemeral range: no `bind(0)` listener of another test and
    no outgoing connection's source port can take it while the JVM starts or while a
    node is down for a restart (both keep their ports)."""
    low, _ = _ephemeral_range()
    for _ in range(50):
        port = secrets.randbelow(max(1, low - 20_000)) + 20_000
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    return free_port(host)


def write_properties(path: Path, cfg: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
