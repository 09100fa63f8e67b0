from __future__ import annotations

import pytest

from services.common.kafka.retry_tiers import Backoff, pick_tier, retry_topic, tier_label


def test_tier_names() -> None:
    assert retry_topic("mks.reports.submitted", "status-poller", 5.0) == (
        "mks.reports.submitted.retry.status-poller.5s"
    )
    assert tier_label(0.5) == "500ms"


@pytest.mark.parametrize(
    ("delay", "tier"), [(0.1, 1.0), (1.0, 1.0), (1.5, 5.0), (59, 60.0), (3600, 300.0)]
)
def test_smallest_tier_not_shorter(delay: float, tier: float) -> None:
    assert pick_tier(delay, [1.0, 5.0, 30.0, 60.0, 300.0]) == tier


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(base_s=5, cap_s=60, jitter=False)
    assert [b.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    j = Backoff(base_s=5, cap_s=60)
    for n in range(1, 10):
        d = j.delay(n)
        raw = min(60, 5 * 2 ** (n - 1))
        assert raw / 2 <= d <= raw
