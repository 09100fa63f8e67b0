"""`kopru broker`: run a local broker with the topic catalogue until Ctrl-C / SIGTERM.

Two engines (services/common/kafka/engines.py): `tansu`, the embedded default (memory
only, starts at once), and `kafka`, Apache Kafka 4.x KRaft on 1 or 3 nodes, fetched by
Maven into `.kopru/` on first use (`--fetch-only` does just that, e.g. in CI).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import typer

from services.common.kafka.engines import ENGINES, engine_env, fit_settings
from services.common.kafka.kafka_cluster import KafkaCluster, prepare, wait_for_leaders
from services.common.kafka.kafka_dist import KafkaUnavailable
from services.common.kafka.local_broker import LocalBroker
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings


async def _announce(bootstrap: str, engine: str, nodes: int, create: bool) -> None:
    settings = fit_settings(KafkaSettings(bootstrap_servers=bootstrap), engine, nodes)
    if create:
        created = await create_topics(settings)
        await wait_for_leaders(bootstrap, [t.name for t in plan(settings)])
        typer.echo(
            f"created {len(created)} topics ({len(plan(settings))} in the catalogue, "
            f"replication factor {settings.replication_factor})"
        )
    typer.echo(f"bootstrap servers: {bootstrap}")
    env = {"KOPRU_KAFKA__BOOTSTRAP_SERVERS": bootstrap, **engine_env(engine, nodes)}
    typer.echo("services need: " + " ".join(f"{k}={v}" for k, v in env.items()))


async def _serve(
    engine: str, nodes: int, port: int, host: str, data_dir: Path | None, create: bool
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if engine == "tansu":
        async with LocalBroker(port=port, host=host) as broker:
            await _announce(broker.bootstrap_servers, engine, 1, create)
            typer.echo(
                f"broker ready on {broker.bootstrap_servers} (pid {broker.pid}); Ctrl-C stops it"
            )
            await stop.wait()
            typer.echo("stopping broker")
        return
    await prepare()
    started = time.monotonic()
    async with KafkaCluster(nodes, port=port, host=host, data_dir=data_dir) as cluster:
        took = time.monotonic() - started
        await _announce(cluster.bootstrap_servers, engine, nodes, create)
        pids = ", ".join(f"node {i}: pid {p}" for i, p in cluster.pids().items())
        typer.echo(
            f"broker ready on {cluster.bootstrap_servers} (Apache Kafka {cluster.dist.version}, "
            f"{nodes} node(s) in {took:.1f} s; {pids}; data in {cluster.data_dir}); "
            "Ctrl-C stops it"
        )
        await stop.wait()
        typer.echo("stopping broker")
    typer.echo("broker stopped")


def broker_command(
    engine: str = typer.Option(
        "tansu", help="tansu (memory only, instant) or kafka (Apache Kafka KRaft, Java 17)."
    ),
    nodes: int = typer.Option(1, min=1, max=3, help="kafka only: 1 or 3 KRaft nodes."),
    port: int = typer.Option(9092, help="TCP port on the loopback interface (first node)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    data_dir: Path | None = typer.Option(
        None, help="kafka only: keep the nodes' data here (default: a temporary directory)."
    ),
    create_topics_: bool = typer.Option(
        True, "--create-topics/--no-create-topics", help="Create the topic catalogue."
    ),
    fetch_only: bool = typer.Option(
        False, "--fetch-only", help="kafka only: fetch and prepare Apache Kafka, then exit."
    ),
) -> None:
    """Start a local broker (tansu or Apache Kafka) with the topic catalogue."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"one of {', '.join(ENGINES)}", param_hint="--engine")
    if engine == "tansu" and (nodes != 1 or data_dir is not None):
        raise typer.BadParameter("tansu runs one memory-only node", param_hint="--engine")
    if nodes == 2:
        raise typer.BadParameter(
            "1 or 3 (a 2-node quorum survives no failure)", param_hint="--nodes"
        )
    try:
        if fetch_only:
            if engine != "kafka":
                raise typer.BadParameter("only the kafka engine is fetched", param_hint="--engine")
            dist = asyncio.run(prepare())
            typer.echo(f"Apache Kafka {dist.version} ready in {dist.home}")
            return
        asyncio.run(_serve(engine, nodes, port, host, data_dir, create_topics_))
    except KafkaUnavailable as exc:
        typer.echo(f"kopru broker: {exc}", err=True)
        raise typer.Exit(2) from None
