"""§3.2 token service: POST /v1/auth (plain JSON), and token checks on the report calls.

The token is an RS256 JWT signed with the sandbox's MKK key, shaped as the §3.2.6
sample: iss, sub, exp (= now + 3600), jti and claim {auth, ipList, reason,
responseHeader}. Three consecutive wrong passwords lock the user (FAQ 15) until the
admin API unlocks it. Passwords and tokens are never logged or recorded.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import uuid
from dataclasses import dataclass

from joserfc import jws, jwt
from joserfc.errors import JoseError
from pydantic import ValidationError

from schemas.codes import description
from schemas.mkk import AuthAnswer, AuthFailure, AuthRequest
from services.sandbox.mkk.hours import ISTANBUL
from services.sandbox.mkk.state import SandboxState, TokenInfo

WRONG_PASSWORD = "0x00d30003"  # §3.2.6 failure sample


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, object]
    code: str
    message_id: str | None = None


def _failure(state: SandboxState, status: int, code: str, message: str | None = None) -> Outcome:
    body = AuthFailure(
        error_message=message or description(code),
        transaction_id=state.next_message_id(),
        error_code=code,
        error_subcode=code,
    )
    return Outcome(status, body.model_dump(), code)


def _schema_code(exc: ValidationError) -> str:
    # A missing field is the backend's SP001; any other rule is the gateway's OI002 (§7).
    return "SP001" if any(e["type"] == "missing" for e in exc.errors()) else "OI002"


def authenticate(state: SandboxState, raw: bytes) -> tuple[Outcome, AuthRequest | None]:
    try:
        req = AuthRequest.model_validate(json.loads(raw))
    except ValidationError as exc:
        return _failure(state, 500, _schema_code(exc)), None
    except ValueError:
        return _failure(state, 500, "OI002"), None
    head = req.request_header
    member = state.config.member(head.sender_member)
    if member is None:
        return _failure(state, 422, "RP043"), req
    user = next((u for u in member.users if u.username == req.username), None)
    if user is None or head.sender != req.username:
        return _failure(state, 422, "RP039"), req
    if user.username in state.locked:
        return _failure(state, 422, "RP040"), req
    if not user.active:
        return _failure(state, 422, "RP041"), req
    if "ONLINE_AUTHENTICATE_USER" not in user.functions:  # §3.2.8
        return _failure(state, 422, "RP048"), req
    if state.reference_used(member.code, head.sender_reference):
        return _failure(state, 422, "RP045"), req
    given = req.password.get_secret_value().encode()
    if not hmac.compare_digest(given, user.password.get_secret_value().encode()):
        count = state.failures.get(user.username, 0) + 1
        state.failures[user.username] = count
        if count >= state.config.lockout_after:
            state.locked.add(user.username)
        return _failure(state, 401, WRONG_PASSWORD), req
    state.failures.pop(user.username, None)
    message_id = state.next_message_id()
    state.burn_reference(member.code, head.sender_reference)
    now = state.clock.time()
    lifetime = state.config.durations.token_lifetime_s
    jti = str(uuid.uuid4())
    claims = {
        "iss": "idg",
        "sub": "adminToken",
        "exp": int(now) + lifetime,
        "jti": jti,
        "claim": {
            "auth": "OK",
            "ipList": [None],
            "reason": f"{user.username} için tanımlı ip adresi bulunamadi!. ",
            "responseHeader": {
                "messageId": message_id,
                "receiverMember": "MKK",
                "senderReference": head.sender_reference,
            },
        },
    }
    # Header exactly {"alg":"RS256"} as in the §3.2.6 sample token.
    token = jws.serialize_compact(
        {"alg": "RS256"}, json.dumps(claims).encode(), state.mkk_key, algorithms=["RS256"]
    )
    state.tokens[jti] = TokenInfo(member.code, user.username, float(int(now) + lifetime))
    created = dt.datetime.fromtimestamp(now, ISTANBUL).replace(microsecond=0).isoformat()
    answer = AuthAnswer.model_validate(
        {"tokenType": "Bearer", "token": token, "Created": created, "LifeTime": str(lifetime)}
    )
    return Outcome(200, answer.to_wire(reveal_secrets=True), "0000", message_id), req


def check_token(state: SandboxState, authorization: str | None) -> TokenInfo | None:
    """The token's record if the header holds a live token this sandbox issued, else None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    value = authorization[len("Bearer ") :].strip()
    try:
        token = jwt.decode(value, state.mkk_public, algorithms=["RS256"])
    except (JoseError, ValueError):
        return None
    jti = token.claims.get("jti")
    info = state.tokens.get(jti) if isinstance(jti, str) else None
    if info is None or state.clock.time() >= info.exp:
        return None
    return info
