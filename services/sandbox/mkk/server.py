"""Run the sandbox with uvicorn (`kopru sandbox mkk`, `python -m services.sandbox.mkk`)."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from services.sandbox.mkk.app import create_app, sandbox_state
from services.sandbox.mkk.config import load_config
from services.sandbox.mkk.keys import ensure_tls_key


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
    print(f"MKK sandbox on {scheme}://{host}:{port}  (state {config.state_dir})", flush=True)
    print(f"  MKK certificate (verify answers with it): {state.paths.mkk.cert_path}", flush=True)
    for code, pair in state.paths.members.items():
        print(f"  member {code}: key {pair.key_path}, certificate {pair.cert_path}", flush=True)
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
