"""The runtime every kopru service shares: broker, delivery policy, stores, HTTP side.

A service module builds a `Service` (its FastStream broker with its subscribers, its
adapters, its readiness checks, maybe extra HTTP routes). `run_service` starts it,
serves /healthz /readyz /metrics, and on SIGTERM or SIGINT stops consuming, lets the
message in flight finish (FastStream's graceful timeout), commits, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.broker.stop()
        for hook in reversed(self.on_stop):
            try:
                await hook()
            except Exception as exc:
                log.warning("stop hook failed", error=str(exc))
        log.info("service stopped")

    def topics(self) -> list[str]:
        return sorted({t for s in self.broker.subscribers for t in getattr(s, "topic_names", [])})


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
    broker = make_broker(settings.kafka, client_id=name, graceful_timeout=20.0)
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


async def run_service(service: Service) -> None:
    """Run until SIGTERM / SIGINT, with the HTTP side on settings.http."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
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
        )
    )
    await service.start()
    serving = asyncio.create_task(server.serve(), name="http")
    try:
        await stop.wait()
        log.info("shutdown requested")
    finally:
        await service.stop()
        server.should_exit = True
        await serving
