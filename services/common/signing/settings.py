"""Settings sections for MKK signing and certificates (BKM's: common/bkm/settings.py).

Plain pydantic sections; each service composes the ones it needs into its
``BaseServiceSettings`` subclass (``KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE`` ...). Secrets
are ``SecretStr`` and may come from the secrets directory (settings.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

# §3 "RSA SHA-256 veya üstü": RSA only, SHA-256 or stronger. Never none, never HS*.
MKK_ALLOWED_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
# Accepted on MKK's answers unless configured otherwise: §3 allows MKK any RSA PKCS#1
# v1.5 signature with SHA-256 "or above" (§9.2 shows RS256). PS* only when configured.
MKK_DEFAULT_ANSWER_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512")


def _check_algs(algs: list[str]) -> list[str]:
    bad = [a for a in algs if a not in MKK_ALLOWED_ALGORITHMS]
    if bad:
        raise ValueError(
            f"algorithm(s) {bad} not allowed; choose from {sorted(MKK_ALLOWED_ALGORITHMS)}"
        )
    return algs


class MkkSigningSettings(BaseModel):
    """Our member key and certificate, and MKK's certificate to verify its answers (§3)."""

    # PEM (PKCS#8 or PKCS#1) or PKCS#12 (.p12/.pfx) file holding our private key.
    private_key_file: Path | None = Field(
        default=None, description="required by the report services: signs requests (§3)"
    )
    private_key_passphrase: SecretStr | None = None
    # A file holding the passphrase (a mounted Secret); used when the passphrase is unset.
    private_key_passphrase_file: Path | None = None
    # Our own certificate (PEM/DER), registered with MKK (§3.1); watched for expiry.
    certificate_file: Path | None = None
    # MKK's certificate: verifies every signed answer (§3).
    mkk_certificate_file: Path | None = Field(
        default=None, description="required by the report services: verifies answers (§3)"
    )
    # Algorithms accepted on MKK's answers (pinned; §3 "RSA SHA-256 or above").
    algorithms: list[str] = Field(default_factory=lambda: list(MKK_DEFAULT_ANSWER_ALGORITHMS))
    # Algorithm used to sign our requests (§9.2: {"alg":"RS256"}).
    sign_alg: str = "RS256"
    # §9.2 header carries only alg; a kid is off unless MKK asks for it.
    include_kid: bool = False
    kid: str | None = None
    # Threads signing off the event loop (signing_pool.py). 0 = one per CPU.
    pool_workers: int = Field(default=0, ge=0, le=64)
    # Warn and export the metric when the certificate has fewer days left.
    expiry_warning_days: int = Field(default=30, ge=1, le=365)

    @field_validator("algorithms")
    @classmethod
    def _pinned(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one algorithm must be allowed")
        return _check_algs(v)

    @field_validator("sign_alg")
    @classmethod
    def _sign_alg(cls, v: str) -> str:
        _check_algs([v])
        return v

    @model_validator(mode="after")
    def _kid_given(self) -> MkkSigningSettings:
        if self.include_kid and not self.kid:
            raise ValueError("include_kid is set but kid is empty")
        return self
