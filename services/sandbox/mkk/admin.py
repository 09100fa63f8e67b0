"""Admin API under /_sandbox/: what MKK saw, and the knobs tests and the demo turn.

GET  /_sandbox/info                      key and certificate paths, members, settings
GET  /_sandbox/requests?member=&endpoint=&sender_reference=&ref_id=
                                         {"requests": [RequestRecord...]}
POST /_sandbox/users/{username}/unlock   {"username", "locked": false}
GET  /_sandbox/clock                     {"now", "offset_s"}
POST /_sandbox/clock                     {"advance_s": 3600} or {"set": "<ISO time>"}
GET  /_sandbox/faults                    the FaultConfig in force
PUT  /_sandbox/faults                    a FaultConfig (missing fields: defaults)
PUT  /_sandbox/settings                  {"service_hours": bool, "report_lock": ...}
GET  /_sandbox/reports                   [{"refId", "member", "status", ...}]
POST /_sandbox/reports/fail-next         {"count": 1}: the next reports end in RP025
POST /_sandbox/reset                     forget requests, tokens, references, lockouts,
                                         reports; clock and faults back to the config

No secret is ever part of an answer. The admin API has no authentication: the
sandbox listens on 127.0.0.1 by default and is a development tool.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.sandbox.mkk.config import FaultConfig
from services.sandbox.mkk.state import SandboxState


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, 400)


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def info(request: Request) -> JSONResponse:
    s = _state(request)
    return JSONResponse(
        {
            "state_dir": str(s.paths.state_dir),
            "mkk_certificate": str(s.paths.mkk.cert_path),
            "members": [
                {
                    "code": m.code,
                    "users": [u.username for u in m.users],
                    "certificate": str(
                        m.certificate or s.paths.members[m.code].cert_path
                        if m.has_certificate
                        else ""
                    ),
                    "private_key": str(s.paths.members[m.code].key_path)
                    if m.code in s.paths.members
                    else None,
                }
                for m in s.config.members
            ],
            "service_hours": s.service_hours,
            "report_lock": s.report_lock,
            "locked_users": sorted(s.locked),
        }
    )


async def requests_(request: Request) -> JSONResponse:
    s = _state(request)
    q = request.query_params
    keys = ("member", "endpoint", "sender_reference", "ref_id")
    wanted = {k: q[k] for k in keys if k in q}
    rows = [r.to_json() for r in s.requests if all(getattr(r, k) == v for k, v in wanted.items())]
    return JSONResponse({"requests": rows})


async def unlock(request: Request) -> JSONResponse:
    s = _state(request)
    username = request.path_params["username"]
    known = any(u.username == username for m in s.config.members for u in m.users)
    if not known:
        return JSONResponse({"error": f"unknown user {username}"}, 404)
    s.locked.discard(username)
    s.failures.pop(username, None)
    return JSONResponse({"username": username, "locked": False})


async def clock(request: Request) -> JSONResponse:
    s = _state(request)
    if request.method == "POST":
        data = await _json(request)
        if data is None:
            return _bad('give {"advance_s": seconds} or {"set": "<ISO time>"}')
        try:
            if "advance_s" in data:
                s.clock.advance(float(data["advance_s"]))
            elif "set" in data:
                s.clock.set(dt.datetime.fromisoformat(str(data["set"])))
            else:
                return _bad('give {"advance_s": seconds} or {"set": "<ISO time>"}')
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
    return JSONResponse({"now": s.clock.now().isoformat(), "offset_s": s.clock.offset_s})


async def faults(request: Request) -> JSONResponse:
    s = _state(request)
    if request.method == "PUT":
        data = await _json(request)
        if data is None:
            return _bad("give a JSON object of fault settings")
        try:
            s.set_faults(FaultConfig.model_validate(data))
        except ValidationError as exc:
            return _bad("; ".join(f"{e['loc']}: {e['msg']}" for e in exc.errors()))
    return JSONResponse(s.faults.config.model_dump(mode="json"))


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_hours: bool | None = None
    report_lock: Literal["member", "global", "off"] | None = None


async def settings(request: Request) -> JSONResponse:
    s = _state(request)
    data = await _json(request)
    try:
        new = _Settings.model_validate(data)
    except ValidationError as exc:
        return _bad(str(exc.errors(include_input=False)))
    if new.report_lock is not None:
        s.report_lock = new.report_lock
    if new.service_hours is not None:
        s.service_hours = new.service_hours
    return JSONResponse({"service_hours": s.service_hours, "report_lock": s.report_lock})


async def reports(request: Request) -> JSONResponse:
    s = _state(request)
    now = s.clock.time()
    return JSONResponse(
        [
            {
                "refId": r.ref_id,
                "member": r.member,
                "status": r.status(now, s.config.durations),
                "fileType": r.file_type,
                "processDate": r.process_date,
                "fileNames": r.file_names,
                "rows": r.row_count(),
            }
            for r in s.reports.reports.values()
        ]
    )


async def fail_next(request: Request) -> JSONResponse:
    s = _state(request)
    data = await _json(request) or {}
    count = data.get("count", 1)
    if not isinstance(count, int) or count < 0:
        return _bad("count is a non-negative integer")
    s.fail_next_reports = count
    return JSONResponse({"fail_next_reports": count})


async def reset(request: Request) -> JSONResponse:
    _state(request).reset()
    return JSONResponse({"reset": True})


routes = [
    Route("/_sandbox/info", info, methods=["GET"]),
    Route("/_sandbox/requests", requests_, methods=["GET"]),
    Route("/_sandbox/users/{username}/unlock", unlock, methods=["POST"]),
    Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
    Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
    Route("/_sandbox/settings", settings, methods=["PUT"]),
    Route("/_sandbox/reports", reports, methods=["GET"]),
    Route("/_sandbox/reports/fail-next", fail_next, methods=["POST"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
]
