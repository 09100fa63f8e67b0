"""`python -m services.sandbox.mkk [--port ...]`: the same as `kopru sandbox mkk`."""

from __future__ import annotations

import typer

from services.cli.sandbox import mkk_command

if __name__ == "__main__":
    typer.run(mkk_command)
