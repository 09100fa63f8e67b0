"""`kopru config show SERVICE`: the effective settings, from the environment and the
secrets directory, with every secret masked; invalid settings name the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app

runner = CliRunner()


def test_show_masks_secrets_from_env_files_and_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "moka__password").write_text("moka-file-secret\n")
    monkeypatch.setenv("KOPRU_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("KOPRU_KAFKA__SASL_PASSWORD", "sasl-env-secret")
    monkeypatch.setenv("KOPRU_STORE__URL", "postgresql://kopru:pg-url-secret@db:5432/kopru")
    monkeypatch.setenv("KOPRU_HTTP__PORT", "9191")
    monkeypatch.setenv("KOPRU_MOKA__DEALER_CODE", "1356")
    monkeypatch.setenv("KOPRU_MOKA__USERNAME", "kopru-demo")

    result = runner.invoke(app, ["config", "show", "payment-notifier"])

    assert result.exit_code == 0, result.output
    for secret in ("moka-file-secret", "sasl-env-secret", "pg-url-secret"):
        assert secret not in result.output
    shown = json.loads(result.output)
    assert shown["http"]["port"] == 9191  # the environment is really applied
    assert shown["store"]["url"] == "postgresql://kopru:***@db:5432/kopru"
    assert shown["kafka"]["sasl_password"] not in (None, "")  # set, and masked
    assert shown["moka"]["password"] not in (None, "")


def test_invalid_setting_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOPRU_HTTP__PORT", "not-a-port")
    result = runner.invoke(app, ["config", "show", "report-requester"])
    assert result.exit_code != 0
    assert "KOPRU_HTTP__PORT" in result.output


def test_unknown_service_is_refused() -> None:
    result = runner.invoke(app, ["config", "show", "no-such-service"])
    assert result.exit_code != 0
