"""MKK JWS: sign request bodies, verify signed answers (§3, §9.2).

MKK wants every REST payload signed "RSA SHA-256 veya üstü" (§3); the §9.2 examples send
a JWS compact serialization with the protected header ``{"alg":"RS256"}`` as a
``text/plain`` body, and MKK answers the same way. We sign the exact JSON bytes we send
and verify MKK's answer over the exact bytes received: the signing input is the first
two segments as they arrived, nothing is decoded and re-encoded before the check.

The algorithms of an answer are pinned by configuration, RS256, RS384 and RS512 by
default (§3: "RSA SHA-256 or above"); ``none``, HS* and anything not configured are
refused before any key is touched (this is what defeats the
algorithm-confusion trick of an HS256 MAC keyed with our copy of MKK's public key).
Each failed check raises its own ``JwsError`` subclass with a message naming the check.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from pydantic import BaseModel

from services.common.signing.certs import load_private_key, load_public_key, read_passphrase
from services.common.signing.settings import (
    MKK_ALLOWED_ALGORITHMS,
    MKK_DEFAULT_ANSWER_ALGORITHMS,
    MkkSigningSettings,
)

# A received body bigger than this is refused unparsed (MKK answers are small JSON).
MAX_JWS_BYTES = 16 * 1024 * 1024
# RSA below 2048 bit is refused on either side (§3.1 asks 4096 of a self-signed member
# certificate; a Code Sign certificate or MKK's own may be 2048, as in the §9.2 samples).
MIN_RSA_BITS = 2048
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


class JwsError(Exception):
    """A JWS could not be produced or accepted; ``check`` names the failed check."""

    check: ClassVar[str] = "jws"

    def __str__(self) -> str:
        detail = super().__str__()
        return f"{self.check}: {detail}" if detail else self.check


class JwsMalformedError(JwsError):
    check = "malformed"


class JwsHeaderNotJsonError(JwsError):
    check = "header not JSON"


class JwsHeaderInvalidError(JwsError):
    check = "header invalid"


class JwsAlgorithmNotAllowedError(JwsError):
    check = "alg not allowed"


class JwsSignatureInvalidError(JwsError):
    check = "signature invalid"


class JwsPayloadNotJsonError(JwsError):
    check = "payload not JSON"


class JwsKeyError(JwsError):
    check = "key unusable"


def b64url_decode(segment: bytes, what: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); anything else is malformed."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise JwsMalformedError(f"{what} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex guards this
        raise JwsMalformedError(f"{what} is not base64url") from exc


def b64url_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _pinned_algorithms(algorithms: Iterable[str]) -> frozenset[str]:
    algs = frozenset(algorithms)
    if not algs:
        raise ValueError("at least one algorithm must be allowed")
    bad = algs - MKK_ALLOWED_ALGORITHMS
    if bad:
        # §3: RSA with SHA-256 or stronger only; none / HS* / EC are configuration errors.
        raise ValueError(f"algorithm(s) {sorted(bad)} may not be allowed for MKK")
    return algs


def _alg_model(name: str) -> JWSAlgModel:
    return JWSRegistry(algorithms=[name]).get_alg(name)


@dataclass(frozen=True, slots=True)
class JwsParts:
    """A compact JWS split and decoded, signature NOT checked."""

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def parse_compact(raw: bytes | str) -> JwsParts:
    """Split and decode a compact JWS without checking the signature.

    Surrounding whitespace (a trailing newline of an HTTP body or a file) is dropped;
    inside the token nothing is changed.
    """
    data = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    data = data.strip()
    if len(data) > MAX_JWS_BYTES:
        raise JwsMalformedError(f"larger than {MAX_JWS_BYTES} bytes")
    pieces = data.split(b".")
    if len(pieces) != 3:
        raise JwsMalformedError(f"expected 3 dot-separated segments, got {len(pieces)}")
    head_b64, payload_b64, sig_b64 = pieces
    if not head_b64 or not sig_b64:
        raise JwsMalformedError("empty header or signature segment")
    head_bytes = b64url_decode(head_b64, "header")
    try:
        header = json.loads(head_bytes)
    except (UnicodeDecodeError, ValueError) as exc:
        raise JwsHeaderNotJsonError(str(exc)) from exc
    if not isinstance(header, dict):
        raise JwsHeaderNotJsonError("header is JSON but not an object")
    payload = b64url_decode(payload_b64, "payload")
    signature = b64url_decode(sig_b64, "signature")
    return JwsParts(header, payload, head_b64 + b"." + payload_b64, signature)


def _check_header(header: dict[str, Any], allowed: frozenset[str]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise JwsHeaderInvalidError("no alg in header")
    if alg not in allowed:
        raise JwsAlgorithmNotAllowedError(f"{alg!r}, configured: {sorted(allowed)}")
    if "crit" in header:
        # RFC 7515 §4.1.11: a critical extension we don't understand must be refused.
        raise JwsHeaderInvalidError(f"unsupported critical header(s) {header['crit']!r}")
    if header.get("b64") is False:
        raise JwsHeaderInvalidError("unencoded payload (b64=false) not accepted")
    return alg


def _public_rsa(key: rsa.RSAPublicKey | rsa.RSAPrivateKey | x509.Certificate) -> RSAKey:
    public = key.public_key() if isinstance(key, x509.Certificate | rsa.RSAPrivateKey) else key
    if not isinstance(public, rsa.RSAPublicKey):
        raise JwsKeyError(f"MKK's key must be RSA, got {type(public).__name__}")
    if public.key_size < MIN_RSA_BITS:
        raise JwsKeyError(f"MKK's key is {public.key_size} bit, at least {MIN_RSA_BITS} needed")
    return RSAKey.import_key(public)


class JwsVerifier:
    """Verifies MKK's signed answers with MKK's certificate; algorithms pinned."""

    def __init__(
        self,
        key: rsa.RSAPublicKey | x509.Certificate,
        algorithms: Iterable[str] = MKK_DEFAULT_ANSWER_ALGORITHMS,
    ) -> None:
        self._allowed = _pinned_algorithms(algorithms)
        self._key = _public_rsa(key)
        self._models = {name: _alg_model(name) for name in self._allowed}

    @property
    def algorithms(self) -> frozenset[str]:
        return self._allowed

    def verify(self, raw: bytes | str) -> bytes:
        """Return the payload bytes of a valid JWS, or raise the JwsError of the failed check."""
        parts = parse_compact(raw)
        alg = _check_header(parts.header, self._allowed)
        try:
            ok = self._models[alg].verify(parts.signing_input, parts.signature, self._key)
        except Exception as exc:  # fail closed: any crypto error is a bad signature
            raise JwsSignatureInvalidError(f"{alg} verification error: {exc}") from exc
        if not ok:
            raise JwsSignatureInvalidError(f"{alg} signature does not match MKK's key")
        return parts.payload

    def verify_json(self, raw: bytes | str) -> Any:
        """Verify, then parse the payload as JSON."""
        payload = self.verify(raw)
        try:
            return json.loads(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            raise JwsPayloadNotJsonError(str(exc)) from exc


def model_json_bytes(model: BaseModel, *, exclude_none: bool = True) -> bytes:
    """The exact JSON bytes sent for a request model (wire names, no nulls by default)."""
    return model.model_dump_json(by_alias=True, exclude_none=exclude_none).encode("utf-8")


class JwsSigner:
    """Signs request bodies with our member key (§3, §9.2 header ``{"alg":"RS256"}``).

    ``sign`` is synchronous (about 8 ms of CPU for RSA-4096); in a service use
    ``sign_async``, which runs it on the executor given (signing_pool.py) so the event
    loop keeps serving other partitions.
    """

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        alg: str = "RS256",
        *,
        kid: str | None = None,
        executor: Executor | None = None,
    ) -> None:
        _pinned_algorithms([alg])
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise JwsKeyError("signing key must be an RSA private key")
        if private_key.key_size < MIN_RSA_BITS:
            raise JwsKeyError(f"signing key is {private_key.key_size} bit, {MIN_RSA_BITS}+ needed")
        self.alg = alg
        self._key = RSAKey.import_key(private_key)
        self._model = _alg_model(alg)
        header: dict[str, str] = {"alg": alg}
        if kid:  # off by default: §9.2 shows alg only
            header["kid"] = kid
        self._header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        self._executor = executor

    def sign(self, payload: bytes) -> str:
        """Compact JWS over exactly ``payload``."""
        signing_input = self._header_b64 + b"." + b64url_encode(payload)
        signature = self._model.sign(signing_input, self._key)
        return (signing_input + b"." + b64url_encode(signature)).decode("ascii")

    def sign_model(self, model: BaseModel) -> tuple[bytes, str]:
        """(JSON bytes, JWS) of a request model: the JWS is over those bytes."""
        payload = model_json_bytes(model)
        return payload, self.sign(payload)

    async def sign_async(self, payload: bytes) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.sign, payload)

    async def sign_model_async(self, model: BaseModel) -> tuple[bytes, str]:
        payload = model_json_bytes(model)
        return payload, await self.sign_async(payload)


def signer_from_settings(
    settings: MkkSigningSettings, executor: Executor | None = None
) -> JwsSigner:
    """Our member signer: key (PEM or PKCS#12) and passphrase from the settings' secrets."""
    if settings.private_key_file is None:
        raise JwsKeyError("mkk signing private_key_file is not set")
    passphrase = read_passphrase(
        settings.private_key_passphrase, settings.private_key_passphrase_file
    )
    key = load_private_key(settings.private_key_file, passphrase)
    kid = settings.kid if settings.include_kid else None
    return JwsSigner(key, settings.sign_alg, kid=kid, executor=executor)


def verifier_from_settings(settings: MkkSigningSettings) -> JwsVerifier:
    """MKK's answer verifier: MKK's certificate, the configured algorithms only."""
    if settings.mkk_certificate_file is None:
        raise JwsKeyError("mkk_certificate_file is not set")
    return JwsVerifier(load_public_key(settings.mkk_certificate_file), settings.algorithms)
