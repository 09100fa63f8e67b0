"""What a demo flow gets from the runner, and how it says which processes it needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.common.kafka.local_broker import free_port


@dataclass
class ProcessSpec:
    """A process the demo starts: `argv` with `env` added to the demo's environment;
    the runner waits until `ready_url` answers 200 before running the flows."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None


@dataclass
class DemoContext:
    bootstrap: str
    state_dir: Path
    base_env: dict[str, str] = field(default_factory=dict)
    _ports: dict[str, int] = field(default_factory=dict)

    def port(self, name: str) -> int:
        """A free TCP port on loopback, the same one every time for the same name."""
        if name not in self._ports:
            self._ports[name] = free_port()
        return self._ports[name]

    def say(self, text: str) -> None:
        print(text, flush=True)
