"""A deterministic, seedable synthetic ledger: the rows behind the balance reports.

A member's positions on a date are cells of a grid account × sub-account × security,
visited in a scattered but repeatable order (a stride coprime with the grid size), so
no position repeats and row i is the same whatever the filters: a filtered report is
exactly the matching subset of the unfiltered one. Nothing is held per row; accounts
are computed from their index, so millions of rows cost no memory.

Row 0 is always the guide's sample position (§5.1.3: account 1, sub-account SERB,
ISIN TRAGARAN91N1, class HS, type HS), so the §5.1.4 sample request finds data.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from services.sandbox.mkk.config import LedgerConfig

Row = tuple[str, str, str, str, str, str, str, str, str]  # §5.1.6 order

SUB_ACCOUNTS = ("SERB", "TEMN", "KRDI", "MARJ", "BLKE", "HALK", "FONK", "REPO")
SUBS_PER_ACCOUNT = 2
ACC_CLASSES = ("BY", "KY", "YK")  # synthetic: bireysel, kurumsal, yabancı kurumsal
# (secClass, secType, MIC): ISO 10383 MICs of Borsa İstanbul and its segments.
SEC_KINDS = (
    ("HS", "HS", "XIST"),
    ("HS", "HS", "XEQY"),
    ("DB", "DT", "XDSM"),
    ("OST", "OT", "XDSM"),
    ("YF", "YF", "XIST"),
    ("VR", "VR", "XEQY"),
)
SAMPLE_ISIN = "TRAGARAN91N1"
_ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def isin_check_digit(body: str) -> int:
    """ISO 6166 check digit of the first 11 characters: letters to numbers, then Luhn."""
    digits = "".join(str(int(c, 36)) for c in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return (10 - total % 10) % 10


def is_valid_isin(isin: str) -> bool:
    if len(isin) != 12 or not isin[:2].isalpha() or not isin[-1].isdigit():
        return False
    if not all(c.isdigit() or c in _ALPHA for c in isin):
        return False
    return isin_check_digit(isin[:11]) == int(isin[-1])


@dataclass(frozen=True, slots=True)
class Security:
    isin: str
    sec_class: str
    sec_type: str
    mic: str


def make_securities(seed: int, count: int) -> list[Security]:
    rng = random.Random(f"securities:{seed}")
    out = [Security(SAMPLE_ISIN, "HS", "HS", "XIST")]
    seen = {SAMPLE_ISIN}
    while len(out) < count:
        issuer = "".join(rng.choice(_ALPHA) for _ in range(5))
        body = f"TRA{issuer}9{rng.choice('123456789')}{rng.choice(_ALPHA)}"
        isin = body + str(isin_check_digit(body))
        if isin in seen:
            continue
        seen.add(isin)
        cls, typ, mic = SEC_KINDS[rng.randrange(len(SEC_KINDS))]
        out.append(Security(isin, cls, typ, mic))
    return out


def _stride(n: int) -> int:
    """A step coprime with n, near n times the golden ratio, for a scattered visit order."""
    step = max(1, int(n * 0.6180339887)) | 1
    while math.gcd(step, n) != 1:
        step += 2 if n % 2 == 0 else 1
    return step


class Ledger:
    def __init__(self, config: LedgerConfig) -> None:
        self.config = config
        self.securities = make_securities(config.seed, config.securities)

    @staticmethod
    def known_acc_class(acc_class: str) -> bool:
        return acc_class in ACC_CLASSES

    def rows(
        self,
        member: str,
        process_date: str,
        filters: dict[str, str],
        *,
        files: int = 1,
        part: int = 0,
    ) -> Iterator[Row]:
        """Rows of one report file, in §5.1.6 order, as text; filters by Python name."""
        cfg = self.config
        n_sec = len(self.securities)
        n_acc = max(cfg.accounts, -(-cfg.rows // (n_sec * SUBS_PER_ACCOUNT)))
        grid = n_acc * SUBS_PER_ACCOUNT * n_sec
        step = _stride(grid)
        rng = random.Random(f"rows:{cfg.seed}:{member}:{process_date}")
        seed = cfg.seed
        securities = self.securities
        f_acc = filters.get("acc_no")
        f_sub = filters.get("sub_acc_no")
        f_isin = filters.get("isin")
        f_cls = filters.get("sec_class")
        f_typ = filters.get("sec_type")
        f_acls = filters.get("acc_class")
        f_port = filters.get("portfolio_code")
        for i in range(cfg.rows):
            # Draws happen for every row, so a row never depends on the filters.
            amount = rng.randrange(1, 10_000_000_000)
            add_def = "TMN" if rng.random() < 0.05 else ""
            if i % files != part:
                continue
            k = (i * step) % grid
            a, rem = divmod(k, SUBS_PER_ACCOUNT * n_sec)
            s, sec_i = divmod(rem, n_sec)
            acc_no = str(a + 1)
            if f_acc is not None and f_acc != acc_no:
                continue
            sub = SUB_ACCOUNTS[(a + s) % len(SUB_ACCOUNTS)]
            if f_sub is not None and f_sub != sub:
                continue
            if f_acls is not None and f_acls != ACC_CLASSES[(a * 7 + seed) % len(ACC_CLASSES)]:
                continue
            if f_port is not None and f_port != f"P{(a + s) % 40 + 1}":
                continue
            sec = securities[sec_i]
            if f_isin is not None and f_isin != sec.isin:
                continue
            if f_cls is not None and f_cls != sec.sec_class:
                continue
            if f_typ is not None and f_typ != sec.sec_type:
                continue
            balance = f"{amount // 1000}.{amount % 1000:03d}"
            yield (process_date, member, acc_no, sub, sec.sec_class, sec.mic, sec.isin,
                   add_def, balance)  # fmt: skip
