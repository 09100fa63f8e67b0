"""Run the sandbox with uvicorn (`kopru sandbox mkk`, `python -m services.sandbox.mkk`)."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from services.sandbox.mkk.app import create_app, sandbox_state
from services.sandbox.mkk.config import SandboxConfig, load_config
from services.sandbox.mkk.keys import ensure_tls_key
from services.sandbox.mkk.state import SandboxState


def startup_lines(config: SandboxConfig, state: SandboxState, url: str) -> list[str]:
    """What an operator needs to point kopru at the sandbox: its users and passwords
    (sandbox-only values, never real ones), the member keys and MKK's certificate."""
    lines = [
        f"MKK sandbox on {url}  (state {config.state_dir})",
        f"  MKK certificate (verify answers with it): {state.paths.mkk.cert_path}",
    ]
    for m in config.members:
        pair = state.paths.members.get(m.code)
        if pair is not None:
            lines.append(f"  member {m.code}: key {pair.key_path}, certificate {pair.cert_path}")
        for u in m.users:
            lines.append(
                f"  user {m.code}/{u.username}: password {u.password.get_secret_value()} "
                "(sandbox only)"
            )
    lines += [
        "  kopru settings for it:",
        f"    KOPRU_MKK__BASE_URL={url}",
        "    KOPRU_MKK__SERVICE_HOURS=false" if not config.service_hours else "",
    ]
    first = next(((m, u) for m in config.members for u in m.users), None)
    pair = state.paths.members.get(first[0].code) if first else None
    if first is not None and pair is not None:
        member, user = first
        lines += [
            f"    KOPRU_MKK_AUTH__MEMBER={member.code} KOPRU_MKK_AUTH__SENDER={user.username}",
            "    and the password above in the secret file mkk_auth__password",
            f"    KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE={pair.key_path}",
            f"    KOPRU_MKK_SIGNING__MKK_CERTIFICATE_FILE={state.paths.mkk.cert_path}",
        ]
    return [line for line in lines if line]


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: bool = False,
    config_file: Path | None = None,
    state_dir: Path | None = None,
    log_level: str = "info",
) -> None:
    config = load_config(config_file, state_dir=state_dir)
    app = create_app(config)
    state = sandbox_state(app)
    scheme = "https" if tls else "http"
    for line in startup_lines(config, state, f"{scheme}://{host}:{port}"):
        print(line, flush=True)
    tls_pair = ensure_tls_key(config.state_dir) if tls else None
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        ssl_keyfile=str(tls_pair.key_path) if tls_pair else None,
        ssl_certfile=str(tls_pair.cert_path) if tls_pair else None,
    )
