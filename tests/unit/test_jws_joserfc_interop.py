"""Our JWS algorithms (straight on `cryptography`, services/common/signing/jws.py) held to
joserfc's, both ways, for every algorithm MKK may be configured with: RS256/384/512
(PKCS#1 v1.5) and PS256/384/512 (PSS, MGF1, salt = hash length)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import RSAKey

from services.common.signing.jws import JwsSignatureInvalidError, JwsSigner, JwsVerifier
from services.common.signing.settings import MKK_ALLOWED_ALGORITHMS

PAYLOAD = b'{"requestHeader":{"senderReference":"x","senderMember":"TIB","sender":"TIB991"}}'
ALGS = sorted(MKK_ALLOWED_ALGORITHMS)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_every_allowed_algorithm_is_covered() -> None:
    assert ALGS == ["PS256", "PS384", "PS512", "RS256", "RS384", "RS512"]


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_verifies_what_we_sign(key: rsa.RSAPrivateKey, alg: str) -> None:
    token = JwsSigner(key, alg).sign(PAYLOAD)
    got = jws.deserialize_compact(token, RSAKey.import_key(key.public_key()), algorithms=[alg])
    assert got.payload == PAYLOAD
    assert got.protected == {"alg": alg}


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_what_joserfc_signs(key: rsa.RSAPrivateKey, alg: str) -> None:
    token = jws.serialize_compact({"alg": alg}, PAYLOAD, RSAKey.import_key(key), algorithms=[alg])
    assert JwsVerifier(key.public_key(), [alg]).verify(token) == PAYLOAD


@pytest.mark.parametrize("alg", ALGS)
def test_another_keys_signature_is_refused(key: rsa.RSAPrivateKey, alg: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jws.serialize_compact({"alg": alg}, PAYLOAD, RSAKey.import_key(other), algorithms=[alg])
    with pytest.raises(JwsSignatureInvalidError):
        JwsVerifier(key.public_key(), [alg]).verify(token)
