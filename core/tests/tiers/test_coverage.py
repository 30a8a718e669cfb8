"""Coverage: merged spans of bucket starts a tier knows completely."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from qts_data.tiers import Coverage

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def m(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def spans(c: Coverage) -> list[tuple[int, int]]:
    return [((lo - T0) // timedelta(minutes=1), (hi - T0) // timedelta(minutes=1)) for lo, hi in c]


def test_overlapping_spans_merge() -> None:
    c = Coverage([(m(0), m(10)), (m(5), m(20))])
    assert spans(c) == [(0, 20)]


def test_adjacent_spans_merge_and_disjoint_ones_stay_apart() -> None:
    c = Coverage([(m(0), m(10)), (m(10), m(20)), (m(30), m(40))])
    assert spans(c) == [(0, 20), (30, 40)]
    c.add(m(19), m(31))  # bridges both
    assert spans(c) == [(0, 40)]


def test_a_span_swallowing_several_replaces_them() -> None:
    c = Coverage([(m(2), m(3)), (m(5), m(6)), (m(8), m(9))])
    c.add(m(0), m(100))
    assert spans(c) == [(0, 100)]


def test_partial_coverage_is_not_covered_and_split_names_the_missing_parts() -> None:
    c = Coverage([(m(0), m(10)), (m(20), m(30))])
    assert c.covers(m(2), m(8))
    assert not c.covers(m(5), m(25))
    covered, missing = c.split(m(5), m(35))
    assert [(a.minute, b.minute) for a, b in covered] == [(5, 10), (20, 30)]
    assert [(a.minute, b.minute) for a, b in missing] == [(10, 20), (30, 35)]
    assert c.missing(m(40), m(50)) == [(m(40), m(50))]
    assert c.split(m(3), m(3)) == ([], [])


def test_remove_and_clip_below_forget_coverage() -> None:
    c = Coverage([(m(0), m(30))])
    c.remove(m(10), m(20))
    assert spans(c) == [(0, 10), (20, 30)]
    c.clip_below(m(5))
    assert spans(c) == [(5, 10), (20, 30)]
    c.clip_below(m(12))
    assert spans(c) == [(20, 30)]


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 15)), max_size=12),
    st.integers(0, 70),
    st.integers(0, 30),
)
def test_coverage_matches_a_set_of_minutes(
    added: list[tuple[int, int]], query_lo: int, query_len: int
) -> None:
    c = Coverage()
    minutes: set[int] = set()
    for lo, length in added:
        c.add(m(lo), m(lo + length))
        minutes.update(range(lo, lo + length))
    got = spans(c)
    # disjoint, sorted, non-adjacent, exactly the minutes added
    assert all(a[1] < b[0] for a, b in pairwise(got))
    assert {x for lo, hi in got for x in range(lo, hi)} == minutes
    query = set(range(query_lo, query_lo + query_len))
    covered, missing = c.split(m(query_lo), m(query_lo + query_len))
    in_covered = {
        (a - T0) // timedelta(minutes=1) + i
        for a, b in covered
        for i in range((b - a) // timedelta(minutes=1))
    }
    in_missing = {
        (a - T0) // timedelta(minutes=1) + i
        for a, b in missing
        for i in range((b - a) // timedelta(minutes=1))
    }
    assert in_covered == query & minutes
    assert in_missing == query - minutes
    assert c.covers(m(query_lo), m(query_lo + query_len)) == (query <= minutes)
