"""`kopru sandbox mkk` says at start what kopru needs: each user's sandbox password, the
member keys, MKK's certificate, and the settings that point kopru at it (issue 13)."""

from __future__ import annotations

from pathlib import Path

from services.sandbox.mkk.app import create_app, sandbox_state
from services.sandbox.mkk.config import DEMO_PASSWORD, DEMO_USER, load_config
from services.sandbox.mkk.server import startup_lines


def test_startup_lines_name_users_passwords_keys_and_certificate(tmp_path: Path) -> None:
    config = load_config(None, state_dir=tmp_path, member_key_size=2048)
    state = sandbox_state(create_app(config))
    text = "\n".join(startup_lines(config, state, "http://127.0.0.1:8443"))
    pair = state.paths.members["TIB"]
    assert f"user TIB/{DEMO_USER}: password {DEMO_PASSWORD}" in text
    assert str(pair.key_path) in text and pair.key_path.is_file()
    assert str(state.paths.mkk.cert_path) in text and state.paths.mkk.cert_path.is_file()
    assert f"KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE={pair.key_path}" in text
    assert "KOPRU_MKK__SERVICE_HOURS=false" in text  # the sandbox keeps no hours by default
