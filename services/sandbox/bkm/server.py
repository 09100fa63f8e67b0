"""Run the BKM sandbox with uvicorn (`kopru sandbox bkm`)."""

from __future__ import annotations

import uvicorn

from services.sandbox.bkm.app import SERVICE_PATH, BkmSandboxConfig, create_app
from services.sandbox.bkm.keys import ensure_demo_keys


def serve(config: BkmSandboxConfig, *, host: str, port: int, log_level: str = "info") -> None:
    keys = ensure_demo_keys(config.state_dir)
    app = create_app(config)
    print(f"BKM sandbox on http://{host}:{port}{SERVICE_PATH}", flush=True)
    print(f"  BKM public key (merchant verifies with it): {keys.bkm_public}", flush=True)
    print(
        f"  demo merchant key: {keys.merchant_private} (public {keys.merchant_public})", flush=True
    )
    print(f"  confirmation urls: {', '.join(config.confirmation_urls) or '-'}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
