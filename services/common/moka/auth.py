"""Moka DealerAuthentication and its CheckKey (moka-dealer-api.txt).

CheckKey: DealerCode + "MK" + Username + "PD" + Password concatenated, hashed with
SHA-256; lower-case hex as the specs README states.
"""

from __future__ import annotations

import hashlib

from schemas.moka import DealerAuthentication
from services.common.moka.settings import MokaSettings


def check_key(dealer_code: str, username: str, password: str) -> str:
    text = f"{dealer_code}MK{username}PD{password}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dealer_authentication(settings: MokaSettings) -> DealerAuthentication:
    """The DealerAuthentication block for every Moka call, from settings."""
    password = settings.password.get_secret_value()
    return DealerAuthentication(
        DealerCode=settings.dealer_code,
        Username=settings.username,
        Password=settings.password,
        CheckKey=check_key(settings.dealer_code, settings.username, password),
    )
