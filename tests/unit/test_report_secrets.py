"""zipPassword derivation (§5.1.2), token encryption, service hours (§8), hosts (§3.2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.mkk import ZIP_PASSWORD_RE
from services.common.mkk.hours import seconds_until_open
from services.common.mkk.settings import MkkApiSettings
from services.common.mkk.token_crypto import TokenCipher, TokenDecryptError
from services.common.mkk.zip_password import zip_password


def test_zip_password_rules_and_determinism() -> None:
    a = zip_password("s", "TIB", "r-1")
    assert a == zip_password("s", "TIB", "r-1")
    assert a != zip_password("s", "TIB", "r-2") and a != zip_password("t", "TIB", "r-1")
    assert 8 <= len(a) <= 50 and ZIP_PASSWORD_RE.match(a)


def test_token_cipher_roundtrip_and_binding() -> None:
    c = TokenCipher("k")
    nonce, ct = c.encrypt("eyJ.secret.token", "TIB", "TIB991", "j1")
    assert "secret" not in ct
    assert c.decrypt(c.key_id, nonce, ct, "TIB", "TIB991", "j1") == "eyJ.secret.token"
    with pytest.raises(TokenDecryptError):
        c.decrypt(c.key_id, nonce, ct, "TIB", "OTHER1", "j1")  # bound to its key
    with pytest.raises(TokenDecryptError):
        TokenCipher("other").decrypt(c.key_id, nonce, ct, "TIB", "TIB991", "j1")


@pytest.mark.parametrize(
    ("utc", "closed"),
    [("2025-05-05T09:00:00", False), ("2025-05-05T20:30:00", True), ("2025-05-05T21:59:00", True)],
)
def test_service_hours_istanbul(utc: str, closed: bool) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)  # Istanbul = UTC+3
    wait = seconds_until_open(now)
    assert (wait > 0) is closed
    if closed:
        assert wait <= 5 * 3600


def test_hosts_per_environment_and_line() -> None:
    assert MkkApiSettings().url() == "https://apitest.mkk.com.tr"
    assert MkkApiSettings(line="internet").url() == "https://apitestint.mkk.com.tr"
    assert MkkApiSettings(environment="prod").url() == "https://api.mkk.com.tr"
    assert MkkApiSettings(environment="prod", line="internet").url() == "https://apiint.mkk.com.tr"
    assert MkkApiSettings(base_url="http://127.0.0.1:9/").url() == "http://127.0.0.1:9"
