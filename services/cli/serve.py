"""`kopru run SERVICE`: run one service with settings from the environment.

No typer here: `kopru run SERVICE` starts the service through `serve` without building
the command line (services/cli/__init__.py), so a service process holds only what it runs.

Start-up either succeeds or ends the process: invalid settings found while reading them,
building the service or in its start hooks (a ``SettingsError`` or a pydantic
``ValidationError``) print the variable's name and what is wrong, with no traceback, and
exit with code 2; any other failure before the service is up is logged and exits 1. The
exit is hard (``os._exit`` after flushing): no thread or half-open client left behind can
keep a half-started process alive.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from typing import NoReturn

from pydantic import ValidationError

from services.common.observability.logging import configure_logging, get_logger
from services.common.service import Service, run_service
from services.common.settings import (
    BaseServiceSettings,
    SettingsError,
    load_settings,
    validation_message,
)
from services.common.workers import run_workers

SETTINGS_EXIT = 2


def serve(service: str) -> None:
    """Run one service until SIGTERM / Ctrl-C; KeyError for a service kopru does not know."""
    from services.registry import entry

    e = entry(service)
    try:
        settings = load_settings(e.settings_cls(), service_name=service)
        e.checker()(settings)  # before any connection: a settings problem is told at once
    except SettingsError as exc:
        _exit(service, str(exc.code), SETTINGS_EXIT)
    configure_logging(settings.log, service=service)
    get_logger(__name__).info("starting", service=service, workers=settings.http.workers)
    if settings.http.workers > 1:
        # Forked before any loop, thread or connection exists; each worker is a replica.
        http = settings.http

        def work(sock: socket.socket) -> int:
            failure = _run(service, settings, e.builder(), sock)
            if failure is not None:
                print(f"kopru run {service}: cannot run\n{failure[0]}", file=sys.stderr)
                return failure[1]
            return 0

        stop_s = settings.lifecycle.shutdown_timeout_s
        code = run_workers(http.workers, http.host, http.port, work, stop_s=stop_s)
        sys.stdout.flush()
        os._exit(code)
    failure = _run(service, settings, e.builder())
    if failure is not None:
        _exit(service, *failure)


def _run(
    name: str,
    settings: BaseServiceSettings,
    build: Callable[[BaseServiceSettings], Service],
    sock: socket.socket | None = None,
) -> tuple[str, int] | None:
    # uvloop: the event loop in C (sockets, timers); asyncio's own where it is missing.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(name, settings, build, sock))


async def _serve(
    name: str,
    settings: BaseServiceSettings,
    build: Callable[[BaseServiceSettings], Service],
    sock: socket.socket | None = None,
) -> tuple[str, int] | None:
    """Build and run; a settings problem comes back as (message, exit code)."""
    try:
        await run_service(build(settings), sock=sock)
    except SettingsError as exc:
        return str(exc.code), SETTINGS_EXIT
    except ValidationError as exc:
        return validation_message(exc, settings=exc.title == type(settings).__name__), 2
    except Exception as exc:
        get_logger(__name__).exception("service failed", service=name)
        return f"{type(exc).__name__}: {exc}", 1
    return None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency; a platform without it
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _exit(service: str, message: str, code: int) -> NoReturn:
    sys.stdout.flush()
    print(f"kopru run {service}: cannot run\n{message}", file=sys.stderr, flush=True)
    os._exit(code)
