"""`python -m chaos [--reports N] [--confirmations N] [--replay-rate R] [--seed N]
[--outage-s S]`: the chaos run (see chaos.runner); exit 0 only when nothing was lost,
duplicated, stuck or leaked."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from chaos.runner import Options, chaos


def parse(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    p.add_argument("--reports", type=int, default=200)
    p.add_argument("--confirmations", type=int, default=1000)
    p.add_argument("--replay-rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--outage-s", type=float, default=30.0)
    p.add_argument("--load-s", type=float, default=240.0, help="spread the load over this long")
    p.add_argument("--finish-s", type=float, default=300.0, help="wait this long for outcomes")
    p.add_argument("--settle-s", type=float, default=60.0, help="for consumer lag to drain")
    p.add_argument("--state-dir", type=Path, default=Path(".kopru/chaos"))
    a = p.parse_args(argv)
    return Options(
        reports=a.reports,
        confirmations=a.confirmations,
        replay_rate=a.replay_rate,
        seed=a.seed,
        outage_s=a.outage_s,
        load_s=a.load_s,
        finish_s=a.finish_s,
        settle_s=a.settle_s,
        state_dir=a.state_dir,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    # The faults make aiokafka complain on every produce and metadata call: the table
    # says what happened; the services' own logs keep theirs.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # SIGTERM stops the run as Ctrl-C does: everything started is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(chaos(opts))
    except KeyboardInterrupt:
        print("chaos interrupted; everything stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
