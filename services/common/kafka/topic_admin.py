"""Create the topic catalogue (main, dead-letter and retry tier topics) on a cluster."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.events import CATALOGUE, TopicSpec
from services.common.kafka.clients import connection_kwargs
from services.common.kafka.retry_tiers import retry_topics
from services.common.observability.logging import get_logger
from services.common.settings import KafkaSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: dict[str, str]


def plan(settings: KafkaSettings, catalogue: tuple[TopicSpec, ...] = CATALOGUE) -> list[TopicPlan]:
    """Every topic the system uses, derived from the catalogue."""
    out: list[TopicPlan] = []
    isr = (
        {"min.insync.replicas": str(settings.min_insync_replicas)}
        if settings.min_insync_replicas
        else {}
    )
    for spec in catalogue:
        cfg = {"cleanup.policy": spec.cleanup_policy, "retention.ms": str(spec.retention_ms)}
        out.append(TopicPlan(spec.name, spec.partitions, cfg | isr))
        dlq_cfg = {"retention.ms": str(30 * 86_400_000)}
        out.append(TopicPlan(spec.dlq, spec.partitions, dlq_cfg | isr))
        for group in spec.consumers:
            if group in ("upstream", "downstream"):
                continue
            for name in retry_topics(spec.name, group, settings.retry_tiers_s):
                retry_cfg = {"retention.ms": str(7 * 86_400_000)}
                out.append(TopicPlan(name, spec.partitions, retry_cfg | isr))
    return out


async def create_topics(
    settings: KafkaSettings, topics: list[TopicPlan] | None = None, *, with_config: bool = True
) -> list[str]:
    """Create what is missing; return the names created. Existing topics are left alone."""
    topics = topics if topics is not None else plan(settings)
    topics = list({t.name: t for t in topics}.values())
    admin = AIOKafkaAdminClient(**{**connection_kwargs(settings), "request_timeout_ms": 10_000})
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                t.name,
                t.partitions,
                settings.replication_factor,
                topic_configs=t.config if with_config else None,
            )
            for t in topics
            if t.name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        await _warn_short(admin, [t for t in topics if t.name in existing])
        return [t.name for t in new]
    finally:
        await admin.close()


async def _warn_short(admin: AIOKafkaAdminClient, topics: list[TopicPlan]) -> None:
    """Say so when an existing topic has fewer partitions than the catalogue gives it (made
    by hand, or by a broker that creates topics on demand): kopru does not add partitions
    by itself, as that moves keys between partitions; `kafka-topics --alter` does."""
    if not topics:
        return
    wanted = {t.name: t.partitions for t in topics}
    for found in await admin.describe_topics(list(wanted)):
        have = len(found.get("partitions") or [])
        if found.get("error_code") == 0 and have < wanted[found["topic"]]:
            log.warning(
                "topic has fewer partitions than the catalogue",
                topic=found["topic"],
                partitions=have,
                catalogue=wanted[found["topic"]],
            )
