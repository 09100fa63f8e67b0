"""Service.stop always returns within its deadline: a step that hangs (a client that
swallows its cancellation) is left behind, named, and the steps after it still run."""

from __future__ import annotations

import asyncio
import contextlib
import time

from structlog.testing import capture_logs

from services.common.service import bounded, new_service
from services.common.settings import BaseServiceSettings, LifecycleSettings


async def _deaf(forever: asyncio.Event) -> None:
    """Waits and ignores every cancellation, as aiokafka's stop() did after an outage."""
    while not forever.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await forever.wait()


async def test_a_hanging_stop_hook_is_left_behind_and_the_others_run() -> None:
    settings = BaseServiceSettings(lifecycle=LifecycleSettings(shutdown_timeout_s=1.5))
    service = new_service("stopper", settings)
    ran: list[str] = []
    forever = asyncio.Event()

    async def close_store() -> None:  # added first: runs last
        ran.append("store")

    async def stuck_client() -> None:
        await _deaf(forever)

    async def failing() -> None:
        ran.append("failing")
        raise RuntimeError("boom")

    service.on_stop += [close_store, stuck_client, failing]
    service._tasks.append(asyncio.create_task(_deaf(forever), name="deaf-background"))
    await asyncio.sleep(0)  # it runs, and waits
    started = time.monotonic()
    try:
        await service.stop()
    finally:
        forever.set()
    took = time.monotonic() - started

    assert ran == ["failing", "store"]  # last added first; a failure does not stop the rest
    assert service.left_behind == [
        "deaf-background",
        "test_a_hanging_stop_hook_is_left_behind_and_the_others_run.<locals>.stuck_client",
    ]
    # Each stuck step waits at most what is left of the deadline, at least 1 s.
    assert took < 1.5 + 1.0 + 0.5, took


async def test_bounded_passes_on_the_callers_cancellation_to_the_step() -> None:
    step_cancelled = asyncio.Event()

    async def step() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            step_cancelled.set()
            raise

    caller = asyncio.create_task(bounded("step", step(), 30))
    await asyncio.sleep(0.05)
    caller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(step_cancelled.wait(), 1)


async def test_bounded_tells_a_finished_step_from_a_stuck_one() -> None:
    async def quick() -> None:
        return None

    assert await bounded("quick", quick(), 1)
    forever = asyncio.Event()
    try:
        with capture_logs() as logs:
            assert not await bounded("deaf", _deaf(forever), 0.2)
    finally:
        forever.set()
    # The log says where the step waits: the innermost coroutine.
    assert "test_service_stop.py:" in logs[0]["at"] and " _deaf > " in logs[0]["at"], logs
