"""`kopru auth reset`: let the auth-token service try the MKK password again (FAQ 15).

Clears the durable record of a refused password for (member, sender) and asks for a
token; do it only after the password (and, if MKK locked the user, its unlock) was
sorted out, or MKK's three tries may be burnt.
"""

from __future__ import annotations

import typer

from schemas.events import AUTH_TOKEN_REQUESTS, TokenRequested
from services.auth_token.attempts import AttemptLog
from services.cli.publishing import publish_one, run_or_exit
from services.common.settings import BaseServiceSettings, load_settings
from services.common.stores.factory import open_state_store

auth_app = typer.Typer(help="The MKK token (auth-token service).", no_args_is_help=True)


async def reset(settings: BaseServiceSettings, member: str, sender: str) -> None:
    store = open_state_store(settings.store)
    await store.open()
    try:
        await AttemptLog(store).reset(member, sender)
    finally:
        await store.close()
    ev = TokenRequested(member=member, sender=sender, reason="missing", requested_by="cli")
    await publish_one(settings.kafka, AUTH_TOKEN_REQUESTS, ev)


@auth_app.command("reset")
def reset_command(
    member: str = typer.Option(..., help="MKK member code"),
    sender: str = typer.Option(..., help="MKK user (sender)"),
) -> None:
    """Forget a refused password for (member, sender) and ask for a token now."""
    run_or_exit(reset(load_settings(BaseServiceSettings), member, sender))
    typer.echo(f"auth attempts of {member}/{sender} reset; token requested")
