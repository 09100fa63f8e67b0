"""The rows publisher's producer: record batches bounded (resident memory, issue #13),
and an event of any allowed size still goes out."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from services.common.kafka.broker import MAX_EVENT_BYTES
from services.common.settings import KafkaSettings
from services.content_fetcher import rows_publisher
from services.content_fetcher.rows_publisher import MAX_BATCH_BYTES, RowsPublisher


class _Producer:
    async def start(self) -> None:
        pass


async def test_the_producer_builds_record_batches_of_at_most_512_kib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: dict[str, Any] = {}

    def new_producer(settings: KafkaSettings, **kw: Any) -> _Producer:
        made.update(kw)
        return _Producer()

    monkeypatch.setattr(rows_publisher, "new_producer", new_producer)
    await RowsPublisher(KafkaSettings(), client_id="content-fetcher").start()
    assert made["max_batch_size"] == MAX_BATCH_BYTES <= 512 * 1024
    assert made["max_request_size"] > MAX_EVENT_BYTES


def test_an_event_larger_than_a_record_batch_goes_out_alone() -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=0, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=MAX_BATCH_BYTES,
    )  # fmt: skip
    big = b"x" * (MAX_EVENT_BYTES - 1024)  # a row batch near the 1 MB event limit
    assert builder.append(0, timestamp=None, key=b"k", value=big, headers=[]) is not None
    assert builder.append(1, timestamp=None, key=b"k", value=b"y", headers=[]) is None
