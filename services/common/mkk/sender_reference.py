"""senderReference values (§3.2.2): `\\S{1,255}`, unique per member across every call.

A fresh random value per call is unique without coordination; the report-requester
additionally keeps its balance-report reference durable (reserved before sending)
so that it is re-sent only when the first answer had no messageId (§5.1.2, FAQ 18).
"""

from __future__ import annotations

import uuid


def new_sender_reference(kind: str) -> str:
    return f"KPR-{kind}-{uuid.uuid4().hex}"
