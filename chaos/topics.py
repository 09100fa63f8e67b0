"""Every record of every topic, read from the beginning (explicit partitions, up to each
partition's high-water mark), and the committed offsets of every consumer group."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka.clients import stop_quietly
from services.common.kafka.topic_stats import offsets
from services.common.settings import KafkaSettings


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


async def topic_names(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if not t.startswith("__"))
    finally:
        await admin.close()


async def read_all(
    settings: KafkaSettings, topics: list[str], timeout_s: float = 120.0
) -> list[Record]:
    found = await offsets(settings, topics, timeout_s=15.0)
    ends = {
        TopicPartition(t, p): end for t, o in found.items() for p, end in o.end.items() if end > 0
    }
    starts = {TopicPartition(t, p): o.start.get(p, 0) for t, o in found.items() for p in o.end}
    out: list[Record] = []
    if not ends:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        for tp in ends:
            consumer.seek(tp, starts.get(tp, 0))
        pending = {tp for tp, end in ends.items() if end > starts.get(tp, 0)}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    headers = {k: v.decode(errors="replace") for k, v in (r.headers or [])}
                    out.append(Record(tp.topic, tp.partition, r.offset, r.key, r.value, headers))
                    if r.offset + 1 >= ends[tp]:
                        pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        if pending:
            raise TimeoutError(f"{len(pending)} partitions not read to their end")
        return out
    finally:
        await stop_quietly(consumer.stop())


async def group_offsets(bootstrap: str) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offset of every (topic, partition) of every consumer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        out: dict[str, dict[tuple[str, int], int]] = {}
        for group in await admin.list_consumer_groups():
            gid = group[0]
            committed = await admin.list_consumer_group_offsets(gid)
            out[gid] = {(tp.topic, tp.partition): om.offset for tp, om in committed.items()}
        return out
    finally:
        await admin.close()


async def high_water(
    settings: KafkaSettings, topics: list[str]
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """(log start, high-water mark) of every partition of `topics`."""
    found = await offsets(settings, topics, timeout_s=15.0)
    start = {(t, p): s for t, o in found.items() for p, s in o.start.items()}
    end = {(t, p): e for t, o in found.items() for p, e in o.end.items()}
    return start, end


async def group_members(bootstrap: str) -> dict[str, int]:
    """Members of every consumer group now, asked group by group (a group whose answer
    cannot be had after three tries is left out: a figure for the table, not a verdict)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    out: dict[str, int] = {}
    try:
        await admin.start()
        groups = [g[0] for g in await admin.list_consumer_groups()]
    except Exception:
        await admin.close()
        return out
    try:
        for gid in groups:
            for _ in range(3):
                try:
                    (resp,) = await admin.describe_consumer_groups([gid])
                except Exception:
                    await asyncio.sleep(0.5)
                    continue
                for g in resp.to_object().get("groups", []):
                    out[str(g.get("group"))] = len(g.get("members") or [])
                break
        return out
    finally:
        await admin.close()
