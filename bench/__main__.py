"""Run every benchmark module `bench/bench_*.py` in turn (or those named on the command line).

Each module has a `main() -> None` that prints its own figures next to its baseline and
the ratio between them, in one run. A benchmark that fails is reported and the others
still run; the exit code is non-zero if any failed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback


def main(argv: list[str]) -> int:
    import bench

    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
