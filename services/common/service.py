"""The runtime every kopru service shares: broker, delivery policy, stores, HTTP side.

A service module builds a `Service` (its FastStream broker with its subscribers, its
adapters, its readiness checks, maybe extra HTTP routes). `run_service` starts it,
serves /healthz /readyz /metrics, and on SIGTERM or SIGINT stops consuming, lets the
message in flight finish (FastStream's graceful timeout), commits, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from starlette.routing import BaseRoute

from schemas.events import CATALOGUE
from services.common.kafka.broker import attach_delivery, make_broker, set_idempotence
from services.common.kafka.capabilities import detect
from services.common.kafka.clients import stop_quietly
from services.common.kafka.consumer_lag import lag_loop
from services.common.kafka.delivery import Delivery, DeliveryPolicy
from services.common.kafka.own_topics import OwnTopics
from services.common.kafka.retry_tiers import Backoff
from services.common.kafka.topic_stats import sample_dlq_depth_loop
from services.common.observability.health import Check, health_app
from services.common.observability.logging import get_logger
from services.common.settings import BaseServiceSettings

log = get_logger(__name__)

Hook = Callable[[], Awaitable[None]]
DLQ_OF = {spec.name: spec.dlq for spec in CATALOGUE}  # topic -> its dead-letter topic


@dataclass
class Service:
    name: str
    settings: BaseServiceSettings
    broker: KafkaBroker
    delivery: Delivery
    description: str = ""
    readiness: dict[str, Check] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    routes: list[BaseRoute] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # The stop steps the last stop left behind (did not finish in their time).
    left_behind: list[str] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.delivery.policy.group

    def specification(self) -> AsyncAPI:
        return AsyncAPI(
            self.broker,
            title=f"kopru {self.name}",
            version="1.0.0",
            description=self.description or None,
        )

    def consumers(self) -> list[Any]:
        subs = self.broker.subscribers
        return [getattr(s, "consumer", None) for s in subs if getattr(s, "consumer", None)]

    def liveness(self) -> list[str]:
        problems = []
        for sub in self.broker.subscribers:
            for task in getattr(sub, "tasks", []):
                if task.done() and not task.cancelled() and task.exception() is not None:
                    names = getattr(sub, "topic_names", [])
                    problems.append(f"consumer of {names} died: {task.exception()!r}")
        return problems

    async def start(self) -> None:
        kafka = self.settings.kafka
        idempotent = await detect(kafka)
        set_idempotence(self.broker, idempotent)
        own = OwnTopics(kafka, self.name, self.group, self.topics())
        await own.ensure(force=True)

        async def on_trouble(_: BaseException) -> None:
            await own.ensure()  # an unknown topic after a broker restart: make it again

        self.delivery.on_trouble = on_trouble
        for hook in self.on_start:
            await hook()
        await self.broker.start()
        self._tasks.append(
            asyncio.create_task(lag_loop(self.consumers, self.name, self.group), name="lag")
        )
        dlqs = [DLQ_OF[t] for t in self.topics() if t in DLQ_OF]
        self._tasks.append(
            asyncio.create_task(sample_dlq_depth_loop(self.settings.kafka, dlqs), name="dlq-depth")
        )
        self._tasks.append(asyncio.create_task(self._watch(own), name="watch"))
        log.info(
            "service started",
            group=self.group,
            topics=self.topics(),
            idempotent_producer=idempotent,
        )

    async def consumer_problems(self) -> None:
        """Readiness: commits and settles succeed, and no partition with lag is stuck."""
        problems = await self.delivery.progress.problems(self.consumers())
        if problems:
            raise RuntimeError("; ".join(problems[:5]))

    async def _watch(self, own: OwnTopics) -> None:
        """Time the progress of every partition, and re-make lost topics, in the background."""
        every = min(5.0, self.settings.kafka.stall_after_s / 4)
        ticks = 0
        while True:
            await asyncio.sleep(every)
            ticks += 1
            try:
                await self.delivery.progress.stuck(self.consumers())
                if ticks % max(1, int(30 / every)) == 0:
                    await own.ensure()
            except Exception as exc:  # watching must never stop a service
                log.debug("watch failed", error=str(exc))

    async def stop(self) -> None:
        """Stop within `lifecycle.shutdown_timeout_s`: the background tasks, the broker (the
        message in flight finishes within its graceful timeout), then the stop hooks, last
        added first. A step that does not finish in its time is left behind, logged with
        where it waits, and the next step runs: one stuck client never keeps the stores
        open or the relay's leases held, and a stop always returns."""
        deadline = time.monotonic() + self.settings.lifecycle.shutdown_timeout_s

        def left(cap: float | None = None) -> float:
            remaining = max(1.0, deadline - time.monotonic())
            return remaining if cap is None else min(cap, remaining)

        self.left_behind = []
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await self._step(task.get_name(), task, left(BACKGROUND_STOP_S))
        self._tasks.clear()
        await self._step("broker", stop_quietly(self.broker.stop()), left())
        for hook in reversed(self.on_stop):
            await self._step(_name_of(hook), hook(), left())
        log.info("service stopped", left_behind=self.left_behind or None)

    async def _step(self, name: str, work: Awaitable[object], timeout_s: float) -> None:
        if not await bounded(name, work, timeout_s):
            self.left_behind.append(name)

    def topics(self) -> list[str]:
        return sorted({t for s in self.broker.subscribers for t in getattr(s, "topic_names", [])})


BACKGROUND_STOP_S = 5.0  # a cancelled background task (lag, DLQ depth, watch) ends in this


def _name_of(hook: Hook) -> str:
    """A hook's name for the log: a bound method's qualname is already Class.method."""
    return str(getattr(hook, "__qualname__", repr(hook)))


def _waiting_at(task: asyncio.Task[Any], depth: int = 3) -> str:
    """Where a task waits: its innermost coroutine frames, "file:line function > ..."."""
    frames: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and getattr(awaited, "cr_frame", None) is not None:
        frame = awaited.cr_frame
        code = frame.f_code
        frames.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {code.co_name}")
        awaited = getattr(awaited, "cr_await", None)
    return " > ".join(frames[-depth:]) or "?"


async def bounded(step: str, work: Awaitable[object], timeout_s: float) -> bool:
    """Await one step of a stop for at most ``timeout_s``: True when it ended (an error is
    logged, not raised). One that is still running is cancelled and left behind, logged
    with where it waits (a cancellation swallowed inside a client must not hang the stop).
    A cancellation of the caller cancels the step too."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        where = _waiting_at(task)
        task.cancel()
        log.error("stop step did not finish; going on", step=step, after_s=timeout_s, at=where)
        return False
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("stop step failed", step=step, error=f"{type(exc).__name__}: {exc}")
    return True


def new_service(
    name: str,
    settings: BaseServiceSettings,
    *,
    description: str = "",
    backoff: Backoff | None = None,
    max_attempts: dict[str, int | None] | None = None,
    default_max_attempts: int = 8,
) -> Service:
    """A service with its broker and delivery policy; subscribers are added by the caller."""
    # The message in flight may finish within three quarters of the stop deadline.
    graceful_s = settings.lifecycle.shutdown_timeout_s * 0.75
    broker = make_broker(settings.kafka, client_id=name, graceful_timeout=graceful_s)
    policy = DeliveryPolicy(
        service=name,
        group=name,
        tiers=settings.kafka.retry_tiers_s,
        backoff=backoff or Backoff(),
        default_max_attempts=default_max_attempts,
        max_attempts=max_attempts or {},
        max_record_bytes=settings.kafka.max_record_bytes,
    )
    delivery = attach_delivery(broker, policy, stall_after_s=settings.kafka.stall_after_s)

    async def broker_ping() -> None:
        if not await broker.ping(timeout=2.0):
            raise ConnectionError("broker did not answer")

    service = Service(
        name=name,
        settings=settings,
        broker=broker,
        delivery=delivery,
        description=description,
        readiness={"kafka": broker_ping},
    )
    service.readiness["consumers"] = service.consumer_problems
    return service


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM / SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class StartupFailed(SystemExit):
    """The service could not start: exit non-zero with one clear line, no traceback."""


def _exit_soon(after_s: float, code: int) -> threading.Timer:
    """A last resort that ends the process if a clean stop hangs (a stuck thread, a
    broker that never answers): Kubernetes must not have to SIGKILL us."""

    def bail() -> None:
        log.error("stop did not finish in time; exiting", after_s=after_s)
        os._exit(code)

    timer = threading.Timer(after_s, bail)
    timer.daemon = True
    timer.start()
    return timer


async def run_service(service: Service, *, sock: socket.socket | None = None) -> None:
    """Run until SIGTERM / SIGINT, with the HTTP side on settings.http (or on ``sock``, a
    listening socket given by the worker supervisor, services/common/workers.py).

    Start-up has a deadline (`lifecycle.startup_timeout_s`): a broker that does not
    answer fails start-up with a clear message and exit code 3. A signal during start-up
    stops it. Stopping has a deadline too (`lifecycle.shutdown_timeout_s`, inside
    Kubernetes' grace period); a second signal exits at once.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    life = service.settings.lifecycle

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    log.info("starting", service=service.name, startup_timeout_s=life.startup_timeout_s)
    http = service.settings.http
    server = _Server(
        uvicorn.Config(
            health_app(
                liveness=service.liveness, readiness=service.readiness, routes=service.routes
            ),
            host=http.host,
            port=http.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            # Nothing here reads the client's address or scheme (no X-Forwarded-* work
            # per request), and the answer does not name the server software.
            proxy_headers=False,
            server_header=False,
        )
    )
    starting = asyncio.create_task(service.start(), name="start")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    done, _ = await asyncio.wait(
        {starting, stopping}, timeout=life.startup_timeout_s, return_when=asyncio.FIRST_COMPLETED
    )
    if starting not in done or starting.exception() is not None:
        reason = (
            "stopped by a signal during start-up"
            if stopping in done
            else f"not started within {life.startup_timeout_s:g} s "
            f"(is the broker at {service.settings.kafka.bootstrap_servers} answering?)"
            if starting not in done
            else f"{type(starting.exception()).__name__}: {starting.exception()}"
        )
        starting.cancel()
        stopping.cancel()
        timer = _exit_soon(life.shutdown_timeout_s, 3)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(service.stop(), life.shutdown_timeout_s)
        timer.cancel()
        if stopping in done:
            log.info("start-up interrupted", reason=reason)
            return
        log.error("start-up failed", service=service.name, reason=reason)
        raise StartupFailed(3)
    # What start-up made (modules, settings, clients) stays for the process's life: out of
    # the collector's way, a full collection no longer walks it (shorter pauses).
    gc.freeze()
    serving = asyncio.create_task(
        server.serve(sockets=None if sock is None else [sock]), name="http"
    )
    try:
        await stopping
        log.info("shutdown requested")
    finally:
        timer = _exit_soon(life.shutdown_timeout_s + 2.0, 1)
        try:
            await asyncio.wait_for(service.stop(), life.shutdown_timeout_s)
        except TimeoutError:
            log.error("service stop timed out", after_s=life.shutdown_timeout_s)
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 5.0)
        timer.cancel()
