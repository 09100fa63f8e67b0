"""`kopru config show SERVICE`: the effective settings, secrets masked."""

from __future__ import annotations

import json

import typer

from services.common.settings import load_settings, masked

config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


@config_app.command("show")
def show(
    service: str = typer.Argument(..., help="service name, e.g. report-requester"),
) -> None:
    """Print the settings SERVICE would start with (environment + secrets dir), masked."""
    from services.registry import entry

    try:
        e = entry(service)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    settings = load_settings(e.settings_cls(), service_name=service)
    typer.echo(json.dumps(masked(settings), indent=2, ensure_ascii=False))
