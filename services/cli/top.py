"""`kopru top`: a live terminal view of the running system (services' readiness and
rates, topics with their lag per group and dead letters, reports in flight, payment
outcomes). `--once` prints one snapshot (two samples `--interval` apart, for the rates)
and exits, for scripts."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from services.common.monitoring.snapshot import Endpoints

DEFAULT_ENDPOINTS = Path(os.environ.get("KOPRU_DEMO_DIR", ".kopru/demo")) / "endpoints.json"
WINDOW_S = 300.0  # "recent" = the last five minutes


def top_command(
    once: bool = typer.Option(False, "--once", help="print one snapshot and exit"),
    interval: float = typer.Option(2.0, min=0.2, help="seconds between samples"),
    endpoints: Path = typer.Option(
        DEFAULT_ENDPOINTS, help="endpoints file (`kopru demo` writes one)"
    ),
    service: list[str] = typer.Option(
        [], "--service", "-s", help="NAME=URL of a service's HTTP port (instead of the file)"
    ),
    bootstrap: str | None = typer.Option(None, help="broker (default: the endpoints file's)"),
) -> None:
    """Live view of the running system, from /metrics, /readyz and the broker."""
    from services.common.monitoring.snapshot import Endpoints

    if service:
        pairs = dict(s.split("=", 1) for s in service)
        where = Endpoints(bootstrap, {n: u.rstrip("/") for n, u in pairs.items()})
    elif endpoints.exists():
        where = Endpoints.load(endpoints)
        where = Endpoints(bootstrap or where.bootstrap, where.services)
    else:
        typer.echo(
            f"no {endpoints}: start `kopru demo --keep` or give --service NAME=URL", err=True
        )
        raise typer.Exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(where, once, interval))


async def _run(where: Endpoints, once: bool, interval: float) -> None:
    from rich.console import Console
    from rich.live import Live

    from services.common.monitoring.snapshot import Snapshot, take
    from services.common.monitoring.top_view import render
    from services.common.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers=where.bootstrap) if where.bootstrap else None
    console = Console() if not once or Console().is_terminal else Console(width=200)
    history: collections.deque[Snapshot] = collections.deque()
    first = await take(where, kafka)
    history.append(first)
    await asyncio.sleep(interval)
    cur = await take(where, kafka)
    if once:
        console.print(render(first, cur, first))
        return
    prev = first
    # One writer: no auto-refresh thread drawing while Ctrl-C ends the main one.
    with Live(render(prev, cur, first), console=console, auto_refresh=False) as live:
        while True:
            history.append(cur)
            while history and cur.at - history[0].at > WINDOW_S:
                history.popleft()
            live.update(render(prev, cur, history[0]), refresh=True)
            await asyncio.sleep(interval)
            prev, cur = cur, await take(where, kafka)
