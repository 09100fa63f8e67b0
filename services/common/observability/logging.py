"""structlog set-up: JSON lines to stdout, correlation ids, secrets masked.

Every service calls `configure_logging(settings.log, service=...)` once at start.
A correlation id is bound per message with `bind_correlation_id` (taken from the
message's `x-correlation-id` header, or created) and travels on every event it emits.
Standard-library loggers (aiokafka, uvicorn, faststream) go through the same chain.
"""

from __future__ import annotations

import logging
import sys
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("aiokafka", "kafka", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _add_service(service: str) -> Any:
    def processor(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return processor


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind_correlation_id(correlation_id: str | None = None, **extra: Any) -> str:
    """Bind a correlation id (given, or new) and extra keys for this task's log events."""
    cid = correlation_id or new_correlation_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=cid, **extra)
    return cid
