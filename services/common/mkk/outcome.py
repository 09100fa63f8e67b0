"""One outcome type for every MKK answer: what the code means and what to do next.

Every code goes through `schemas/codes.py` (§7 and the business code tables of §3.2.7,
§5.1.7, §6.1.7, §6.2.7); MKK's Turkish description is kept as it came. An answer
without a messageId never reached MKS: its senderReference may be sent again
(§3.2.2, §5.1.2); with one, the reference is burnt (FAQ 18).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.codes import Action, lookup


@dataclass(frozen=True)
class MkkOutcome:
    action: Action
    code: str
    description: str
    http_status: int
    known: bool = True
    message_id: str | None = None
    sender_reference: str | None = None
    ref_id: str | None = None
    file_names: list[str] = field(default_factory=list)

    @property
    def reached_mks(self) -> bool:
        """A messageId means MKS processed the message: its reference is used up."""
        return self.message_id is not None

    @classmethod
    def from_code(
        cls,
        code: str,
        http_status: int,
        *,
        description: str | None = None,
        message_id: str | None = None,
        sender_reference: str | None = None,
        ref_id: str | None = None,
        file_names: list[str] | None = None,
    ) -> MkkOutcome:
        info = lookup(code)
        return cls(
            action=info.action,
            code=info.code,
            description=description or info.description,
            http_status=http_status,
            known=info.known,
            message_id=message_id,
            sender_reference=sender_reference,
            ref_id=ref_id,
            file_names=list(file_names or []),
        )


class MkkTransportError(Exception):
    """No usable answer (timeout, connection cut, unverifiable body): the outcome of the
    call is UNKNOWN. The message may or may not have reached MKS."""


class MkkNotSent(MkkTransportError):
    """The connection to MKK was never made (refused, unreachable, DNS, connect timeout):
    not one byte of the request left, so it certainly did not reach MKS and no password
    was checked. Safe to send again as it was."""


class MkkUnverifiedAnswer(MkkTransportError):
    """An answer whose signature did not verify: never acted on (§3)."""
