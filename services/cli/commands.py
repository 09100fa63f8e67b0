"""The `kopru` command line (typer): every command group, for operators and the demo."""

from __future__ import annotations

import typer

from services.cli.auth import auth_app
from services.cli.broker import broker_command
from services.cli.cert import cert_app
from services.cli.config import config_app
from services.cli.contracts import contracts_app
from services.cli.demo import demo_command
from services.cli.dlq import dlq_app
from services.cli.mkk import mkk_app
from services.cli.payment import payment_app
from services.cli.report import report_app
from services.cli.run import run_command
from services.cli.sandbox import sandbox_app
from services.cli.top import top_command

app = typer.Typer(
    name="kopru",
    help="kopru: Kafka workers for MKK MKS Online, BKM Express and Moka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("broker")(broker_command)
app.command("run")(run_command)
app.command("demo")(demo_command)
app.command("top")(top_command)
app.add_typer(config_app, name="config")
app.add_typer(contracts_app, name="contracts")
app.add_typer(dlq_app, name="dlq")
app.add_typer(cert_app, name="cert")
app.add_typer(mkk_app, name="mkk")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(report_app, name="report")
app.add_typer(auth_app, name="auth")
app.add_typer(payment_app, name="payment")
