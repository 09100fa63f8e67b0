"""The result of one call before it is rendered: status, code, messageId, extras."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    status: int
    code: str | None
    message_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # refId, fileNames
    file: Path | None = None  # the zip to send (§6.2 success)
    ref_id: str | None = None
    file_name: str | None = None
    fault: str | None = None

    def with_fault(self, fault: str) -> Result:
        return dataclasses.replace(self, fault=fault)
