"""`kopru run SERVICE` as a typer command: the service name checked, then `serve`
(services/cli/serve.py). `kopru run SERVICE` without options skips typer altogether
(services/cli/__init__.py); this command is the path of `--help` and of a wrong name."""

from __future__ import annotations

import typer

from services.cli.serve import SETTINGS_EXIT, _serve, serve

__all__ = ["SETTINGS_EXIT", "_serve", "run_command"]


def run_command(
    service: str = typer.Argument(
        ..., help="auth-token, report-requester, status-poller, content-fetcher or payment-notifier"
    ),
) -> None:
    """Run one service until SIGTERM / Ctrl-C (settings: KOPRU_* environment, secrets dir)."""
    from services.registry import entry

    try:
        entry(service)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    serve(service)
