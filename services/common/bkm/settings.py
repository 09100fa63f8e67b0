"""The ``bkm`` settings section (``KOPRU_BKM__*``): present means BKM Express is enabled.

Merchant key pair and BKM's public key (BKM "Güvenlik": RSA 1024 or 2048 bit). The keys
are loaded and checked when the settings are read, so a wrong path, a wrong passphrase
or a key of the wrong kind stops the service at start naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from services.common.bkm.signature import BkmSigner, BkmVerifier, check_key_size
from services.common.signing.certs import load_private_key, load_public_key, read_passphrase


class BkmKeySettings(BaseModel):
    """Merchant id and keys, and how BKM's ``ts`` is read."""

    model_config = ConfigDict(extra="forbid")

    # KOPRU_BKM__ENABLED=false turns BKM off even when other KOPRU_BKM__* values are set.
    enabled: bool = True
    merchant_id: str = Field(min_length=1, max_length=64)
    # Declared before the key file: its validator reads them (pydantic validates in order).
    private_key_passphrase: SecretStr | None = None
    private_key_passphrase_file: FilePath | None = None
    # The merchant's private key (PEM, DER or PKCS#12): signs what we send to BKM.
    private_key_file: FilePath
    # BKM's public key (PEM/DER public key or certificate) verifies BKM's messages.
    bkm_public_key_file: FilePath
    # BKM's ts carries no zone: read and written in this zone (specs README).
    ts_zone: str = "Europe/Istanbul"
    # The one tolerance on a received ts, confirmations and requestMerchInfo alike
    # (specs README: the travijuu client refuses more than 30 s, "Request Not Synchronized").
    ts_tolerance_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("private_key_file")
    @classmethod
    def _private_key_loads(cls, path: Path, info: ValidationInfo) -> Path:
        passphrase = read_passphrase(
            info.data.get("private_key_passphrase"), info.data.get("private_key_passphrase_file")
        )
        try:
            check_key_size(load_private_key(path, passphrase), role="merchant")
        except Exception as exc:
            raise ValueError(f"cannot use {path} as the merchant's private key: {exc}") from None
        return path

    @field_validator("bkm_public_key_file")
    @classmethod
    def _public_key_loads(cls, path: Path) -> Path:
        try:
            check_key_size(load_public_key(path), role="BKM")
        except Exception as exc:
            raise ValueError(f"cannot use {path} as BKM's public key: {exc}") from None
        return path

    @field_validator("ts_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def signer_from_settings(settings: BkmKeySettings) -> BkmSigner:
    """The merchant's signer: key and passphrase from the settings' secrets."""
    passphrase = read_passphrase(
        settings.private_key_passphrase, settings.private_key_passphrase_file
    )
    return BkmSigner(load_private_key(settings.private_key_file, passphrase))


def verifier_from_settings(settings: BkmKeySettings) -> BkmVerifier:
    """BKM's verifier: BKM's public key (PEM/DER key or certificate)."""
    return BkmVerifier(load_public_key(settings.bkm_public_key_file))
