"""Settings from environment and secret files; invalid ones name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.observability.redaction import MASK
from services.common.settings import (
    BaseServiceSettings,
    KafkaSettings,
    SettingsError,
    load_settings,
    masked,
)


def test_environment_with_nested_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOPRU_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9093")
    monkeypatch.setenv("KOPRU_STORE__URL", "postgresql://kopru@db/kopru")
    monkeypatch.setenv("KOPRU_KAFKA__RETRY_TIERS_S", "[2, 10]")
    s = load_settings(BaseServiceSettings)
    assert s.kafka.bootstrap_servers == "kafka-1:9093"
    assert s.store.url == "postgresql://kopru@db/kopru"
    assert s.kafka.retry_tiers_s == [2.0, 10.0]


def test_secret_from_file_is_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "kafka__sasl_password").write_text("hunter2-secret")
    monkeypatch.setenv("KOPRU_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("KOPRU_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    s = load_settings(BaseServiceSettings)
    assert s.kafka.sasl_password is not None
    assert s.kafka.sasl_password.get_secret_value() == "hunter2-secret"
    shown = masked(s)
    assert "hunter2-secret" not in str(shown)
    assert shown["kafka"]["sasl_password"] == MASK


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("KOPRU_KAFKA__SESSION_TIMEOUT_MS", "soon"),
        ("KOPRU_STORE__URL", "mysql://x"),
        ("KOPRU_KAFKA__RETRY_TIERS_S", "[5, 1]"),
        ("KOPRU_HTTP__PORT", "70000"),
        ("KOPRU_LOG__LEVEL", "LOUD"),
    ],
)
def test_invalid_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings(BaseServiceSettings)
    assert var in str(err.value)


def test_missing_secrets_dir_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOPRU_SECRETS_DIR", "/nonexistent/kopru")
    with pytest.raises(SettingsError, match="KOPRU_SECRETS_DIR"):
        load_settings(BaseServiceSettings)


def test_fetch_wait_zero_refused() -> None:
    with pytest.raises(ValueError):
        KafkaSettings(fetch_max_wait_ms=0)
