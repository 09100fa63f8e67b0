"""The chaos run from start to end: the system up, the load flowing, the faults one after
the other, the wait for every outcome, the settle, the count, the scan, the table."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos import faults
from chaos.accounting import stuck_partitions
from chaos.figures import Run, decode, measure
from chaos.load import ConfirmationLoad, plan_confirmations, publish_reports, report_requests
from chaos.report import table
from chaos.system import System
from chaos.topics import group_offsets, high_water, read_all
from schemas.events import BKM_CONFIRMATIONS, REPORTS_COMPLETED, REPORTS_FAILED

Row = tuple[str, str, object]


@dataclass(frozen=True)
class Options:
    reports: int = 200
    confirmations: int = 1000
    replay_rate: float = 0.3
    seed: int = 1
    outage_s: float = 30.0
    load_s: float = 240.0  # the load is spread over this long (through steps 1-4)
    finish_s: float = 300.0  # after the faults, how long outcomes may take
    settle_s: float = 60.0  # how long lag may take to drain before a partition is stuck
    state_dir: Path = Path(".kopru/chaos")


def say(text: str) -> None:
    print(text, flush=True)


async def _outcomes(system: System) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    assert system.kafka is not None
    names = [REPORTS_COMPLETED.name, REPORTS_FAILED.name, BKM_CONFIRMATIONS.name]
    records = await read_all(system.kafka, names)
    terminal = decode(records, REPORTS_COMPLETED.name) + decode(records, REPORTS_FAILED.name)
    return terminal, decode(records, BKM_CONFIRMATIONS.name)


async def _wait_outcomes(
    system: System, request_ids: list[str], tokens: list[str], timeout_s: float
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            terminal, confirmed = await _outcomes(system)
        except Exception as exc:  # a read cut short by a slow broker: try again
            say(f"  (outcome read failed: {type(exc).__name__}: {exc})")
            await asyncio.sleep(5)
            continue
        have = {e.get("request_id") for e in terminal}
        tok = {e.get("token") for e in confirmed}
        left_r = sum(r not in have for r in request_ids)
        left_c = sum(t not in tok for t in tokens)
        if not left_r and not left_c:
            return time.monotonic() - started
        say(f"  waiting: {left_r} reports, {left_c} confirmations without their event")
        await asyncio.sleep(10)
    return time.monotonic() - started


async def _settle(system: System, timeout_s: float) -> tuple[dict[str, Any], float]:
    assert system.kafka is not None
    started = time.monotonic()
    while True:
        committed = await group_offsets(system.bootstrap)
        topics = sorted({t for offs in committed.values() for t, _ in offs})
        start, end = await high_water(system.kafka, topics)
        stuck = stuck_partitions(committed, start, end)
        if not stuck or time.monotonic() - started > timeout_s:
            return stuck, time.monotonic() - started
        await asyncio.sleep(5)


async def _step(rows: list[Row], name: str, action: Callable[[], Awaitable[str]]) -> None:
    say(f"fault: {name} ...")
    t0 = time.monotonic()
    note = await action()
    rows.append(("faults", name, f"{note} [{time.monotonic() - t0:.0f} s]"))
    say(f"  {note}")


async def chaos(opts: Options) -> int:
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    root = (opts.state_dir / run_id).resolve()
    for old in opts.state_dir.glob("*"):  # one run's data at a time (10 MB records x 3)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    system = System(root, db=f"kopru_chaos_{run_id}")
    rows: list[Row] = []
    rng = random.Random(opts.seed)
    load: list[asyncio.Task[None]] = []
    try:
        say(f"chaos run {run_id}: state in {root}")
        await system.start()
        up_s = time.monotonic() - started
        say(f"3-node Kafka, sandboxes and 10 service processes ready after {up_s:.0f} s")
        rows.append(("system", "ready after", f"{up_s:.0f} s"))
        requests = report_requests(run_id, opts.reports)
        confirmations = plan_confirmations(run_id, opts.confirmations, opts.replay_rate, rng)
        held_r, held_c = max(1, opts.reports // 10), max(1, opts.confirmations // 10)
        assert system.bkm_keys is not None
        sent: list[str] = []
        loader = ConfirmationLoad(system.notifier_urls, system.bkm_keys.bkm_private, rng)
        load += [
            asyncio.create_task(
                publish_reports(system.bootstrap, requests[:-held_r], opts.load_s, sent)
            ),
            asyncio.create_task(loader.run(confirmations[:-held_c], opts.load_s)),
        ]
        await asyncio.sleep(15)
        await _step(rows, "1 kill busiest leader", lambda: faults.kill_busiest_leader(system))
        await _step(rows, "2 rolling restart", lambda: faults.rolling_restart(system))
        await _step(rows, "3 kill a replica each", lambda: faults.kill_one_replica_each(system))
        await _step(
            rows,
            "4 whole cluster down",
            lambda: faults.whole_cluster_outage(system, opts.outage_s),
        )
        injected: list[faults.Injected] = []

        async def inject() -> str:
            injected.extend(await faults.inject_bad_records(system, run_id))
            canaries = sum(i.kind == "canary" for i in injected)
            return f"{len(injected) - canaries} bad records, then {canaries} good ones (canaries)"

        await _step(rows, "5 big + bad records", inject)
        # Good records after the bad ones: the rest of the load.
        loader2 = ConfirmationLoad(system.notifier_urls, system.bkm_keys.bkm_private, rng)
        load += [
            asyncio.create_task(publish_reports(system.bootstrap, requests[-held_r:], 10, sent)),
            asyncio.create_task(loader2.run(confirmations[-held_c:], 10)),
        ]
        await asyncio.gather(*load)
        say(f"load sent after {time.monotonic() - started:.0f} s; waiting for every outcome")
        ids = [r.request_id for r in requests]
        tokens = [c.token for c in confirmations]
        waited = await _wait_outcomes(system, ids, tokens, opts.finish_s)
        rows.append(("system", "outcomes complete after the load", f"{waited:.0f} s"))
        stuck, settled = await _settle(system, opts.settle_s)
        rows.append(("system", "settle (consumer lag drained)", f"{settled:.0f} s"))

        say("counting and scanning every topic ...")
        committed = await group_offsets(system.bootstrap)
        run = Run(system, requests, confirmations, injected, stuck, committed)
        verdict = await measure(run, rows)
        rows.append(("system", "whole run", f"{time.monotonic() - started:.0f} s"))
        say("")
        say(table(rows))
        say(verdict.last_line())
        return verdict.exit_code
    finally:
        for task in load:
            task.cancel()
        await asyncio.shield(_close(system))


async def _close(system: System) -> None:
    await asyncio.to_thread(system.close)
    await system.drop_databases()
    shutil.rmtree(system.root / "kafka", ignore_errors=True)  # the big records
