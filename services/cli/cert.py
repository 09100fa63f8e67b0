"""`kopru cert`: create and check self-signed certificates per MKK §3.1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import hashes

from services.common.signing.certs import (
    DEFAULT_WARN_DAYS,
    MAX_DAYS,
    MIN_DAYS,
    CertError,
    check_certificate,
    create_self_signed,
    load_certificate,
    read_passphrase,
    write_certificate,
    write_private_key,
)

cert_app = typer.Typer(help="Create and check MKK certificates (§3.1).", no_args_is_help=True)


@cert_app.command("create")
def create(
    cn: Annotated[str, typer.Option("--cn", help="Institution title (Kurumun unvanı), §3.1")],
    country: Annotated[str, typer.Option("--country", help="Two-letter country, e.g. TR")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write into")],
    org: Annotated[str | None, typer.Option("--org", help="MKK member code (optional)")] = None,
    state: Annotated[str | None, typer.Option("--state", help="City (optional)")] = None,
    locality: Annotated[str | None, typer.Option("--locality", help="District (optional)")] = None,
    days: Annotated[
        int,
        typer.Option("--days", min=MIN_DAYS, max=MAX_DAYS, help="Validity: 1 to 2 years"),
    ] = MAX_DAYS,
    passphrase_file: Annotated[
        Path | None,
        typer.Option("--passphrase-file", help="Encrypt the key with the passphrase in F"),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="File name stem")] = "member",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files")] = False,
) -> None:
    """Write an RSA-4096 key (PEM, 0600) and its self-signed certificate (.pem, .cer)."""
    out.mkdir(parents=True, exist_ok=True)
    key_path = out / f"{name}-key.pem"
    targets = [key_path, out / f"{name}.pem", out / f"{name}.cer"]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        typer.echo(f"refusing to overwrite {', '.join(existing)} (use --force)", err=True)
        raise typer.Exit(2)
    passphrase = read_passphrase(file=passphrase_file) if passphrase_file else None
    try:
        key, cert = create_self_signed(cn, country, org, state, locality, days)
    except CertError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    write_private_key(key_path, key, passphrase)
    pem, cer = write_certificate(out, name, cert)
    typer.echo(f"private key   {key_path} (mode 0600{', encrypted' if passphrase else ''})")
    typer.echo(f"certificate   {pem}")
    typer.echo(f"certificate   {cer} (DER)")
    typer.echo(f"subject       {cert.subject.rfc4514_string()}")
    typer.echo(f"valid until   {cert.not_valid_after_utc.isoformat()}")
    typer.echo(f"sha256        {cert.fingerprint(hashes.SHA256()).hex(':')}")
    typer.echo("send the .cer or .pem to MKK (§3.1); keep the key secret")


@cert_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Certificate: PEM, DER (.cer) or PKCS#12")],
    passphrase_file: Annotated[
        Path | None, typer.Option("--passphrase-file", help="PKCS#12 passphrase file")
    ] = None,
    warn_days: Annotated[int, typer.Option("--warn-days", min=1)] = DEFAULT_WARN_DAYS,
) -> None:
    """Check a certificate against §3.1; print days to expiry; exit 1 on any violation."""
    passphrase = read_passphrase(file=passphrase_file) if passphrase_file else None
    try:
        cert = load_certificate(file, passphrase)
    except (CertError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    result = check_certificate(cert)
    typer.echo(f"subject       {result.subject}")
    typer.echo(f"valid until   {result.not_after.isoformat()}")
    typer.echo(f"days to expiry {result.days_left:.0f}")
    if 0 < result.days_left <= warn_days:
        typer.echo(f"warning: expires within {warn_days} days; renew and send to MKK")
    for violation in result.violations:
        typer.echo(f"violation: {violation}")
    if not result.ok:
        raise typer.Exit(1)
    typer.echo("ok: meets §3.1")
