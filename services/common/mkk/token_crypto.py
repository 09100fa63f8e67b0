"""Tokens on Kafka travel encrypted: AES-256-GCM, key derived from a secret.

The associated data binds a ciphertext to its (member, sender, jti), so a token cannot
be replayed under another key. `key_id` names the key (a hash prefix), so a rotation
shows up as "unknown key" instead of a decryption error.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class TokenDecryptError(ValueError):
    pass


class TokenCipher:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("token key is empty")
        key = hashlib.sha256(b"kopru-token-key:" + secret.encode()).digest()
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"kopru-token-key-id:" + key).hexdigest()[:16]

    @staticmethod
    def _aad(member: str, sender: str, jti: str) -> bytes:
        return f"{member}:{sender}:{jti}".encode()

    def encrypt(self, token: str, member: str, sender: str, jti: str) -> tuple[str, str]:
        """(nonce_b64, ciphertext_b64)."""
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, token.encode(), self._aad(member, sender, jti))
        return base64.b64encode(nonce).decode(), base64.b64encode(ct).decode()

    def decrypt(
        self, key_id: str, nonce_b64: str, ct_b64: str, member: str, sender: str, jti: str
    ) -> str:
        if key_id != self.key_id:
            raise TokenDecryptError(f"token encrypted under unknown key {key_id}")
        try:
            plain = self._aead.decrypt(
                base64.b64decode(nonce_b64),
                base64.b64decode(ct_b64),
                self._aad(member, sender, jti),
            )
        except (InvalidTag, ValueError) as exc:
            raise TokenDecryptError("token could not be decrypted") from exc
        return plain.decode()
