"""The report pipeline rides out a broker restart without restarting a service (#11).

The issue's case on the memory-only local broker: non-default retry tiers
([0.5, 1, 2, 5] s), the broker SIGKILLed and started again empty, `kopru broker`'s
catalogue created again (default tiers only), a status-poller restarted afterwards
(it finds the token topic empty and asks auth-token, which still holds a live token).
Before the fix: status-poller's own 500 ms retry topic was gone (commits failing),
auth-token never answered, the restarted poller waited forever, and every /readyz said
ready. After: new requests complete, one /v1/auth for the whole run, all ready.

Under CI's load it once lost three of the four new requests' ReportSubmitted: a
service's producer refreshed its metadata before the catalogue was made again, the broker
created `mks.reports.submitted` on that lookup with its default 4 partitions, the
catalogue left the existing topic alone, and the producer, still holding 6 partitions,
wrote to partitions 4 and 5 that no consumer reads (no_auto_create.py). The test now makes
that lookup happen every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from schemas.events import (
    REPORTS_SUBMITTED,
    ReportCompleted,
)
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings
from tests.broker_pool import Broker, kill_broker, restart_empty
from tests.conftest import broker_settings
from tests.e2e.conftest import ReportSystem, report_request, watch_reports

pytestmark = [pytest.mark.e2e, pytest.mark.engines("tansu", "kafka")]


async def _partitions(broker: Broker, name: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        [found] = await admin.describe_topics([name])
        return len(found["partitions"])
    finally:
        await admin.close()


async def _readiness(system: ReportSystem) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for svc in system.services:
        for name, check in svc.readiness.items():
            try:
                await asyncio.wait_for(check(), 3.0)
            except Exception as exc:
                out.setdefault(svc.name, {})[name] = f"{type(exc).__name__}: {exc}"
    return out


async def test_broker_restart_is_ridden_out_and_token_requests_are_answered(
    report_system: ReportSystem, report_broker: Broker
) -> None:
    await report_system.start()
    first = [report_request(i, prefix="before") for i in range(3)]
    await report_system.publish(first)
    assert report_system.watcher is not None
    await report_system.watcher.wait_terminal([r.request_id for r in first], 90)

    # SIGKILL the broker; start it again on the same address with every topic gone
    # (tansu is memory only; a Kafka node comes back on fresh storage).
    kill_broker(report_broker)
    await asyncio.sleep(1.0)
    assert await _readiness(report_system), "ready while the broker is down"
    await restart_empty(report_broker, down_s=0.0)
    # The report-requester's producer looks its topics up before the catalogue is back.
    requester = next(s for s in report_system.services if s.name == "report-requester")
    await requester.broker._producer._producer.producer.client.force_metadata_update()
    # What `kopru broker` does at start: the catalogue with the *default* retry tiers.
    default_tiers = broker_settings(report_broker).model_copy(
        update={"retry_tiers_s": KafkaSettings().retry_tiers_s}
    )
    await create_topics(default_tiers)
    await wait_for_leaders(report_broker.bootstrap_servers, [t.name for t in plan(default_tiers)])
    assert await _partitions(report_broker, REPORTS_SUBMITTED.name) == REPORTS_SUBMITTED.partitions
    with contextlib.suppress(Exception):  # its reader saw the broker die
        await report_system.watcher.stop()
    report_system.watcher = await watch_reports(report_broker.bootstrap_servers)

    # A status-poller restarted after the broker: its token cache starts empty.
    poller = next(s for s in report_system.services if s.name == "status-poller")
    await poller.stop()
    report_system.services.remove(poller)
    await report_system.start(names=("status-poller",))

    second = [report_request(i, prefix="after") for i in range(4)]
    await report_system.publish(second)
    try:
        done = await report_system.watcher.wait_terminal([r.request_id for r in second], 150)
    except AssertionError as exc:
        submitted = report_system.watcher.events[REPORTS_SUBMITTED.name]
        seen = [e.request_id for e in submitted]  # type: ignore[attr-defined]
        raise AssertionError(f"{exc}; submitted seen: {seen}") from None
    for r in second:
        [event] = done[r.request_id]
        assert isinstance(event, ReportCompleted), event
    # One token for the whole run: auth-token published its live token again.
    assert len(report_system.mkk_requests("auth")) == 1

    deadline = time.monotonic() + 60
    while (failing := await _readiness(report_system)) and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
    assert failing == {}
