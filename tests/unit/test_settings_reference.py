"""Settings that don't mislead: every variable and secret-file name written in the
README, the docs and the code's docstrings is one the settings models really read
(docs/settings.md is generated from them); several MKK users each with their own secret
file; a missing password, key or certificate stops a service at start naming the
variable, without a traceback; service hours (§8) said at start."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.auth_token.app import Settings as AuthSettings
from services.common.mkk.hours import log_service_hours
from services.common.mkk.settings import MkkApiSettings
from services.common.settings import SettingsError, load_settings
from services.common.settings_reference import render, variables
from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
ENV_RE = re.compile(r"\bKOPRU_[A-Z0-9_]+?__[A-Z0-9_<>]+")
FILE_RE = re.compile(r"`{1,2}([a-z][a-z0-9_]*__[A-Za-z0-9_<>]+)`{1,2}")


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(name).replace(re.escape("<USER>"), "(?:[A-Za-z0-9]+|<USER>)") + "$")


def known() -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    envs: list[re.Pattern[str]] = []
    files: list[re.Pattern[str]] = []
    for e in SERVICES.values():
        for v in variables(e.settings_cls()):
            envs.append(_pattern(v.env))
            files.append(re.compile(_pattern(v.secret_file).pattern, re.IGNORECASE))
    return envs, files


# Named only to say they are gone (a refusal message pointing at the new variable).
RETIRED = {"KOPRU_PAYMENTS__TS_TOLERANCE_S"}


def _env_known(name: str, envs: list[re.Pattern[str]], names: list[str]) -> bool:
    if name in RETIRED or any(p.match(name) for p in envs):
        return True
    # `KOPRU_POS__MPI_*` in a table: a family of variables, known if one matches.
    return name.endswith("_") and any(n.startswith(name) for n in names)


def unknown_names(text: str) -> list[str]:
    envs, files = known()
    names = [v.env for e in SERVICES.values() for v in variables(e.settings_cls())]
    bad = [n for n in ENV_RE.findall(text) if not _env_known(n, envs, names)]
    bad += [n for n in FILE_RE.findall(text) if not any(p.match(n) for p in files)]
    return bad


def documented_texts() -> dict[str, str]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    paths += sorted((ROOT / "services").rglob("*.py")) + sorted((ROOT / "schemas").rglob("*.py"))
    return {str(p.relative_to(ROOT)): p.read_text() for p in paths if p.name != "settings.md"}


def test_every_documented_variable_and_secret_file_is_read_by_some_service() -> None:
    bad = {
        path: names for path, text in documented_texts().items() if (names := unknown_names(text))
    }
    assert bad == {}


def test_the_check_catches_the_old_misleading_name() -> None:
    # The docstring that sent operators to a file kopru never reads (issue 13).
    assert unknown_names("secrets directory (`mkk__password`, `pipeline__token_key` ...)") == [
        "mkk__password"
    ]
    assert unknown_names("KOPRU_MKK__PASSWORD=x") == ["KOPRU_MKK__PASSWORD"]


def test_the_reference_names_each_users_secret_file() -> None:
    text = render()
    assert "`mkk_auth__password`" in text
    assert "`mkk_users__<USER>__password`" in text
    assert "`KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE`" in text


def test_users_and_their_secret_files_as_the_reference_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in [k for k in os.environ if k.startswith("KOPRU_")]:
        monkeypatch.delenv(k)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mkk_users__TIB992__password").write_text("Pw992!x\n")
    (secrets / "mkk_users__TIB993__password").write_text("Pw993!x\n")
    monkeypatch.setenv("KOPRU_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("KOPRU_MKK_AUTH__MEMBER", "TIB")
    monkeypatch.setenv("KOPRU_MKK_USERS__TIB993__MEMBER", "ABC")
    settings = load_settings(AuthSettings)
    users = {u.key: u.password for u in settings.users()}
    # mkk_auth has no password: with a list given it is not a user of its own.
    assert set(users) == {("TIB", "TIB992"), ("ABC", "TIB993")}
    pw = users[("TIB", "TIB992")]
    assert isinstance(pw, SecretStr) and pw.get_secret_value().strip() == "Pw992!x"
    # The single-user shorthand alone still works.
    (secrets / "mkk_users__TIB992__password").unlink()
    (secrets / "mkk_users__TIB993__password").unlink()
    monkeypatch.delenv("KOPRU_MKK_USERS__TIB993__MEMBER")
    (secrets / "mkk_auth__password").write_text("Demo991!")
    assert [u.key for u in load_settings(AuthSettings).users()] == [("TIB", "TIB991")]


def test_missing_password_or_duplicate_user_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in [k for k in os.environ if k.startswith("KOPRU_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("KOPRU_MKK_USERS__TIB992__MEMBER", "TIB")
    with pytest.raises(SettingsError) as err:
        load_settings(AuthSettings)
    assert "KOPRU_MKK_USERS__TIB992__PASSWORD" in str(err.value.code)
    assert "mkk_users__TIB992__password" in str(err.value.code)
    monkeypatch.setenv("KOPRU_MKK_USERS__TIB992__PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="KOPRU_MKK_USERS__TIB992__PASSWORD_FILE"):
        load_settings(AuthSettings)
    monkeypatch.delenv("KOPRU_MKK_USERS__TIB992__PASSWORD_FILE")
    monkeypatch.setenv("KOPRU_MKK_USERS__TIB992__PASSWORD", "x1!aaaa")
    monkeypatch.setenv("KOPRU_MKK_USERS__TIB991__PASSWORD", "x1!aaaa")
    monkeypatch.setenv("KOPRU_MKK_AUTH__PASSWORD", "x1!aaaa")  # TIB/TIB991 again
    with pytest.raises(SettingsError, match="TIB/TIB991 is configured twice"):
        load_settings(AuthSettings)
    monkeypatch.setenv("KOPRU_MKK_USERS__T_1__PASSWORD", "x1!aaaa")  # not a user code
    with pytest.raises(SettingsError, match="KOPRU_MKK_USERS__T_1: 't_1' is no MKK user code"):
        load_settings(AuthSettings)


@pytest.mark.parametrize(
    ("service", "names"),
    [
        ("auth-token", ["KOPRU_MKK_AUTH__PASSWORD"]),
        (
            "report-requester",
            ["KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE", "KOPRU_MKK_SIGNING__MKK_CERTIFICATE_FILE"],
        ),
    ],
)
def test_kopru_run_stops_at_start_naming_the_variable(
    service: str, names: list[str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPRU_")}
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", service],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    for name in names:
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_service_hours_are_said_at_start() -> None:
    istanbul_noon = dt.datetime(2025, 5, 5, 9, 0, tzinfo=dt.UTC)  # 12:00 Istanbul
    istanbul_night = dt.datetime(2025, 5, 5, 21, 30, tzinfo=dt.UTC)  # 00:30 Istanbul
    assert log_service_hours(MkkApiSettings(), "x", istanbul_noon) == "open"
    assert log_service_hours(MkkApiSettings(), "x", istanbul_night) == "closed"
    assert log_service_hours(MkkApiSettings(service_hours=False), "x", istanbul_night) == "off"
