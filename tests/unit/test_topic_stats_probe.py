"""A topic-stats probe that cannot start (the cluster is down) is closed at once: the
DLQ-depth sampler of every service runs through broker outages."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from services.common.kafka import topic_stats
from services.common.settings import KafkaSettings


class DeadProbe:
    def __init__(self) -> None:
        self.stopped = False

    async def start(self) -> None:
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")

    async def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("call", ["offsets", "committed", "newest"])
async def test_a_probe_that_cannot_start_is_stopped(
    monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    probes: list[DeadProbe] = []

    def fake(settings: Any, **kwargs: Any) -> DeadProbe:
        probes.append(DeadProbe())
        return probes[-1]

    monkeypatch.setattr(topic_stats, "new_consumer", fake)
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9")
    found = {"t": topic_stats.TopicOffsets("t", {0: 0}, {0: 3})}
    with pytest.raises(KafkaConnectionError):
        if call == "offsets":
            await topic_stats.offsets(settings, ["t"])
        elif call == "committed":
            await topic_stats.committed(settings, "g", found)
        else:
            await topic_stats.newest(settings, found)
    assert probes and all(p.stopped for p in probes)
