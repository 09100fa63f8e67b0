"""One look at the running system, for `kopru top`: each service's /metrics and /readyz,
and from the broker each catalogue topic's high-water marks, each group's lag and each
dead-letter topic's depth and newest reason.

Where the system is comes from an endpoints file (`kopru demo` writes
<state dir>/endpoints.json: {"bootstrap": ..., "services": {name: base URL}}) or options.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from schemas.events import CATALOGUE
from services.common.kafka import topic_stats
from services.common.settings import KafkaSettings

Labels = tuple[tuple[str, str], ...]
EXTERNAL = ("upstream", "downstream")


@dataclass(frozen=True)
class Endpoints:
    bootstrap: str | None
    services: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        data = json.loads(path.read_text())
        return cls(data.get("bootstrap"), dict(data.get("services", {})))


@dataclass
class ServiceState:
    name: str
    url: str
    ready: bool | None = None  # None: no answer
    failed: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)
    error: str | None = None

    def total(self, name: str, **match: str) -> float:
        return sum(
            v for (n, labels), v in self.samples.items() if n == name and _has(labels, match)
        )

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), v in self.samples.items():
            if n == name and _has(labels, match):
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + v
        return out


def _has(labels: Labels, match: dict[str, str]) -> bool:
    d = dict(labels)
    return all(d.get(k) == v for k, v in match.items())


@dataclass
class BrokerState:
    offsets: dict[str, topic_stats.TopicOffsets] = field(default_factory=dict)
    # group -> topic -> lag (None: the group never committed there)
    lag: dict[str, dict[str, int | None]] = field(default_factory=dict)
    newest_dead: dict[str, topic_stats.Newest] = field(default_factory=dict)  # dlq -> newest
    error: str | None = None


@dataclass
class Snapshot:
    at: float
    services: list[ServiceState]
    broker: BrokerState

    def total(self, name: str, **match: str) -> float:
        return sum(s.total(name, **match) for s in self.services)

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.services:
            for k, v in s.by(name, label, **match).items():
                out[k] = out.get(k, 0.0) + v
        return out


def parse_metrics(text: str) -> dict[tuple[str, Labels], float]:
    out: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


async def _service(client: httpx.AsyncClient, name: str, url: str) -> ServiceState:
    state = ServiceState(name, url)
    try:
        ready = await client.get(url + "/readyz")
        state.ready = ready.status_code == 200
        state.failed = dict(ready.json().get("failed", {}))
        state.samples = parse_metrics((await client.get(url + "/metrics")).text)
    except (httpx.HTTPError, ValueError) as exc:
        state.error = f"{type(exc).__name__}: {exc}"[:200]
    return state


def groups() -> dict[str, list[str]]:
    """Consumer group -> the catalogue topics it reads (a service's group is its name)."""
    out: dict[str, list[str]] = {}
    for spec in CATALOGUE:
        for consumer in spec.consumers:
            if consumer not in EXTERNAL:
                out.setdefault(consumer, []).append(spec.name)
    return out


async def broker_state(kafka: KafkaSettings) -> BrokerState:
    state = BrokerState()
    topics = [s.name for s in CATALOGUE] + [s.dlq for s in CATALOGUE]
    try:
        state.offsets = await topic_stats.offsets(kafka, topics)
        for group, read in groups().items():
            found = {t: state.offsets[t] for t in read if t in state.offsets}
            state.lag[group] = await topic_stats.committed(kafka, group, found)
        dead = {t: o for t, o in state.offsets.items() if t.endswith(".dlq") and o.depth}
        state.newest_dead = await topic_stats.newest(kafka, dead)
    except Exception as exc:  # the view shows the broker's problem instead of dying
        state.error = f"{type(exc).__name__}: {exc}"[:200]
    return state


async def take(endpoints: Endpoints, kafka: KafkaSettings | None) -> Snapshot:
    async with httpx.AsyncClient(timeout=5.0) as client:
        services_task = asyncio.gather(
            *(_service(client, n, u) for n, u in sorted(endpoints.services.items()))
        )
        broker = broker_state(kafka) if kafka is not None else _no_broker()
        services, broker_result = await asyncio.gather(services_task, broker)
    return Snapshot(time.time(), list(services), broker_result)


async def _no_broker() -> BrokerState:
    return BrokerState(error="no bootstrap servers given")
