"""Rank a py-spy collapsed-stack profile (`py-spy record -f raw`): the functions where
the samples are spent (self) and those under which they are spent (total).

`python -m bench.profile_top profile.txt [N]`
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def rank(text: str) -> tuple[int, Counter[str], Counter[str]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return samples, own, total


def main(argv: list[str]) -> None:
    samples, own, total = rank(Path(argv[0]).read_text())
    top = int(argv[1]) if len(argv) > 1 else 25
    print(f"{samples} samples")
    for title, counter in (("self", own), ("total", total)):
        print(f"\n--- {title}")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / max(samples, 1):6.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1:])
