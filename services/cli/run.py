"""`kopru run SERVICE`: run one service with settings from the environment."""

from __future__ import annotations

import asyncio

import typer

from services.common.observability.logging import configure_logging, get_logger
from services.common.service import run_service
from services.common.settings import load_settings


def run_command(
    service: str = typer.Argument(
        ..., help="auth-token, report-requester, status-poller, content-fetcher or payment-notifier"
    ),
) -> None:
    """Run one service until SIGTERM / Ctrl-C (settings: KOPRU_* environment, secrets dir)."""
    from services.registry import entry

    try:
        e = entry(service)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    settings = load_settings(e.settings_cls(), service_name=service)
    configure_logging(settings.log, service=service)
    get_logger(__name__).info("starting", service=service)
    asyncio.run(run_service(e.builder()(settings)))
