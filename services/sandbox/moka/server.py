"""Run the Moka sandbox with uvicorn (`kopru sandbox moka`)."""

from __future__ import annotations

import uvicorn

from services.sandbox.moka.app import MokaSandboxConfig, create_app


def serve(config: MokaSandboxConfig, *, host: str, port: int, log_level: str = "info") -> None:
    print(f"Moka sandbox on http://{host}:{port}/Dealer/CreateMokaPosRequest", flush=True)
    print(f"  dealer {config.dealer_code}, user {config.username}", flush=True)
    print(f"  admin: http://{host}:{port}/_sandbox/fault, /_sandbox/requests", flush=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, access_log=False)
