"""Publishes row batches with producer batching: many sends in flight, one flush.

A plain aiokafka producer (acks=all, linger) for the row topic: `send` enqueues and
returns a delivery future; `flush` awaits them all before the completion is written.
Each event stays under 1 MB (encode_event checks), the local broker's fetch cost grows
with the number of stored batches, so records are grouped by the producer's linger.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.events import REPORTS_ROWS, BalanceRowsBatch
from services.common.kafka import headers as H
from services.common.kafka.broker import encode_event
from services.common.kafka.clients import new_producer
from services.common.observability.event_metrics import observe_published
from services.common.settings import KafkaSettings


class RowsPublisher:
    def __init__(self, kafka: KafkaSettings, *, client_id: str, linger_ms: int = 20) -> None:
        self.kafka = kafka
        self.client_id = client_id
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        self._producer = new_producer(
            self.kafka,
            client_id=f"{self.kafka.client_id}-{self.client_id}-rows",
            linger_ms=self.linger_ms,
            max_batch_size=1_000_000,
            max_request_size=1_048_576,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, batch: BalanceRowsBatch) -> int:
        if self._producer is None:
            raise RuntimeError("rows publisher not started")
        data = encode_event(REPORTS_ROWS, batch)
        hdrs = [(H.EVENT_TYPE, batch.event_type.encode())]
        if batch.correlation_id:
            hdrs.append((H.CORRELATION_ID, batch.correlation_id.encode()))
        fut = await self._producer.send(
            REPORTS_ROWS.name, data, key=batch.kafka_key(), headers=hdrs
        )
        self._pending.append(fut)
        observe_published(REPORTS_ROWS.name, batch)
        if len(self._pending) >= 500:
            await self.flush()
        return len(data)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
