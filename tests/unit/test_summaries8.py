"""Round eight's summary moves (issue 15): ``summaries.stage`` gives a transaction with
``stage_summary_move`` a command's move (``move_rows``' key and the elapsed
``timedelta``) and its other rows; the memory store adds a move's first command's
rows to its sums and counts the next ones per key, added to the sums when read.

Every test compares with the row path (``stage_summary``, ``add_summary_rows``):
the rows a move stands for, the memory store's sums (values, key order, the types
of the keys' items) and its ``summary()``, on hostile input: ``str`` subclasses
equal to plain keys, times in other zones and subclasses, a subtraction that does
not give a ``timedelta``, dwell times past ``timedelta``'s range, failed
transactions, several stagings in one transaction, a rebuild between commands and
a small bound on the moves kept apart.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, summaries
from reqmgmt.storage import memory
from reqmgmt.storage.base import add_summary_rows
from reqmgmt.testing import FakeClock

from ..conftest import to_closed
from .test_steps_summaries import _ENGINE, _VERSIONS
from .test_summaries7 import Text, _hostile, _shift, _typed, channels, customers, zones

# --- stage: the move and the rows ---------------------------------------------------------


class _Rows:
    """A transaction that takes rows only (as the SQL stores)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.calls = 0

    def stage_summary(self, rows: Any) -> None:
        self.calls += 1
        self.rows.extend(rows)

    def audit(self, ref: str) -> list[Any]:
        return []


class _Moves(_Rows):
    """A transaction that takes a command's move (as the memory store), else rows."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[Any] = []

    def stage_summary_move(self, key: Any, elapsed: Any, rows: Any) -> None:
        assert type(elapsed) is timedelta
        assert type(rows) is tuple
        self.moves.append((key, elapsed, rows))
        self.rows.extend(summaries.move_rows(key, memory._micros(elapsed)) + rows)


@settings(max_examples=300, deadline=None)
@given(
    i=st.integers(0, len(_VERSIONS) - 2),
    created=zones,
    updated=zones,
    at_zone=zones,
    channel=channels,
    customer=customers,
    minutes=st.integers(-10_000, 10_000),
)
def test_a_move_stands_for_the_rows_a_row_store_is_given(
    i: int, created: str, updated: str, at_zone: str, channel: Any, customer: Any, minutes: int
) -> None:
    """move_rows(key, microseconds of the elapsed time) + the other rows: the rows a
    transaction without stage_summary_move gets, in order, item types and all."""
    before, after = _VERSIONS[i], _VERSIONS[i + 1]
    before = _hostile(before, created, updated, None, None)
    at = _shift(after.updated_at + timedelta(minutes=minutes), at_zone)
    after = attrs.evolve(_hostile(after, created, "utc", channel, customer), updated_at=at)
    moves, rows = _Moves(), _Rows()
    summaries.stage(moves, _ENGINE, before, after, at)
    summaries.stage(rows, _ENGINE, before, after, at)
    assert _typed(moves.rows) == _typed(rows.rows)
    assert len(moves.moves) == 1
    assert moves.calls == 0
    assert rows.calls == 1
    (key, elapsed, _), changed = moves.moves[0], before.state != after.state
    assert key[4] != "" if changed else key[4] == ""
    assert elapsed == at - before.updated_at


class _Elapsed:
    """What a planted ``updated_at`` gives subtracted from a time: not a timedelta."""

    days, seconds, microseconds = 1, 2, 3


class _Planted:
    def __rsub__(self, other: Any) -> _Elapsed:
        return _Elapsed()


def test_an_elapsed_time_that_is_no_timedelta_goes_as_rows() -> None:
    """A subtraction giving something else: its days, seconds and microseconds read as
    before, and the rows given to stage_summary (the move is for timedeltas only)."""
    for before, after in itertools.pairwise(_VERSIONS):
        planted = attrs.evolve(before)
        object.__setattr__(planted, "updated_at", _Planted())
        moves, rows = _Moves(), _Rows()
        summaries.stage(moves, _ENGINE, planted, after, after.updated_at)
        summaries.stage(rows, _ENGINE, planted, after, after.updated_at)
        assert moves.moves == []
        assert moves.calls == rows.calls == 1
        assert _typed(moves.rows) == _typed(rows.rows)
        assert moves.rows[0][6] == (1 * 86_400 + 2) * 1_000_000 + 3


def test_micros_is_summaries_micros() -> None:
    base = _VERSIONS[0].updated_at
    for delta in (
        timedelta(0),
        timedelta(microseconds=-1),
        timedelta(days=-3, seconds=5, microseconds=7),
        timedelta.max,
        timedelta.min,
    ):
        try:
            later = base + delta
        except OverflowError:
            assert memory._micros(delta) == (
                (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            )
            continue
        assert memory._micros(delta) == summaries._micros(base, later)


# --- the memory store: counted moves against added rows -----------------------------------

_DAYS = ["2026-12-03", Text("2026-12-03"), "2026-12-04"]
_STATES = ["received", Text("received"), "evaluating"]
_CREATED = ["", "2026-12-03", Text("2026-12-02")]
_ELAPSED = [
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(seconds=-90, microseconds=3),
    timedelta(days=400, seconds=1),
    timedelta.max,  # two of them overflow a timedelta: the sum goes on in microseconds
    timedelta.min,
]
_OTHER = [
    ("first", "2026-12-03", "requirement", "0", "", 1, 0),
    ("outcome", Text("2026-12-03"), "requirement", "closed", "", 1, 0),
    ("count", "2026-12-03", "requirement", "state", "received", -1, 0),
    ("shipped", "2026-12-03", "contract", "C1", "P", 1, 10**30),
]

moves_st = st.tuples(
    st.just("move"),
    st.tuples(
        st.sampled_from(_DAYS),
        st.just("requirement"),
        st.sampled_from(_STATES),
        st.sampled_from(_STATES),
        st.sampled_from(_CREATED),
    ),
    st.sampled_from(_ELAPSED),
    st.lists(st.sampled_from(_OTHER), max_size=2).map(tuple),
)
rows_st = st.tuples(
    st.just("rows"),
    st.lists(st.sampled_from(_OTHER), max_size=3),
    st.sampled_from([tuple, list]),
)
transactions = st.tuples(
    st.lists(st.one_of(moves_st, rows_st), min_size=1, max_size=3),
    st.sampled_from(["commit", "commit", "commit", "fail", "rebuild"]),
)


def _rows_of(op: Any) -> list[Any]:
    if op[0] == "move":
        _, key, elapsed, other = op
        return [*summaries.move_rows(key, memory._micros(elapsed)), *other]
    return list(op[1])


class _Failed(Exception):
    pass


def _run(store: memory.MemoryStore, txs: list[Any]) -> dict[Any, list[int]]:
    """Run ``txs`` on ``store``; the sums add_summary_rows makes of the same rows."""
    expected: dict[Any, list[int]] = {}
    for ops, end in txs:
        if end == "rebuild":
            rows = [row for op in ops for row in _rows_of(op)]
            with store.transaction() as tx:
                tx.replace_summary(rows)
            expected = {}
            add_summary_rows(expected, rows)
            continue
        try:
            with store.transaction() as tx:
                for op in ops:
                    if op[0] == "move":
                        tx.stage_summary_move(*op[1:])
                    else:
                        tx.stage_summary(op[2](op[1]))
                if end == "fail":
                    raise _Failed
        except _Failed:
            continue
        for op in ops:
            add_summary_rows(expected, _rows_of(op))
    return expected


def _check(store: memory.MemoryStore, expected: dict[Any, list[int]]) -> None:
    got = store._summary
    assert list(got.items()) == list(expected.items())
    assert [tuple(map(type, k)) for k in got] == [tuple(map(type, k)) for k in expected]
    with store.transaction() as tx:
        summary = tx.summary()
    assert summary == [(m, day[:7], k, a, b, n, v) for (m, day, k, a, b), (n, v) in got.items()]


@settings(max_examples=300, deadline=None)
@given(txs=st.lists(transactions, max_size=8), bound=st.sampled_from([4096, 1, 2]))
def test_the_memory_store_sums_moves_as_the_rows_they_stand_for(txs: list[Any], bound: int) -> None:
    """Moves and rows mixed (one or several a transaction, failed ones, rebuilds, equal
    keys of str subclasses, dwell sums past timedelta's range, the moves kept apart
    bounded at one or two): the sums, their order and summary() are add_summary_rows'."""
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(memory, "_MAX_MOVES", bound)
        store = memory.MemoryStore()
        expected = _run(store, txs)
        _check(store, expected)


def test_dwell_past_timedeltas_range_is_summed_in_microseconds() -> None:
    store = memory.MemoryStore()
    key = ("2026-12-03", "requirement", "received", "evaluating", "2026-12-03")
    for _ in range(5):
        with store.transaction() as tx:
            tx.stage_summary_move(key, timedelta.max, ())
    dwell = store._summary["dwell", "2026-12-03", "requirement", "received", ""]
    assert dwell == [5, 5 * memory._micros(timedelta.max)]
    (made,) = store._summary_moves.values()
    assert made[0] == 4  # counted
    assert made[2] != 0  # and spilled into microseconds


def test_a_move_after_rows_and_rows_after_a_move_are_staged_in_order() -> None:
    store = memory.MemoryStore()
    key = (Text("2026-12-03"), "requirement", "received", "evaluating", "2026-12-03")
    with store.transaction() as tx:
        tx.stage_summary([_OTHER[2]])
        tx.stage_summary_move(key, timedelta(seconds=1), (_OTHER[0],))
        tx.stage_summary_move(key, timedelta(seconds=2), ())
    with store.transaction() as tx:
        tx.stage_summary_move(key, timedelta(seconds=3), (_OTHER[1],))
        tx.stage_summary((_OTHER[3],))
    expected: dict[Any, list[int]] = {}
    add_summary_rows(expected, [_OTHER[2]])
    add_summary_rows(expected, [*summaries.move_rows(key, 1_000_000), _OTHER[0]])
    add_summary_rows(expected, summaries.move_rows(key, 2_000_000))
    add_summary_rows(expected, [*summaries.move_rows(key, 3_000_000), _OTHER[1], _OTHER[3]])
    _check(store, expected)
    assert store._summary_moves == {}  # each went as rows: nothing counted


# --- a desk: one look-up a command -------------------------------------------------------


def test_a_desk_adds_each_move_once_and_counts_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten requirements along the benchmark's path on one day: each distinct move's
    rows are added once; the sums are those of the rows the same commands stage on a
    transaction without stage_summary_move, and of the audit trail."""
    added: list[Any] = []
    real = memory._add_move

    def add_move(store: Any, key: Any, elapsed: Any) -> None:
        added.append(key)
        real(store, key, elapsed)

    monkeypatch.setattr(memory, "_add_move", add_move)
    with Desk.open("memory://", clock=FakeClock()) as desk:
        for _ in range(10):
            to_closed(desk)
        store = desk.store
        got = store._summary
        assert len(added) == len(set(added)) == len(store._summary_moves) == 6
        assert sum(made[0] for made in store._summary_moves.values()) == 10 * 8 - 6
        with store.transaction() as tx:
            rebuilt: dict[Any, list[int]] = {}
            add_summary_rows(rebuilt, summaries.rebuild_rows(tx, desk.engines, []))
    assert {k: v for k, v in got.items() if v != [0, 0]} == rebuilt

    monkeypatch.setattr(memory._MemoryTransaction, "stage_summary_move", None)
    with Desk.open("memory://", clock=FakeClock()) as desk:
        for _ in range(10):
            to_closed(desk)
        assert list(desk.store._summary.items()) == list(got.items())
        assert desk.store._summary_moves == {}


def test_moves_past_the_bound_are_added_before_they_are_forgotten() -> None:
    """Moves counted, then more moves than the bound: the counted commands are in the
    sums (added when the moves kept apart were cleared), each once."""
    a, b, c = (("2026-12-03", "requirement", "received", dest, "2026-12-03") for dest in "xyz")
    equal_a = (Text("2026-12-03"), *a[1:])
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(memory, "_MAX_MOVES", 2)
        store = memory.MemoryStore()
        expected: dict[Any, list[int]] = {}
        for key in (a, a, equal_a, b, b, c, a, a, b):
            with store.transaction() as tx:
                tx.stage_summary_move(key, timedelta(seconds=1), ())
            add_summary_rows(expected, summaries.move_rows(key, 1_000_000))
        assert list(store._summary_moves) == [b]  # cleared at c and at the last b
        _check(store, expected)
