"""Each service's HTTP side: /healthz, /readyz, /metrics, plus any routes it adds.

- /healthz: the process and its consumers are alive (200) or a consumer task died (503);
- /readyz: the broker answers and every store answers (200), else 503 with what failed;
- /metrics: Prometheus text format (default registry).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

Check = Callable[[], Awaitable[None]]


def health_app(
    *,
    liveness: Callable[[], list[str]],
    readiness: dict[str, Check],
    routes: Sequence[BaseRoute] = (),
    timeout_s: float = 3.0,
) -> Starlette:
    async def healthz(_: Request) -> Response:
        problems = liveness()
        return JSONResponse(
            {"status": "ok" if not problems else "failing", "problems": problems},
            status_code=200 if not problems else 503,
        )

    async def readyz(_: Request) -> Response:
        failed: dict[str, str] = {}

        async def run(name: str, check: Check) -> None:
            try:
                await asyncio.wait_for(check(), timeout_s)
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__

        await asyncio.gather(*(run(n, c) for n, c in readiness.items()))
        body = {"status": "ready" if not failed else "not ready", "failed": failed}
        return JSONResponse(body, status_code=200 if not failed else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *routes,
        ]
    )
