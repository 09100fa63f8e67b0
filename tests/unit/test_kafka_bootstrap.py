"""A multi-node bootstrap string reaches FastStream as one entry per server (FastStream
wraps a plain string in a list as a single host: `h1:p1,h2:p2` failed to resolve)."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.kafka import broker as broker_mod
from services.common.kafka.broker import bootstrap_list, make_broker
from services.common.settings import KafkaSettings


def test_bootstrap_list_splits_and_trims() -> None:
    assert bootstrap_list("a:1, b:2,,c:3 ") == ["a:1", "b:2", "c:3"]
    assert bootstrap_list("kafka:9092") == ["kafka:9092"]


def test_make_broker_passes_every_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(servers: Any, **kwargs: Any) -> object:
        seen["servers"] = servers
        return object()

    monkeypatch.setattr(broker_mod, "KafkaBroker", fake)
    make_broker(KafkaSettings(bootstrap_servers="127.0.0.1:1,127.0.0.1:2"), client_id="t")
    assert seen["servers"] == ["127.0.0.1:1", "127.0.0.1:2"]
