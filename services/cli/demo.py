"""`kopru demo`: the whole system on one machine (see services/demo/runner.py)."""

from __future__ import annotations

import typer


def demo_command(
    keep: bool = typer.Option(
        False, "--keep", help="stay up after the flows until Ctrl-C (watch with `kopru top`)"
    ),
    engine: str = typer.Option(
        "tansu", help="tansu (embedded, instant) or kafka (Apache Kafka, Java 17)."
    ),
) -> None:
    """Run the demo: local broker, sandboxes, every service, sample flows."""
    from services.common.kafka.engines import engine as engine_info
    from services.demo.runner import run_demo

    try:
        engine_info(engine)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engine") from None
    run_demo(keep=keep, engine=engine)
