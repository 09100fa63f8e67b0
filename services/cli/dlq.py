"""`kopru dlq list`, `kopru dlq show|replay TOPIC`: every dead-letter topic with its
depth and newest reason; inspect and replay a topic's dead letters."""

from __future__ import annotations

import asyncio

import typer

from services.common.settings import BaseServiceSettings, load_settings

dlq_app = typer.Typer(help="Inspect and replay dead-letter topics.", no_args_is_help=True)


@dlq_app.command("list")
def list_cmd(
    all_topics: bool = typer.Option(False, "--all", help="also list empty dead-letter topics"),
) -> None:
    """Every dead-letter topic of the catalogue with its depth and newest reason."""
    import time

    from schemas.events import CATALOGUE
    from services.common.kafka.topic_stats import newest, offsets

    settings = load_settings(BaseServiceSettings)
    dlqs = [spec.dlq for spec in CATALOGUE]

    async def look() -> tuple[dict[str, int], dict[str, tuple[float, dict[str, str]]]]:
        found = await offsets(settings.kafka, dlqs)
        last = await newest(settings.kafka, {t: o for t, o in found.items() if o.depth})
        depth = {t: o.depth for t, o in found.items()}
        return depth, {t: (n.timestamp_ms / 1000, n.headers) for t, n in last.items()}

    depth, last = asyncio.run(look())
    width = max(len(t) for t in dlqs)
    typer.echo(f"{'dead-letter topic':<{width}}  {'depth':>6}  newest")
    for topic in dlqs:
        if topic not in depth:
            typer.echo(f"{topic:<{width}}  {'-':>6}  (topic missing)")
            continue
        if not depth[topic] and not all_topics:
            continue
        line = f"{topic:<{width}}  {depth[topic]:>6}"
        if topic in last:
            at, hdrs = last[topic]
            line += (
                f"  {time.time() - at:.0f}s ago  {hdrs.get('x-dlq-service', '?')}  "
                f"{hdrs.get('x-dlq-error-type', '?')}: {hdrs.get('x-dlq-reason', '?')[:120]}"
            )
        typer.echo(line)
    total = sum(depth.values())
    typer.echo(f"{total} dead letter(s) in {sum(1 for d in depth.values() if d)} topic(s)")


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
