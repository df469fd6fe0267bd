"""Round seven's summary rows against the previous code (issue 15): ``summaries.stage``
with its day by ordinal inline, the created day taken from the command's, rows as
a tuple and facts made rows by concatenation; ``stage_created`` with one creation
day; the identity-first dimension test; the memory transaction that keeps a
staged tuple uncopied and adds the rows inline at commit.

The previous functions are copied here as they were (main 76c0b6d); every test
compares rows (values and the types of each item) or sums on hostile input:
times in other zones and with ``fold=1``, ``datetime`` subclasses, naive times
(refused as before), ``str`` subclasses in the dimensions, huge amounts.
"""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Customer, Desk, summaries
from reqmgmt.demo import run_demo
from reqmgmt.storage import memory
from reqmgmt.storage.base import add_summary_rows
from reqmgmt.testing import FakeClock

from ..conftest import to_closed
from .test_steps_summaries import _ENGINE, _VERSIONS

# --- the previous code ---------------------------------------------------------------------


def _old_other_facts(record: Any) -> tuple[Any, ...]:
    kind: str = record.RECORD_KIND
    day = summaries._day(record.created_at)
    facts: list[Any] = []
    channel = getattr(record, "channel", None)
    if channel is not None:
        facts.append(("count", day, kind, "channel", channel))
    customer = getattr(record, "customer", None)
    if customer is not None:
        facts.append(("count", day, kind, "category", customer.category))
    cls = getattr(record, "contract_class", None)
    if cls is not None:
        facts.append(("count", day, kind, "class", cls))
    if kind == "return":
        facts.append(("returns", day, kind, "customer", record.customer.id))
        facts.append(("returns", day, kind, "product", record.product))
        report = record.report
        if report is not None and report.defect_category is not None:
            facts.append(("returns", day, kind, "defect", report.defect_category))
        if record.judgement is not None:
            facts.append(("returns", day, kind, "judgement", record.judgement))
        if record.capa is not None:
            facts.append(("returns", day, kind, "capa", "opened"))
    return tuple(facts)


def _old_finished_facts(record: Any, final: frozenset[str]) -> tuple[Any, ...]:
    state = record.state
    if state not in final:
        return ()
    kind: str = record.RECORD_KIND
    end = record.updated_at
    done = summaries._day(end)
    facts: list[Any] = [
        ("outcome", done, kind, state, ""),
        ("cycle", done, kind, summaries._bucket(summaries._micros(record.created_at, end)), ""),
    ]
    if record.due_at is not None:
        facts.append(("ontime", done, kind, "on" if end <= record.due_at else "late", ""))
    return tuple(facts)


def _old_record_facts(record: Any, final: frozenset[str]) -> tuple[Any, ...]:
    state = ("count", summaries._day(record.created_at), record.RECORD_KIND, "state", record.state)
    return (state, *_old_other_facts(record), *_old_finished_facts(record, final))


def _old_delta(old: Any, new: Any) -> list[Any]:
    gone = [(*f, -1, 0) for f in old if f not in new]
    came = [(*f, 1, 0) for f in new if f not in old]
    return gone + came


def _old_stage(tx: Any, engine: Any, before: Any, after: Any, at: datetime) -> None:
    """summaries.stage at 76c0b6d (its dimension test by getattr, as the generated one was)."""
    try:
        put = tx.stage_summary
    except AttributeError:
        return
    if put is None:
        return
    final = engine.final
    kind = engine.kind
    day = summaries._day(at)
    state, dest = before.state, after.state
    d = at - before.updated_at
    micros = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
    rows: list[Any]
    if dest != state:
        created = summaries._day(before.created_at)
        rows = [
            ("dwell", day, kind, state, "", 1, micros),
            ("count", created, kind, "state", state, -1, 0),
            ("count", created, kind, "state", dest, 1, 0),
        ]
    else:
        rows = [("dwell", day, kind, state, "", 0, micros)]
    if dest in final:
        if state in final:
            old, new = _old_finished_facts(before, final), _old_finished_facts(after, final)
            if old != new:
                rows.extend(_old_delta(old, new))
        else:
            rows += [(*f, 1, 0) for f in _old_finished_facts(after, final)]
    elif state in final:
        old, new = _old_finished_facts(before, final), _old_finished_facts(after, final)
        if old != new:
            rows.extend(_old_delta(old, new))
    names = [n for n in summaries._DIMENSION_FIELDS if hasattr(before, n)]
    changed = tuple(getattr(before, n) for n in names) != tuple(getattr(after, n) for n in names)
    if kind == "return" or changed:
        old, new = _old_other_facts(before), _old_other_facts(after)
        if old != new:
            rows.extend(_old_delta(old, new))
    initial = engine.lifecycle.initial
    if state == initial and dest != initial and summaries._first_move(tx, before):
        micros = summaries._micros(before.created_at, at)
        rows.append(("first", day, kind, summaries._bucket(micros), "", 1, 0))
    if kind == "contract" and before.lines is not after.lines:
        rows.extend(
            summaries._shipped_rows(
                day,
                after.customer.id,
                summaries._shipped(before.lines),
                summaries._shipped(after.lines),
            )
        )
    put(rows)


def _old_stage_created(tx: Any, engine: Any, records: Any) -> None:
    try:
        put = tx.stage_summary
    except AttributeError:
        return
    if put is None:
        return
    final = summaries._final(engine)
    kind = engine.kind
    rows: list[Any] = []
    for record in records:
        rows += [(*f, 1, 0) for f in _old_record_facts(record, final)]
        if kind == "survey":
            rows.extend(summaries._survey_rows(record))
        elif kind == "contract":
            shipped = summaries._shipped(record.lines)
            if shipped:
                rows.extend(
                    summaries._shipped_rows(
                        summaries._day(record.created_at), record.customer.id, {}, shipped
                    )
                )
    if rows:
        put(rows)


# --- fixtures -------------------------------------------------------------------------------


class _Tx:
    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.calls = 0

    def stage_summary(self, rows: Any) -> None:
        self.calls += 1
        self.rows.extend(rows)

    def audit(self, ref: str) -> list[Any]:
        return []


class Text(str):
    """A str subclass: equal to (and hashed as) its plain text, not the same type."""


class Stamp(datetime):
    """A datetime subclass: its day goes by _day_of, as before."""


_NEW_YORK = ZoneInfo("America/New_York")
_KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14: the local date is a day ahead


def _shift(at: datetime, how: str) -> datetime:
    """The same instant (or a near one) as ``at`` in a hostile form."""
    if how == "utc":
        return at
    if how == "sub":
        return Stamp.fromtimestamp(at.timestamp(), UTC)
    if how == "plus8":
        return at.astimezone(timezone(timedelta(hours=8)))
    if how == "kiritimati":
        return at.astimezone(_KIRITIMATI)
    if how == "fold":  # the repeated hour of New York's autumn change, its second pass
        return datetime(2026, 11, 1, 1, 30, tzinfo=_NEW_YORK, fold=1)
    if how == "fold0":
        return datetime(2026, 11, 1, 1, 30, tzinfo=_NEW_YORK)
    if how == "midnight":  # the last microsecond of a UTC day
        return datetime(at.year, at.month, at.day, 23, 59, 59, 999_999, tzinfo=UTC)
    if how == "far":  # huge amounts: centuries apart (the latest time a record takes)
        return datetime(2199, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    if how == "early":
        return datetime(1900, 1, 1, tzinfo=UTC)
    raise AssertionError(how)


zones = st.sampled_from(
    ["utc", "sub", "plus8", "kiritimati", "fold", "fold0", "midnight", "far", "early"]
)
channels = st.sampled_from([None, "fax", Text("fax"), Text("email"), "".join(["em", "ail"])])
customers = st.sampled_from(
    [
        None,
        "copy",
        Customer("HK-001", "Hong Kong Trading Ltd", category=Text("strategic")),
        Customer("SZ-002", "Shenzhen Parts", category="important"),
    ]
)


def _typed(rows: Any) -> list[Any]:
    """Rows with the type of each item: a str subclass must stay one."""
    return [(tuple(row), tuple(type(v) for v in row)) for row in rows]


def _hostile(record: Any, created: str, updated: str, channel: Any, customer: Any) -> Any:
    changes: dict[str, Any] = {}
    if created != "utc":
        changes["created_at"] = _shift(record.created_at, created)
    if updated != "utc":
        changes["updated_at"] = _shift(record.updated_at, updated)
    if channel is not None:
        changes["channel"] = channel
    if customer == "copy":
        changes["customer"] = attrs.evolve(record.customer)
    elif customer is not None:
        changes["customer"] = customer
    return attrs.evolve(record, **changes) if changes else record


# --- stage ----------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    i=st.integers(0, len(_VERSIONS) - 2),
    created=zones,
    updated=zones,
    at_zone=zones,
    after_updated=st.sampled_from(["at", "utc", "plus8", "fold"]),
    channel=channels,
    customer=customers,
    minutes=st.integers(-10_000, 10_000),
)
def test_stage_rows_are_the_previous_ones(
    i: int,
    created: str,
    updated: str,
    at_zone: str,
    after_updated: str,
    channel: Any,
    customer: Any,
    minutes: int,
) -> None:
    """Same rows, same order, same item types, whatever zone or subclass the times are
    in, a created day equal to the command's or not, the new version's time the
    command's very object or not, dimensions kept, equal, or changed."""
    before, after = _VERSIONS[i], _VERSIONS[i + 1]
    before = _hostile(before, created, updated, None, None)
    at = _shift(after.updated_at + timedelta(minutes=minutes), at_zone)
    after = attrs.evolve(
        _hostile(after, created, "utc", channel, customer),
        updated_at=at if after_updated == "at" else _shift(at, after_updated),
    )
    fast, slow = _Tx(), _Tx()
    summaries.stage(fast, _ENGINE, before, after, at)
    _old_stage(slow, _ENGINE, before, after, at)
    assert _typed(fast.rows) == _typed(slow.rows)
    assert fast.calls == slow.calls == 1


def test_stage_takes_the_created_day_from_the_command_only_on_the_same_utc_date() -> None:
    """A record created the UTC day before (a minute before midnight) or in another
    zone whose local date differs: the created day is its own, not the command's."""
    before, after = _VERSIONS[0], _VERSIONS[1]  # received -> evaluating: a count moves
    at = datetime(2026, 12, 3, 0, 0, 30, tzinfo=UTC)
    for created_at in (
        datetime(2026, 12, 2, 23, 59, tzinfo=UTC),
        datetime(2026, 12, 3, 7, 59, tzinfo=timezone(timedelta(hours=8))),  # 12-02 in UTC
        datetime(2026, 12, 3, 0, 0, tzinfo=UTC),
        Stamp(2026, 12, 3, 0, 0, tzinfo=UTC),
    ):
        b = attrs.evolve(before, created_at=created_at, updated_at=created_at)
        a = attrs.evolve(after, created_at=created_at, updated_at=at)
        fast, slow = _Tx(), _Tx()
        summaries.stage(fast, _ENGINE, b, a, at)
        _old_stage(slow, _ENGINE, b, a, at)
        assert _typed(fast.rows) == _typed(slow.rows)
        counts = {row[1] for row in fast.rows if row[0] == "count"}
        assert counts == {summaries._day_of(created_at)}


def test_stage_refuses_naive_times_as_before() -> None:
    """A naive command time, or a naive creation time planted in a record, fails with
    the ValueError it failed with (nothing staged)."""
    before, after = _VERSIONS[0], _VERSIONS[1]
    naive = datetime(2026, 12, 3, 9, 0)
    for stage in (summaries.stage, _old_stage):
        tx = _Tx()
        with pytest.raises(ValueError, match="has no zone"):
            stage(tx, _ENGINE, before, after, naive)
        assert tx.calls == 0
    planted = attrs.evolve(before)
    object.__setattr__(planted, "created_at", naive)
    at = after.updated_at
    for stage in (summaries.stage, _old_stage):
        tx = _Tx()
        with pytest.raises(ValueError, match="has no zone"):
            stage(tx, _ENGINE, planted, after, at)
        assert tx.calls == 0


class _Keep:
    def __init__(self) -> None:
        self.staged: list[Any] = []

    def stage_summary(self, rows: Any) -> None:
        self.staged.append(rows)

    def audit(self, ref: str) -> list[Any]:
        return []


def test_stage_rows_are_a_tuple_of_tuples() -> None:
    """What the memory transaction keeps uncopied is immutable all the way down."""
    for before, after in itertools.pairwise(_VERSIONS):
        tx = _Keep()
        summaries.stage(tx, _ENGINE, before, after, after.updated_at)
        (rows,) = tx.staged
        assert type(rows) is tuple
        assert all(type(row) is tuple and len(row) == 7 for row in rows)


# --- stage_created and the facts ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    picked=st.lists(st.integers(0, len(_VERSIONS) - 1), max_size=4),
    created=zones,
    updated=zones,
    channel=channels,
    customer=customers,
)
def test_stage_created_and_record_facts_are_the_previous_ones(
    picked: list[int], created: str, updated: str, channel: Any, customer: Any
) -> None:
    """One creation day for the state and the dimensions: the same facts and rows."""
    records = [_hostile(_VERSIONS[i], created, updated, channel, customer) for i in picked]
    final = summaries._final(_ENGINE)
    for record in records:
        assert _typed(summaries.record_facts(record, final)) == _typed(
            _old_record_facts(record, final)
        )
        assert _typed(summaries._other_facts(record)) == _typed(_old_other_facts(record))
        assert _typed(summaries._finished_facts(record, final)) == _typed(
            _old_finished_facts(record, final)
        )
    fast, slow = _Tx(), _Tx()
    summaries.stage_created(fast, _ENGINE, records)
    _old_stage_created(slow, _ENGINE, records)
    assert _typed(fast.rows) == _typed(slow.rows)
    assert fast.calls == slow.calls


def test_finished_facts_take_the_given_day_only_for_that_very_time() -> None:
    """The day handed in is used when the record's time is the object it is the day of;
    an equal time in another object (or another zone) is looked up."""
    final = summaries._final(_ENGINE)
    closed = _VERSIONS[-1]
    end = closed.updated_at
    assert summaries._finished_facts(closed, final, end, "sentinel")[0][1] == "sentinel"
    same = datetime.fromtimestamp(end.timestamp(), UTC)
    other = end.astimezone(_KIRITIMATI)
    for at in (same, other, None):
        facts = summaries._finished_facts(closed, final, at, "sentinel")
        assert facts == _old_finished_facts(closed, final)


def test_delta_is_the_previous_one() -> None:
    facts = [
        ("count", "2026-12-03", "requirement", "channel", Text("fax")),
        ("count", "2026-12-03", "requirement", "channel", "fax"),
        ("count", "2026-12-03", "requirement", "category", "strategic"),
        ("outcome", "2026-12-02", "requirement", "closed", ""),
    ]
    for old in (facts[:0], facts[:1], facts[1:3], facts):
        for new in (facts[:0], facts[2:], facts[::2], facts):
            assert _typed(summaries._delta(old, new)) == _typed(_old_delta(old, new))


# --- the dimension test ---------------------------------------------------------------------


class Weird:
    """Equal to nothing, itself included: a tuple still finds it equal to itself."""

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class Same:
    """Equal to everything."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__


def test_identity_first_dimension_test_is_the_tuple_comparison() -> None:
    """Identical fields: unchanged without building the tuples (as the tuples said);
    otherwise the tuples decide, odd __eq__ included."""

    @attrs.frozen
    class Dims:
        customer: Any = None
        channel: Any = None
        contract_class: Any = None

    weird, same = Weird(), Same()
    values = [None, "fax", Text("fax"), weird, Weird(), same, Same(), 10**100, float("nan")]
    changed = summaries._dimensions_changed(Dims())
    for a in values:
        for b in values:
            for before, after in (
                (Dims(customer=a), Dims(customer=b)),
                (Dims(channel=a, contract_class=b), Dims(channel=a, contract_class=a)),
                (Dims(a, a, a), Dims(b, a, b)),
            ):
                expected = attrs.astuple(before, recurse=False) != attrs.astuple(
                    after, recurse=False
                )
                assert changed(before, after) is expected


# --- the memory transaction -----------------------------------------------------------------

_ROWS = [
    ("dwell", "2026-12-03", "requirement", "received", "", 1, 10**30),
    ("count", "2026-12-03", "requirement", "state", Text("received"), -1, 0),
    ("count", "2026-12-03", "requirement", "state", "received", 1, 0),
    ("dwell", "2026-12-03", "requirement", "received", "", 0, -(10**30) + 7),
    ("count", Text("2026-12-03"), "requirement", "state", "evaluating", 2**70, 0),
]


def _sums(batches: list[Any]) -> dict[Any, list[int]]:
    store = memory.MemoryStore()
    for batch in batches:
        with store.transaction() as tx:
            for rows in batch:
                tx.stage_summary(rows)
    return store._summary


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(_ROWS), max_size=4),
                st.sampled_from([tuple, list]),
            ),
            max_size=3,
        ),
        max_size=4,
    )
)
def test_memory_commit_sums_what_add_summary_rows_sums(batches: list[Any]) -> None:
    """Tuples kept uncopied, lists copied, several calls in one transaction mixed: the
    sums (values, key order, huge counts) are add_summary_rows' over the same rows."""
    staged = [[kind(rows) for rows, kind in batch] for batch in batches]
    expected: dict[Any, list[int]] = {}
    for batch in staged:
        for rows in batch:
            add_summary_rows(expected, rows)
    got = _sums(staged)
    assert list(got.items()) == list(expected.items())
    assert [type(k[1]) for k in got] == [type(k[1]) for k in expected]


def _staged_then_failed(store: memory.MemoryStore) -> None:
    with store.transaction() as tx:
        tx.stage_summary((_ROWS[2],))
        raise RuntimeError("failed")


def test_memory_transaction_copies_a_list_it_is_given() -> None:
    """A caller's list changed after staging changes nothing; a failed transaction adds
    nothing; a tuple staged first then a list: both are added."""
    store = memory.MemoryStore()
    rows = [_ROWS[0]]
    with store.transaction() as tx:
        tx.stage_summary(rows)
        rows.append(_ROWS[2])
        rows[0] = _ROWS[4]
    assert list(store._summary) == [_ROWS[0][:5]]
    with pytest.raises(RuntimeError, match="failed"):
        _staged_then_failed(store)
    assert list(store._summary) == [_ROWS[0][:5]]
    first = (_ROWS[2],)
    with store.transaction() as tx:
        tx.stage_summary(first)
        tx.stage_summary([_ROWS[2], _ROWS[1]])
    assert first == (_ROWS[2],)
    # _ROWS[1]'s key is the same (an equal Text)
    assert store._summary[_ROWS[2][:5]] == [1 + 1 - 1, 0]


def test_memory_commit_refuses_a_row_of_the_wrong_length_as_before() -> None:
    for bad in ((_ROWS[0][:6],), (_ROWS[0] + (1,),)):
        expected: dict[Any, list[int]] = {}
        with pytest.raises(ValueError, match="values to unpack") as old:
            add_summary_rows(expected, bad)
        store = memory.MemoryStore()
        tx = store.transaction()
        tx.stage_summary(bad)
        with pytest.raises(ValueError, match="values to unpack") as new:
            tx.__exit__(None, None, None)
        assert str(new.value) == str(old.value)


def test_a_desk_reports_the_same_sums_as_the_previous_stage(monkeypatch: Any) -> None:
    """The benchmark's path on two memory desks, one staging with the previous code:
    the same summary sums, key for key and in order."""
    sums = []
    for stage, created in (
        (summaries.stage, summaries.stage_created),
        (_old_stage, _old_stage_created),
    ):
        monkeypatch.setattr(summaries, "stage", stage)
        monkeypatch.setattr(summaries, "stage_created", created)
        with Desk.open("memory://", clock=FakeClock()) as desk:
            for _ in range(3):
                to_closed(desk)
            store = desk.store
            sums.append(list(store._summary.items()))
    assert sums[0] == sums[1]
    assert len(sums[0]) > 5


class _Collect:
    """A transaction's audit, its staged summary rows collected instead."""

    def __init__(self, tx: Any) -> None:
        self.tx = tx
        self.rows: list[Any] = []

    def stage_summary(self, rows: Any) -> None:
        self.rows.append(rows)

    def audit(self, ref: str) -> Any:
        return self.tx.audit(ref)


def test_the_demo_stages_the_previous_rows_for_every_kind(monkeypatch: Any) -> None:
    """The demo's scenario (requirements, contracts with shipments, returns with
    dispositions and CAPA, surveys): every command's and creation's rows are the
    previous code's, item types included; then they are staged as they were."""
    new_stage, new_created = summaries.stage, summaries.stage_created
    seen: dict[str, set[str]] = {"stage": set(), "created": set()}

    def facts(record: Any, final: frozenset[str]) -> None:
        """The facts, and the rows they make, of every record a command or creation saw."""
        others, finished = _old_other_facts(record), _old_finished_facts(record, final)
        for tail in ((), (1, 0), (-1, 0)):
            rows = summaries._other_facts(record, None, tail)
            assert _typed(rows) == _typed([f + tail for f in others])
            rows = summaries._finished_facts(record, final, None, "", tail)
            assert _typed(rows) == _typed([f + tail for f in finished])

    def stage(tx: Any, engine: Any, before: Any, after: Any, at: datetime) -> None:
        facts(before, engine.final)
        facts(after, engine.final)
        fast, slow = _Collect(tx), _Collect(tx)
        new_stage(fast, engine, before, after, at)
        _old_stage(slow, engine, before, after, at)
        assert [_typed(r) for r in fast.rows] == [_typed(r) for r in slow.rows]
        seen["stage"].add(engine.kind)
        new_stage(tx, engine, before, after, at)

    def stage_created(tx: Any, engine: Any, records: Any) -> None:
        for record in records:
            facts(record, summaries._final(engine))
        fast, slow = _Collect(tx), _Collect(tx)
        new_created(fast, engine, records)
        _old_stage_created(slow, engine, records)
        assert [_typed(r) for r in fast.rows] == [_typed(r) for r in slow.rows]
        seen["created"].add(engine.kind)
        new_created(tx, engine, records)

    monkeypatch.setattr(summaries, "stage", stage)
    monkeypatch.setattr(summaries, "stage_created", stage_created)
    assert run_demo("memory://", io.StringIO(), start=datetime(2026, 3, 2, 1, 0, tzinfo=UTC)) == 0
    assert {"requirement", "contract", "return"} <= seen["stage"]
    assert {"requirement", "contract", "return", "survey"} <= seen["created"]


# --- a return's facts: computed only when a field they read is another object ---------------


def _return_pairs() -> list[tuple[Any, Any, Any]]:
    """The demo's return commands: (engine, before, after)."""
    pairs: list[tuple[Any, Any, Any]] = []
    new_stage = summaries.stage

    def spy(tx: Any, engine: Any, before: Any, after: Any, at: datetime) -> None:
        if engine.kind == "return":
            pairs.append((engine, before, after))
        new_stage(tx, engine, before, after, at)

    summaries.stage = spy  # type: ignore[assignment]
    try:
        run_demo("memory://", io.StringIO(), start=datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    finally:
        summaries.stage = new_stage  # type: ignore[assignment]
    return pairs


_RETURNS = _return_pairs()


def _return_variants(after: Any) -> list[Any]:
    """``after`` with each field the return facts read kept, copied or changed."""
    other = Customer("SZ-002", "Shenzhen Parts", category=Text("important"))
    variants = [
        after,
        attrs.evolve(after),  # every field the same object
        attrs.evolve(after, customer=attrs.evolve(after.customer)),
        attrs.evolve(after, customer=other),
        attrs.evolve(after, product=Text(after.product)),
        attrs.evolve(after, product=after.product + "-B"),
        attrs.evolve(after, created_at=after.created_at - timedelta(days=1)),
        attrs.evolve(after, created_at=after.created_at.astimezone(_KIRITIMATI)),
        attrs.evolve(after, judgement=None if after.judgement else "accepted"),
        attrs.evolve(after, capa=None),
        attrs.evolve(after, report=None),
    ]
    if after.report is not None:
        variants.append(attrs.evolve(after, report=attrs.evolve(after.report)))
    return variants


def test_return_rows_are_the_previous_ones_whatever_field_changes() -> None:
    kinds = set()
    for engine, before, after in _RETURNS:
        for variant in _return_variants(after):
            for b, a in ((before, variant), (variant, before), (variant, variant)):
                fast, slow = _Tx(), _Tx()
                summaries.stage(fast, engine, b, a, a.updated_at)
                _old_stage(slow, engine, b, a, a.updated_at)
                assert _typed(fast.rows) == _typed(slow.rows)
                kinds.update(row[0] for row in fast.rows)
    assert "returns" in kinds  # some variants did change the return facts
    assert len(_RETURNS) > 5


def test_same_return_is_identity_of_every_field_read() -> None:
    """True only when every field is the very object (then the facts are equal);
    a class without one of the fields, or a return without a customer: never."""
    engine, before, after = _RETURNS[-1]
    same = summaries._same_return(before)
    assert summaries._SAME_RETURNS[type(before)] is same
    for variant in _return_variants(after):
        read = [*summaries._RETURN_FIELDS, "channel", "contract_class", "RECORD_KIND"]
        identical = type(variant) is type(after) and all(
            getattr(variant, n, None) is getattr(after, n, None) for n in read
        )
        assert same(after, variant) is identical
        if same(after, variant):
            assert summaries._other_facts(after) == summaries._other_facts(variant)

    @attrs.frozen
    class NoCapa:
        created_at: Any = None
        customer: Any = None
        product: Any = None
        report: Any = None
        judgement: Any = None

    assert summaries._same_return(NoCapa())(NoCapa(), NoCapa()) is False
    planted = attrs.evolve(before)
    object.__setattr__(planted, "customer", None)
    for stage in (summaries.stage, _old_stage):
        with pytest.raises(AttributeError, match="id"):
            stage(_Tx(), engine, planted, planted, planted.updated_at)
