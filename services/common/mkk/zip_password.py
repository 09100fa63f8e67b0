"""Each request's zipPassword, derived (HMAC-SHA256) from a secret: the requester and
the content-fetcher compute the same value; it never travels on Kafka or in a log.

§5.1.2: 8-50 characters with at least one upper-case letter and one digit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from schemas.mkk import ZIP_PASSWORD_RE


def zip_password(secret: str, member: str, request_id: str) -> str:
    mac = hmac.new(secret.encode(), f"zip:{member}:{request_id}".encode(), hashlib.sha256)
    body = base64.b32encode(mac.digest()).decode().rstrip("=")[:30]  # A-Z and 2-7
    value = "K7" + body  # 32 chars; the prefix guarantees an upper-case letter and a digit
    assert ZIP_PASSWORD_RE.match(value) and 8 <= len(value) <= 50
    return value
