"""The chaos run's counting: lost, duplicate events, copies, duplicate submissions, stuck
partitions, dead-lettered bad records, replay answers."""

from __future__ import annotations

from chaos.accounting import (
    dead_lettered,
    duplicate_submissions,
    passed_after_bad,
    replay_figures,
    stuck_partitions,
    tally,
)
from chaos.load import Answer, Confirmation


def _done(rid: str, eid: str, kind: str = "ReportCompleted", **kw: object) -> dict[str, object]:
    return {"request_id": rid, "event_id": eid, "event_type": kind, **kw}


def test_tally_counts_lost_duplicates_and_copies() -> None:
    events = [
        _done("a", "e1"),
        _done("b", "e2"),
        _done("b", "e2"),  # the same event again: a copy
        _done("c", "e3", "ReportFailed", code="KOPRU_AMBIGUOUS"),
        _done("c", "e4"),  # a second, different terminal event: a duplicate
        _done("zz", "e9"),  # not ours
    ]
    t = tally(["a", "b", "c", "d"], events, "request_id")
    assert (t.expected, t.done, t.lost, t.duplicates, t.copies) == (4, 3, 1, 1, 1)
    assert t.missing == ["d"]
    assert t.outcomes == {"ReportCompleted": 2, "ReportFailed KOPRU_AMBIGUOUS": 1}


def test_tally_by_token() -> None:
    events = [{"token": "t1", "event_id": "x", "event_type": "PaymentConfirmed"}]
    t = tally(["t1", "t2"], events, "token")
    assert (t.done, t.lost, t.duplicates) == (1, 1, 0)


def _call(ref: str, code: str = "0000") -> dict[str, object]:
    return {"sender_reference": ref, "response_code": code}


def _sub(rid: str, ref: str) -> dict[str, object]:
    return {"request_id": rid, "sender_reference": ref}


def test_one_submission_per_request_is_no_duplicate() -> None:
    journal = [_call("R1"), _call("R2"), _call("R2", "RP045")]  # a re-send refused
    assert duplicate_submissions(journal, [_sub("a", "R1"), _sub("b", "R2")], []) == 0


def test_two_accepted_references_for_one_request_is_a_duplicate() -> None:
    journal = [_call("R1"), _call("R1b")]
    submitted = [_sub("a", "R1"), _sub("a", "R1b")]
    assert duplicate_submissions(journal, submitted, []) == 1


def test_an_accepted_call_nobody_owns_is_a_duplicate_unless_an_ambiguous_end_explains_it() -> None:
    journal = [_call("R1"), _call("R9")]
    submitted = [_sub("a", "R1")]
    assert duplicate_submissions(journal, submitted, []) == 1
    ambiguous = [{"request_id": "b", "code": "KOPRU_AMBIGUOUS"}]
    assert duplicate_submissions(journal, submitted, ambiguous) == 0
    # an ambiguous end of a request that WAS submitted explains nothing
    ambiguous_a = [{"request_id": "a", "code": "KOPRU_AMBIGUOUS"}]
    assert duplicate_submissions(journal, submitted, ambiguous_a) == 1


def test_the_same_reference_accepted_twice_is_a_duplicate() -> None:
    assert duplicate_submissions([_call("R1"), _call("R1")], [_sub("a", "R1")], []) == 1


def test_stuck_partitions_only_where_records_wait() -> None:
    committed = {
        "g1": {("t", 0): 10, ("t", 1): 5},
        "g2": {("u", 0): 3},
    }
    start = {("t", 0): 0, ("t", 1): 0, ("t", 2): 0, ("u", 0): 0, ("v", 0): 0}
    end = {("t", 0): 10, ("t", 1): 7, ("t", 2): 4, ("u", 0): 3, ("v", 0): 9}
    stuck = stuck_partitions(committed, start, end)
    # t[1] lags 2; t[2] was never committed by g1 but holds 4 records; v is not g1's
    assert stuck == {"g1": [("t", 1, 2), ("t", 2, 4)]}


def test_dead_lettered_matches_on_original_coordinates() -> None:
    injected = [("in", 0, 5), ("in", 0, 6), ("in", 0, 7)]
    headers = [
        {"x-dlq-original-topic": "in", "x-dlq-original-partition": "0",
         "x-dlq-original-offset": "5"},
        {"x-dlq-original-topic": "in", "x-dlq-original-partition": "0",
         "x-dlq-original-offset": "7", "x-dlq-reference": "true"},
        {"x-dlq-original-topic": "in", "x-dlq-original-partition": "1",
         "x-dlq-original-offset": "6"},
        {"unrelated": "1"},
    ]  # fmt: skip
    assert dead_lettered(injected, headers) == {("in", 0, 5), ("in", 0, 7)}


def test_replay_figures_compare_exact_bytes() -> None:
    same = Confirmation("t1", "success", 1, [Answer("u", 200, b"{a}"), Answer("u", 200, b"{a}")])
    differs = Confirmation(
        "t2", "success", 1, [Answer("u", None), Answer("u", 200, b"{a}"), Answer("u", 200, b"{b}")]
    )
    never = Confirmation("t3", "success", 0, [Answer("u", 503), Answer("u", 400)])
    fig = replay_figures([same, differs, never])
    assert fig["replay mismatches"] == 1
    assert fig["replayed answers"] == 2
    assert fig["unanswered"] == 1
    assert fig["refused (4xx)"] == 1
    assert fig["posts"] == 7
    assert fig["posts failed (no answer / 5xx), posted again"] == 2


def test_passed_after_bad_needs_every_group_past_the_good_records() -> None:
    bad = [("in", 0, 5), ("in", 0, 6), ("other", 0, 2)]
    seen = [("in", 0, o) for o in range(10)] + [("other", 0, o) for o in range(3)]
    committed = {"g": {("in", 0): 10, ("other", 0): 3}, "h": {("in", 0): 10}}
    assert passed_after_bad(bad, seen, committed) == {("in", 0): (3, True), ("other", 0): (0, True)}
    behind = {"g": {("in", 0): 10}, "h": {("in", 0): 8}}  # h stopped before offset 9
    assert passed_after_bad(bad, seen, behind)[("in", 0)] == (3, False)
    assert passed_after_bad(bad, seen, {})[("in", 0)] == (3, False)  # nobody consumed it
