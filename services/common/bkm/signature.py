"""BKM Express signatures: canonical strings and SHA256withRSA (bkm-express "Güvenlik").

The signed text is the message's listed fields appended in order (``SIGNED_FIELDS`` in
schemas/bkm.py), ``null`` for an absent field, UTF-8 encoded, signed with RSA PKCS#1
v1.5 over SHA-256 and base64 encoded. Keys are 1024 or 2048 bit (BKM FAQ "Public key
uzunluğu"); 1024 is accepted with a warning.

Verification fails closed: a malformed signature, a wrong key, or any error from the
crypto library yields False (``verify``) or ``BkmSignatureInvalid`` (``require``), never
an exception that could be mistaken for success. OpenSSL compares the recovered digest;
no secret-dependent comparison happens in Python.
"""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from schemas.bkm import SIGNED_FIELDS, BkmMessage, FieldSpec, Nested, wire_text

ACCEPTED_KEY_BITS = frozenset({1024, 2048})
NULL_TEXT = "null"  # FAQ: null fields are appended as "null", never ""

_log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BkmMessage)


class BkmSignatureError(Exception):
    """Base of BKM signing errors."""


class BkmKeyError(BkmSignatureError):
    """The key is not an RSA key of an accepted size."""


class BkmSignatureInvalid(BkmSignatureError):
    """A received message's signature does not verify with BKM's key."""


def _append(parts: list[str], obj: object, spec: FieldSpec) -> None:
    for item in spec:
        if isinstance(item, Nested):
            for child in getattr(obj, item.field) or ():
                _append(parts, child, item.spec)
        else:
            text = wire_text(getattr(obj, item))
            parts.append(NULL_TEXT if text is None else text)


def canonical_fields(message: BkmMessage) -> list[str]:
    """The signed values of ``message`` in order (one per appended field)."""
    parts: list[str] = []
    _append(parts, message, SIGNED_FIELDS[message.message])
    return parts


def canonical_string(message: BkmMessage) -> str:
    """The text BKM signs for ``message``: its signed fields appended in order."""
    return "".join(canonical_fields(message))


def check_key_size(key: rsa.RSAPrivateKey | rsa.RSAPublicKey, *, role: str) -> None:
    if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        raise BkmKeyError(f"{role} key must be RSA")
    if key.key_size not in ACCEPTED_KEY_BITS:
        raise BkmKeyError(f"{role} key is {key.key_size} bit; BKM takes 1024 or 2048")
    if key.key_size == 1024:
        _log.warning("bkm_key_1024_bit", role=role, hint="1024-bit RSA is weak; move to 2048")


def sign_text(text: str, key: rsa.RSAPrivateKey) -> str:
    """base64(SHA256withRSA(text)) with PKCS#1 v1.5 padding."""
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify_text(text: str, signature_b64: str | None, key: rsa.RSAPublicKey) -> bool:
    """True only if ``signature_b64`` is a valid signature of ``text``; False otherwise."""
    if not signature_b64:
        return False
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    except Exception:  # fail closed on anything the crypto library raises
        _log.exception("bkm_verify_error")
        return False
    return True


class BkmSigner:
    """Signs the messages the merchant sends, with the merchant's private key."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        check_key_size(private_key, role="merchant")
        self._key = private_key

    def signature(self, message: BkmMessage) -> str:
        return sign_text(canonical_string(message), self._key)

    def sign(self, message: M) -> M:
        """A copy of ``message`` with ``s`` set."""
        return message.model_copy(update={"s": self.signature(message)})


class BkmVerifier:
    """Verifies messages BKM sends, with BKM's public key, on the raw received values."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        check_key_size(public_key, role="BKM")
        self._key = public_key

    def verify(self, message: BkmMessage) -> bool:
        try:
            text = canonical_string(message)
        except Exception:  # a message we cannot even render is not verified
            return False
        return verify_text(text, message.s, self._key)

    def require(self, message: BkmMessage) -> None:
        """Raise ``BkmSignatureInvalid`` unless the message verifies."""
        if not self.verify(message):
            raise BkmSignatureInvalid(f"BKM signature of {message.message} does not verify")
