"""The outbox relay's producer: publishes a recorded outcome's event as it was stored.

The event was validated and written once, when the outcome was recorded (confirmations.py);
the relay sends those bytes as they are, keyed by the token (the event's ``kafka_key``)
with its type header, on a plain aiokafka producer (acks=all, idempotent where the
cluster supports it), like the content-fetcher's rows. Parsing the stored event again and
publishing it through FastStream cost 14 % of the payment-notifier's CPU in the bench
payments profile; the consumers read the same record (body, key, ``x-event-type``).

A relay pass's rows go into record batches built here, one open batch per partition
(aiokafka's create_batch / send_batch): about 11 µs of CPU a record against 30-40 µs
through ``send()``, which partitions, checks and makes a future for each record. The
partition is the one ``send()`` would pick: Kafka's default partitioner, murmur2 of the
key. Records of one partition keep the rows' order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from schemas.events import BKM_CONFIRMATIONS, PaymentConfirmed, PaymentFailed
from services.common.kafka import headers as H
from services.common.kafka.clients import new_producer
from services.common.observability.event_metrics import count_published
from services.common.settings import KafkaSettings
from services.common.stores.payments import CONFIRMED, FAILED, PaymentRow

# The event type a recorded state stores (confirmations.build_event).
EVENT_TYPES = {
    CONFIRMED: PaymentConfirmed.model_fields["event_type"].default,
    FAILED: PaymentFailed.model_fields["event_type"].default,
}
TOPIC = BKM_CONFIRMATIONS.name
SLICE = 64  # records appended per turn of the event loop (under a millisecond of work)
# A row's acknowledgement to await (its batch's), or the error that kept it out.
Ack = asyncio.Future[Any] | Exception


class _Open:
    """A partition's batch being filled: the builder and which rows are in it."""

    def __init__(self, builder: BatchBuilder) -> None:
        self.builder = builder
        self.rows: list[int] = []
        self.types: list[str] = []

    def add(self, i: int, event_type: str, key: bytes, value: bytes, headers: Any) -> bool:
        """Row ``i``'s record appended; False when the batch is full."""
        if self.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            return False
        self.rows.append(i)
        self.types.append(event_type)
        return True


def _counted(types: list[str]) -> Any:
    def counted(done: asyncio.Future[Any]) -> None:
        # exception() also marks a failure as seen: an unawaited one logs no warning.
        if not done.cancelled() and done.exception() is None:
            for event_type in types:
                count_published(TOPIC, event_type)

    return counted


class OutboxProducer:
    def __init__(self, kafka: KafkaSettings, *, client_id: str, linger_ms: int = 5) -> None:
        self.kafka = kafka
        self.client_id = client_id
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = new_producer(
            self.kafka, client_id=f"{self.kafka.client_id}-{self.client_id}-outbox",
            linger_ms=self.linger_ms,
        )  # fmt: skip
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def enqueue_many(self, rows: Sequence[PaymentRow]) -> list[Ack]:
        """Every row's stored event in a batch of its partition, each batch handed to the
        producer when full and at the end: per row, the cluster's acknowledgement of its
        batch (the future raises the publish's error), or the error that kept it out."""
        if self._producer is None:
            raise RuntimeError("outbox producer not started")
        producer = self._producer
        partitions = sorted(await producer.partitions_for(TOPIC))
        acks: list[Ack] = [RuntimeError("not enqueued")] * len(rows)
        open_: dict[int, _Open] = {}
        for i, row in enumerate(rows):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)  # the HTTP answers go on meanwhile
            if row.event is None or row.state not in EVENT_TYPES:
                acks[i] = ValueError(f"no event recorded for {row.token} ({row.state})")
                continue
            key, event_type = row.token.encode(), EVENT_TYPES[row.state]
            # Kafka's default partitioner for a keyed record (aiokafka DefaultPartitioner).
            partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            record = (key, row.event.encode(), [(H.EVENT_TYPE, event_type.encode())])
            batch = open_.get(partition)
            if batch is not None and not batch.add(i, event_type, *record):
                del open_[partition]  # full: sent, and the record starts a new one
                await self._submit(batch, partition, acks)
                batch = None
            if batch is None:
                batch = open_[partition] = _Open(producer.create_batch())
                if not batch.add(i, event_type, *record):  # an empty batch takes any record
                    del open_[partition]
                    acks[i] = ValueError(f"{row.token}'s event does not fit a batch")
        for partition, batch in open_.items():
            await self._submit(batch, partition, acks)
        return acks

    async def _submit(self, batch: _Open, partition: int, acks: list[Ack]) -> None:
        batch.builder.close()  # complete: sent without waiting for the linger
        assert self._producer is not None
        try:
            sent: asyncio.Future[Any] = await self._producer.send_batch(
                batch.builder, TOPIC, partition=partition
            )
        except Exception as exc:  # the producer closed, no room within its timeout
            for i in batch.rows:
                acks[i] = exc
            return
        sent.add_done_callback(_counted(batch.types))
        for i in batch.rows:
            acks[i] = sent
