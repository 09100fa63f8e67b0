"""structlog set-up: JSON lines to stdout, correlation ids, secrets masked.

Every service calls `configure_logging(settings.log, service=...)` once at start.
A correlation id is bound per message with `bind_correlation_id` (taken from the
message's `x-correlation-id` header, or created) and travels on every event it emits.
Standard-library loggers (aiokafka, uvicorn, faststream) go through the same chain.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from services.common.observability.redaction import redact
from services.common.settings import LogSettings

CORRELATION_HEADER = "x-correlation-id"


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask passwords, tokens, keys, zip passwords and card numbers anywhere in the event."""
    cleaned: MutableMapping[str, Any] = redact(dict(event_dict))
    return cleaned


def _renderer(fmt: str, stream: TextIO) -> Any:
    if fmt == "console" or (fmt == "auto" and stream.isatty()):
        # Plain tracebacks: a "pretty" one prints every frame's locals, which may hold
        # secrets or a multi-megabyte record (minutes of rendering).
        return structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer(sort_keys=False)


def configure_logging(
    settings: LogSettings | None = None, *, service: str = "kopru", stream: TextIO | None = None
) -> None:
    settings = settings or LogSettings()
    out = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.EventRenamer("event"),
    ]
    structlog.configure(
        # filter_by_level first: a call below the level costs nothing more (the stdlib
        # logger would drop it anyway, after every processor had run).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            redact_processor,
            _renderer(settings.format, out),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("aiokafka", "kafka", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class RepeatFilter(logging.Filter):
    """At most one line per `window_s` for each message of the Kafka client libraries.

    During a broker outage aiokafka logs the same few errors ("Unable connect to node
    ...", "Unable to update metadata ...") in a tight loop: the chaos run's 30 s cluster
    outage wrote ~7,000 such lines per process, 95% of its log. The first of a kind goes
    out; its repeats within the window are counted, and the next one out says how many
    were left out. Other loggers pass untouched."""

    PREFIXES = ("aiokafka", "kafka")

    def __init__(self, window_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.PREFIXES):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        since, dropped = self.seen.get(key, (-1e18, 0))
        if now - since < self.window_s:
            self.seen[key] = (since, dropped + 1)
            return False
        if len(self.seen) > 1000:  # messages formatted before logging: bounded memory
            self.seen.clear()
        self.seen[key] = (now, 0)
        if dropped:
            record.msg = (
                f"{record.msg} [{dropped} more like this in the last {self.window_s:.0f} s]"
            )
        return True


def _add_service(service: str) -> Any:
    def processor(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return processor


class _Leveled:
    """structlog's lazy logger, except that a call below the configured level costs one
    level check: structlog would build a bound logger per call and drop the event in
    filter_by_level (12 µs a call, once a confirmation in the bench payments profile).
    The check is the one filter_by_level makes (the stdlib logger's isEnabledFor), read at
    each call, so a reconfigured level applies at once."""

    __slots__ = ("_proxy", "_std")

    def __init__(self, name: str | None) -> None:
        self._proxy = structlog.stdlib.get_logger(name)
        # Without a name structlog names the logger after the caller's module: no shortcut.
        self._std = None if name is None else logging.getLogger(name)

    def __getattr__(self, method: str) -> Any:
        level = _LEVELS.get(method)
        if level is not None and self._std is not None and not self._std.isEnabledFor(level):
            return _drop
        return getattr(self._proxy, method)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _drop(*_args: Any, **_kwargs: Any) -> None:
    return None


def get_logger(name: str | None = None) -> Any:
    return _Leveled(name)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind_correlation_id(correlation_id: str | None = None, **extra: Any) -> str:
    """Bind a correlation id (given, or new) and extra keys for this task's log events."""
    cid = correlation_id or new_correlation_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=cid, **extra)
    return cid
