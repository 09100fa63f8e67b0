"""The ``moka`` settings section (``KOPRU_MOKA__*``): present means Moka is enabled.

Moka dealer credentials (moka-dealer-api.txt, DealerAuthentication: DealerCode, Username,
Password, all required). The password is a secret: ``KOPRU_MOKA__PASSWORD`` or the file
``moka__password`` in ``KOPRU_SECRETS_DIR``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class MokaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # KOPRU_MOKA__ENABLED=false turns Moka off even when other KOPRU_MOKA__* values are set.
    enabled: bool = True
    base_url: str = "https://service.testmoka.com"
    dealer_code: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=200)
    password: SecretStr
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("password")
    @classmethod
    def _password_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the dealer's API password is empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local sandbox)")
        return value.rstrip("/")
