"""Publishes row batches with producer batching: a bounded window of sends in flight.

A plain aiokafka producer (acks=all, linger) for the row topic: `send` enqueues the
batch's bytes (row_encoding.py: the BalanceRowsBatch event, under 1 MB) and keeps its
delivery future; past `window` futures it waits for the oldest, so memory stays flat
whatever the report's size; `flush` awaits them all before the completion is written.
The local broker's fetch cost grows with the number of stored batches, so records are
grouped by the producer's linger.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.events import REPORTS_ROWS
from services.common.kafka import headers as H
from services.common.kafka.clients import new_producer
from services.common.observability.event_metrics import observe_published
from services.common.observability.metrics import REPORT_ROWS
from services.common.settings import KafkaSettings
from services.content_fetcher.row_encoding import EncodedRowsBatch

# aiokafka's record batch (the producer's own grouping of events, not a row batch). Each
# record batch is built up in a growing buffer and copied again into the produce request:
# with 1 MB record batches the producer was ~4 of the +5.8 MB a 1 M-row csv report of
# 2000-row events added to the content-fetcher's resident memory, with 512 KiB ~2 MB less
# (+3.8 MB in all), at the same rows/s within noise (measured in-process, four
# alternating runs each, issue #13). An event larger than this still goes out, alone in
# its record batch (aiokafka always takes a batch's first record).
MAX_BATCH_BYTES = 512 * 1024


class RowsPublisher:
    def __init__(
        self, kafka: KafkaSettings, *, client_id: str, linger_ms: int = 20, window: int = 16
    ) -> None:
        self.kafka = kafka
        self.client_id = client_id
        self.linger_ms = linger_ms
        self.window = window
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        self._producer = new_producer(
            self.kafka,
            client_id=f"{self.kafka.client_id}-{self.client_id}-rows",
            linger_ms=self.linger_ms,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=1_048_576,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, batch: EncodedRowsBatch) -> int:
        if self._producer is None:
            raise RuntimeError("rows publisher not started")
        env = batch.envelope
        if type(env) not in REPORTS_ROWS.event_types:
            raise TypeError(f"{type(env).__name__} does not belong on {REPORTS_ROWS.name}")
        hdrs = [(H.EVENT_TYPE, env.event_type.encode())]
        if env.correlation_id:
            hdrs.append((H.CORRELATION_ID, env.correlation_id.encode()))
        while len(self._pending) >= self.window:
            await self._pending.pop(0)
        fut = await self._producer.send(
            REPORTS_ROWS.name, batch.data, key=env.kafka_key(), headers=hdrs
        )
        self._pending.append(fut)
        observe_published(REPORTS_ROWS.name, env)  # the envelope: its own rows are empty
        REPORT_ROWS.inc(batch.rows)
        return len(batch.data)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
