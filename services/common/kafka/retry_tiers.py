"""Retry tier topics: where a message waits before it is delivered again.

Each consumer group owns one topic per tier delay for each topic it consumes:
`<topic>.retry.<group>.<delay>` (Uber's and Spring's retry topics, per group so that
one group's retries never reach another). A message waits on the smallest tier that
is not shorter than its delay; its exact due time travels in a header, so within one
tier topic due times follow publish order and a paused partition holds back later
messages by at most one tier step.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass


def tier_label(delay_s: float) -> str:
    if delay_s >= 1 and float(delay_s).is_integer():
        return f"{int(delay_s)}s"
    return f"{round(delay_s * 1000)}ms"


def retry_topic(topic: str, group: str, tier_s: float) -> str:
    return f"{topic}.retry.{group}.{tier_label(tier_s)}"


def retry_topics(topic: str, group: str, tiers: list[float]) -> list[str]:
    return [retry_topic(topic, group, t) for t in tiers]


def pick_tier(delay_s: float, tiers: list[float]) -> float:
    """The smallest tier >= delay (the largest tier for longer delays)."""
    i = bisect.bisect_left(tiers, delay_s)
    return tiers[min(i, len(tiers) - 1)]


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter in [base/2, cap]."""

    base_s: float = 1.0
    cap_s: float = 300.0
    factor: float = 2.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """Delay before attempt number `attempt` (1 = the first retry)."""
        raw = min(self.cap_s, self.base_s * self.factor ** max(0, attempt - 1))
        if not self.jitter:
            return raw
        return random.uniform(raw / 2, raw)
