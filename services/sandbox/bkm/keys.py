"""Demo key pairs for the BKM sandbox: BKM's own pair and a merchant pair.

Created on first run under the state dir (default .kopru/sandbox/bkm/), 2048-bit RSA
(BKM takes 1024 or 2048). The merchant's private key is for the demo's payment-notifier;
a real merchant gives BKM only its public key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.signing.certs import generate_rsa_key, write_private_key

DEFAULT_STATE_DIR = Path(".kopru/sandbox/bkm")


@dataclass(frozen=True)
class BkmDemoKeys:
    bkm_private: Path
    bkm_public: Path
    merchant_private: Path
    merchant_public: Path


def _ensure_pair(private: Path, public: Path) -> None:
    if private.exists() and public.exists():
        return
    key: rsa.RSAPrivateKey = generate_rsa_key(2048)
    write_private_key(private, key, None)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def ensure_demo_keys(state_dir: Path | None = None) -> BkmDemoKeys:
    d = state_dir or DEFAULT_STATE_DIR
    d.mkdir(parents=True, exist_ok=True)
    keys = BkmDemoKeys(d / "bkm.key", d / "bkm.pub", d / "merchant.key", d / "merchant.pub")
    _ensure_pair(keys.bkm_private, keys.bkm_public)
    _ensure_pair(keys.merchant_private, keys.merchant_public)
    return keys
