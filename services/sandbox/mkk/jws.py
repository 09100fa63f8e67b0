"""The sandbox's own JWS handling, with joserfc directly (it plays MKK, not the client).

Requests arrive as a JWS compact serialization of the JSON body (§3, §9.2); the
sandbox verifies it with the member's registered certificate and signs its answers
with its MKK key, `{"alg": "RS256"}` as in §9.2 (or the configured `answer_alg`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

# §3: RSA with SHA-256 or stronger.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


class VerifyError(Exception):
    """The body is not an acceptable signed message; `code` is the §7 code to answer."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def public_key_of(cert: x509.Certificate) -> RSAKey:
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        raise ValueError("only RSA certificates are accepted (§3)")
    return RSAKey.import_key(pub)


def private_key(key: rsa.RSAPrivateKey) -> RSAKey:
    return RSAKey.import_key(key)


def verify_request(body: bytes, key: RSAKey | None) -> dict[str, Any]:
    """The JSON object inside a signed request, or VerifyError with OI016/OI010/OI012/OI002."""
    text = body.decode("utf-8", errors="replace").strip()
    parts = text.split(".")
    if len(parts) != 3 or text.startswith(("{", "[")):
        raise VerifyError("OI016", "not a JWS compact serialization")
    try:
        header = json.loads(_b64decode(parts[0]))
    except (ValueError, UnicodeDecodeError):
        raise VerifyError("OI016", "not a JWS compact serialization") from None
    if not isinstance(header, dict) or not parts[2] or header.get("alg") in (None, "none"):
        raise VerifyError("OI016", "no signature")
    if key is None:
        raise VerifyError("OI010", "no certificate registered for the sender member")
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise VerifyError("OI012", f"algorithm {header.get('alg')!r} is not accepted")
    try:
        obj = jws.deserialize_compact(text, key, algorithms=list(ALLOWED_ALGORITHMS))
    except (JoseError, ValueError):
        raise VerifyError("OI012", "signature verification failed") from None
    try:
        payload = json.loads(obj.payload)
    except (ValueError, UnicodeDecodeError):
        raise VerifyError("OI002", "the signed payload is not JSON") from None
    if not isinstance(payload, dict):
        raise VerifyError("OI002", "the signed payload is not a JSON object")
    return payload


def sign(payload: dict[str, Any], key: RSAKey, alg: str = "RS256") -> str:
    """A compact JWS of the JSON payload, `{"alg":"RS256"}` as in §9.2 unless configured
    otherwise (§3: "RSA SHA-256 or above")."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return jws.serialize_compact({"alg": alg}, data, key, algorithms=[alg])
