"""Consumer lag per partition: high-water mark minus committed offset.

The high-water mark comes from the consumer's last fetch response and the committed
offset from the group coordinator, both asked per explicit partition (never
end_offsets/seek_to_end, which the local broker gets wrong).
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.observability.logging import get_logger
from services.common.observability.metrics import CONSUMER_LAG

log = get_logger(__name__)


async def sample_lag(consumer: Any, service: str, group: str) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for tp in list(consumer.assignment()):
        high = consumer.highwater(tp)
        if high is None:
            continue
        committed = await consumer.committed(tp)
        lag = max(0, high - (committed or 0))
        out[(tp.topic, tp.partition)] = lag
        CONSUMER_LAG.labels(service, group, tp.topic, str(tp.partition)).set(lag)
    return out


async def lag_loop(consumers: Any, service: str, group: str, every_s: float = 15.0) -> None:
    """Sample lag of every running subscriber's consumer until cancelled."""
    while True:
        for consumer in consumers():
            try:
                await sample_lag(consumer, service, group)
            except Exception as exc:  # metrics must never stop a service
                log.debug("lag sample failed", error=str(exc))
        await asyncio.sleep(every_s)
