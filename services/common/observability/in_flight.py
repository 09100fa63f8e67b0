"""Reports in flight in this process, by stage, computed when /metrics is read.

A handler marks a report as seen on every attempt (a poll, a download) and as done when
it leaves the stage. Nothing here drives work: the durable state is in the stores and
the retry topics. After a restart a report reappears on its next attempt (at most the
poll backoff cap later), so the figures are right within a minute.

- kopru_reports_in_flight{stage}: reports currently in the stage;
- kopru_report_oldest_in_flight_seconds{stage}: age (since submission) of the oldest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.errors import RetryLater

FORGET_AFTER_S = 25 * 3600  # a refId lives 24 h; a report unseen this long is gone


class InFlight(Collector):
    def __init__(self, forget_after_s: float = FORGET_AFTER_S) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, dict[str, tuple[float, float]]] = {}  # stage -> key -> (t0, seen)
        self.forget_after_s = forget_after_s

    def seen(self, stage: str, key: str, since: datetime) -> None:
        with self._lock:
            self._since.setdefault(stage, {})[key] = (since.timestamp(), time.time())

    def done(self, stage: str, key: str) -> None:
        with self._lock:
            self._since.get(stage, {}).pop(key, None)

    @contextmanager
    def tracking(self, stage: str, key: str, since: datetime) -> Iterator[None]:
        """Seen for the length of one attempt; still in flight if it ends in RetryLater
        (the next attempt waits in a retry topic), done otherwise (finished, duplicate,
        or dead-lettered)."""
        self.seen(stage, key, since)
        try:
            yield
        except RetryLater:
            raise
        except BaseException:
            self.done(stage, key)
            raise
        self.done(stage, key)

    def snapshot(self, now: float | None = None) -> dict[str, tuple[int, float]]:
        """stage -> (count, oldest age in seconds)."""
        now = time.time() if now is None else now
        out: dict[str, tuple[int, float]] = {}
        with self._lock:
            for stage, entries in self._since.items():
                for key in [k for k, (_, seen) in entries.items()
                            if now - seen > self.forget_after_s]:  # fmt: skip
                    del entries[key]
                oldest = min((t0 for t0, _ in entries.values()), default=now)
                out[stage] = (len(entries), max(0.0, now - oldest))
        return out

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = GaugeMetricFamily(
            "kopru_reports_in_flight", "Reports in flight in this process.", labels=["stage"]
        )
        oldest = GaugeMetricFamily(
            "kopru_report_oldest_in_flight_seconds",
            "Age since submission of the oldest report in flight (0: none).",
            labels=["stage"],
        )
        for stage, (n, age) in sorted(self.snapshot().items()):
            count.add_metric([stage], n)
            oldest.add_metric([stage], age)
        yield count
        yield oldest


IN_FLIGHT = InFlight()
REGISTRY.register(IN_FLIGHT)
