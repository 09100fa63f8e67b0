"""`kopru contracts write|check`: contracts generated from the code (see contracts.py)."""

from __future__ import annotations

from pathlib import Path

import typer

contracts_app = typer.Typer(help="Generate and check contracts.", no_args_is_help=True)


@contracts_app.command("write")
def write_cmd(root: Path = typer.Option(Path(), help="Repository root.")) -> None:
    """Regenerate contracts/ and deploy/base/kafka-topics.yaml from the code."""
    from services.common.contracts import write

    changed = write(root)
    typer.echo(f"{len(changed)} file(s) written" + "".join(f"\n  {c}" for c in changed))


@contracts_app.command("check")
def check_cmd(root: Path = typer.Option(Path(), help="Repository root.")) -> None:
    """Fail when the checked-in contracts differ from what the code generates."""
    from services.common.contracts import check

    problems = check(root)
    if problems:
        typer.echo("contracts differ from the code (run `make contracts`):", err=True)
        for p in problems:
            typer.echo(p, err=True)
        raise typer.Exit(1)
    typer.echo("contracts match the code")
