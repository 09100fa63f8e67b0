"""What the run measured, from the topics, the MKK sandbox's journal and the consumer
groups' committed offsets. Plain functions on plain data (unit-tested).

- lost: a report request without a terminal event (ReportCompleted / ReportFailed), a
  confirmation without its event on payments.bkm.confirmations;
- duplicate events: more than one *distinct* event (event_id) ending a request or
  confirming a token, plus copies: the same event (same event_id) on the topic again,
  e.g. after a crash between publish and commit. The table shows copies apart
  (downstream would drop them by their id); the last line counts both;
- duplicate submissions: MKK accepted more balance-reports than one per request;
- stuck partitions: a group's partition with records past its committed offset after
  the settle period.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

AMBIGUOUS = "KOPRU_AMBIGUOUS"


@dataclass
class Tally:
    expected: int
    done: int = 0  # with at least one event
    lost: int = 0
    duplicates: int = 0  # distinct events beyond one
    copies: int = 0  # the same event (event_id) seen again
    outcomes: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)


def tally(expected: Iterable[str], events: Iterable[Mapping[str, Any]], key: str) -> Tally:
    """One event expected per id in `expected`; `events` are decoded records, `key` the
    field naming the id (request_id, token). Events of other ids are ignored."""
    wanted = list(dict.fromkeys(expected))
    ids: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, dict[str, str]] = defaultdict(dict)
    wanted_set = set(wanted)
    for ev in events:
        k = ev.get(key)
        if k in wanted_set:
            ids[k].append(str(ev.get("event_id")))
            kinds[k][str(ev.get("event_id"))] = _outcome(ev)
    t = Tally(expected=len(wanted))
    for k in wanted:
        seen = ids.get(k, [])
        if not seen:
            t.lost += 1
            t.missing.append(k)
            continue
        t.done += 1
        distinct = set(seen)
        t.duplicates += len(distinct) - 1
        t.copies += len(seen) - len(distinct)
        t.outcomes[kinds[k][seen[0]]] += 1
    return t


def _outcome(ev: Mapping[str, Any]) -> str:
    kind = str(ev.get("event_type", "?"))
    code = ev.get("code")
    return f"{kind} {code}" if kind == "ReportFailed" and code else kind


def duplicate_submissions(
    journal: Iterable[Mapping[str, Any]],
    submitted: Iterable[Mapping[str, Any]],
    terminal: Iterable[Mapping[str, Any]],
) -> int:
    """Balance-reports MKK accepted beyond one per request.

    `journal`: the sandbox's balance-report calls; `submitted`: ReportSubmitted events
    (request_id -> sender_reference); `terminal`: the terminal events. An accepted call
    no ReportSubmitted names is the documented crash window's (the answer was lost) only
    as often as requests ended KOPRU_AMBIGUOUS without a ReportSubmitted."""
    accepted = [j for j in journal if j.get("response_code") == "0000"]
    by_reference = Counter(str(j.get("sender_reference")) for j in accepted)
    owner: dict[str, str] = {}
    for ev in submitted:
        owner[str(ev.get("sender_reference"))] = str(ev.get("request_id"))
    refs_of: dict[str, set[str]] = defaultdict(set)
    orphans = 0
    for ref, n in by_reference.items():
        if ref in owner:
            refs_of[owner[ref]].add(ref)
        else:
            orphans += n
    dup = sum(n - 1 for n in by_reference.values() if n > 1)
    dup += sum(len(refs) - 1 for refs in refs_of.values())
    was_submitted = set(owner.values())
    ambiguous = {
        str(ev.get("request_id"))
        for ev in terminal
        if ev.get("code") == AMBIGUOUS and str(ev.get("request_id")) not in was_submitted
    }
    dup += max(0, orphans - len(ambiguous))
    return dup


def stuck_partitions(
    committed: Mapping[str, Mapping[tuple[str, int], int]],
    start: Mapping[tuple[str, int], int],
    end: Mapping[tuple[str, int], int],
) -> dict[str, list[tuple[str, int, int]]]:
    """group -> [(topic, partition, lag)] with lag > 0. A group is held to every
    partition of each topic it committed on (one it never committed on counts from the
    log start)."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for group, offsets in committed.items():
        topics = {t for t, _ in offsets}
        lagging = []
        for (t, p), hw in sorted(end.items()):
            if t not in topics:
                continue
            at = offsets.get((t, p), start.get((t, p), 0))
            if hw - at > 0:
                lagging.append((t, p, hw - at))
        if lagging:
            out[group] = lagging
    return out


def dead_lettered(
    injected: Iterable[tuple[str, int, int]], dlq_headers: Iterable[Mapping[str, str]]
) -> set[tuple[str, int, int]]:
    """Which injected (topic, partition, offset) have an entry in a dead-letter topic."""
    found = set()
    for h in dlq_headers:
        try:
            found.add(
                (
                    h["x-dlq-original-topic"],
                    int(h["x-dlq-original-partition"]),
                    int(h["x-dlq-original-offset"]),
                )
            )
        except (KeyError, ValueError):
            continue
    return {i for i in injected if i in found}


def replay_figures(confirmations: Iterable[Any]) -> dict[str, int]:
    """From chaos.load.Confirmation objects: posts, replays, mismatching answers."""
    posts = replays = replayed_tokens = mismatches = unanswered = refused = retried = 0
    for c in confirmations:
        posts += len(c.answers)
        retried += sum(a.status is None or a.status >= 500 for a in c.answers)
        ok = c.ok
        replays += max(0, len(ok) - 1)
        replayed_tokens += c.replays > 0
        mismatches += c.mismatches
        unanswered += not c.answered
        refused += c.refused
    return {
        "posts": posts,
        "posts failed (no answer / 5xx), posted again": retried,
        "replayed answers": replays,
        "replayed confirmations": replayed_tokens,
        "replay mismatches": mismatches,
        "unanswered": unanswered,
        "refused (4xx)": refused,
    }


def passed_after_bad(
    bad: Iterable[tuple[str, int, int]],
    offsets_seen: Iterable[tuple[str, int, int]],
    committed: Mapping[str, Mapping[tuple[str, int], int]],
) -> dict[tuple[str, int], tuple[int, bool]]:
    """For each partition that got bad records: (good records after the last bad one,
    whether every group consuming it committed past all of them). No group, or a group
    short of the last good record, is a blocked partition."""
    last_bad: dict[tuple[str, int], int] = {}
    for t, p, off in bad:
        last_bad[(t, p)] = max(off, last_bad.get((t, p), -1))
    after: dict[tuple[str, int], list[int]] = defaultdict(list)
    for t, p, off in offsets_seen:
        if (t, p) in last_bad and off > last_bad[(t, p)]:
            after[(t, p)].append(off)
    out: dict[tuple[str, int], tuple[int, bool]] = {}
    for tp, last in last_bad.items():
        good = after.get(tp, [])
        need = max(good) + 1 if good else last + 1
        groups = [offs[tp] for offs in committed.values() if tp in offs]
        out[tp] = (len(good), bool(groups) and all(c >= need for c in groups))
    return out
