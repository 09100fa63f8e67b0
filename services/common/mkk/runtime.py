"""What the three report services share: settings, the MKK client, the token cache,
the state store, and a call wrapper that refreshes a rejected token once.

Built in `build()` without I/O; keys, HTTP pool, token topic and store open in the
service's on_start hooks and close in on_stop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, Field, field_validator

from schemas.codes import Action
from schemas.events import AUTH_TOKEN_REQUESTS, TokenRequested
from services.common.kafka import headers as H
from services.common.kafka.broker import publish_event
from services.common.mkk.client import MkkClient
from services.common.mkk.hours import log_service_hours
from services.common.mkk.outcome import MkkOutcome
from services.common.mkk.settings import MkkApiSettings, PipelineSecrets
from services.common.mkk.token_cache import CachedToken, TokenCache
from services.common.mkk.token_crypto import TokenCipher
from services.common.service import Service
from services.common.settings import BaseServiceSettings
from services.common.signing.jws import signer_from_settings, verifier_from_settings
from services.common.signing.pool import SigningPool
from services.common.signing.settings import MkkSigningSettings
from services.common.stores.factory import open_state_store
from services.common.stores.state import StateStore

T = TypeVar("T")


class TokenSettings(BaseModel):
    wait_s: float = Field(default=10.0, gt=0)  # how long a handler waits for a token
    unavailable_retry_s: float = Field(default=30.0, gt=0)


class ReportServiceSettings(BaseServiceSettings):
    mkk: MkkApiSettings = Field(default_factory=MkkApiSettings)
    mkk_signing: MkkSigningSettings = Field(default_factory=MkkSigningSettings)
    pipeline: PipelineSecrets = Field(default_factory=PipelineSecrets)
    token: TokenSettings = Field(default_factory=TokenSettings)

    @field_validator("mkk_signing")
    @classmethod
    def _key_and_certificate_exist(cls, v: MkkSigningSettings) -> MkkSigningSettings:
        """§3: every request is signed with our key, every answer verified with MKK's
        certificate. Without either the service stops at start, naming the variable."""
        problems = [
            f"KOPRU_MKK_SIGNING__{name.upper()}"
            + (f"={path}: no such file" if path is not None else f" is not set: {why}")
            for name, path, why in (
                ("private_key_file", v.private_key_file, "the member key signs requests (§3)"),
                (
                    "mkk_certificate_file",
                    v.mkk_certificate_file,
                    "MKK's certificate verifies its answers (§3)",
                ),
            )
            if path is None or not path.is_file()
        ]
        if problems:
            raise ValueError("\n  ".join(problems))
        return v


@dataclass
class MkkRuntime:
    settings: ReportServiceSettings
    client: MkkClient
    tokens: TokenCache
    state: StateStore
    pool: SigningPool | None = None
    extra_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def with_token(
        self, member: str, sender: str, call: Callable[[CachedToken], Awaitable[MkkOutcome]]
    ) -> MkkOutcome:
        """Run `call` with a live token; on OI006 / 401 get a new token once and retry once."""
        tok = await self.tokens.get(member, sender)
        outcome = await call(tok)
        if outcome.action is Action.REAUTH:
            tok = await self.tokens.rejected(member, sender, tok.jti)
            outcome = await call(tok)
        return outcome


def attempt_of(message: Any) -> int:
    """The retry attempt of a delivered message (0 on the first delivery)."""
    raw = getattr(message, "headers", None) or {}
    value = raw.get(H.ATTEMPT)
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def build_runtime(service: Service, settings: ReportServiceSettings) -> MkkRuntime:
    cipher = TokenCipher(settings.pipeline.token_key.get_secret_value())

    async def request_token(ev: TokenRequested) -> None:
        await publish_event(service.broker, AUTH_TOKEN_REQUESTS, ev)

    tokens = TokenCache(
        settings.kafka,
        cipher,
        request_token,
        requested_by=service.name,
        wait_s=settings.token.wait_s,
        unavailable_retry_s=settings.token.unavailable_retry_s,
    )
    client = MkkClient(settings.mkk, None, None)
    state = open_state_store(settings.store)
    rt = MkkRuntime(settings, client, tokens, state)

    async def start() -> None:
        log_service_hours(settings.mkk, service.name)
        rt.pool = SigningPool(settings.mkk_signing.pool_workers)
        client.signer = signer_from_settings(settings.mkk_signing, rt.pool.executor)
        client.verifier = verifier_from_settings(settings.mkk_signing)
        await client.start()
        await state.open()

    async def start_tokens() -> None:  # after the broker started: it publishes requests
        await tokens.start()

    async def stop() -> None:
        await tokens.stop()
        await client.close()
        await state.close()
        if rt.pool is not None:
            rt.pool.shutdown(wait=False)

    service.on_start.append(start)
    service.on_start.append(start_tokens)
    service.on_stop.append(stop)
    service.readiness["state_store"] = state.ping
    service.readiness["token_topic"] = tokens.ready
    return rt
