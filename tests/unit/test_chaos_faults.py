"""What step 5 writes: every input topic gets the bad records, and the canary report's
events land on the partition the bad records went to."""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from chaos.faults import BAD_RECORDS, INPUT_TOPICS, READER_TOPICS, canaries, canary_request_id
from chaos.load import plan_confirmations, report_requests
from schemas.events import REPORTS_REQUESTED, ReportRequested


def test_every_consumed_topic_is_an_input_topic() -> None:
    assert set(INPUT_TOPICS) == {
        "mks.reports.requested",
        "mks.reports.submitted",
        "mks.reports.ready",
        "mks.auth.token-requests",
        "payments.bkm.payment-requested",
        "payments.moka.dealer-application-requested",
    }
    sizes = {kind: len(value) for kind, value in BAD_RECORDS}
    assert sizes["1.3 MB"] > 1_300_000 and sizes["10 MB"] == 10_000_000


def test_the_canary_report_lands_on_partition_zero() -> None:
    rid = canary_request_id("abc", REPORTS_REQUESTED.partitions)
    assert (murmur2(f"TIB:{rid}".encode()) & 0x7FFFFFFF) % REPORTS_REQUESTED.partitions == 0
    ev = canaries("abc")[REPORTS_REQUESTED.name]
    assert isinstance(ev, ReportRequested) and ev.request_id == rid
    assert set(canaries("abc")) <= set(INPUT_TOPICS)
    assert not set(READER_TOPICS) & set(INPUT_TOPICS)


def test_the_load_has_the_issue_sizes() -> None:
    import random

    assert len({r.request_id for r in report_requests("x", 200)}) == 200
    conf = plan_confirmations("x", 1000, 0.3, random.Random(1))
    assert len(conf) == 1000 and sum(c.replays > 0 for c in conf) == 300
    assert all(1 <= c.replays <= 3 for c in conf if c.replays)
