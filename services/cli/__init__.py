"""The `kopru` command: one entry point for operators, the demo and the services.

`kopru run SERVICE` is how every service runs (the image's entrypoint, the Deployments,
the demo, the bench): it starts the service straight away (services/cli/serve.py)
without importing the command line (typer, click, the operator commands and what they
import, ~2 MB of a service's resident memory). Anything else, `kopru run --help` and a
service name kopru does not know included, goes through the typer app
(services/cli/commands.py), also reachable as ``services.cli.app``.

A service process also keeps out two optional extras that libraries load only because
they are installed (typer brings them): structlog's rich tracebacks (our logging renders
plain tracebacks, services/common/observability/logging.py) and httpx's command-line
client (rich, pygments, click). Marking them absent before any import (``None`` in
``sys.modules``) makes both libraries take their own "not installed" branch: ~3.4 MB.
The same for cffi's Python package (its parser, pycparser): only pycryptodomex (under
pyzipper, the content-fetcher's zip decryption) imports it, and takes its own ctypes
backend without it (cryptography needs only the compiled ``_cffi_backend``): 1.4 MB less
in the content-fetcher, decrypting a 1 M-row csv 0.20 s -> 0.22 s.
"""

from __future__ import annotations

import sys
from typing import Any

# Optional extras a service never uses (see above); the typer commands still get them.
NOT_IN_A_SERVICE = ("rich", "pygments", "cffi")


def keep_out_of_a_service() -> list[str]:
    """Mark NOT_IN_A_SERVICE absent (before anything imports them); the names marked."""
    absent = [name for name in NOT_IN_A_SERVICE if name not in sys.modules]
    for name in absent:
        sys.modules[name] = None  # type: ignore[assignment]
    return absent


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "run" and not args[1].startswith("-"):
        absent = keep_out_of_a_service()
        from services.registry import SERVICES

        if args[1] in SERVICES:
            from services.cli.serve import serve

            serve(args[1])
            return
        for name in absent:  # not a service: the typer app tells, with rich
            del sys.modules[name]
    from services.cli.commands import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":  # `from services.cli import app`: the typer app, built on first use
        from services.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
