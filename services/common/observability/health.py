"""Each service's HTTP side: /healthz, /readyz, /metrics, plus any routes it adds.

- /healthz: the process and its consumers are alive (200) or a consumer task died (503);
- /readyz: the broker answers and every store answers (200), else 503 with what failed;
- /metrics: Prometheus text format (default registry); each scrape also runs the
  readiness checks, so `kopru_ready` and `kopru_readiness_check{check}` say what /readyz
  would answer;
- every request is counted by route and status (`kopru_http_requests_total`) and timed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.observability.metrics import (
    HTTP_REQUESTS,
    HTTP_SECONDS,
    READY,
    READY_CHECK,
)

Check = Callable[[], Awaitable[None]]


def health_app(
    *,
    liveness: Callable[[], list[str]],
    readiness: dict[str, Check],
    routes: Sequence[BaseRoute] = (),
    timeout_s: float = 3.0,
) -> ASGIApp:
    async def healthz(_: Request) -> Response:
        problems = liveness()
        return JSONResponse(
            {"status": "ok" if not problems else "failing", "problems": problems},
            status_code=200 if not problems else 503,
        )

    async def check_all() -> dict[str, str]:
        failed: dict[str, str] = {}

        async def run(name: str, check: Check) -> None:
            try:
                async with asyncio.timeout(timeout_s):  # not wait_for (3.11, progress.py)
                    await check()
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__

        await asyncio.gather(*(run(n, c) for n, c in readiness.items()))
        for name in readiness:
            READY_CHECK.labels(name).set(0 if name in failed else 1)
        READY.set(0 if failed else 1)
        return failed

    async def readyz(_: Request) -> Response:
        failed = await check_all()
        body = {"status": "ready" if not failed else "not ready", "failed": failed}
        return JSONResponse(body, status_code=200 if not failed else 503)

    async def metrics(_: Request) -> Response:
        await check_all()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    all_routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *routes,
    ]
    known = {getattr(r, "path", "") for r in all_routes} - {""}
    app = Starlette(routes=all_routes, middleware=[Middleware(_Counted, known=known)])
    direct = {
        (method, r.path): r.app
        for r in all_routes
        if isinstance(r, Route) and r.app is r.endpoint and "{" not in r.path
        for method in r.methods or ()
    }
    return _Direct(app, direct) if direct else app


class _Direct:
    """Plain ASGI routes (a Route whose endpoint is an ASGI app, at a fixed path) called
    straight, counted and timed like the rest, without the framework's per-request layers:
    the hot path of a busy endpoint. Any other request (another method: 405) goes through
    the Starlette app. A handler that raises counts as 500 and the server answers 500."""

    def __init__(self, app: ASGIApp, direct: dict[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http":
            handler = self.direct.get((scope["method"], scope["path"]))
        if handler is None:
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await handler(scope, receive, sending)
        finally:
            _count(scope["path"], status, time.perf_counter() - started)


class _Counted:
    """Counts and times every HTTP request by route (its path if it is a known route,
    else "other") and status code; a handler that raises counts as 500."""

    def __init__(self, app: ASGIApp, known: set[str]) -> None:
        self.app = app
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in self.known else "other"
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _count(route, status, time.perf_counter() - started)


def _count(route: str, status: int, seconds: float) -> None:
    counted, timed = _children(route, status)
    counted.inc()
    timed.observe(seconds)


@functools.cache
def _children(route: str, status: int) -> tuple[Any, Any]:
    """A route's and status's metric children, looked up once: ``labels()`` takes a lock
    and builds its key on every call (10 µs a request in the bench payments profile).
    Routes are the app's own paths or "other": the cache stays small."""
    return HTTP_REQUESTS.labels(route, str(status)), HTTP_SECONDS.labels(route)
