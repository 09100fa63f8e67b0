"""auth-token: the only holder of the MKK password; one live token per (member,
sender) on the compacted mks.auth.tokens, encrypted; answers TokenRequested."""

from __future__ import annotations

import asyncio
import contextlib
import re

from pydantic import BaseModel, Field, field_validator, model_validator

from schemas.codes import KOPRU_CODES
from schemas.events import (
    AUTH_TOKEN_REQUESTS,
    AUTH_TOKENS,
    Event,
    TokenRequested,
    TokenUnavailable,
    TopicSpec,
)
from schemas.mkk import SENDER_RE
from services.auth_token.attempts import AttemptLog
from services.auth_token.keeper import Keeper
from services.common.errors import RetryLater
from services.common.kafka.broker import consumer_options, publish_event, subscribed_topics
from services.common.mkk.client import MkkClient
from services.common.mkk.hours import log_service_hours
from services.common.mkk.settings import (
    MkkApiSettings,
    MkkCredentials,
    MkkUserSettings,
    PipelineSecrets,
    configured_users,
    missing_password_problems,
)
from services.common.mkk.token_cache import UNKNOWN_USER, TokenCache
from services.common.mkk.token_crypto import TokenCipher
from services.common.observability.logging import get_logger
from services.common.service import Service, new_service
from services.common.settings import BaseServiceSettings
from services.common.stores.factory import open_state_store

log = get_logger(__name__)


class AuthSettings(BaseModel):
    renew_fraction: float = Field(default=50 / 60, gt=0.1, lt=1.0)  # 50 of 60 minutes
    check_every_s: float = Field(default=5.0, gt=0)
    max_unconfirmed: int = Field(default=2, ge=1, le=2)  # FAQ 15: stay below three
    retry_s: float = Field(default=5.0, gt=0)


class Settings(BaseServiceSettings):
    mkk: MkkApiSettings = Field(default_factory=MkkApiSettings)
    # Every MKK user, keyed by user code (sender, §3.2), each with its own password.
    mkk_users: dict[str, MkkUserSettings] = Field(default_factory=dict)
    # Shorthand for one user (used alone when mkk_users is empty).
    mkk_auth: MkkCredentials = Field(default_factory=MkkCredentials)
    pipeline: PipelineSecrets = Field(default_factory=PipelineSecrets)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @field_validator("mkk_users")
    @classmethod
    def _user_codes(cls, v: dict[str, MkkUserSettings]) -> dict[str, MkkUserSettings]:
        bad = [k for k in v if not re.fullmatch(SENDER_RE, k.upper())]
        if bad:  # §3.2: sender [A-Z0-9]{3,10}
            why = f"is no MKK user code ({SENDER_RE}, §3.2)"
            raise ValueError("; ".join(f"KOPRU_MKK_USERS__{k.upper()}: {k!r} {why}" for k in bad))
        return v

    @model_validator(mode="after")
    def _every_user_has_a_password(self) -> Settings:
        """A user without a password stops auth-token at start, naming the variable
        (not at the first token request); two entries for one user are refused."""
        problems = missing_password_problems(self.mkk_users, self.mkk_auth)
        keys = [u.key for u in self.users()]
        problems += [f"MKK user {m}/{s} is configured twice" for m, s in set(keys)
                     if keys.count((m, s)) > 1]  # fmt: skip
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def users(self) -> list[MkkCredentials]:
        return configured_users(self.mkk_users, self.mkk_auth)


def build(settings: Settings) -> Service:
    service = new_service(
        "auth-token",
        settings,
        description="Holds the MKK password; keeps one live token per (member, sender).",
        max_attempts={AUTH_TOKEN_REQUESTS.name: 3},
    )
    broker = service.broker
    token_key = settings.pipeline.token_key.get_secret_value()
    cipher = TokenCipher(token_key)
    cache = TokenCache(settings.kafka, cipher, None, requested_by=service.name)
    client = MkkClient(settings.mkk, None, None)  # /v1/auth is plain JSON (§3.2)
    state = open_state_store(settings.store)

    async def publish(spec: TopicSpec, event: Event) -> None:
        await publish_event(broker, spec, event)

    attempts = AttemptLog(state)
    keepers: dict[tuple[str, str], Keeper] = {
        user.key: Keeper(
            creds=user,
            auth=client.auth,
            attempts=attempts,
            cache=cache,
            cipher=cipher,
            fingerprint_key=token_key,
            publish=publish,
            renew_fraction=settings.auth.renew_fraction,
            max_unconfirmed=settings.auth.max_unconfirmed,
            retry_s=settings.auth.retry_s,
        )
        for user in settings.users()
    }
    tasks: list[asyncio.Task[None]] = []

    async def renew_loop(keeper: Keeper) -> None:
        await cache.caught_up.wait()  # adopt a live token from the topic: no extra auth
        keeper.warn_password_age()
        while True:
            try:
                await keeper.ensure("expired")
            except RetryLater as exc:
                log.warning("token renewal postponed", sender=keeper.sender, reason=exc.reason)
            except Exception as exc:  # keep renewing whatever happens
                log.error("token renewal failed", sender=keeper.sender, error=repr(exc))
            await asyncio.sleep(settings.auth.check_every_s)

    async def start() -> None:
        log_service_hours(settings.mkk, service.name)
        log.info("mkk users", users=[f"{m}/{s}" for m, s in keepers])
        await state.open()
        await client.start()

    async def start_loops() -> None:
        await cache.start()
        for (member, sender), keeper in keepers.items():
            name = f"token-renewal-{member}-{sender}"
            tasks.append(asyncio.create_task(renew_loop(keeper), name=name))

    async def stop() -> None:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await cache.stop()
        await client.close()
        await state.close()

    service.on_start += [start, start_loops]
    service.on_stop.append(stop)
    service.readiness["state_store"] = state.ping
    service.readiness["token_topic"] = cache.ready

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *subscribed_topics(AUTH_TOKEN_REQUESTS.name, settings.kafka, service.group),
        **consumer_options(settings.kafka, service.group),
    )
    async def on_token_requested(event: TokenRequested) -> None:
        keeper = keepers.get((event.member, event.sender))
        await cache.caught_up.wait()
        if keeper is None:  # say so at once: the asking request fails, never waits
            log.warning("token asked for an MKK user this service has no password for",
                        member=event.member, sender=event.sender)  # fmt: skip
            unknown = TokenUnavailable(
                member=event.member,
                sender=event.sender,
                code=UNKNOWN_USER,
                description=KOPRU_CODES[UNKNOWN_USER],
                retry_blocked=True,
            )
            await publish(AUTH_TOKENS, unknown)
            return
        await keeper.ensure(event.reason, event.rejected_jti)

    return service
