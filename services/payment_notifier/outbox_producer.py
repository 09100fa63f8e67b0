"""The outbox relay's producer: publishes a recorded outcome's event as it was stored.

The event was validated and written once, when the outcome was recorded (confirmations.py);
the relay sends those bytes as they are, keyed by the token (the event's ``kafka_key``)
with its type header, on a plain aiokafka producer (acks=all, idempotent where the
cluster supports it), like the content-fetcher's rows. Parsing the stored event again and
publishing it through FastStream cost 14 % of the payment-notifier's CPU in the bench
payments profile; the consumers read the same record (body, key, ``x-event-type``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

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

    async def enqueue(self, row: PaymentRow) -> asyncio.Future[Any]:
        """The row's stored event is in the producer's batch; the future is the cluster's
        acknowledgement (it raises the publish's error)."""
        if self._producer is None:
            raise RuntimeError("outbox producer not started")
        if row.event is None or row.state not in EVENT_TYPES:
            raise ValueError(f"no event recorded for {row.token} ({row.state})")
        event_type = EVENT_TYPES[row.state]
        sent: asyncio.Future[Any] = await self._producer.send(
            TOPIC,
            row.event.encode(),
            key=row.token.encode(),
            headers=[(H.EVENT_TYPE, event_type.encode())],
        )

        def counted(done: asyncio.Future[Any]) -> None:
            # exception() also marks a failure as seen: an unawaited one logs no warning.
            if not done.cancelled() and done.exception() is None:
                count_published(TOPIC, event_type)

        sent.add_done_callback(counted)
        return sent
