"""Metrics of the auth-token service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

AUTH_CALLS = Counter("kopru_mkk_auth_calls_total", "Calls to MKK /v1/auth.", ["member", "sender"])
AUTH_BLOCKED = Gauge(
    "kopru_mkk_auth_blocked",
    "1 while MKK refused the password and kopru will not try it again (FAQ 15).",
    ["member", "sender"],
)
PASSWORD_DAYS_LEFT = Gauge(
    "kopru_mkk_password_days_left",
    "Days until the MKK password's 365 days end (FAQ 14).",
    ["member", "sender"],
)
