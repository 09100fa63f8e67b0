"""At-least-once delivery for every kopru consumer: commit, retry tiers, dead letters.

One FastStream broker middleware decides what happens to each record after its
handler ran (subscribers use `AckPolicy.MANUAL`; FastStream never commits by itself):

- handler returned: its effects (including what it published) are durable, so the
  record's offset is committed — exactly this record's offset, nothing else;
- handler raised `RetryLater`: the record's original bytes, key and headers are
  published to this group's retry tier topic with its due time and attempt number,
  then the record is committed; past the attempt limit it goes to the DLQ instead;
- validation error, `InvalidMessage` or any other exception: the original bytes go to
  `<original topic>.dlq` with headers naming the reason, error type, service, group and
  original topic/partition/offset; then the record is committed. The service goes on.
- a record too large to be copied whole (over `max_record_bytes`, or refused by the
  broker or the producer for its size) becomes a dead letter that *refers* to the
  original: reason, topic/partition/offset, size, SHA-256 and a prefix (oversize.py).
  No record can block its partition;
- if publishing that retry or dead letter fails otherwise (the broker is away), nothing
  is committed and the partition is rewound to the record, so nothing is lost; the
  failure shows on /readyz (progress.py) until a commit succeeds again.

A record read from a retry topic before its due time is not handled: its partition is
rewound to it and paused until the due time, and resumed by a timer. Other partitions
keep flowing, the consumer keeps polling (no max.poll.interval breach), nothing sleeps
and nothing spins; the uncommitted record is read again after a restart or rebalance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiokafka import TopicPartition
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from pydantic import ValidationError

from services.common.errors import InvalidMessage, RetryLater, Shutdown
from services.common.kafka import headers as H
from services.common.kafka.oversize import DEFAULT_MAX_RECORD_BYTES, fits, reference, too_large
from services.common.kafka.progress import ConsumerProgress
from services.common.kafka.retry_tiers import Backoff, pick_tier, retry_topic
from services.common.observability.logging import bind_correlation_id, get_logger
from services.common.observability.metrics import (
    DEAD_LETTERS,
    DELAYED_PARTITIONS,
    MESSAGES,
    RETRIES,
)

log = get_logger(__name__)

Publish = Callable[[bytes, str, bytes | None, dict[str, str]], Awaitable[None]]
Trouble = Callable[[BaseException], Awaitable[None]]


@dataclass
class DeliveryPolicy:
    """How one service treats failures. `max_attempts[topic] = None` means unbounded
    (the handler then enforces its own deadline, as the status poller does)."""

    service: str
    group: str
    tiers: list[float]
    backoff: Backoff = field(default_factory=Backoff)
    default_max_attempts: int = 8
    max_attempts: dict[str, int | None] = field(default_factory=dict)
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES

    def limit_for(self, topic: str) -> int | None:
        return self.max_attempts.get(topic, self.default_max_attempts)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:10]
        ]
        return f"validation failed: {'; '.join(parts)}"[:2000]
    return f"{type(exc).__name__}: {exc}"[:2000]


class _PauseBook:
    """Partitions paused until a due time, with the timer that resumes each."""

    def __init__(self) -> None:
        self.timers: dict[tuple[int, TopicPartition], asyncio.TimerHandle] = {}

    def pause_until(self, consumer: Any, tp: TopicPartition, offset: int, due_s: float) -> None:
        consumer.seek(tp, offset)
        consumer.pause(tp)
        key = (id(consumer), tp)
        old = self.timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, due_s - time.time())
        self.timers[key] = loop.call_later(delay, self._resume, consumer, tp, key)
        DELAYED_PARTITIONS.inc()

    def _resume(self, consumer: Any, tp: TopicPartition, key: tuple[int, TopicPartition]) -> None:
        self.timers.pop(key, None)
        DELAYED_PARTITIONS.dec()
        try:
            if tp in consumer.assignment():
                consumer.resume(tp)
        except Exception as exc:  # a revoked partition: its new owner re-reads it
            log.debug("resume skipped", partition=str(tp), error=str(exc))


class Delivery:
    """Shared state of the middleware for one service: its policy and its publisher."""

    def __init__(
        self,
        policy: DeliveryPolicy,
        publish: Publish,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.policy = policy
        self.publish = publish
        self.pauses = _PauseBook()
        self.progress = progress or ConsumerProgress()
        # Called when a publish or commit fails (e.g. to re-create lost topics).
        self.on_trouble: Trouble | None = None
        self._rewinds = 0

    def middleware(self) -> Callable[..., BaseMiddleware]:
        delivery = self

        class _DeliveryMiddleware(BaseMiddleware):
            def __init__(self, msg: Any, /, *, context: Any) -> None:
                super().__init__(msg, context=context)
                self.deferred = False

            async def consume_scope(
                self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: Any
            ) -> Any:
                record = msg.raw_message
                hdrs = H.as_dict(record.headers)
                due_ms = H.get_int(hdrs, H.DUE_AT_MS)
                if due_ms and due_ms > time.time() * 1000:
                    tp = TopicPartition(record.topic, record.partition)
                    delivery.pauses.pause_until(msg.consumer, tp, record.offset, due_ms / 1000)
                    self.deferred = True
                    return None
                bind_correlation_id(
                    hdrs.get(H.CORRELATION_ID),
                    topic=hdrs.get(H.ORIGINAL_TOPIC, record.topic),
                    partition=record.partition,
                    offset=record.offset,
                )
                return await call_next(msg)

            async def after_processed(
                self,
                exc_type: type[BaseException] | None = None,
                exc_val: BaseException | None = None,
                exc_tb: TracebackType | None = None,
            ) -> bool | None:
                if self.deferred:
                    return True
                handler = self.context.get("handler_")
                consumer = getattr(handler, "consumer", None)
                await delivery.settle(self.msg, consumer, exc_val)
                return True

        return _DeliveryMiddleware

    async def settle(self, record: Any, consumer: Any, exc: BaseException | None) -> None:
        tp = TopicPartition(record.topic, record.partition)
        hdrs = H.as_dict(record.headers)
        original_topic = hdrs.get(H.ORIGINAL_TOPIC, record.topic)
        try:
            if exc is None:
                outcome = "done"
            elif isinstance(exc, Shutdown | asyncio.CancelledError):
                consumer.seek(tp, record.offset)
                return
            elif isinstance(exc, RetryLater):
                outcome = await self._retry(record, hdrs, original_topic, exc)
            else:
                await self._dead_letter(record, hdrs, original_topic, exc)
                outcome = "dead_letter"
        except Exception as publish_error:
            # The retry or dead letter could not be written: keep the record.
            log.error(
                "could not settle message; it will be read again",
                topic=record.topic,
                offset=record.offset,
                error=_reason(publish_error),
            )
            self.progress.settle_failed(publish_error)
            await self._trouble(publish_error)
            if consumer is not None:
                consumer.seek(tp, record.offset)
            self._rewinds += 1
            await asyncio.sleep(min(5.0, 0.5 * self._rewinds))
            return
        self._rewinds = 0
        MESSAGES.labels(self.policy.service, original_topic, outcome).inc()
        if consumer is not None:
            await self._commit(consumer, tp, record.offset + 1)

    async def _commit(self, consumer: Any, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except Exception as exc:
            # Not fatal: the record is handled (its effects are durable and idempotent);
            # it is read again after a rebalance or restart. Readiness says so meanwhile.
            log.warning("commit failed", partition=str(tp), offset=offset, error=_reason(exc))
            self.progress.commit_failed(exc)
            await self._trouble(exc)
            return
        self.progress.commit_ok(tp, offset)

    async def _trouble(self, exc: BaseException) -> None:
        if self.on_trouble is None:
            return
        try:
            await self.on_trouble(exc)
        except Exception as hook_error:
            log.warning("trouble hook failed", error=_reason(hook_error))

    async def _retry(
        self, record: Any, hdrs: dict[str, str], original_topic: str, exc: RetryLater
    ) -> str:
        attempt = H.get_int(hdrs, H.ATTEMPT) + 1
        limit = self.policy.limit_for(original_topic)
        if limit is not None and attempt > limit:
            await self._dead_letter(
                record,
                hdrs,
                original_topic,
                RuntimeError(f"gave up after {attempt - 1} retries: {exc.reason}"),
            )
            return "dead_letter"
        delay = exc.delay_s if exc.delay_s is not None else self.policy.backoff.delay(attempt)
        tier = pick_tier(delay, self.policy.tiers)
        now_ms = int(time.time() * 1000)
        out = {k: v for k, v in hdrs.items() if k not in (H.DUE_AT_MS, H.ATTEMPT, H.RETRY_REASON)}
        out.setdefault(H.ORIGINAL_TOPIC, record.topic)
        out.setdefault(H.ORIGINAL_PARTITION, str(record.partition))
        out.setdefault(H.ORIGINAL_OFFSET, str(record.offset))
        out.setdefault(H.FIRST_FAILED_AT_MS, str(now_ms))
        out[H.ATTEMPT] = str(attempt)
        out[H.DUE_AT_MS] = str(now_ms + int(delay * 1000))
        out[H.RETRY_REASON] = exc.reason[:500]
        target = retry_topic(original_topic, self.policy.group, tier)
        value = record.value or b""
        if not fits(value, record.key, out, self.policy.max_record_bytes):
            await self._dead_letter(
                record, hdrs, original_topic, RuntimeError(f"too large to retry: {exc.reason}")
            )
            return "dead_letter"
        try:
            await self.publish(value, target, record.key, out)
        except Exception as publish_error:
            if not too_large(publish_error):
                raise
            await self._dead_letter(record, hdrs, original_topic, publish_error)
            return "dead_letter"
        RETRIES.labels(self.policy.service, original_topic, target.rsplit(".", 1)[-1]).inc()
        log.info("retry scheduled", attempt=attempt, delay_s=round(delay, 3), reason=exc.reason)
        return "retry"

    async def _dead_letter(
        self, record: Any, hdrs: dict[str, str], original_topic: str, exc: BaseException
    ) -> None:
        out = {k: v for k, v in hdrs.items() if k not in H.KOPRU_INTERNAL}
        out.update(
            {
                H.DLQ_REASON: _reason(exc),
                H.DLQ_ERROR_TYPE: type(exc).__name__,
                H.DLQ_SERVICE: self.policy.service,
                H.DLQ_GROUP: self.policy.group,
                H.DLQ_ORIGINAL_TOPIC: original_topic,
                H.DLQ_ORIGINAL_PARTITION: hdrs.get(H.ORIGINAL_PARTITION, str(record.partition)),
                H.DLQ_ORIGINAL_OFFSET: hdrs.get(H.ORIGINAL_OFFSET, str(record.offset)),
                H.DLQ_ATTEMPTS: str(H.get_int(hdrs, H.ATTEMPT) + 1),
                H.DLQ_FAILED_AT: str(int(time.time() * 1000)),
            }
        )
        await self._publish_dead_letter(record, original_topic + ".dlq", out)
        DEAD_LETTERS.labels(self.policy.service, original_topic, type(exc).__name__).inc()
        expected = isinstance(exc, ValidationError | InvalidMessage)
        (log.warning if expected else log.error)(
            "message dead-lettered",
            reason=_reason(exc),
            error_type=type(exc).__name__,
            exc_info=None if expected else exc,
        )

    async def _publish_dead_letter(self, record: Any, dlq: str, hdrs: dict[str, str]) -> None:
        """The original whole when it fits, else a reference to it (oversize.py)."""
        value: bytes = record.value or b""
        limit = self.policy.max_record_bytes
        why = f"{len(value)} bytes is over the {limit}-byte record limit"
        if fits(value, record.key, hdrs, limit):
            try:
                await self.publish(value, dlq, record.key, hdrs)
                return
            except Exception as exc:
                if not too_large(exc):
                    raise
                why = f"the broker refused the copy: {type(exc).__name__}"
        prefix, ref_headers = reference(value, hdrs, limit, why)
        key = record.key if record.key is None or len(record.key) <= 4096 else record.key[:4096]
        await self.publish(prefix, dlq, key, ref_headers)
        log.warning(
            "dead letter is a reference to the original record",
            size=len(value),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
