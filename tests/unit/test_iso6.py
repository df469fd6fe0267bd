"""Round six's fast paths, each against the slow answer it replaces.

- ``serialize.iso`` (the identity cache and UTC text written in one function)
  and ``utc_isoformat`` (microseconds by thousands) against ``datetime.isoformat``;
- ``reminders.deadline_changes`` (same-state early answer, ``_earliest`` for
  ``min``) against the previous function, kept here as ``_reference``;
- the memory transaction's ``last_hash`` (the length read by indexing, inlined)
  against the whole trail parsed by ``_trail``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, MemoryStore
from reqmgmt.lifecycle.base import Engine
from reqmgmt.model import Record
from reqmgmt.reminders import (
    _STEP_RULES,
    _UNKNOWN,
    Deadlines,
    _step_rule,
    _until,
    deadline_changes,
)
from reqmgmt.serialize import iso, remembered, utc_isoformat
from reqmgmt.storage import memory
from reqmgmt.testing.contract import make_event, make_requirement
from tests.conftest import receive

ZONES = st.sampled_from(
    [UTC, None, timezone(timedelta(0)), timezone(timedelta(hours=8)),
     timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("UTC"), ZoneInfo("Asia/Hong_Kong")]
)  # fmt: skip


class Sub(datetime):
    """A subclass overriding isoformat: iso writes datetime.isoformat's text regardless."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "not this"


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # the same failure is part of the answer
        return "raised", type(exc)


# --- iso / utc_isoformat ------------------------------------------------------------------


@given(st.datetimes(timezones=ZONES), st.booleans(), st.booleans())
def test_iso_is_datetime_isoformat(value: datetime, fold: bool, subclass: bool) -> None:
    value = value.replace(fold=int(fold))
    if subclass:
        value = Sub(*value.timetuple()[:6], value.microsecond, value.tzinfo, fold=value.fold)
    expected = datetime.isoformat(value)
    # A fresh object (an identity miss), then the same one again (a hit).
    assert iso(value) == expected
    assert iso(value) == expected
    assert utc_isoformat(value) == expected
    assert remembered(utc_isoformat)(value) == expected


@given(st.datetimes(timezones=st.just(UTC)), st.lists(st.integers(0, 999_999), max_size=20))
def test_one_second_every_microsecond(value: datetime, micros: list[int]) -> None:
    """The remembered second (a hit in _SECONDS) joined to any microseconds, 0 and 999999 too."""
    for micro in [0, 1, 999, 1000, 999_999, *micros]:
        v = value.replace(microsecond=micro)
        assert iso(v) == datetime.isoformat(v)
        assert utc_isoformat(v) == datetime.isoformat(v)


def test_iso_of_not_a_datetime_raises_as_isoformat_does() -> None:
    for bad in (datetime(2026, 1, 1).date(), "2026-01-01", None, 3):
        assert _outcome(iso, bad) == _outcome(datetime.isoformat, bad) == ("raised", TypeError)


def test_iso_after_its_memory_fills() -> None:
    """Past 4,096 remembered objects the memory is emptied: answers stay right."""
    base = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
    values = [base + timedelta(microseconds=37 * i) for i in range(5000)]
    assert [iso(v) for v in values] == [v.isoformat() for v in values]
    assert [iso(v) for v in values[:10]] == [v.isoformat() for v in values[:10]]


# --- deadline_changes ---------------------------------------------------------------------


def _reference(
    deadlines: Deadlines,
    engine: Engine,
    old: Record | None,
    new_state: str,
    now: datetime,
    *,
    created: Record | None = None,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """reminders.deadline_changes as it was before round six (main 82594a5)."""
    waiting = engine.waiting
    calendar = deadlines.calendar
    out: dict[str, Any] = {}
    old_state = None if old is None else old.state
    due = (created.due_at if created is not None else None) if old is None else old.due_at
    paused_since = None if old is None else old.paused_since
    if old is not None and old_state in waiting and new_state not in waiting:
        waited = calendar.working_time(paused_since or now, now)
        if due is not None and waited > timedelta(0):
            due = calendar.add(due, waited)
            out["due_at"] = due
        out["paused_since"] = None
        out["paused_seconds"] = old.paused_seconds + int(waited.total_seconds())
        paused_since = None
    elif new_state in waiting and old_state not in waiting:
        out["paused_since"] = now
        paused_since = now
    step, step_due = (None, None) if old is None else (old.step, old.step_due_at)
    if new_state != old_state:
        step, step_due = None, None
        rules = deadlines.rules
        found = (
            _STEP_RULES.get((rules.version, engine.kind, new_state), _UNKNOWN)
            if "step_deadline" in rules.tables
            else None
        )
        if found is _UNKNOWN:
            found = _step_rule(deadlines, engine.kind, new_state, now.date())
        if found is not None:
            step = found[0]
            if found[2] is not None:
                step_due = _until(deadlines, found[2], old, changes)
                step = step if step_due is not None else None
            elif found[1] is not None:
                step_due = calendar.add(now, found[1])
        if old is None or (step, step_due) != (old.step, old.step_due_at):
            out["step"] = step
            out["step_due_at"] = step_due
    running = [d for d in (due, step_due) if d is not None]
    final = new_state in engine.final
    nxt = None if final or paused_since is not None or not running else min(running)
    if old is None or nxt != old.next_deadline:
        out["next_deadline"] = nxt
    return out


@pytest.fixture(scope="module")
def setting() -> Iterator[tuple[Desk, Record]]:
    with Desk.open("memory://") as desk:
        ref = receive(desk)
        yield desk, desk.get(ref)


BASE = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
# Times around BASE in several zones (equal instants in other zones included),
# naive ones (whose comparison with aware ones raises), and none.
TIMES = st.one_of(
    st.none(),
    st.builds(
        lambda minutes, zone: (BASE + timedelta(minutes=minutes)).astimezone(zone),
        st.integers(-20_000, 20_000),
        st.sampled_from([UTC, timezone(timedelta(hours=8)), ZoneInfo("Asia/Shanghai")]),
    ),
    st.builds(
        lambda minutes: datetime(2026, 12, 2) + timedelta(minutes=minutes), st.integers(-99, 99)
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.data(),
    TIMES,
    TIMES,
    TIMES,
    TIMES,
    st.sampled_from(["first_response", "evaluation", None, "步骤"]),
    st.integers(0, 10**6),
    st.integers(-5_000, 5_000),
)
def test_deadline_changes_is_the_reference(
    setting: tuple[Desk, Record],
    data: st.DataObject,
    due: datetime | None,
    step_due: datetime | None,
    paused: datetime | None,
    nxt: datetime | None,
    step: str | None,
    paused_seconds: int,
    minutes: int,
) -> None:
    desk, record = setting
    engine = desk.engine(record.RECORD_KIND)
    states = sorted(s.name for s in engine.lifecycle.states)
    old_state = data.draw(st.sampled_from(states))
    # Half the time the same state (the fast path), as an equal copy or a str subclass.
    new_state = data.draw(
        st.one_of(
            st.sampled_from(states),
            st.just(old_state),
            st.just("".join(old_state)),
            st.builds(type("S", (str,), {}), st.just(old_state)),
        )
    )
    old = attrs.evolve(record, state=old_state, step=step, paused_seconds=paused_seconds)
    # Set past the record's validators: naive times (which a store never holds) must
    # fail the same way in both, not be refused before the comparison.
    for name, value in [
        ("due_at", due), ("step_due_at", step_due), ("paused_since", paused), ("next_deadline", nxt)
    ]:  # fmt: skip
        object.__setattr__(old, name, value)
    now = BASE + timedelta(minutes=minutes)
    deadlines = desk.deadlines()
    changes = {"state": new_state}
    got = _outcome(
        lambda: deadline_changes(deadlines, engine, old, new_state, now, changes=changes)
    )
    want = _outcome(lambda: _reference(deadlines, engine, old, new_state, now, changes=changes))
    assert got == want
    if got[0] == "ok":  # an input passed on is the very object (min keeps the first)
        inputs = [due, step_due, paused, nxt, now]
        for key, value in want[1].items():
            if any(value is i for i in inputs):
                assert got[1][key] is value, key


def test_deadline_changes_of_a_new_record(setting: tuple[Desk, Record]) -> None:
    desk, record = setting
    engine = desk.engine(record.RECORD_KIND)
    for state in sorted(s.name for s in engine.lifecycle.states):
        args = (desk.deadlines(), engine, None, state, BASE)
        assert deadline_changes(*args, created=record) == _reference(*args, created=record)
        assert deadline_changes(*args) == _reference(*args)


# --- the memory store's last hash ---------------------------------------------------------

A, B = "REQ-2026-000001", "REQ-2026-000002"
HASHES = st.one_of(
    st.text(min_size=1, max_size=80),  # surrogates and any other code point included
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    st.text(min_size=300, max_size=2000),
)


def _slow_last_hash(store: MemoryStore, ref: str) -> str | None:
    blob = store._audit.get(ref)
    return memory._trail(blob)[-1][1] if blob else None


def _abort(store: MemoryStore) -> None:
    with store.transaction() as tx:
        tx.append_audit(attrs.evolve(make_event(A, 99), hash="aborted"))
        assert tx.last_hash(A) == "aborted"  # its own staged event first
        raise RuntimeError("abort")


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([A, B]), HASHES), max_size=8), st.booleans())
def test_last_hash_is_the_parsed_trail(events: list[tuple[str, str]], abort: bool) -> None:
    store = MemoryStore()
    with store.transaction() as tx:
        tx.insert(make_requirement(A))
        tx.insert(make_requirement(B))
    for version, (ref, digest) in enumerate(events, 1):
        with store.transaction() as tx:
            tx.append_audit(attrs.evolve(make_event(ref, version), hash=digest))
    if abort:  # an aborted transaction leaves the trail as it was
        with pytest.raises(RuntimeError):
            _abort(store)
    with store.transaction() as tx:
        for ref in (A, B, "REQ-1999-999999", ""):
            slow = _slow_last_hash(store, ref)
            assert tx.last_hash(ref) == slow
    if events:  # the newest written hash, as the events were given
        newest = dict(events)
        with store.transaction() as tx:
            assert {r: tx.last_hash(r) for r in newest} == newest
