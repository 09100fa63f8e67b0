"""The delivery middleware's decisions, with a fake consumer and publisher."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from pydantic import BaseModel, ValidationError

from services.common.errors import InvalidMessage, RetryLater
from services.common.kafka import headers as H
from services.common.kafka.delivery import Delivery, DeliveryPolicy
from services.common.kafka.retry_tiers import Backoff


@dataclass
class Record:
    topic: str = "orders"
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"k"
    value: bytes | None = b'{"id": 1}'
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


class Published(list[tuple[bytes, str, bytes | None, dict[str, str]]]):
    fail = False

    async def __call__(
        self, value: bytes, topic: str, key: bytes | None, hdrs: dict[str, str]
    ) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.append((value, topic, key, hdrs))


def _delivery(**over: Any) -> tuple[Delivery, Published]:
    pub = Published()
    policy = DeliveryPolicy(
        service="svc",
        group="svc",
        tiers=[1.0, 5.0, 30.0],
        backoff=Backoff(base_s=1, cap_s=30, jitter=False),
        default_max_attempts=3,
        **over,
    )
    return Delivery(policy, pub), pub


async def test_success_commits_exactly_this_offset() -> None:
    d, pub = _delivery()
    c = FakeConsumer()
    await d.settle(Record(), c, None)
    assert c.commits == [{TopicPartition("orders", 2): 42}]
    assert pub == []


async def test_retry_goes_to_tier_with_due_time_and_attempt() -> None:
    d, pub = _delivery()
    c = FakeConsumer()
    before = int(time.time() * 1000)
    await d.settle(Record(), c, RetryLater("MKK busy (RP003)", delay_s=4))
    value, topic, key, hdrs = pub[0]
    assert (value, topic, key) == (b'{"id": 1}', "orders.retry.svc.5s", b"k")
    assert hdrs[H.ATTEMPT] == "1"
    assert before + 4000 <= int(hdrs[H.DUE_AT_MS]) <= time.time() * 1000 + 4000
    assert hdrs[H.ORIGINAL_TOPIC] == "orders" and hdrs[H.ORIGINAL_OFFSET] == "41"
    assert c.commits == [{TopicPartition("orders", 2): 42}]


async def test_retry_of_a_retry_keeps_origin_and_counts_up() -> None:
    d, pub = _delivery()
    rec = Record(
        topic="orders.retry.svc.1s",
        offset=7,
        headers=[(H.ATTEMPT, b"2"), (H.ORIGINAL_TOPIC, b"orders"), (H.ORIGINAL_OFFSET, b"41")],
    )
    await d.settle(rec, FakeConsumer(), RetryLater("again"))
    _, topic, _, hdrs = pub[0]
    assert hdrs[H.ATTEMPT] == "3"
    assert hdrs[H.ORIGINAL_OFFSET] == "41"
    assert topic == "orders.retry.svc.5s"  # backoff 1 * 2**2 = 4 s -> the 5 s tier


async def test_past_the_attempt_limit_goes_to_dlq() -> None:
    d, pub = _delivery()
    rec = Record(headers=[(H.ATTEMPT, b"3"), (H.ORIGINAL_TOPIC, b"orders")])
    await d.settle(rec, FakeConsumer(), RetryLater("still busy"))
    _, topic, _, hdrs = pub[0]
    assert topic == "orders.dlq"
    assert "gave up after 3 retries: still busy" in hdrs[H.DLQ_REASON]
    assert H.ATTEMPT not in hdrs and H.DUE_AT_MS not in hdrs


async def test_unbounded_topic_never_gives_up() -> None:
    d, pub = _delivery(max_attempts={"orders": None})
    rec = Record(headers=[(H.ATTEMPT, b"500"), (H.ORIGINAL_TOPIC, b"orders")])
    await d.settle(rec, FakeConsumer(), RetryLater("pending", delay_s=60))
    assert pub[0][1] == "orders.retry.svc.30s"  # longest tier; due time says 60 s


class M(BaseModel):
    id: str


@pytest.mark.parametrize(
    ("exc", "kind"),
    [(InvalidMessage("bad"), "InvalidMessage"), (KeyError("x"), "KeyError")],
)
async def test_bad_input_and_bugs_go_to_dlq(exc: Exception, kind: str) -> None:
    d, pub = _delivery()
    c = FakeConsumer()
    await d.settle(Record(headers=[(H.CORRELATION_ID, b"c9")]), c, exc)
    value, topic, key, hdrs = pub[0]
    assert (value, topic, key) == (b'{"id": 1}', "orders.dlq", b"k")
    assert hdrs[H.DLQ_ERROR_TYPE] == kind
    assert hdrs[H.CORRELATION_ID] == "c9"
    assert hdrs[H.DLQ_ORIGINAL_PARTITION] == "2"
    assert c.commits


async def test_validation_error_reason_names_the_field() -> None:
    d, pub = _delivery()
    try:
        M.model_validate({"id": 3})
    except ValidationError as exc:
        await d.settle(Record(), FakeConsumer(), exc)
    assert pub[0][3][H.DLQ_REASON].startswith("validation failed: id: ")


async def test_publish_failure_commits_nothing_and_rewinds(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    d, pub = _delivery()
    pub.fail = True
    c = FakeConsumer()
    await d.settle(Record(), c, InvalidMessage("bad"))
    assert c.commits == []
    assert c.seeks == [(TopicPartition("orders", 2), 41)]
