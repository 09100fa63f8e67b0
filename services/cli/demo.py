"""`kopru demo`: the whole system on one machine (see services/demo/runner.py)."""

from __future__ import annotations

import typer


def demo_command(
    keep: bool = typer.Option(
        False, "--keep", help="stay up after the flows until Ctrl-C (watch with `kopru top`)"
    ),
) -> None:
    """Run the demo: local broker, sandboxes, every service, sample flows."""
    from services.demo.runner import run_demo

    run_demo(keep=keep)
