"""Token events between the report services and auth-token (§4: 60-minute tokens)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from schemas.events.base import (
    Event,
    Member,
    ResultCode,
    Sender,
    UtcDatetime,
)


# --- auth token -----------------------------------------------------------------------
class _TokenKeyed(Event):
    member: Member
    sender: Sender

    def kafka_key(self) -> bytes:
        return f"{self.member}:{self.sender}".encode()


class TokenRequested(_TokenKeyed):
    """A service needs a token for (member, sender): none, expired or rejected by MKK."""

    event_type: Literal["TokenRequested"] = "TokenRequested"
    reason: Literal["missing", "expired", "rejected"]
    requested_by: str = Field(max_length=64)
    rejected_jti: str | None = Field(default=None, max_length=128)


class TokenIssued(_TokenKeyed):
    """A live token, encrypted with AES-GCM under a key only kopru's services hold."""

    event_type: Literal["TokenIssued"] = "TokenIssued"
    jti: str = Field(max_length=128)
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    key_id: str = Field(max_length=64)
    nonce_b64: str = Field(max_length=64)
    ciphertext_b64: str = Field(max_length=16384)


class TokenUnavailable(_TokenKeyed):
    """No token can be had; `code` is MKK's. Wrong password: no retry until reset."""

    event_type: Literal["TokenUnavailable"] = "TokenUnavailable"
    code: ResultCode
    description: str = Field(max_length=2000)
    retry_blocked: bool
