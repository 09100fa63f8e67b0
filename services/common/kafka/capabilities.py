"""What the cluster can do, found out once at start rather than configured per engine.

The idempotent producer (no duplicate or reordered records when a produce request is
retried after a leader change) needs InitProducerId. Apache Kafka has it; the embedded
local broker does not (it answers UnknownError). `KafkaSettings.idempotent_producer`
forces it on or off; left unset, a short probe at start decides, and every producer of
the service (FastStream's and the plain aiokafka ones) follows the answer.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from services.common.kafka.clients import DETECTED_IDEMPOTENCE, connection_kwargs
from services.common.observability.logging import get_logger
from services.common.settings import KafkaSettings

log = get_logger(__name__)


async def detect(settings: KafkaSettings, timeout_s: float = 10.0) -> bool:
    """Probe the cluster once (when the setting leaves it open) and remember the answer."""
    if settings.idempotent_producer is not None:
        return settings.idempotent_producer
    if settings.bootstrap_servers in DETECTED_IDEMPOTENCE:
        return DETECTED_IDEMPOTENCE[settings.bootstrap_servers]
    producer = AIOKafkaProducer(**connection_kwargs(settings), enable_idempotence=True)
    try:
        async with asyncio.timeout(timeout_s):  # not wait_for (3.11, progress.py)
            await producer.start()  # sends InitProducerId
        supported = True
    except (KafkaConnectionError, TimeoutError) as exc:
        # No answer is no answer: decide nothing, start-up fails or is retried.
        with contextlib.suppress(Exception):
            await producer.stop()
        raise ConnectionError(
            f"broker at {settings.bootstrap_servers} did not answer: {type(exc).__name__}"
        ) from None
    except Exception as exc:  # the broker answered, and refused InitProducerId
        log.info("idempotent producer not supported by this cluster", error=type(exc).__name__)
        supported = False
    finally:
        try:
            await producer.stop()
        except Exception as exc:
            log.debug("probe producer stop failed", error=str(exc))
    DETECTED_IDEMPOTENCE[settings.bootstrap_servers] = supported
    return supported
