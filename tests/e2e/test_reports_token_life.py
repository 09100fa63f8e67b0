"""Tokens under steady load with a short token life (sandbox: 8 s): one /v1/auth per
token life, renewed at 50/60 of it, so no call is ever refused for an expired token."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.events import REPORTS_COMPLETED, REPORTS_FAILED, ReportCompleted
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys
from tests.broker_pool import Broker
from tests.e2e.conftest import (
    SANDBOX_CONFIG,
    ReportSystem,
    Watcher,
    report_request,
    start_sandbox,
    stop_process,
)

pytestmark = pytest.mark.e2e
LIFE_S = 8


@pytest.fixture
async def report_short_token_system(
    report_broker: Broker, tmp_path: Path
) -> AsyncIterator[ReportSystem]:
    config = SANDBOX_CONFIG.replace("rp023_s: 0.3}", f"rp023_s: 0.3, token_lifetime_s: {LIFE_S}}}")
    proc, url = start_sandbox(tmp_path, config + "report_lock: 'off'\n")
    pw = tmp_path / "pw"
    pw.write_text(DEMO_PASSWORD)
    system = ReportSystem(
        bootstrap=report_broker.bootstrap_servers, sandbox_url=url, tmp=tmp_path,
        store_url=f"sqlite:///{tmp_path}/kopru.db", password_file=pw,
        keys=ensure_demo_keys(tmp_path / "sandbox"), engine=report_broker.engine,
    )  # fmt: skip
    system.watcher = Watcher(
        report_broker.bootstrap_servers, [REPORTS_COMPLETED.name, REPORTS_FAILED.name]
    )
    await system.watcher.start()
    yield system
    await system.stop()
    await system.watcher.stop()
    stop_process(proc)


async def test_one_auth_per_token_life_under_load(report_short_token_system: ReportSystem) -> None:
    system = report_short_token_system
    await system.start()
    t0 = time.monotonic()
    ids = []
    for wave in range(8):  # a steady stream over about two and a half token lives
        reqs = [report_request(i, prefix=f"life{wave}") for i in range(3)]
        ids += [r.request_id for r in reqs]
        await system.publish(reqs)
        await asyncio.sleep(2.5)
    assert system.watcher is not None
    done = await system.watcher.wait_terminal(ids, 60)
    elapsed = time.monotonic() - t0
    assert all(isinstance(done[i][0], ReportCompleted) for i in ids)
    auths = system.mkk_requests("auth")
    renew_every = LIFE_S * 50 / 60
    print(f"{len(auths)} auth calls over {elapsed:.1f} s, token life {LIFE_S} s")
    assert 2 <= len(auths) <= math.ceil(elapsed / renew_every) + 1, (len(auths), elapsed)
    refused = [
        c
        for ep in ("balance-report", "status", "content")
        for c in system.mkk_requests(ep)
        if c["response_code"] == "OI006"
    ]
    assert refused == []  # renewed before expiry: never a call with a dead token
