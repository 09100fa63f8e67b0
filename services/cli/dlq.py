"""`kopru dlq show|replay TOPIC`: inspect and replay a topic's dead letters."""

from __future__ import annotations

import asyncio

import typer

from services.common.settings import BaseServiceSettings, load_settings

dlq_app = typer.Typer(help="Inspect and replay dead-letter topics.", no_args_is_help=True)


@dlq_app.command("show")
def show_cmd(
    topic: str = typer.Argument(..., help="the original topic, e.g. mks.reports.requested"),
) -> None:
    """List the dead letters of TOPIC with their reasons."""
    from services.common.kafka.dlq import show

    settings = load_settings(BaseServiceSettings)
    letters = asyncio.run(show(settings.kafka, topic))
    for d in letters:
        typer.echo(
            f"{d.partition}:{d.offset}  {d.headers.get('x-dlq-service', '?')}  "
            f"{d.headers.get('x-dlq-error-type', '?')}  {d.reason}"
        )
        if d.is_reference:
            typer.echo(f"    {d.reference_note()}")
    typer.echo(f"{len(letters)} dead letter(s) in {topic}.dlq")


@dlq_app.command("replay")
def replay_cmd(
    topic: str = typer.Argument(..., help="the original topic"),
    limit: int | None = typer.Option(None, help="replay at most this many"),
) -> None:
    """Publish TOPIC's dead letters back to where they came from (each only once)."""
    from services.common.kafka.dlq import replay

    settings = load_settings(BaseServiceSettings)
    skipped: list[str] = []
    n = asyncio.run(
        replay(
            settings.kafka, topic, limit=limit, on_skip=lambda d: skipped.append(d.reference_note())
        )
    )
    for note in skipped:
        typer.echo(f"not replayed (too large to copy; the original stays at its offset): {note}")
    typer.echo(f"replayed {n} message(s) from {topic}.dlq")
