"""`kopru demo`: the whole system on one machine (see services/demo/runner.py)."""

from __future__ import annotations


def demo_command() -> None:
    """Run the demo: local broker, sandboxes, every service, sample flows."""
    from services.demo.runner import run_demo

    run_demo()
