"""The fault steps, each an async function on the running system; each returns a short
note of what it did for the table (which node, how long the cluster took to come back).

1. SIGKILL the node leading most of the busiest partitions, then start it again;
2. a rolling restart (controlled shutdown, start, full ISR again) of all three nodes;
3. SIGKILL one replica of each service, let the survivor take its partitions, restart it;
4. stop the whole cluster for `outage_s`, then start it;
5. a 1.3 MB, a 10 MB and two malformed records on every input topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from chaos.load import new_producer, send_retrying
from chaos.system import BIG_RECORD_BYTES, SERVICES, System
from chaos.topics import group_members
from schemas.events import (
    AUTH_TOKEN_REQUESTS,
    AUTH_TOKENS,
    BKM_PAYMENT_REQUESTED,
    CATALOGUE,
    MOKA_APPLICATION_REQUESTED,
    REPORTS_REQUESTED,
    REPORTS_ROWS,
    BkmPaymentRequested,
    Event,
    MokaDealerApplicationRequested,
    ReportRequested,
    TokenRequested,
)
from schemas.events import topic as topic_spec
from services.common.kafka.broker import encode_event
from services.common.kafka.kafka_cluster import KafkaCluster, wait_for_leaders
from services.common.kafka.topic_admin import plan
from services.common.kafka.topic_stats import offsets
from services.demo.flow_payments import DEMO_APPLICATION

# Topics a service group consumes (the records injected by step 5 go there).
INPUT_TOPICS = tuple(
    s.name
    for s in CATALOGUE
    if s.cleanup_policy == "delete"
    and any(c not in ("upstream", "downstream") for c in s.consumers)
)
# Read by every token cache without a consumer group (no commits, no DLQ): a bad record
# there is logged and skipped; it must not stop the cache (the reports must still end).
READER_TOPICS = (AUTH_TOKENS.name,)
BAD_RECORDS: tuple[tuple[str, bytes], ...] = (
    ("1.3 MB", b'{"event_type": "' + b"x" * 1_300_000 + b'"}'),
    ("10 MB", b"\x00" * 10_000_000),
    ("not json", b"\xff\xfe{this is not json"),
    ("wrong schema", b'{"event_type": "Nonsense", "request_id": 17}'),
)


@dataclass(frozen=True)
class Injected:
    kind: str
    topic: str
    partition: int
    offset: int


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    return admin


async def leaders(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    admin = await _admin(bootstrap)
    try:
        out: dict[tuple[str, int], int] = {}
        for t in await admin.describe_topics(topics):
            for p in t.get("partitions") or []:
                out[(t["topic"], p["partition"])] = int(p["leader"])
        return out
    finally:
        await admin.close()


async def wait_isr_full(bootstrap: str, topics: list[str], timeout_s: float = 120.0) -> float:
    """Until every partition has all its replicas in sync; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with contextlib.suppress(Exception):
            admin = await _admin(bootstrap)
            try:
                described = await admin.describe_topics(topics)
            finally:
                await admin.close()
            parts = [p for t in described for p in t.get("partitions") or []]
            if parts and all(len(p["isr"]) == len(p["replicas"]) for p in parts):
                return time.monotonic() - started
        await asyncio.sleep(1.0)
    return time.monotonic() - started


def _topics(system: System) -> list[str]:
    assert system.kafka is not None
    return [t.name for t in plan(system.kafka)]


async def kill_busiest_leader(system: System, down_s: float = 10.0) -> str:
    cluster = _cluster(system)
    busy_topics = [*INPUT_TOPICS, REPORTS_ROWS.name]
    assert system.kafka is not None
    found = await offsets(system.kafka, busy_topics)
    weights = {(t, p): end for t, o in found.items() for p, end in o.end.items()}
    lead = await leaders(system.bootstrap, busy_topics)
    busiest = sorted(weights, key=lambda tp: -weights[tp])[:10]
    votes = Counter(lead[tp] for tp in busiest if lead.get(tp, -1) >= 0)
    node = votes.most_common(1)[0][0] if votes else 1
    cluster.kill(node)
    await asyncio.sleep(down_s)
    t0 = time.monotonic()
    cluster.start(node)
    await cluster.wait_ready()
    isr_s = await wait_isr_full(system.bootstrap, _topics(system))
    return (
        f"node {node} (led {votes[node]} of the 10 busiest partitions) killed, "
        f"{down_s:.0f} s down; back {time.monotonic() - t0:.0f} s, ISR full {isr_s:.0f} s"
    )


async def rolling_restart(system: System) -> str:
    cluster = _cluster(system)
    took = []
    for node in sorted(cluster.nodes):
        t0 = time.monotonic()
        await cluster.restart(node)
        await wait_isr_full(system.bootstrap, _topics(system))
        took.append(f"{node}: {time.monotonic() - t0:.0f} s")
    return "each node stopped, started, ISR full again (" + ", ".join(took) + ")"


async def kill_one_replica_each(system: System, alone_s: float = 20.0) -> str:
    victims = [system.procs[f"{s}-b"] for s in SERVICES]
    before = await group_members(system.bootstrap)
    for p in victims:
        p.kill()
    await asyncio.sleep(alone_s)  # the survivors take every partition
    after = await group_members(system.bootstrap)
    for p in victims:
        p.start()
    import httpx

    async with httpx.AsyncClient(timeout=2.0) as client:
        for p in victims:
            await p.wait_ready(client)
    names = ", ".join(p.name for p in victims)
    members = f"{sum(before.values())} -> {sum(after.values())} in {len(after)} groups"
    return f"SIGKILL {names}; group members {members}; {alone_s:.0f} s alone, restarted"


async def whole_cluster_outage(system: System, outage_s: float) -> str:
    cluster = _cluster(system)
    await asyncio.to_thread(cluster.stop_all, 10.0)
    await asyncio.sleep(outage_s)
    t0 = time.monotonic()
    cluster.start()
    await cluster.wait_ready(180.0)
    await wait_for_leaders(system.bootstrap, _topics(system), 180.0)
    return f"all 3 nodes stopped for {outage_s:.0f} s; leaders back {time.monotonic() - t0:.0f} s"


def canary_request_id(run: str, partitions: int) -> str:
    """A request id whose events (key "TIB:<id>") all land on partition 0: its
    ReportSubmitted and ReportReady follow the bad records on those topics too."""
    for k in range(100_000):
        rid = f"chaos-{run}-canary-{k}"
        if (murmur2(f"TIB:{rid}".encode()) & 0x7FFFFFFF) % partitions == 0:
            return rid
    raise RuntimeError("no canary id found")


def canaries(run: str) -> dict[str, Event]:
    """One good record per input topic, sent after the bad ones (partition 0)."""
    return {
        REPORTS_REQUESTED.name: ReportRequested(
            request_id=canary_request_id(run, REPORTS_REQUESTED.partitions),
            member="TIB",
            sender="TIB991",
            process_date=date(2025, 5, 5),
            file_type="json",
        ),
        AUTH_TOKEN_REQUESTS.name: TokenRequested(
            member="TIB", sender="TIB991", reason="missing", requested_by="chaos"
        ),
        BKM_PAYMENT_REQUESTED.name: BkmPaymentRequested(
            order_id=f"chaos-{run}-canary", sale_amount=Decimal("1.00")
        ),
        MOKA_APPLICATION_REQUESTED.name: MokaDealerApplicationRequested(
            application_id=f"chaos-{run}-canary", application=DEMO_APPLICATION
        ),
    }


async def inject_bad_records(system: System, run: str) -> list[Injected]:
    """Each bad record on partition 0 of every input topic, then a good one (a canary)
    where the topic has one; the canary report's own events follow on the others."""
    producer = await new_producer(system.bootstrap, max_request_size=BIG_RECORD_BYTES)
    out: list[Injected] = []
    good = canaries(run)
    try:
        for topic in (*INPUT_TOPICS, *READER_TOPICS):
            for kind, value in BAD_RECORDS:
                part, off = await send_retrying(
                    producer, topic, value, key=b"chaos-bad", partition=0
                )
                out.append(Injected(kind, topic, part, off))
        for topic, ev in good.items():
            part, off = await send_retrying(
                producer,
                topic,
                encode_event(topic_spec(topic), ev),
                key=ev.kafka_key(),
                partition=0,
                headers=[("x-event-type", ev.event_type.encode())],
            )
            out.append(Injected("canary", topic, part, off))
    finally:
        await producer.stop()
    return out


def _cluster(system: System) -> KafkaCluster:
    assert system.cluster is not None
    return system.cluster
