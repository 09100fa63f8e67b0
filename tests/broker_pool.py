"""Brokers for the tests: an empty one per test, on the engine asked for.

tansu starts in ~20 ms, so each test just starts one. An Apache Kafka node takes 1.5-4 s
(JVM, KRaft election), so a pool keeps one spare node starting in the background while
the current test runs; a test takes it (usually already ready) and gets SIGKILL + rmtree
after. Every test still gets an empty broker of its own: the e2e tests rely on it (the
services use fixed catalogue topic names and group ids).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter
from typing import Protocol

from services.common.kafka.engines import ENGINE_NAMES
from services.common.kafka.kafka_cluster import KafkaCluster, prepare
from services.common.kafka.kafka_dist import KafkaDist
from services.common.kafka.local_broker import LocalBroker

TEST_ENGINE = os.environ.get("KOPRU_TEST_ENGINE", "kafka")
if TEST_ENGINE not in ENGINE_NAMES:
    raise RuntimeError(f"KOPRU_TEST_ENGINE={TEST_ENGINE!r}: one of {', '.join(ENGINE_NAMES)}")
TEST_HEAP = os.environ.get("KOPRU_TEST_KAFKA_HEAP", "256m")


class Broker(Protocol):
    engine: str

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def stop(self) -> None: ...


class KafkaPool:
    """Single-node Kafka clusters, one per test; the next starts while a test runs."""

    def __init__(self) -> None:
        self.dist: KafkaDist | None = None
        self.spare: KafkaCluster | None = None
        self.waits: list[float] = []  # how long tests waited for their broker

    async def _spawn(self) -> None:
        dist = await self.ready_dist()  # fetch + storage templates + CDS, once
        cluster = KafkaCluster(1, dist=dist, heap=TEST_HEAP)
        cluster.start()
        self.spare = cluster

    async def ready_dist(self) -> KafkaDist:
        """The fetched and prepared Kafka (for tests that start clusters of their own)."""
        if self.dist is None:
            self.dist = await prepare()
        return self.dist

    async def take(self) -> KafkaCluster:
        started = time.monotonic()
        if self.spare is None:
            await self._spawn()
        cluster, self.spare = self.spare, None
        assert cluster is not None
        try:
            await cluster.wait_ready()
        except BaseException:
            cluster.close()
            raise
        self.waits.append(time.monotonic() - started)
        await self._spawn()  # the next test's node starts while this test runs
        return cluster

    @staticmethod
    def release(cluster: KafkaCluster) -> None:
        cluster.close()

    def close(self) -> None:
        if self.spare is not None:
            self.spare.close()
            self.spare = None


POOL = KafkaPool()


async def start_broker(engine: str) -> Broker:
    """An empty, ready broker on `engine` (raises when it cannot start)."""
    if engine == "tansu":
        broker = LocalBroker()
        try:
            broker.start()
            await broker.wait_ready()
        except BaseException:
            broker.stop()
            raise
        return broker
    return await POOL.take()


def stop_broker(broker: Broker) -> None:
    if isinstance(broker, KafkaCluster):
        KafkaPool.release(broker)
    else:
        broker.stop()


def kill_broker(broker: Broker) -> None:
    """SIGKILL the broker (every node), as in a crash."""
    if isinstance(broker, KafkaCluster):
        broker.kill_all()
    elif isinstance(broker, LocalBroker) and broker.proc is not None:
        broker.proc.kill()
        broker.proc.wait()
        broker.proc = None


async def restart_empty(broker: Broker, down_s: float = 1.0) -> None:
    """SIGKILL the broker and start it again on the same address, empty: tansu is memory
    only; a Kafka node comes back with fresh storage, as a broker whose disk was lost."""
    kill_broker(broker)
    await asyncio.sleep(down_s)
    if isinstance(broker, KafkaCluster):
        for node in broker.nodes.values():
            shutil.rmtree(node.dir / "data", ignore_errors=True)
        broker.start()
        await broker.wait_ready()
    elif isinstance(broker, LocalBroker):
        broker.start()
        await broker.wait_ready()


def summary(outcomes: Counter[tuple[str, str]]) -> list[str]:
    """One line per engine: how many tests ran on it, by outcome."""
    lines = []
    for engine in sorted({e for e, _ in outcomes}):
        by = {o: n for (e, o), n in outcomes.items() if e == engine}
        parts = ", ".join(f"{n} {o}" for o, n in sorted(by.items()))
        lines.append(f"broker engine {engine}: {sum(by.values())} tests ({parts})")
    if POOL.waits:
        w = sorted(POOL.waits)
        lines.append(
            f"kafka nodes: {len(w)} started, wait per test median {w[len(w) // 2]:.2f} s, "
            f"max {w[-1]:.2f} s"
        )
    return lines
