"""`kopru sandbox`: local simulators of MKK, BKM and Moka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

sandbox_app = typer.Typer(help="Run the local MKK, BKM and Moka simulators.", no_args_is_help=True)


# ---------------------------------------------------------------- kopru sandbox mkk


@sandbox_app.command("mkk")
def mkk_command(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8443,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS, local certificate.")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML or JSON: members, users, certificates, faults."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Keys and reports (default .kopru/sandbox/mkk)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the MKS Online sandbox: a local MKK REST API (token, balance report, status, content)."""
    from services.sandbox.mkk.config import ConfigError
    from services.sandbox.mkk.server import serve

    try:
        serve(
            host=host,
            port=port,
            tls=tls,
            config_file=config,
            state_dir=state_dir,
            log_level=log_level,
        )
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


# ---------------------------------------------------------------- kopru sandbox bkm


@sandbox_app.command("bkm")
def bkm_command(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 9620,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="BKM and demo merchant keys (default .kopru/sandbox/bkm)."
        ),
    ] = None,
    merchant_id: Annotated[str, typer.Option(help="The merchant's mId.")] = "kopru-demo-merchant",
    confirmation_url: Annotated[
        list[str] | None,
        typer.Option(help="Merchant confirmation URL(s); posts are spread over them."),
    ] = None,
    merch_info_url: Annotated[
        str | None, typer.Option(help="The merchant's requestMerchInfo SOAP URL.")
    ] = None,
    merchant_public_key: Annotated[
        Path | None, typer.Option(help="The merchant's public key (default: the demo one).")
    ] = None,
    ts_tolerance_s: Annotated[float, typer.Option(help="Accepted clock difference.")] = 300.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the BKM Express sandbox: initializePayment, QueryPaymentResult, admin "pay"."""
    from services.sandbox.bkm.app import BkmSandboxConfig
    from services.sandbox.bkm.keys import DEFAULT_STATE_DIR
    from services.sandbox.bkm.server import serve

    config = BkmSandboxConfig(
        state_dir=state_dir or DEFAULT_STATE_DIR,
        merchant_id=merchant_id,
        confirmation_urls=list(confirmation_url or []),
        merch_info_url=merch_info_url,
        merchant_public_key=merchant_public_key,
        ts_tolerance_s=ts_tolerance_s,
    )
    serve(config, host=host, port=port, log_level=log_level)


# --------------------------------------------------------------- kopru sandbox moka


@sandbox_app.command("moka")
def moka_command(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 9630,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    dealer_code: Annotated[str, typer.Option(help="The dealer code Moka knows.")] = "1356",
    username: Annotated[str, typer.Option(help="The dealer's API user.")] = "kopru-demo",
    password: Annotated[
        str | None,
        typer.Option(help="The dealer's API password (visible to ps: prefer --password-file)."),
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="File with the dealer's API password (demo default).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the Moka dealer API sandbox: CreateMokaPosRequest with every listed error;
    admin API under /_sandbox/ (fault, requests)."""
    from services.sandbox.moka import server
    from services.sandbox.moka.app import MokaSandboxConfig

    if password is not None and password_file is not None:
        raise typer.BadParameter("give --password or --password-file, not both")
    config = MokaSandboxConfig(dealer_code=dealer_code, username=username)
    if password is not None:
        config.password = password
    elif password_file is not None:
        config.password = password_file.read_text().strip()
    server.serve(config, host=host, port=port, log_level=log_level)
