"""Read the claims of an MKK token (a JWT) without trusting them (§3.2).

The token is MKK's to check; we only read it to plan: ``exp`` schedules renewal, ``jti``
names the token in logs (the token itself never enters a log), and ``claim.reason`` says
when MKK has no IP address registered for the user (§3, FAQ 3/8/9), e.g.
"TIB991 için tanımlı ip adresi bulunamadi!." in the §3.2.6 sample. The signature is not
checked here: nothing read from these claims grants anything.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.signing.jws import JwsError, JwsHeaderNotJsonError, parse_compact


class TokenClaimsError(ValueError):
    """The token is not a JWT whose payload we can read."""


class ClaimResponseHeader(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    message_id: str | None = Field(default=None, alias="messageId")
    receiver_member: str | None = Field(default=None, alias="receiverMember")
    sender_reference: str | None = Field(default=None, alias="senderReference")


class MkkClaim(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    auth: str | None = None
    ip_list: list[str | None] | None = Field(default=None, alias="ipList")
    reason: str | None = None
    response_header: ClaimResponseHeader | None = Field(default=None, alias="responseHeader")


class TokenClaims(BaseModel):
    """The claims of §3.2.6 (iss, sub, exp, jti, claim{auth, ipList, reason, responseHeader})."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    iss: str | None = None
    sub: str | None = None
    exp: int
    jti: str | None = None
    claim: MkkClaim = Field(default_factory=MkkClaim)

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, tz=UTC)

    def renew_at(self, margin: timedelta = timedelta(minutes=5)) -> datetime:
        """When to fetch the next token: ``margin`` before expiry (60 min life, §3)."""
        return self.expires_at - margin

    def is_expired(self, now: datetime | None = None, leeway: timedelta = timedelta(0)) -> bool:
        now = now or datetime.now(UTC)
        return now + leeway >= self.expires_at

    @property
    def auth_ok(self) -> bool:
        return (self.claim.auth or "").upper() == "OK"

    @property
    def no_ip_defined(self) -> bool:
        return reason_says_no_ip(self.claim.reason)


def _fold(text: str) -> str:
    """Lower-case, Turkish dotless/dotted i folded, accents dropped (MKK mixes them)."""
    text = text.replace("İ", "i").replace("I", "i").replace("ı", "i").lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def reason_says_no_ip(reason: str | None) -> bool:
    """True when claim.reason says no IP address is defined (§3.2.6 sample wording)."""
    if not reason:
        return False
    folded = _fold(reason)
    if not re.search(r"\bip\b", folded):  # the word "ip", not "tip" or "ipList"
        return False
    return any(
        marker in folded
        for marker in ("bulunamad", "tanimli degil", "tanimsiz", "no ip", "not defined")
    )


def decode_token_claims(token: str) -> TokenClaims:
    """Read an MKK token's claims. The signature is NOT verified (see module doc)."""
    try:
        parts = parse_compact(token.removeprefix("Bearer ").strip())
    except JwsHeaderNotJsonError as exc:
        raise TokenClaimsError(f"token header: {exc}") from exc
    except JwsError as exc:
        raise TokenClaimsError(f"token is not a compact JWT: {exc}") from exc
    try:
        data: Any = json.loads(parts.payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenClaimsError("token payload is not JSON") from exc
    if not isinstance(data, dict):
        raise TokenClaimsError("token payload is not a JSON object")
    try:
        return TokenClaims.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise TokenClaimsError(f"token claims invalid: {fields}") from None


def warn_on_claims(claims: TokenClaims, log: Any) -> bool:
    """Log a warning (structlog logger) when MKK says the token is not usable as is.

    Returns True when a warning was logged. Only jti and the reason are logged, never the
    token.
    """
    if claims.no_ip_defined:
        log.warning(
            "mkk_token_no_ip_defined",
            jti=claims.jti,
            reason=claims.claim.reason,
            hint="register the caller IP with MKK (TU14, §3 / FAQ 3)",
        )
        return True
    if claims.claim.auth is not None and not claims.auth_ok:
        log.warning("mkk_token_auth_not_ok", jti=claims.jti, auth=claims.claim.auth)
        return True
    return False
