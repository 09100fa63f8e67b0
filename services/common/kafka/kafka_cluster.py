"""A local Apache Kafka (KRaft) cluster: 1 or 3 combined broker+controller nodes on loopback.

For `kopru broker --engine kafka`, the test tier and broker-fault tests. Each node is one
JVM (`kafka.Kafka`) with its own data directory, broker port and controller port; the
ports stay the same across restarts, so clients reconnect to the same bootstrap servers.
Storage is formatted once per node id into a template under the Kafka cache and copied
(what `kafka-storage format` writes does not depend on the ports). Every JVM gets SIGKILL
if its parent dies (PR_SET_PDEATHSIG), so nothing is left behind.

Faults: `kill(node)` is SIGKILL, `stop(node)` SIGTERM (controlled shutdown) then SIGKILL,
`start(node)` / `restart(node)` bring it back with its data; `stop_all()` / `start_all()`
keep the data directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.kafka.kafka_dist import KafkaDist, fetch, file_lock
from services.common.kafka.kafka_node import (
    CLUSTER_ID,
    LOST_QUORUM_GRACE_S,
    KafkaNode,
    node_config,
    node_port,
    write_properties,
)
from services.common.kafka.local_broker import die_with_parent, port_open


class KafkaCluster:
    """`nodes` combined KRaft nodes; `port` is the first node's broker port (the next
    nodes take port+1, port+2), else free ports are chosen.

    Start nodes from the thread that will outlive them (PR_SET_PDEATHSIG follows the
    parent thread): not from asyncio.to_thread."""

    engine = "kafka"

    def __init__(
        self,
        nodes: int = 1,
        *,
        data_dir: Path | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        heap: str = "384m",
        dist: KafkaDist | None = None,
        broker_config: dict[str, str] | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.host = host
        self.heap = heap
        self._dist = dist
        # Added to (or overriding) every node's server.properties, e.g. the chaos run's
        # message.max.bytes for records over 1 MB.
        self.broker_config = dict(broker_config or {})
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="kopru-kafka-")).resolve()
        self.nodes: dict[int, KafkaNode] = {}
        for i in range(1, nodes + 1):
            bport = port + i - 1 if port else node_port(host)
            d = self.data_dir / f"node-{i}"
            self.nodes[i] = KafkaNode(i, bport, node_port(host), d)
        self.voters = ",".join(
            f"{n.node_id}@{host}:{n.controller_port}" for n in self.nodes.values()
        )

    @property
    def dist(self) -> KafkaDist:
        if self._dist is None:
            self._dist = fetch()
        return self._dist

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes.values())

    @property
    def pid(self) -> int | None:
        """The first running node's pid (what LocalBroker offers)."""
        return next((n.proc.pid for n in self.nodes.values() if n.running and n.proc), None)

    def pids(self) -> dict[int, int]:
        return {i: n.proc.pid for i, n in self.nodes.items() if n.running and n.proc}

    # -- storage ---------------------------------------------------------------------

    def _template(self, node_id: int) -> Path:
        """Formatted storage for this node id, made once per Kafka version."""
        tpl = self.dist.home / "storage" / f"node-{node_id}"
        with file_lock(self.dist.home / "storage.lock"):
            if (tpl / "meta.properties").exists():
                return tpl
            partial = tpl.with_name(tpl.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            props = partial / "format.properties"
            fake = KafkaNode(node_id, 1, 2, partial)
            cfg = node_config(fake, f"{node_id}@{self.host}:2", 1, self.host)
            cfg["log.dirs"] = str(partial / "data")
            write_properties(props, cfg)
            cmd = self.dist.java("kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c",
                                 str(props), "--ignore-formatted", heap="128m")  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"kafka storage format failed: {proc.stdout}{proc.stderr}")
            shutil.rmtree(tpl, ignore_errors=True)
            (partial / "data").rename(tpl)
            shutil.rmtree(partial, ignore_errors=True)
            return tpl

    def format(self) -> None:
        """Give each node formatted storage unless it has some (restarts keep data)."""
        for node in self.nodes.values():
            data = node.dir / "data"
            if (data / "meta.properties").exists():
                continue
            node.dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(self._template(node.node_id), data)

    # -- processes -------------------------------------------------------------------

    def start(self, node_id: int | None = None, *, dump_cds: Path | None = None) -> None:
        """Start one node, or every node that is not running (the data is kept)."""
        self.format()
        ids = [node_id] if node_id is not None else list(self.nodes)
        for i in ids:
            node = self.nodes[i]
            if node.running:
                continue
            props = node.dir / "server.properties"
            cfg = node_config(node, self.voters, len(self.nodes), self.host)
            write_properties(props, cfg | self.broker_config)
            cmd = self.dist.java("kafka.Kafka", str(props), heap=self.heap, dump_cds=dump_cds)
            node.log = (node.dir / "server.log").open("ab")
            node.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=node.log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                cwd=node.dir,
            )

    start_all = start

    def _reap(self, node: KafkaNode) -> None:
        if node.log is not None:
            node.log.close()
            node.log = None
        node.proc = None

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no controlled shutdown, as in a crash."""
        node = self.nodes[node_id]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
        self._reap(node)

    def stop(self, node_id: int | None = None, timeout_s: float = 15.0) -> None:
        """SIGTERM (controlled shutdown) one node, or every node one after the other;
        SIGKILL after timeout_s.

        A node whose controller has lost its quorum (the others are down) cannot finish
        a controlled shutdown and would wait forever: it gets LOST_QUORUM_GRACE_S. Its
        log is in the page cache and recovered at the next start, as after a crash."""
        ids = [node_id] if node_id is not None else list(self.nodes)
        for i in ids:
            node, proc = self.nodes[i], self.nodes[i].proc
            if proc is not None and proc.poll() is None:
                others = [n for n in self.nodes.values() if n is not node and n.running]
                lost_quorum = len(self.nodes) > 1 and 2 * (len(others) + 1) <= len(self.nodes)
                grace = min(timeout_s, LOST_QUORUM_GRACE_S) if lost_quorum else timeout_s
                proc.terminate()
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._reap(node)

    def stop_all(self, timeout_s: float = 15.0) -> None:
        self.stop(None, timeout_s)

    def kill_all(self) -> None:
        for i in self.nodes:
            self.kill(i)

    async def restart(self, node_id: int, *, hard: bool = False) -> None:
        """Stop (SIGKILL when hard) and start one node again, then wait for the cluster."""
        if hard:
            self.kill(node_id)
        else:
            await asyncio.to_thread(self.stop, node_id)
        self.start(node_id)
        await self.wait_ready()

    def close(self) -> None:
        """Kill every node; remove the data directory if this cluster made it."""
        self.kill_all()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- readiness and metadata ------------------------------------------------------

    async def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until metadata answers and every running node is registered as a broker."""
        deadline = time.monotonic() + timeout_s
        last: object = "no answer"
        while time.monotonic() < deadline:
            running = {i for i, n in self.nodes.items() if n.running}
            for i, n in self.nodes.items():
                if n.proc is not None and i not in running:
                    tail = (n.dir / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"kafka node {i} exited ({n.proc.returncode}):\n{tail}")
            if not all(port_open(self.host, self.nodes[i].port) for i in running):
                await asyncio.sleep(0.05)
                continue
            try:
                info = await self._describe(running)
                brokers = {b["node_id"] for b in info["brokers"]}
                if brokers >= running and info.get("controller_id", -1) != -1:
                    return
                last = f"brokers {sorted(brokers)} of {sorted(running)}"
            except Exception as exc:  # not listening yet, no controller yet, ...
                last = exc
            await asyncio.sleep(0.1)
        raise TimeoutError(f"kafka on {self.bootstrap_servers} not ready: {last}")

    def _admin(self, ids: set[int] | None = None) -> AIOKafkaAdminClient:
        ids = ids if ids else set(self.nodes)
        servers = ",".join(f"{self.host}:{self.nodes[i].port}" for i in sorted(ids))
        return AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=3000)

    async def _describe(self, ids: set[int]) -> dict[str, Any]:
        admin = self._admin(ids)
        try:
            await admin.start()
            info: dict[str, Any] = await admin.describe_cluster()
            return info
        finally:
            await admin.close()

    async def leader_of(
        self, topic: str, partition: int = 0, timeout_s: float = 10.0
    ) -> int | None:
        """The node id leading `topic`/`partition` now (None while it has no leader).

        Retried: right after a kill the metadata still lists the dead node for a while
        and the admin client may pick it."""
        deadline = time.monotonic() + timeout_s
        while True:
            admin = self._admin({i for i, n in self.nodes.items() if n.running})
            try:
                await admin.start()
                for t in await admin.describe_topics([topic]):
                    for p in t.get("partitions", []):
                        if p["partition"] == partition:
                            leader = int(p["leader"])
                            return leader if leader >= 0 else None
                return None
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
            finally:
                await admin.close()

    async def __aenter__(self) -> KafkaCluster:
        try:
            self.start()
            await self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop_all)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


async def wait_for_leaders(bootstrap: str, topics: list[str], timeout_s: float = 120.0) -> None:
    """Until every partition of `topics` has a leader. Apache Kafka creates topics
    asynchronously: CreateTopics answers before the partitions can be used, and a
    service starting then sees NOT_LEADER / no coordinator for a while (seconds; tens of
    seconds for the whole catalogue on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    pending = set(topics)
    while pending:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        # Not answering yet: try again until the deadline.
        with contextlib.suppress(Exception):
            try:
                await admin.start()
                for t in await admin.describe_topics(sorted(pending)):
                    parts = t.get("partitions") or []
                    if (
                        t.get("error_code", 0) == 0
                        and parts
                        and all(p["leader"] >= 0 for p in parts)
                    ):
                        pending.discard(t["topic"])
            finally:
                await admin.close()
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no leader after {timeout_s:.0f} s for {sorted(pending)}")
            await asyncio.sleep(0.2)


async def prepare(dist: KafkaDist | None = None) -> KafkaDist:
    """Fetch the jars, format the storage templates and write the CDS archive, once."""
    if dist is None:
        dist = await asyncio.to_thread(fetch)
    if dist.cds_archive.exists():
        return dist
    partial = dist.cds_archive.with_suffix(".jsa.partial")
    cluster = KafkaCluster(1, dist=dist)
    try:
        for i in (1, 2, 3):
            cluster._template(i)
        cluster.start(dump_cds=partial)
        await cluster.wait_ready()
        # Load the classes of topic creation and produce/fetch paths too.
        admin = cluster._admin()
        await admin.start()
        with contextlib.suppress(Exception):
            await admin.create_topics([NewTopic("kopru.cds", 1, 1)])
        await admin.close()
        await asyncio.to_thread(cluster.stop_all, 60.0)  # the archive is written at exit
        if partial.exists() and partial.stat().st_size > 0:
            partial.rename(dist.cds_archive)
    finally:
        cluster.close()
        partial.unlink(missing_ok=True)
    return dist
