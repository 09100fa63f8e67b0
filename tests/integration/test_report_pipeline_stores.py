"""The four report services on the real broker against the sandbox over HTTP, with
their state on SQLite and on PostgreSQL: reports complete, and a re-published request
is answered from the store (no second balance-report)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.events import (
    REPORTS_SUBMITTED,
    ReportCompleted,
)
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import StoreSettings
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys
from tests.broker_pool import Broker
from tests.conftest import broker_settings
from tests.e2e.conftest import (
    ReportSystem,
    report_request,
    start_sandbox,
    stop_process,
    watch_reports,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(
    fresh_broker: Broker, store_settings: StoreSettings, tmp_path: Path
) -> AsyncIterator[ReportSystem]:
    settings = broker_settings(fresh_broker)
    await create_topics(settings)
    await wait_for_leaders(settings.bootstrap_servers, [t.name for t in plan(settings)])
    proc, url = start_sandbox(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text(DEMO_PASSWORD)
    sysm = ReportSystem(
        bootstrap=fresh_broker.bootstrap_servers, sandbox_url=url, tmp=tmp_path,
        store_url=store_settings.url, password_file=pw,
        keys=ensure_demo_keys(tmp_path / "sandbox"), engine=fresh_broker.engine,
    )  # fmt: skip
    sysm.admin("/_sandbox/settings", "PUT", {"report_lock": "off"})
    sysm.watcher = await watch_reports(fresh_broker.bootstrap_servers)
    yield sysm
    await sysm.stop()
    await sysm.watcher.stop()
    stop_process(proc)


async def test_reports_complete_and_republished_request_is_replayed(system: ReportSystem) -> None:
    await system.start()
    prefix = "st" + uuid.uuid4().hex[:6]
    reqs = [report_request(i, prefix=prefix) for i in range(3)]
    await system.publish(reqs)
    assert system.watcher is not None
    done = await system.watcher.wait_terminal([r.request_id for r in reqs], 60)
    assert all(isinstance(done[r.request_id][0], ReportCompleted) for r in reqs)
    # Re-published by upstream (new event ids): the stored outcome again, no MKK call.
    again = [report_request(i, prefix=prefix) for i in range(3)]
    await system.publish(again)
    for _ in range(50):
        subs = [e for e in system.watcher.events[REPORTS_SUBMITTED.name]]
        if len(subs) >= 6:
            break
        await asyncio.sleep(0.2)
    assert len(subs) == 6 and len({s.event_id for s in subs}) == 3
    made = [r for r in system.mkk_requests("balance-report") if r["response_code"] == "0000"]
    assert len(made) == 3
    assert len(system.watcher.terminal()) == 3
