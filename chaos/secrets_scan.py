"""After the run: every service log line and every record of every topic searched for
what must never leave its holder.

- the MKK password, the token and zip keys, the POS and Moka passwords (exact text);
- each request's zip password (derived from the zip key, computed here the same way);
- the body of each private key (any 40+ character line of its PEM) and any PEM header
  of a private key;
- tokens in clear: JWT-shaped strings (header.payload.signature, base64url JSON);
- card data: Luhn-valid card numbers (issuer prefixes, 13-19 digits, not inside a word), the
  planted CVC as a field, the planted expiry and holder name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from services.common.mkk.zip_password import zip_password
from services.common.observability.card_data import luhn_valid
from services.sandbox.bkm.messages import TEST_EXPIRY, TEST_HOLDER, TEST_PAN

JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
# Card numbers: 13-19 digits, plain or in groups (4-4-4-4, Amex 4-6-5), not part of a
# word or a dashed id (a hex digest, a file name's time stamp, a UUID's last group),
# with an issuer prefix (Visa 4, Mastercard 51-55 / 22-27, Amex 34/37, Discover and
# Maestro 6, Troy 9792) and a valid Luhn check digit.
PAN_RE = re.compile(
    rb"(?<![0-9A-Za-z_.-])"
    rb"(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){3}|[0-9]{4}[ -][0-9]{6}[ -][0-9]{5})"
    rb"(?![0-9A-Za-z_-])"
)
IIN_RE = re.compile(rb"^(?:4|5[1-5]|2[2-7]|3[47]|6|9792)")
CVC_RE = re.compile(rb"(?i)\"?(cvc|cvv|cvv2|cvc2)\"?\s*[:=]\s*\"?[0-9]{3,4}")
PEM_HEADER_RE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def pem_lines(path: Path) -> list[bytes]:
    """The base64 lines of a PEM body, each long enough to be unmistakable."""
    return [
        line.strip()
        for line in path.read_bytes().splitlines()
        if len(line.strip()) >= 40 and not line.startswith(b"-----")
    ]


@dataclass
class Needles:
    exact: dict[str, list[bytes]] = field(default_factory=dict)  # kind -> texts

    @classmethod
    def build(
        cls,
        *,
        mkk_password: str,
        other_secrets: dict[str, str],
        zip_key: str,
        requests: Iterable[tuple[str, str]],
        private_keys: Iterable[Path],
    ) -> Needles:
        exact: dict[str, list[bytes]] = {
            "mkk password": [mkk_password.encode()],
            "zip password": [zip_password(zip_key, m, r).encode() for m, r in requests],
            "private key": [line for p in private_keys for line in pem_lines(p)],
            "card data": [TEST_PAN.encode(), TEST_EXPIRY.encode(), TEST_HOLDER.encode()],
        }
        for kind, value in other_secrets.items():
            exact.setdefault(kind, []).append(value.encode())
        return cls(exact)


@dataclass
class Hit:
    kind: str
    where: str
    sample: str


def scan(data: bytes, where: str, needles: Needles, hits: list[Hit]) -> None:
    """Append a Hit for every secret found in `data` (one per kind and needle)."""
    for kind, values in needles.exact.items():
        for v in values:
            at = data.find(v) if v else -1
            if at >= 0:
                hits.append(Hit(kind, where + _field(data, at), _mask(v)))
    for kind, rx in (("token (JWT)", JWT_RE), ("private key", PEM_HEADER_RE), ("CVC", CVC_RE)):
        for m in rx.finditer(data):
            hits.append(Hit(kind, where + _field(data, m.start()), _mask(m.group(0))))
    for m in PAN_RE.finditer(data):
        digits = m.group(0).replace(b" ", b"").replace(b"-", b"")
        if IIN_RE.match(digits) and luhn_valid(digits.decode()):
            hits.append(Hit("card number", where + _field(data, m.start()), _mask(m.group(0))))


KEY_RE = re.compile(rb'"([A-Za-z0-9_.-]{1,60})"\s*:')


def _field(data: bytes, at: int) -> str:
    """The JSON key nearest before `at` (where a hit sits), to find it without showing it."""
    keys = KEY_RE.findall(data, max(0, at - 300), at)
    return f" ({keys[-1].decode()})" if keys else ""


def _mask(value: bytes) -> str:
    text = value.decode(errors="replace")
    return text[:4] + "…" if len(text) > 4 else "…"


def scan_logs(paths: Iterable[Path], needles: Needles, hits: list[Hit]) -> int:
    """Every line of every log; the number of lines scanned."""
    lines = 0
    for path in paths:
        if not path.exists():
            continue
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            lines += 1
            scan(line, f"{path.name}:{n}", needles, hits)
    return lines


def summary(hits: Iterable[Hit]) -> Counter[str]:
    return Counter(h.kind for h in hits)
