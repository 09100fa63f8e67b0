"""The latest MKK token per (member, sender), read from mks.auth.tokens.

Every report service keeps this cache: it reads the token topic from the beginning
(explicit partitions, no consumer group; the local broker does no compaction, so it
reads everything and keeps the latest per key), decrypts TokenIssued with the shared
AES-GCM key and keeps the token in memory only. When a token is missing, expired or
rejected by MKK (OI006 / 401), it asks the auth-token service (TokenRequested) and
waits a little for the answer; if none comes the handler retries later (RetryLater).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import (
    AUTH_TOKENS,
    TokenIssued,
    TokenRequested,
    TokenUnavailable,
)
from services.common.errors import RetryLater
from services.common.kafka.clients import new_consumer, stop_quietly
from services.common.mkk.token_crypto import TokenCipher, TokenDecryptError
from services.common.observability.logging import get_logger
from services.common.settings import KafkaSettings

log = get_logger(__name__)

RequestToken = Callable[[TokenRequested], Awaitable[None]]


@dataclass(frozen=True)
class CachedToken:
    jti: str
    expires_at: datetime
    issued_at: datetime
    token: str  # in clear, memory only

    def __repr__(self) -> str:  # never print the token
        return f"CachedToken(jti={self.jti!r}, expires_at={self.expires_at.isoformat()})"


UNKNOWN_USER = "KOPRU_UNKNOWN_USER"  # auth-token has no password for the pair


class TokenUnavailableError(RetryLater):
    """No token for now (auth-token said so, or did not answer in time)."""


class UnknownMkkUserError(TokenUnavailableError):
    """auth-token holds no password for this (member, sender): waiting cannot help."""


class TokenCache:
    def __init__(
        self,
        kafka: KafkaSettings,
        cipher: TokenCipher,
        request: RequestToken | None,
        *,
        requested_by: str,
        wait_s: float = 10.0,
        expiry_leeway_s: float = 30.0,
        request_every_s: float = 5.0,
        unavailable_retry_s: float = 30.0,
    ) -> None:
        self.kafka = kafka
        self.cipher = cipher
        self.request = request
        self.requested_by = requested_by
        self.wait_s = wait_s
        self.leeway = timedelta(seconds=expiry_leeway_s)
        self.request_every_s = request_every_s
        self.unavailable_retry_s = unavailable_retry_s
        self.tokens: dict[tuple[str, str], CachedToken] = {}
        self.unavailable: dict[tuple[str, str], TokenUnavailable] = {}
        self._asked_at: dict[tuple[str, str], float] = {}
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._consumer = new_consumer(
            self.kafka, client_id=f"{self.kafka.client_id}-{self.requested_by}-tokens"
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="token-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._consumer is not None:
            # After a broker outage aiokafka's stop() can raise its own fetch tasks'
            # cancellation (kafka/clients.stop_quietly): the service's stop goes on.
            await stop_quietly(self._consumer.stop())
            self._consumer = None

    async def ready(self) -> None:
        if not self.caught_up.is_set():
            raise RuntimeError("token topic not read to its end yet")

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        parts: set[int] | None = None
        while not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(AUTH_TOKENS.name)
            if not parts:
                await asyncio.sleep(0.5)
        tps = [TopicPartition(AUTH_TOKENS.name, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=300)
            except Exception as exc:  # keep reading: a broker hiccup is not fatal
                log.warning("token topic read failed", error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if not batch:
                self.caught_up.set()
                continue
            for records in batch.values():
                for rec in records:
                    self.apply_raw(rec.value)
            async with self._changed:
                self._changed.notify_all()

    # ------------------------------------------------------------------ reading
    def apply_raw(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            event = AUTH_TOKENS.parse(value)
        except ValueError:
            log.warning("unreadable event on the token topic")
            return
        self.apply(event)

    def apply(self, event: object) -> None:
        if isinstance(event, TokenIssued):
            key = (event.member, event.sender)
            try:
                token = self.cipher.decrypt(
                    event.key_id,
                    event.nonce_b64,
                    event.ciphertext_b64,
                    event.member,
                    event.sender,
                    event.jti,
                )
            except TokenDecryptError as exc:
                log.warning("token could not be decrypted", jti=event.jti, error=str(exc))
                return
            self.tokens[key] = CachedToken(event.jti, event.expires_at, event.issued_at, token)
            self.unavailable.pop(key, None)
        elif isinstance(event, TokenUnavailable):
            key = (event.member, event.sender)
            self.unavailable[key] = event
            self.tokens.pop(key, None)

    def current(self, member: str, sender: str) -> CachedToken | None:
        tok = self.tokens.get((member, sender))
        if tok is None:
            return None
        # Stop using a token a little before it expires: 30 s, or a tenth of its life.
        leeway = min(self.leeway, (tok.expires_at - tok.issued_at) / 10)
        if datetime.now(UTC) + leeway >= tok.expires_at:
            return None
        return tok

    # ------------------------------------------------------------------ asking
    async def _ask(
        self, member: str, sender: str, reason: str, rejected_jti: str | None = None
    ) -> None:
        key = (member, sender)
        now = time.monotonic()
        if reason != "rejected" and now - self._asked_at.get(key, -1e9) < self.request_every_s:
            return
        self._asked_at[key] = now
        if self.request is None:
            return
        await self.request(
            TokenRequested(
                member=member,
                sender=sender,
                reason=reason,  # type: ignore[arg-type]
                requested_by=self.requested_by,
                rejected_jti=rejected_jti,
            )
        )

    async def _wait_for(self, member: str, sender: str, not_jti: str | None) -> CachedToken:
        deadline = time.monotonic() + self.wait_s
        async with self._changed:
            while True:
                tok = self.current(member, sender)
                if tok is not None and tok.jti != not_jti:
                    return tok
                if (member, sender) in self.unavailable:
                    ev = self.unavailable[(member, sender)]
                    if ev.code == UNKNOWN_USER:
                        raise UnknownMkkUserError(
                            f"auth-token has no MKK user {member}/{sender}",
                            self.unavailable_retry_s,
                        )
                    raise TokenUnavailableError(
                        f"no MKK token for {member}/{sender}: {ev.code}",
                        self.unavailable_retry_s,
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TokenUnavailableError(
                        f"no MKK token for {member}/{sender} yet", self.unavailable_retry_s / 3
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):  # not wait_for (3.11, progress.py)
                        await self._changed.wait()

    async def get(self, member: str, sender: str) -> CachedToken:
        """A live token, asking the auth-token service for one if needed."""
        tok = self.current(member, sender)
        if tok is not None:
            return tok
        if (member, sender) in self.unavailable:
            # Ask again (the password may have been corrected), but do not wait long.
            await self._ask(member, sender, "missing")
        else:
            reason = "expired" if (member, sender) in self.tokens else "missing"
            await self._ask(member, sender, reason)
        return await self._wait_for(member, sender, None)

    async def rejected(self, member: str, sender: str, jti: str) -> CachedToken:
        """MKK refused this token (OI006 / 401): ask once for a new one and wait for it."""
        tok = self.tokens.get((member, sender))
        if tok is not None and tok.jti != jti and self.current(member, sender) is not None:
            return tok  # a newer token already arrived
        await self._ask(member, sender, "rejected", rejected_jti=jti)
        return await self._wait_for(member, sender, jti)
