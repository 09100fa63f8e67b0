"""The sandbox ASGI app: `create_app(config)`; its state is `sandbox_state(app)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.mkk import AUTH_PATH, BALANCE_REPORT_PATH, REPORT_CONTENT_PATH, REPORT_STATUS_PATH
from services.sandbox.mkk import admin
from services.sandbox.mkk.calls import run_call
from services.sandbox.mkk.config import SandboxConfig
from services.sandbox.mkk.state import SandboxState


def _endpoint(name: str):  # type: ignore[no-untyped-def]
    async def handler(request: Request) -> Response:
        return await run_call(request, name)

    handler.__name__ = f"mkk_{name.replace('-', '_')}"
    return handler


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A ready app: keys exist in config.state_dir (created on first run)."""
    state = SandboxState(config or SandboxConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.close()

    routes = [
        Route(AUTH_PATH, _endpoint("auth"), methods=["POST"]),  # §3.2
        Route(BALANCE_REPORT_PATH, _endpoint("balance-report"), methods=["POST"]),  # §5.1
        Route(REPORT_STATUS_PATH, _endpoint("status"), methods=["POST"]),  # §6.1
        Route(REPORT_CONTENT_PATH, _endpoint("content"), methods=["POST"]),  # §6.2
        *admin.routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    return app


def sandbox_state(app: Starlette) -> SandboxState:
    state: SandboxState = app.state.sandbox
    return state
