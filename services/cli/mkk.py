"""`kopru mkk`: operator tools to sign and verify MKK JWS bodies (FAQ 5).

FAQ 5 ("500 Internal Error"): an unsigned or badly signed body is a common cause. These
commands let an operator sign a payload exactly as the services do and check an answer
against MKK's certificate, printing which check fails.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from services.common.signing.certs import (
    CertError,
    load_private_key,
    load_public_key,
    read_passphrase,
)
from services.common.signing.jws import JwsError, JwsSigner, JwsVerifier, parse_compact

mkk_app = typer.Typer(help="Sign and verify MKK JWS bodies.", no_args_is_help=True)


def _read(path: Path) -> bytes:
    return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()


@mkk_app.command("sign")
def sign(
    key: Annotated[Path, typer.Option("--key", help="Private key: PEM or PKCS#12")],
    in_file: Annotated[Path, typer.Option("--in", help="JSON payload file ('-' = stdin)")],
    alg: Annotated[str, typer.Option("--alg", help="RS256 (§9.2), RS384, RS512, PS256")] = "RS256",
    kid: Annotated[str | None, typer.Option("--kid", help="Add a kid header")] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option("--passphrase-file", help="Key passphrase file")
    ] = None,
) -> None:
    """Print the JWS compact serialization of the payload's exact bytes."""
    payload = _read(in_file)
    try:
        json.loads(payload)
    except ValueError:
        typer.echo("warning: payload is not JSON; MKK will refuse it (FAQ 5)", err=True)
    try:
        private = load_private_key(key, read_passphrase(file=passphrase_file))
        signer = JwsSigner(private, alg, kid=kid)
    except (CertError, JwsError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(signer.sign(payload))


@mkk_app.command("verify")
def verify(
    cert: Annotated[Path, typer.Option("--cert", help="MKK's certificate or public key")],
    in_file: Annotated[Path, typer.Option("--in", help="JWS answer file ('-' = stdin)")],
    alg: Annotated[
        list[str] | None, typer.Option("--alg", help="Allowed algorithm(s); default RS256")
    ] = None,
) -> None:
    """Print the payload of a valid JWS, or the check that failed (exit 1)."""
    raw = _read(in_file)
    try:
        verifier = JwsVerifier(load_public_key(cert), alg or ["RS256"])
    except (CertError, JwsError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        payload = verifier.verify(raw)
    except JwsError as exc:
        typer.echo(f"INVALID ({exc.check}): {exc}", err=True)
        with contextlib.suppress(JwsError):
            typer.echo(f"header: {json.dumps(parse_compact(raw).header)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(payload.decode("utf-8", errors="replace"))
