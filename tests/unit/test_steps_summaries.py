"""summaries.stage's fast dimension test gives the rows the getattr-by-getattr one gave (15.2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Customer, Desk, summaries
from reqmgmt.testing import FakeClock

from ..conftest import to_closed


def _slow_stage(tx: Any, engine: Any, before: Any, after: Any, at: Any) -> list[Any]:
    """summaries.stage as it was (issue 15.3's first version), for one transaction."""
    final = engine.final
    kind = engine.kind
    day = summaries._day(at)
    state, dest = before.state, after.state
    rows: list[Any] = [
        (
            "dwell",
            day,
            kind,
            state,
            "",
            int(dest != state),
            summaries._micros(before.updated_at, at),
        )
    ]
    if dest != state:
        created = summaries._day(before.created_at)
        rows.append(("count", created, kind, "state", state, -1, 0))
        rows.append(("count", created, kind, "state", dest, 1, 0))
    if state in final or dest in final:
        old, new = summaries._finished_facts(before, final), summaries._finished_facts(after, final)
        if old != new:
            rows.extend(summaries._delta(old, new))
    if (
        kind == "return"
        or getattr(before, "customer", None) is not getattr(after, "customer", None)
        or getattr(before, "channel", None) is not getattr(after, "channel", None)
        or getattr(before, "contract_class", None) is not getattr(after, "contract_class", None)
    ):
        old, new = summaries._other_facts(before), summaries._other_facts(after)
        if old != new:
            rows.extend(summaries._delta(old, new))
    initial = engine.lifecycle.initial
    if state == initial and dest != initial and summaries._first_move(tx, before):
        micros = summaries._micros(before.created_at, at)
        rows.append(("first", day, kind, summaries._bucket(micros), "", 1, 0))
    return rows


class _Tx:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def stage_summary(self, rows: Any) -> None:
        self.rows.extend(rows)

    def audit(self, ref: str) -> list[Any]:
        return []


def _versions() -> list[Any]:
    """A requirement's versions along the benchmark's path."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_closed(desk)
        versions = [desk.get(ref, version=v) for v in range(1, 10)]
        return [desk.engine("requirement"), *versions]


_ENGINE, *_VERSIONS = _versions()
customers = st.sampled_from(
    [
        None,  # the same object
        "copy",  # an equal object
        Customer("HK-001", "Hong Kong Trading Ltd", category="strategic"),
        Customer("SZ-002", "Shenzhen Parts", category="important"),
    ]
)
channels = st.sampled_from([None, "fax", "email", "".join(["f", "ax"])])


@settings(max_examples=200, deadline=None)
@given(
    i=st.integers(0, len(_VERSIONS) - 2),
    customer=customers,
    channel=channels,
    minutes=st.integers(0, 10_000),
)
def test_stage_rows_are_the_slow_paths(i: int, customer: Any, channel: Any, minutes: int) -> None:
    """Dimensions kept (same or equal objects) or changed: the same rows, in the same order."""
    before, after = _VERSIONS[i], _VERSIONS[i + 1]
    changes: dict[str, Any] = {}
    if customer == "copy":
        changes["customer"] = attrs.evolve(after.customer)
    elif customer is not None:
        changes["customer"] = customer
    if channel is not None:
        changes["channel"] = channel
    if changes:
        after = attrs.evolve(after, **changes)
    at = after.updated_at + timedelta(minutes=minutes)
    tx = _Tx()
    summaries.stage(tx, _ENGINE, before, after, at)
    assert tx.rows == _slow_stage(tx, _ENGINE, before, after, at)


def _dimension_values(record: Any) -> tuple[Any, ...]:
    return tuple(
        getattr(record, name) for name in summaries._DIMENSION_FIELDS if hasattr(record, name)
    )


def test_dimension_getters_read_what_getattr_reads() -> None:
    """Per class, the generated test compares the dimension fields the record has, as
    tuples of what getattr reads compare (kept, equal, or changed values)."""
    other = Customer("SZ-002", "Shenzhen Parts", category="important")
    variants = [
        *_VERSIONS,
        attrs.evolve(_VERSIONS[3], customer=attrs.evolve(_VERSIONS[3].customer)),
        attrs.evolve(_VERSIONS[3], customer=other),
        attrs.evolve(_VERSIONS[3], channel="email"),
        attrs.evolve(_VERSIONS[3], channel="".join(["f", "ax"])),
    ]
    for before in variants:
        changed = summaries._dimensions_changed(before)
        assert summaries._DIMENSIONS[type(before)] is changed
        for after in variants:
            expected = _dimension_values(before) != _dimension_values(after)
            assert changed(before, after) is expected


def test_dimension_tests_cover_each_class_its_fields() -> None:
    """A class without some (or all) of the fields compares only those it has."""

    @attrs.frozen
    class Bare:
        state: str = "a"

    @attrs.frozen
    class Channelled:
        channel: str = "fax"
        contract_class: str | None = None

    assert summaries._dimensions_changed(Bare())(Bare(), Bare("b")) is False
    changed = summaries._dimensions_changed(Channelled())
    assert changed(Channelled(), Channelled()) is False
    assert changed(Channelled(), Channelled("email")) is True
    assert changed(Channelled(), Channelled(contract_class="A")) is True


def test_day_is_day_of() -> None:
    """The day by ordinal is the day _day_of writes, for UTC times, other zones and
    subclasses alike; a naive time is refused as before."""
    from datetime import UTC, datetime, timezone

    class Sub(datetime):
        pass

    zone = timezone(timedelta(hours=8))
    times = [
        datetime(2026, 12, 2, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 3, 0, 0, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2026, 12, 3, 7, 59, tzinfo=zone),  # 2026-12-02 in UTC
        Sub(2026, 12, 2, 1, 0, tzinfo=UTC),
    ]
    for at in times:
        assert summaries._day(at) == summaries._day(at) == summaries._day_of(at)
    with pytest.raises(ValueError, match="no zone"):
        summaries._day(datetime(2026, 12, 2))


def test_the_days_memory_is_bounded() -> None:
    from datetime import UTC, datetime

    start = datetime(2000, 1, 1, tzinfo=UTC)
    for i in range(5000):
        summaries._day(start + timedelta(days=i))
    assert 0 < len(summaries._DAYS) <= 4096


def _slow_stage_created(tx: Any, engine: Any, records: Any) -> None:
    """summaries.stage_created as it was before its rows were built inline."""
    if getattr(tx, "stage_summary", None) is None:
        return
    final = summaries._final(engine)
    rows: list[Any] = []
    for record in records:
        rows.extend((*f, 1, 0) for f in summaries.record_facts(record, final))
        if engine.kind == "survey":
            rows.extend(summaries._survey_rows(record))
        if engine.kind == "contract":
            shipped = summaries._shipped(record.lines)
            if shipped:
                rows.extend(
                    summaries._shipped_rows(
                        summaries._day(record.created_at), record.customer.id, {}, shipped
                    )
                )
    if rows:
        tx.stage_summary(rows)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(range(len(_VERSIONS))), max_size=4))
def test_stage_created_rows_are_the_slow_paths(picked: list[int]) -> None:
    """Any batch of records (finished or not, none at all): the same rows, in order."""
    records = [_VERSIONS[i] for i in picked]
    fast, slow = _Tx(), _Tx()
    summaries.stage_created(fast, _ENGINE, records)
    _slow_stage_created(slow, _ENGINE, records)
    assert fast.rows == slow.rows


def test_stage_leaves_a_transaction_without_summaries_alone() -> None:
    class NoSummaries:
        def audit(self, ref: str) -> list[Any]:
            raise AssertionError("not read")

    class Off(NoSummaries):
        stage_summary = None

    for tx in (NoSummaries(), Off()):
        summaries.stage(tx, _ENGINE, _VERSIONS[0], _VERSIONS[1], _VERSIONS[1].updated_at)
        summaries.stage_created(tx, _ENGINE, _VERSIONS)
