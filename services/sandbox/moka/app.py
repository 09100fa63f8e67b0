"""The Moka sandbox's HTTP app (moka-dealer-api.txt).

- POST /Dealer/CreateMokaPosRequest: DealerAuthentication first (missing parts →
  InvalidRequest; wrong account or CheckKey → InvalidAccount; a dealer not allowed to
  apply → DealerNotAllowed), then the MokaPosRequest field rules (schemas/moka.py) with
  Moka's codes; NaceCode not in the sandbox's list → NaceCodeNotFound; success → a new
  MokaPosRequestId.
- POST /_sandbox/fault {"next": "EX" | "Interrupted" | "500"}: the next call fails so.
- GET /_sandbox/requests: what was received (credentials left out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.moka import CREATE_POS_REQUEST_ERRORS, check_pos_request
from services.common.moka.auth import check_key

KNOWN_NACE_CODES = frozenset({"471101", "479101", "620100", "561101", "732001"})
_A = "Dealer.CheckDealerAuthentication."
_P = "Dealer.CreateMokaPosRequest."


@dataclass
class MokaSandboxConfig:
    dealer_code: str = "1356"
    username: str = "kopru-demo"
    password: str = "demo-password"
    not_allowed_dealers: frozenset[str] = frozenset()


@dataclass
class MokaSandboxState:
    config: MokaSandboxConfig
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1787))
    next_fault: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)


def answer(code: str, data: Any = None, exception: str | None = None) -> JSONResponse:
    assert code in (*CREATE_POS_REQUEST_ERRORS, "Success", "EX"), code
    return JSONResponse(
        {"Data": data, "ResultCode": code, "ResultMessage": "", "Exception": exception}
    )


def create_app(config: MokaSandboxConfig | None = None) -> Starlette:
    state = MokaSandboxState(config or MokaSandboxConfig())

    def authenticate(auth: Any) -> str | None:
        if not isinstance(auth, dict) or not all(
            isinstance(auth.get(k), str) and auth.get(k)
            for k in ("DealerCode", "Username", "Password", "CheckKey")
        ):
            return _A + "InvalidRequest"
        c = state.config
        expected = check_key(c.dealer_code, c.username, c.password)
        if (auth["DealerCode"], auth["Username"], auth["Password"]) != (
            c.dealer_code,
            c.username,
            c.password,
        ) or auth["CheckKey"] != expected:
            return _A + "InvalidAccount"
        if auth["DealerCode"] in c.not_allowed_dealers:
            return _A + "DealerNotAllowed"
        return None

    async def create(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return answer(_A + "InvalidRequest")
        if not isinstance(body, dict):
            return answer(_A + "InvalidRequest")
        fault, state.next_fault = state.next_fault, None
        if fault == "500":
            return JSONResponse({"error": "sandbox fault"}, status_code=500)
        if fault == "EX":
            return answer("EX", exception="Object reference not set to an instance of an object.")
        if fault == "Interrupted":
            return answer(_P + "OperationWasInterrupted")
        auth_error = authenticate(body.get("DealerAuthentication"))
        if auth_error:
            return answer(auth_error)
        data = body.get("MokaPosRequest")
        if not isinstance(data, dict):
            return answer(_A + "InvalidRequest")
        state.received.append({k: v for k, v in data.items() if k != "TRIdentityNumber"})
        request_obj, errors = check_pos_request(data)
        if errors:
            first = errors[0].code
            # Kopru's own length / e-mail checks have no Moka code: Moka would accept them
            # or fail on the required field; the sandbox answers the nearest listed code.
            if first.startswith("Kopru."):
                field_name = errors[0].field
                first = _P + f"{field_name}Required"
                if first not in CREATE_POS_REQUEST_ERRORS:
                    first = _A + "InvalidRequest"
            return answer(first)
        assert request_obj is not None
        if request_obj.NaceCode not in KNOWN_NACE_CODES:
            return answer(_P + "NaceCodeNotFound")
        return answer("Success", {"MokaPosRequestId": next(state.ids)})

    async def set_fault(request: Request) -> Response:
        body = await request.json()
        nxt = body.get("next") if isinstance(body, dict) else None
        if nxt not in ("EX", "Interrupted", "500", None):
            return JSONResponse({"error": "next must be EX, Interrupted or 500"}, status_code=422)
        state.next_fault = nxt
        return JSONResponse({"next": nxt})

    async def received(_: Request) -> Response:
        return JSONResponse(state.received)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/Dealer/CreateMokaPosRequest", create, methods=["POST"]),
            Route("/_sandbox/fault", set_fault, methods=["POST"]),
            Route("/_sandbox/requests", received),
            Route("/healthz", healthz),
        ]
    )
    app.state.sandbox = state
    return app
