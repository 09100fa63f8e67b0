"""A small service built with kopru's real wiring, for the platform's integration tests.

It consumes `Ping` events from IN_TOPIC and publishes a `Pong` on OUT_TOPIC once per ping
id, guarded by the real idempotency store. Run as a process:
`python -m tests.integration.apps.echo_service` with KOPRU_* settings and
ECHO_IN / ECHO_OUT / ECHO_EFFECTS (a file that records each effect) in the environment;
ECHO_CRASH_AFTER_EFFECT=1 kills the process after the effect, before the commit.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Literal

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from services.common.errors import InvalidMessage, RetryLater
from services.common.kafka.broker import consumer_options, subscribed_topics
from services.common.observability.logging import configure_logging
from services.common.service import Service, new_service, run_service
from services.common.settings import BaseServiceSettings, load_settings
from services.common.stores.factory import open_store
from services.common.stores.idempotency import IdempotencyStore, run_once


class Ping(BaseModel):
    id: str
    action: Literal["ok", "retry", "boom", "invalid"] = "ok"
    delay_s: float = 0.0
    partition_hint: int = 0


class Pong(BaseModel):
    id: str
    handled_at: float
    attempt: int


def build(
    settings: BaseServiceSettings,
    store: IdempotencyStore,
    in_topic: str,
    out_topic: str,
    effects: Path | None = None,
    crash_after_effect: bool = False,
) -> Service:
    service = new_service("echo", settings, max_attempts={in_topic: 3})
    broker: KafkaBroker = service.broker
    topics = subscribed_topics(in_topic, settings.kafka, service.group)

    @broker.subscriber(*topics, **consumer_options(settings.kafka, service.group))
    async def handle(ping: Ping, message: KafkaMessage) -> None:
        if ping.action == "invalid":
            raise InvalidMessage("asked to be invalid")
        if ping.action == "boom":
            raise RuntimeError("boom")
        # Retry exactly once: the second delivery carries the attempt header.
        if ping.action == "retry" and ping.delay_s > 0 and "x-kopru-attempt" not in message.headers:
            raise RetryLater("asked to retry", delay_s=ping.delay_s)

        async def effect() -> dict[str, str]:
            if effects is not None:
                with effects.open("a") as f:
                    f.write(ping.id + "\n")
            pong = Pong(id=ping.id, handled_at=time.time(), attempt=1)
            await broker.publish(pong.model_dump_json(), topic=out_topic, key=ping.id.encode())
            return {"pong": ping.id}

        await run_once(store, "echo", ping.id, ping.model_dump_json().encode(), effect)
        if crash_after_effect:
            os._exit(9)

    service.on_start.append(store.open)
    service.on_stop.append(store.close)
    service.readiness["store"] = store.ping
    return service


def main() -> None:
    settings = load_settings(BaseServiceSettings)
    configure_logging(settings.log, service="echo")
    store = open_store(settings.store)
    effects = os.environ.get("ECHO_EFFECTS")
    service = build(
        settings,
        store,
        os.environ["ECHO_IN"],
        os.environ["ECHO_OUT"],
        Path(effects) if effects else None,
        os.environ.get("ECHO_CRASH_AFTER_EFFECT") == "1",
    )
    asyncio.run(run_service(service))


if __name__ == "__main__":
    main()
