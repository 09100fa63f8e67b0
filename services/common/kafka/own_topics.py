"""The topics one service needs, made sure of at start and after an unknown-topic error.

After a broker restart the embedded broker has lost every topic, and on any cluster a
service started with other retry tiers than `kopru broker` created needs its own. So
each service, from its own settings, ensures:
- the catalogue topics it consumes and produces (schemas/events/catalogue.py), with
  their partitions and configs;
- for every topic it consumes: its `.dlq` and its group's retry tier topics;
- for topics outside the catalogue it subscribes to (tests' own topics): their `.dlq`
  and retry tiers, when the topic itself exists.
Creation is skipped when `kafka.create_topics` is off (topics owned by Strimzi's
KafkaTopics); a refusal (e.g. no Create ACL) is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient

from schemas.events import CATALOGUE, TopicSpec
from services.common.kafka.clients import connection_kwargs
from services.common.kafka.retry_tiers import retry_topics
from services.common.kafka.topic_admin import TopicPlan, create_topics, plan
from services.common.observability.logging import get_logger
from services.common.settings import KafkaSettings

log = get_logger(__name__)


def plan_for_service(
    settings: KafkaSettings,
    service: str,
    group: str,
    subscribed: Iterable[str] = (),
    catalogue: tuple[TopicSpec, ...] = CATALOGUE,
) -> tuple[list[TopicPlan], list[str]]:
    """(catalogue plans this service needs, subscribed topics outside the catalogue)."""
    mine = tuple(s for s in catalogue if service in s.producers or service in s.consumers)
    full = {p.name: p for p in plan(settings, mine)}
    wanted: list[TopicPlan] = []
    for spec in mine:
        wanted.append(full[spec.name])
        if service in spec.consumers:
            wanted.append(full[spec.dlq])
            wanted += [full[n] for n in retry_topics(spec.name, group, settings.retry_tiers_s)]
    known = {s.name for s in catalogue}
    derived = {t for s in catalogue for t in _derived(s, settings)}
    foreign = sorted({t for t in subscribed if t not in known and t not in derived})
    foreign = [t for t in foreign if ".retry." not in t]
    return wanted, foreign


def _derived(spec: TopicSpec, settings: KafkaSettings) -> list[str]:
    out = [spec.dlq]
    for g in spec.consumers:
        out += retry_topics(spec.name, g, settings.retry_tiers_s)
    return out


async def _partitions(settings: KafkaSettings, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    out: dict[str, int] = {}
    for d in described:
        if d.get("error_code", 0) == 0 and d.get("partitions"):
            out[d["topic"]] = len(d["partitions"])
    return out


class OwnTopics:
    """Ensures a service's topics; rate-limited so an error storm asks the broker once."""

    def __init__(
        self,
        settings: KafkaSettings,
        service: str,
        group: str,
        subscribed: Iterable[str] = (),
        min_interval_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.service = service
        self.group = group
        self.subscribed = list(subscribed)
        self.min_interval_s = min_interval_s
        self._last = -1e9
        self._lock = asyncio.Lock()

    async def ensure(self, *, force: bool = False) -> list[str]:
        """Create what is missing; return the names created."""
        if not self.settings.create_topics:
            return []
        async with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self.min_interval_s:
                return []
            self._last = now
            wanted, foreign = plan_for_service(
                self.settings, self.service, self.group, self.subscribed
            )
            try:
                if foreign:
                    parts = await _partitions(self.settings, foreign)
                    for name, n in parts.items():
                        extra = [
                            name + ".dlq",
                            *retry_topics(name, self.group, self.settings.retry_tiers_s),
                        ]
                        wanted += [TopicPlan(t, n, {}) for t in extra]
                created = await create_topics(self.settings, wanted)
            except Exception as exc:
                log.warning("could not ensure topics", error=f"{type(exc).__name__}: {exc}")
                return []
        if created:
            log.info("topics created", service=self.service, topics=created)
        return created
