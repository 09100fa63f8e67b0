"""Every Kafka event of kopru, and the topic catalogue.

Rules for every event:
- `event_type` names the model (a discriminator: one topic may carry a few types);
- `schema_version` is bumped on any incompatible change;
- `event_id` is unique per emitted event (consumers de-duplicate on it);
- timestamps are timezone-aware and normalised to UTC (ISO 8601 on the wire);
- no secret ever: no password, zip password, token in clear or card data. A token
  travels only encrypted (AES-GCM) in `TokenIssued`.

Field rules come from the MKK guide (§3.2 common header, §5.1.2 balance-report fields,
§5.1.6 report rows), BKM's integration document and Moka's dealer API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)


def _utc(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("timestamp must carry a time zone")
    return v.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- field types from the specs ------------------------------------------------------
RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,100}$")]
Member = Annotated[str, Field(pattern=r"^[A-Z0-9]{3,8}$")]  # §3.2 senderMember
Sender = Annotated[str, Field(pattern=r"^[A-Z0-9]{3,10}$")]  # §3.2 sender
SenderReference = Annotated[str, Field(pattern=r"^\S{1,255}$")]  # §3.2 senderReference
RefId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]  # §5.1.3 refId
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,200}$")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
FileType = Literal["json", "csv"]  # §5.1.2 fileType
ResultCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    event_type: str
    schema_version: int = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    correlation_id: str | None = Field(default=None, max_length=128)

    def kafka_key(self) -> bytes:  # pragma: no cover - every concrete event overrides
        raise NotImplementedError
