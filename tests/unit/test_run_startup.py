"""`kopru run`: a missing or invalid setting stops the process at start, exit code
non-zero, naming the variable, no traceback, and the process is gone (never half-started).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.run import SETTINGS_EXIT, _serve
from services.common.service import Service
from services.common.settings import BaseServiceSettings, SettingsError
from services.sandbox.bkm.keys import ensure_demo_keys

ROOT = Path(__file__).resolve().parents[2]


def run(env: dict[str, str], service: str = "payment-notifier") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KOPRU_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "run", service],
        env={
            **clean,
            # Nothing answers here: a run that got past its settings would hang or fail
            # on the broker, not on settings.
            "KOPRU_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "KOPRU_HTTP__PORT": "0",
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == SETTINGS_EXIT, result.stderr
    for name in names:
        assert name in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # Told before anything starts (no broker, no store was asked).
    assert '"starting"' not in result.stdout and "service started" not in result.stdout


def test_bkm_alone_without_its_keys_names_them() -> None:
    result = run({"KOPRU_BKM__MERCHANT_ID": "m1"})
    refused(result, "KOPRU_BKM__PRIVATE_KEY_FILE", "KOPRU_BKM__BKM_PUBLIC_KEY_FILE")
    assert "KOPRU_MOKA" not in result.stderr  # Moka is not asked for


def test_moka_alone_without_password_names_the_variable_and_its_file() -> None:
    result = run({"KOPRU_MOKA__DEALER_CODE": "1356", "KOPRU_MOKA__USERNAME": "u"})
    refused(result, "KOPRU_MOKA__PASSWORD", "moka__password")
    assert "KOPRU_BKM" not in result.stderr


def test_no_provider_at_all_is_refused() -> None:
    refused(run({}), "KOPRU_BKM__", "KOPRU_MOKA__")


def test_a_key_that_is_not_a_key_names_the_variable(tmp_path: Path) -> None:
    keys = ensure_demo_keys(tmp_path / "bkm")
    (tmp_path / "not-a-key.pem").write_text("hello")
    result = run(
        {
            "KOPRU_BKM__MERCHANT_ID": "m1",
            "KOPRU_BKM__PRIVATE_KEY_FILE": str(tmp_path / "not-a-key.pem"),
            "KOPRU_BKM__BKM_PUBLIC_KEY_FILE": str(keys.bkm_public),
            "KOPRU_POS__POS_URL": "https://pos",
            "KOPRU_POS__POS_UID": "u",
        }
    )
    refused(result, "KOPRU_BKM__PRIVATE_KEY_FILE")


def test_bkm_needs_the_pos_data_for_merch_info(tmp_path: Path) -> None:
    keys = ensure_demo_keys(tmp_path / "bkm")
    result = run(
        {
            "KOPRU_BKM__MERCHANT_ID": "m1",
            "KOPRU_BKM__PRIVATE_KEY_FILE": str(keys.merchant_private),
            "KOPRU_BKM__BKM_PUBLIC_KEY_FILE": str(keys.bkm_public),
        }
    )
    refused(result, "KOPRU_POS__POS_URL", "KOPRU_POS__POS_UID")


def test_the_old_second_tolerance_is_refused_with_the_one_to_use() -> None:
    result = run({"KOPRU_PAYMENTS__TS_TOLERANCE_S": "300"})
    refused(result, "KOPRU_PAYMENTS__TS_TOLERANCE_S", "KOPRU_BKM__TS_TOLERANCE_S")


def test_other_services_benefit_too() -> None:
    refused(run({"KOPRU_KAFKA__RETRY_TIERS_S": "[5, 1]"}, "status-poller"), "KOPRU_KAFKA__RETRY")


def test_provider_section_can_be_switched_off() -> None:
    # A mounted secret gives moka__password, but Moka is off: only "no provider" is left.
    result = run({"KOPRU_MOKA__PASSWORD": "x", "KOPRU_MOKA__ENABLED": "false"})
    refused(result, "no payment provider")


class _Raising(BaseServiceSettings):
    pass


@pytest.mark.parametrize(
    "error",
    [
        SettingsError.invalid(("mkk", "password"), "too short"),
        ValueError("not a settings problem"),
    ],
)
async def test_a_start_hook_failure_comes_back_as_a_message(error: Exception) -> None:
    """Any service: what its build or start hooks raise ends the run with a message."""

    def build(settings: BaseServiceSettings) -> Service:
        raise error

    failure = await _serve("x", _Raising(), build)
    assert failure is not None
    message, code = failure
    if isinstance(error, SettingsError):
        assert code == SETTINGS_EXIT
        assert "KOPRU_MKK__PASSWORD" in message and "mkkpassword" not in message
        assert "mkk__password" in message  # a secret: its file is named too
    else:
        assert code == 1 and "not a settings problem" in message
