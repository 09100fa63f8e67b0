"""`kopru auth reset`: let the auth-token service try the MKK password again (FAQ 15).

Clears the durable record of a refused password for (member, sender) and asks for a
token; do it only after the password (and, if MKK locked the user, its unlock) was
sorted out, or MKK's three tries may be burnt.
"""

from __future__ import annotations

import asyncio

import typer

from schemas.events import AUTH_TOKEN_REQUESTS, TokenRequested
from services.auth_token.attempts import AttemptLog
from services.common.kafka import headers as H
from services.common.kafka.broker import encode_event
from services.common.kafka.clients import new_producer
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
    producer = new_producer(settings.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            AUTH_TOKEN_REQUESTS.name,
            encode_event(AUTH_TOKEN_REQUESTS, ev),
            key=ev.kafka_key(),
            headers=[(H.EVENT_TYPE, ev.event_type.encode())],
        )
    finally:
        await producer.stop()


@auth_app.command("reset")
def reset_command(
    member: str = typer.Option(..., help="MKK member code"),
    sender: str = typer.Option(..., help="MKK user (sender)"),
) -> None:
    """Forget a refused password for (member, sender) and ask for a token now."""
    asyncio.run(reset(load_settings(BaseServiceSettings), member, sender))
    typer.echo(f"auth attempts of {member}/{sender} reset; token requested")
