"""`kopru broker`: run the local broker with the topic catalogue until Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import typer

from services.common.kafka.local_broker import LocalBroker
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings


async def _serve(port: int, host: str, create: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with LocalBroker(port=port, host=host) as broker:
        if create:
            settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            created = await create_topics(settings)
            typer.echo(f"created {len(created)} topics ({len(plan(settings))} in the catalogue)")
        typer.echo(
            f"broker ready on {broker.bootstrap_servers} (pid {broker.pid}); Ctrl-C stops it"
        )
        await stop.wait()
        typer.echo("stopping broker")


def broker_command(
    port: int = typer.Option(9092, help="TCP port on the loopback interface."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    create_topics_: bool = typer.Option(
        True, "--create-topics/--no-create-topics", help="Create the topic catalogue."
    ),
) -> None:
    """Start the local Kafka-protocol broker (memory only) for the demo and development."""
    asyncio.run(_serve(port, host, create_topics_))
