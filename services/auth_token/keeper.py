"""The auth-token decision: one live token per (member, sender), renewed before it
expires, and never a second try of a password MKK refused (FAQ 15).

- `ensure(reason)` runs under one lock per key: it returns at once when the live
  token is good (unless that token was the one MKK rejected, or renewal is due);
  otherwise it reads the password (re-read from its file every time), checks the
  durable attempt log, calls /v1/auth (§3.2) with a fresh senderReference, and
  publishes the token encrypted (TokenIssued) on the compacted mks.auth.tokens.
- A refused password (wrong password, user locked / inactive / not defined): ERROR
  log, metric, TokenUnavailable(retry_blocked=True), no further attempt until the
  password fingerprint changes or `kopru auth reset`.
- Warns when claim.reason says the IP is not defined (§3.2.6) and when the password
  nears its 365 days (FAQ 14).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from schemas.codes import Action
from schemas.events import AUTH_TOKENS, Event, TokenIssued, TokenUnavailable, TopicSpec
from schemas.mkk import AuthRequest, RequestHeader
from services.auth_token.attempts import AttemptLog, password_fingerprint
from services.auth_token.metrics import AUTH_BLOCKED, AUTH_CALLS, PASSWORD_DAYS_LEFT
from services.common.errors import RetryLater
from services.common.mkk.client import AuthResult
from services.common.mkk.outcome import MkkNotSent, MkkTransportError
from services.common.mkk.sender_reference import new_sender_reference
from services.common.mkk.settings import MkkCredentials
from services.common.mkk.token_cache import CachedToken, TokenCache
from services.common.mkk.token_claims import TokenClaimsError, decode_token_claims, warn_on_claims
from services.common.mkk.token_crypto import TokenCipher
from services.common.observability.logging import get_logger

log = get_logger(__name__)

# Codes that mean "this password / user will not work": never try again by ourselves.
REFUSED = {"0x00d30003", "RP039", "RP040", "RP041", "RP048", "RP043"}
PASSWORD_LIFE_DAYS = 365  # FAQ 14


def read_password(creds: MkkCredentials) -> str | None:
    if creds.password_file is not None:
        try:
            return creds.password_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return creds.password.get_secret_value() if creds.password else None


@dataclass
class Keeper:
    creds: MkkCredentials
    auth: Callable[[AuthRequest], Awaitable[AuthResult]]
    attempts: AttemptLog
    cache: TokenCache
    cipher: TokenCipher
    fingerprint_key: str
    publish: Callable[[TopicSpec, Event], Awaitable[None]]
    renew_fraction: float = 50 / 60  # renew at 50 of 60 minutes
    max_unconfirmed: int = 2
    retry_s: float = 5.0
    republish_every_s: float = 2.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _unavailable_sent_for: str | None = None
    _republished_at: float = -1e9

    @property
    def member(self) -> str:
        return self.creds.member

    @property
    def sender(self) -> str:
        return self.creds.sender

    def renewal_due(self, now: datetime | None = None) -> bool:
        tok = self.cache.tokens.get((self.member, self.sender))
        if tok is None:
            return True
        now = now or datetime.now(UTC)
        life = (tok.expires_at - tok.issued_at).total_seconds()
        return now >= tok.issued_at + timedelta(seconds=life * self.renew_fraction)

    def warn_password_age(self, today: dt.date | None = None) -> int | None:
        if self.creds.password_set_on is None:
            return None
        today = today or dt.date.today()
        left = (self.creds.password_set_on + timedelta(days=PASSWORD_LIFE_DAYS) - today).days
        PASSWORD_DAYS_LEFT.labels(self.member, self.sender).set(left)
        if left <= self.creds.password_warning_days:
            log.warning(
                "mkk password nears its 365 days (FAQ 14)",
                member=self.member,
                sender=self.sender,
                days_left=left,
                hint="renew it in MKS screen YT25 and update the secret",
            )
        return left

    async def ensure(self, reason: str, rejected_jti: str | None = None) -> str:
        """Make sure a good token is published; returns what happened (for logs/tests)."""
        async with self._lock:
            tok = self.cache.current(self.member, self.sender)
            if tok is not None and tok.jti != rejected_jti and not self.renewal_due():
                if reason == "missing":
                    # Someone read the token topic and found nothing: the topic lost it
                    # (a broker restart). Publish the live token again; no new /v1/auth.
                    return await self._republish(tok)
                return "live"
            return await self._authenticate(reason)

    async def _authenticate(self, reason: str) -> str:
        password = read_password(self.creds)
        if password is None:
            log.error("mkk password secret is missing", member=self.member, sender=self.sender)
            return await self._unavailable("KOPRU_NO_PASSWORD", "password secret missing", "none")
        fp = password_fingerprint(self.fingerprint_key, password)
        st = await self.attempts.get(self.member, self.sender)
        if st.is_blocked(fp, self.max_unconfirmed):
            code = st.blocked_code or "KOPRU_AUTH_UNCONFIRMED"
            return await self._unavailable(code, "password refused before; not trying again", fp)
        await self.attempts.before_attempt(self.member, self.sender, fp)  # durable first
        req = AuthRequest(
            request_header=RequestHeader(
                sender_reference=new_sender_reference("AU"),
                sender_member=self.member,
                sender=self.sender,
            ),
            username=self.sender,
            password=SecretStr(password),
        )
        AUTH_CALLS.labels(self.member, self.sender).inc()
        try:
            result = await self.auth(req)
        except MkkNotSent as exc:  # never reached MKK: no password was checked (FAQ 15)
            await self.attempts.not_checked(self.member, self.sender)
            log.warning("mkk unreachable; auth not sent", member=self.member, error=str(exc))
            raise RetryLater(f"auth: {exc}", self.retry_s) from None
        except MkkTransportError as exc:
            log.warning("auth outcome unknown", member=self.member, error=str(exc))
            raise RetryLater(f"auth: {exc}", self.retry_s) from None
        out = result.outcome
        if out.action is Action.DONE and result.token:
            await self.attempts.succeeded(self.member, self.sender)
            AUTH_BLOCKED.labels(self.member, self.sender).set(0)
            self._unavailable_sent_for = None
            await self._issue(result.token)
            log.info("mkk token issued", member=self.member, sender=self.sender, reason=reason)
            return "issued"
        if out.code in REFUSED or (out.action is Action.TERMINAL and out.http_status == 401):
            await self.attempts.refused(self.member, self.sender, fp, out.code)
            AUTH_BLOCKED.labels(self.member, self.sender).set(1)
            log.error(
                "mkk refused the password; no further attempt until the secret changes "
                "or `kopru auth reset` (FAQ 15)",
                member=self.member,
                sender=self.sender,
                code=out.code,
                description=out.description,
            )
            return await self._unavailable(out.code, out.description, fp, force=True)
        await self.attempts.not_checked(self.member, self.sender)
        raise RetryLater(f"auth {out.code}: {out.description}", self.retry_s)

    async def _republish(self, tok: CachedToken) -> str:
        now = time.monotonic()
        if now - self._republished_at < self.republish_every_s:
            return "live"
        self._republished_at = now
        await self._publish_token(tok.token, tok.jti, tok.issued_at, tok.expires_at)
        log.info("live mkk token published again", member=self.member, sender=self.sender)
        return "republished"

    async def _issue(self, token: str) -> None:
        try:
            claims = decode_token_claims(token)
        except TokenClaimsError as exc:
            raise RetryLater(f"token unreadable: {exc}", self.retry_s) from None
        warn_on_claims(claims, log)  # §3.2.6 claim.reason: IP not defined
        jti = claims.jti or new_sender_reference("JTI")
        await self._publish_token(token, jti, datetime.now(UTC), claims.expires_at)
        self._republished_at = time.monotonic()  # just published: nobody can miss it yet

    async def _publish_token(
        self, token: str, jti: str, issued_at: datetime, expires_at: datetime
    ) -> None:
        nonce, ct = self.cipher.encrypt(token, self.member, self.sender, jti)
        event = TokenIssued(
            member=self.member,
            sender=self.sender,
            jti=jti,
            issued_at=issued_at,
            expires_at=expires_at,
            key_id=self.cipher.key_id,
            nonce_b64=nonce,
            ciphertext_b64=ct,
        )
        await self.publish(AUTH_TOKENS, event)
        self.cache.apply(event)

    async def _unavailable(self, code: str, description: str, fp: str, force: bool = False) -> str:
        if force or self._unavailable_sent_for != fp:
            event = TokenUnavailable(
                member=self.member,
                sender=self.sender,
                code=code,
                description=description[:2000],
                retry_blocked=True,
            )
            await self.publish(AUTH_TOKENS, event)
            self.cache.apply(event)
            self._unavailable_sent_for = fp
        return "blocked"
