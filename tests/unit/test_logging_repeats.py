"""Kafka client libraries' repeated log lines are thinned (one per window, with a count of
those left out); every other logger passes untouched."""

from __future__ import annotations

import io
import json
import logging

from services.common.observability.logging import RepeatFilter, configure_logging
from services.common.settings import LogSettings


def record(name: str, msg: str = "Unable connect to node with id %s: %s") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (3, "refused"), None)


def test_repeats_within_the_window_are_dropped_and_counted() -> None:
    now = [0.0]
    f = RepeatFilter(window_s=10, clock=lambda: now[0])
    assert f.filter(record("aiokafka.conn"))
    assert [f.filter(record("aiokafka.conn")) for _ in range(50)] == [False] * 50
    assert f.filter(record("aiokafka.conn", "Unable to update metadata from %s"))  # another kind
    now[0] = 10.5
    later = record("aiokafka.conn")
    assert f.filter(later)
    assert later.getMessage() == (
        "Unable connect to node with id 3: refused [50 more like this in the last 10 s]"
    )


def test_other_loggers_are_never_thinned() -> None:
    f = RepeatFilter(window_s=10, clock=lambda: 0.0)
    assert all(f.filter(record("services.common.kafka.delivery")) for _ in range(5))


def test_configured_logging_thins_aiokafka_only() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(LogSettings(format="json", level="INFO"), service="t", stream=out)
        for _ in range(20):
            logging.getLogger("aiokafka.client").error("Unable to update metadata from %s", 3)
            logging.getLogger("services.x").warning("commit failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events.count("Unable to update metadata from 3") == 1
    assert events.count("commit failed") == 20
