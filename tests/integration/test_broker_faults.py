"""Broker-side faults on the real broker: records too large to copy, a broker restart,
a partition that stops moving. Nothing may block a partition, nothing may need a
service restart, and /readyz must tell the truth meanwhile (issue #11)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.kafka import headers as H
from services.common.kafka.dlq import replay, show
from services.common.kafka.retry_tiers import retry_topics
from services.common.service import Service
from services.common.settings import BaseServiceSettings, KafkaSettings, StoreSettings
from services.common.stores.factory import open_store
from tests.broker_pool import Broker, kill_broker, restart_empty
from tests.conftest import unique
from tests.integration.apps.echo_service import Ping, build
from tests.kafka_tools import create_topics, produce, read_topic

pytestmark = pytest.mark.integration

BIG_TOPIC = {"max.message.bytes": str(16 * 1024 * 1024)}  # upstream allows big records


def _settings(kafka: KafkaSettings, tmp_path: Path, **kafka_over: Any) -> BaseServiceSettings:
    return BaseServiceSettings(
        kafka=kafka.model_copy(update=kafka_over),
        store=StoreSettings(url=f"sqlite:///{tmp_path}/echo.db"),
    )


async def not_ready(service: Service) -> dict[str, str]:
    """What /readyz would list as failing (empty: ready)."""
    failed: dict[str, str] = {}
    for name, check in service.readiness.items():
        try:
            await asyncio.wait_for(check(), 3.0)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


async def wait_for(cond: Any, timeout_s: float, what: str, every_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await cond()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def _ping(id_: str, action: str = "ok", pad: int = 0) -> bytes:
    body = Ping(id=id_, action=action).model_dump()  # type: ignore[arg-type]
    if pad:
        body["pad"] = "x" * pad  # extra field: ignored by Ping, weighs on the record
    return json.dumps(body).encode()


@pytest.mark.engines("tansu", "kafka")
async def test_records_too_large_to_copy_become_dlq_references_and_the_partition_moves_on(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    boot = kafka_settings.bootstrap_servers
    in_t, out_t = unique("in"), unique("out")
    await create_topics(boot, [in_t], config=BIG_TOPIC)
    await create_topics(boot, [out_t])
    big_bug = _ping("big-bug", "boom", pad=1_300_000)  # a bug on a 1.3 MB record
    big_bad = b"{" + b'"x": 1,' * 1_500_000  # 10 MB, not even JSON
    retry_body = json.loads(_ping("big-retry", "retry", pad=1_300_000))
    retry_body["delay_s"] = 0.5
    big_retry = json.dumps(retry_body).encode()  # retry tiers cannot carry it
    # Produced before the service reads: the local broker times out a large produce
    # while a fetch is waiting on the same partition (a broker quirk, not kopru's).
    await produce(boot, in_t, [big_bug, big_bad, big_retry], key=b"k", max_request_size=12_000_000)
    await produce(boot, in_t, [_ping("good")], key=b"k")
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()  # makes its own .dlq and retry tier topics
    try:
        pongs = await read_topic(boot, out_t, expect=1, timeout_s=60)
        dlq = await read_topic(boot, in_t + ".dlq", expect=3, timeout_s=30)
        assert await not_ready(service) == {}
    finally:
        await service.stop()
    assert [json.loads(p.value)["id"] for p in pongs] == ["good"]
    originals = {0: big_bug, 1: big_bad, 2: big_retry}
    assert len(dlq) == 3
    for d in dlq:
        h = H.as_dict(d.headers)
        original = originals[int(h[H.DLQ_ORIGINAL_OFFSET])]
        assert h[H.DLQ_REFERENCE] == "true"
        assert h[H.DLQ_ORIGINAL_TOPIC] == in_t and h[H.DLQ_ORIGINAL_PARTITION] == "0"
        assert int(h[H.DLQ_ORIGINAL_SIZE]) == len(original)
        assert h[H.DLQ_ORIGINAL_SHA256] == hashlib.sha256(original).hexdigest()
        assert original.startswith(d.value) and 500_000 < len(d.value) < 1_000_000
        assert int(h[H.DLQ_VALUE_PREFIX_BYTES]) == len(d.value)
        assert h[H.DLQ_REASON]
        assert d.key == b"k"
    reasons = {H.as_dict(d.headers)[H.DLQ_ORIGINAL_OFFSET]: H.as_dict(d.headers) for d in dlq}
    assert reasons["0"][H.DLQ_ERROR_TYPE] == "RuntimeError"
    assert "too large to retry" in reasons["2"][H.DLQ_REASON]

    # `kopru dlq show` says what they are; `replay` never republishes a mere prefix.
    letters = await show(kafka_settings, in_t)
    assert all(d.is_reference for d in letters)
    assert f"reference to {in_t}[0]@0" in letters[0].reference_note()
    skipped: list[Any] = []
    assert await replay(kafka_settings, in_t, on_skip=skipped.append) == 0
    assert len(skipped) == 3


async def test_a_partition_that_stops_moving_makes_the_service_not_ready_until_it_moves(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    boot = kafka_settings.bootstrap_servers
    in_t = unique("in")
    await create_topics(boot, [in_t])
    settings = _settings(kafka_settings, tmp_path, stall_after_s=2.0)
    release = asyncio.Event()
    from services.common.kafka.broker import consumer_options, subscribed_topics
    from services.common.service import new_service

    service = new_service("stall", settings)
    seen: list[str] = []

    @service.broker.subscriber(  # type: ignore[untyped-decorator]
        *subscribed_topics(in_t, settings.kafka, service.group),
        **consumer_options(settings.kafka, service.group),
    )
    async def handle(ping: Ping) -> None:
        seen.append(ping.id)
        if ping.id == "hang":
            await release.wait()  # e.g. waiting forever for a token that never comes

    await service.start()
    try:
        await produce(boot, in_t, [_ping("a")])

        async def handled_a() -> bool:
            return "a" in seen

        await wait_for(handled_a, 30, "the first record")
        assert await not_ready(service) == {}
        await produce(boot, in_t, [_ping("hang"), _ping("after")])

        async def stuck() -> dict[str, str]:
            return await not_ready(service)

        failed = await wait_for(stuck, 30, "readiness to see the stuck partition")
        assert "without progress" in failed["consumers"], failed
        release.set()

        async def recovered() -> bool:
            return "after" in seen and await not_ready(service) == {}

        await wait_for(recovered, 30, "recovery")
    finally:
        release.set()
        await service.stop()


@pytest.mark.engines("tansu", "kafka")
async def test_a_restarted_broker_is_ridden_out_without_restarting_the_service(
    fresh_broker: Broker, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The issue's case: non-default retry tiers ([0.5, 1, 2, 5] s), the broker SIGKILLed
    and started again empty. The service must re-make its own retry-tier and DLQ topics,
    re-join, and handle new records, retries included; /readyz 503 while the broker is
    away, 200 once it is back."""
    boot = kafka_settings.bootstrap_servers
    in_t, out_t = unique("in"), unique("out")
    assert kafka_settings.retry_tiers_s == [0.5, 1.0, 2.0, 5.0]
    await create_topics(boot, [in_t, out_t])
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    try:
        await produce(boot, in_t, [_ping("before")])
        assert len(await read_topic(boot, out_t, expect=1, timeout_s=30)) == 1

        await restart_empty(fresh_broker)
        # Upstream's topics come back (as `kopru broker` makes them); the service's own
        # retry tiers and DLQ must come back through the service itself.
        await create_topics(boot, [in_t, out_t])
        tier = retry_topics(in_t, "echo", [0.5])[0]

        async def own_topics_back() -> bool:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=boot)
            await admin.start()
            try:
                names = set(await admin.list_topics())
            finally:
                await admin.close()
            return tier in names and in_t + ".dlq" in names

        await wait_for(own_topics_back, 60, "the service to re-make its own topics", 1.0)
        retry = json.loads(_ping("after-retry", "retry"))
        retry["delay_s"] = 0.5
        await produce(boot, in_t, [_ping("after"), json.dumps(retry).encode()])
        await produce(boot, in_t, [_ping("bad", "boom")])
        # The "before" pong may come again: when the broker dies before its produce
        # answer reaches the service, the producer sends the record again to the new,
        # empty topic (at least once; same content). Only the new records must arrive.
        pongs: list[str] = []
        deadline = time.monotonic() + 90
        while not {"after", "after-retry"} <= set(pongs) and time.monotonic() < deadline:
            records = await read_topic(boot, out_t, expect=3, timeout_s=3)
            pongs = [json.loads(r.value)["id"] for r in records]
        assert sorted(set(pongs) - {"before"}) == ["after", "after-retry"], pongs
        assert pongs.count("after") == pongs.count("after-retry") == 1, pongs
        assert len(await read_topic(boot, in_t + ".dlq", expect=1, timeout_s=30)) == 1

        async def ready() -> bool:
            return await not_ready(service) == {}

        await wait_for(ready, 60, "readiness after the restart")
    finally:
        await service.stop()


@pytest.mark.engines("tansu", "kafka")
async def test_readiness_says_not_ready_while_the_broker_is_away(
    fresh_broker: Broker, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    in_t, out_t = unique("in"), unique("out")
    await create_topics(kafka_settings.bootstrap_servers, [in_t, out_t])
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    try:
        assert await not_ready(service) == {}
        kill_broker(fresh_broker)
        failed = await not_ready(service)
        assert "kafka" in failed, failed
    finally:
        await service.stop()
