"""Step 3's fast paths against the general ones (issue 15, round eight).

- ``WorkCalendar.add`` keeps, per amount, the stretch of local time its last start
  was in (``_slot``) and answers a start in it without walking the calendar: the
  answer is the previous add's, to the field, the tzinfo and the fold, for starts
  clustered around daylight-saving changes (New York, London, Lord Howe's half
  hour), working periods touching midnight and each other or lying in a
  skipped hour, amounts of none to weeks, starts in UTC, other offsets and zones,
  and ``datetime``/``timedelta`` subclasses (which are never kept);
- a start inside a kept stretch does not walk the calendar (the work saved);
- the step-rule memo (``_STEP_RULES``, read by ``step_rule_memo`` and
  ``deadline_changes``) neither keeps nor answers a state that is a ``str`` subclass:
  one equal to every name once made the plain name's answer its own, for every
  later command of the process (the seeded run failed after test_derive7);
- ``command.derive_version`` (its running deadline written out, no longer a call of
  ``reminders._earliest``) is compared with the previous path on hostile records
  by test_derive7.py's ``test_derive_version_is_the_previous``; here, once more,
  on the running deadline alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, reminders
from reqmgmt.calendar import CalendarEntry, CompanyCalendar
from reqmgmt.command import derive_version
from reqmgmt.model import Record
from reqmgmt.reminders import WorkCalendar, step_rule_memo
from tests.conftest import receive

_ZERO = timedelta(0)
_TICK = timedelta(microseconds=1)


def previous_add(calendar: WorkCalendar, start: datetime, amount: timedelta) -> datetime:
    """``WorkCalendar.add`` as round seven wrote it (amounts of zero or more)."""
    local = start.astimezone(calendar.zone)
    day = local.date()
    k = 0
    rest = amount
    for a, b in calendar._spans(day):
        if b > local:
            a = max(a, local)
            if amount <= b - a:
                return (a + amount).astimezone(start.tzinfo)
            rest = amount - (b - a)
            break
        k += 1
    a, b, left = calendar._onwards(day, k + 1, rest)
    return (a + left).astimezone(start.tzinfo)


def _calendar(name: str, hours: Any, near: datetime) -> WorkCalendar:
    """A calendar whose day of ``near`` (a Sunday, the day clocks change) is a make-up
    workday: its working periods then hold the change."""
    day = near.astimezone(ZoneInfo(name)).date()
    company = CompanyCalendar((CalendarEntry("workday", day, day),), frozenset({day.year}))
    return WorkCalendar(country="US", timezone=name, hours=hours, company=company)


def outcome(f: Any, *args: Any) -> Any:
    """What ``f(*args)`` returns, or the type and text of what it raises."""
    try:
        return f(*args)
    except Exception as exc:
        return (type(exc), str(exc))


def same(got: Any, want: Any) -> None:
    """Equal to the field: type, wall clock, tzinfo (the very object) and fold."""
    if type(want) is tuple:  # raised
        assert got == want
        return
    assert type(got) is type(want)
    assert got.replace(tzinfo=None) == want.replace(tzinfo=None), (got, want)
    assert got.tzinfo is want.tzinfo
    assert got.fold == want.fold


class _Moment(datetime):
    """A datetime subclass: kept out of the stretches."""


class _Amount(timedelta):
    """A timedelta subclass: kept out of the stretches."""


_HOURS = [
    ((time(8, 30), time(12, 0)), (time(13, 0), time(17, 30))),
    ((time(0, 0), time(1, 0)), (time(1, 0), time(2, 30)), (time(22, 0), time(23, 59, 59, 999999))),
    ((time(0, 30), time(2, 30)), (time(2, 45), time(3, 15))),  # New York's change at 2:00
    ((time(1, 0), time(3, 0)),),  # London's at 1:00 and 2:00, Lord Howe's half hour at 2:00
    ((time(9, 0), time(11, 0)),),
]
#: (zone, a UTC moment near one of its changes).
_CHANGES = [
    ("America/New_York", datetime(2026, 3, 8, 6, 0, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ("Europe/London", datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),
    ("Europe/London", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 14, 45, tzinfo=UTC)),
    ("Asia/Shanghai", datetime(2026, 2, 13, 3, 59, tzinfo=UTC)),  # before the Spring Festival
    ("Asia/Shanghai", datetime(2026, 12, 3, 3, 59, 59, 999000, tzinfo=UTC)),
]
_AMOUNT_LIST = [
    _ZERO,
    timedelta(microseconds=1),
    timedelta(minutes=30),
    timedelta(hours=3, minutes=29, microseconds=999999),
    timedelta(hours=4),
    timedelta(hours=16),
    timedelta(hours=40),
    timedelta(days=9, seconds=7),
]
_AMOUNTS = st.sampled_from(_AMOUNT_LIST)
_TZS = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5)), ZoneInfo("Europe/Berlin")]
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_CHANGES),
    st.sampled_from(_HOURS),
    st.lists(
        st.tuples(
            st.integers(-6 * 3600 * 10**6, 6 * 3600 * 10**6),
            st.integers(-3, 3),
            _AMOUNTS,
            _TZS,
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_add_is_the_previous_add(
    change: tuple[str, datetime],
    hours: Any,
    starts: list[tuple[int, int, timedelta, Any, bool]],
) -> None:
    name, near = change
    calendar = _calendar(name, hours, near)
    fresh = _calendar(name, hours, near)
    for micros, apart, amount, tz, odd in starts:
        # Clustered (microseconds to hours apart) so later starts fall in kept stretches.
        start = (near + timedelta(microseconds=micros * 10**apart // 1000)).astimezone(tz)
        if odd:
            start = _Moment.fromisoformat(start.isoformat())
            amount = _Amount(seconds=amount.total_seconds())
        same(outcome(calendar.add, start, amount), outcome(previous_add, fresh, start, amount))
        slot = calendar._slots.get(amount) if type(amount) is timedelta else None
        if slot is not None:  # a start at each edge of the kept stretch, and just past it
            for edge in (slot[1] - _TICK, slot[1], slot[2] - _TICK, slot[2]):
                probe = _calendar(name, hours, near)
                probe._slots[amount] = slot
                at = edge.astimezone(tz)
                same(outcome(probe.add, at, amount), outcome(previous_add, fresh, at, amount))
    assert all(type(kept) is timedelta for kept in calendar._slots)  # never a subclass


def test_a_start_in_a_kept_stretch_walks_no_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    calendar = WorkCalendar()
    walks = []
    wall = WorkCalendar._wall

    def counted(self: WorkCalendar, local: datetime, amount: timedelta) -> datetime:
        walks.append(local)
        return wall(self, local, amount)

    monkeypatch.setattr(WorkCalendar, "_wall", counted)
    fresh = WorkCalendar()
    morning = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    lunch = datetime(2026, 12, 3, 4, 10, tzinfo=UTC)  # 12:10: waits for 13:00
    for start in (morning, lunch):
        for i in range(5):
            at = start + timedelta(minutes=7 * i, microseconds=i)
            same(
                calendar.add(at, timedelta(hours=16)), previous_add(fresh, at, timedelta(hours=16))
            )
    assert len(walks) == 2  # once per stretch
    # The same wall time before a period: the very answer, kept in UTC.
    calendar.add(lunch, timedelta(hours=4))
    assert calendar.add(lunch, timedelta(hours=4)) is calendar.add(
        lunch + timedelta(minutes=1), timedelta(hours=4)
    )
    # A subclass is answered the general way every time.
    before = len(walks)
    for i in range(3):
        calendar.add(_Moment(2026, 12, 3, 1, i, tzinfo=UTC), timedelta(hours=16))
        calendar.add(morning, _Amount(hours=16))
    assert len(walks) == before + 6


def test_the_stretches_are_bounded() -> None:
    calendar = WorkCalendar()
    for minutes in range(1100):
        calendar.add(datetime(2026, 12, 3, 1, 0, tzinfo=UTC), timedelta(minutes=minutes + 1))
    assert 0 < len(calendar._slots) <= 1024


def test_a_stretch_past_datetime_s_range_is_not_kept() -> None:
    calendar = WorkCalendar(country="US", timezone="UTC")
    fresh = WorkCalendar(country="US", timezone="UTC")
    amount = timedelta(days=200)
    for start in (
        datetime(1, 1, 1, 9, 0, tzinfo=UTC),  # start - amount is before year 1
        datetime(1, 1, 1, 9, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 9, 0, tzinfo=UTC),  # raises as it did
        datetime(9999, 12, 31, 18, 0, tzinfo=UTC),
    ):
        same(outcome(calendar.add, start, amount), outcome(previous_add, fresh, start, amount))
    assert amount not in calendar._slots


@pytest.mark.parametrize("change", _CHANGES)
@pytest.mark.parametrize("hours", _HOURS)
def test_add_at_every_edge_is_the_previous_add(change: tuple[str, datetime], hours: Any) -> None:
    """Starts at each period's start and end, where the amount stops fitting, and
    midnight, a microsecond either side, each then probing its stretch's edges."""
    name, near = change
    zone = ZoneInfo(name)
    fresh = _calendar(name, hours, near)
    for amount in _AMOUNT_LIST:
        calendar = _calendar(name, hours, near)
        day = near.astimezone(zone).date()
        points = [datetime.combine(day, time(0), zone)]
        for a, b in hours:
            a, b = datetime.combine(day, a, zone), datetime.combine(day, b, zone)
            points += [a, b, b - amount]
        for point in points:
            for at in (point - _TICK, point, point + _TICK):
                start = at.astimezone(UTC)
                same(calendar.add(start, amount), previous_add(fresh, start, amount))
                slot = calendar._slots.get(amount)
                assert slot is not None
                for edge in (slot[1] - _TICK, slot[1], slot[2] - _TICK, slot[2]):
                    probe = _calendar(name, hours, near)
                    probe._slots[amount] = slot
                    same(probe.add(edge, amount), previous_add(fresh, edge, amount))


class _Str(str):
    """A hostile state: equal to any text, hashing as its own."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(str(self))


def test_a_str_subclass_state_neither_keeps_nor_reads_a_step_rule() -> None:
    with Desk.open("memory://") as desk:
        deadlines, version = desk.deadlines(), desk.rules.version
        day = datetime(2026, 3, 2, tzinfo=UTC).date()
        reminders._STEP_RULES.clear()
        hostile = _Str("evaluating")  # matches the table's first row: first_response
        first = reminders._step_rule(deadlines, "requirement", hostile, day)
        assert step_rule_memo(version, "requirement", hostile) == (False, None)
        assert step_rule_memo(version, "requirement", "evaluating") == (False, None)
        plain = reminders._step_rule(deadlines, "requirement", "evaluating", day)
        assert plain is not None
        assert first is not None
        assert plain[0] == "evaluation" != first[0]
        assert step_rule_memo(version, "requirement", "evaluating") == (True, plain)
        # Asked again, each its own answer, whoever came first.
        assert reminders._step_rule(deadlines, "requirement", hostile, day) == first
        assert step_rule_memo(version, "requirement", hostile) == (False, None)
        assert all(type(state) is str for _, _, state in reminders._STEP_RULES)
        # deadline_changes with the hostile state reads no plain answer either.
        record = desk.get(receive(desk))
        now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        engine = desk.engine("requirement")
        got = reminders.deadline_changes(deadlines, engine, record, hostile, now)
        reminders._STEP_RULES.clear()
        assert got == reminders.deadline_changes(deadlines, engine, record, hostile, now)
        assert got.get("step") == "first_response"


@pytest.fixture(scope="module")
def setting() -> Iterator[tuple[Desk, Record]]:
    with Desk.open("memory://") as desk:
        yield desk, desk.get(receive(desk))


_TIMES = [None, datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 3, 8, tzinfo=UTC)]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([*_TIMES, datetime(2026, 3, 2, 9)]),  # a naive one: both raise
    # The same instant as a due time, another object: which of equal times is kept.
    st.sampled_from([*_TIMES, datetime(2026, 3, 2, 17, tzinfo=timezone(timedelta(hours=8)))]),
    st.sampled_from([None, datetime(2026, 3, 1, tzinfo=UTC)]),
    st.sampled_from(_TIMES),
    st.sampled_from(["evaluating", "closed", "in_progress"]),
)
def test_the_running_deadline_is_earliest_s(
    setting: tuple[Desk, Record],
    due: datetime | None,
    step_due: datetime | None,
    paused: datetime | None,
    nxt: datetime | None,
    state: str,
) -> None:
    """derive_version's same-state running deadline against reminders._earliest."""
    desk, stored = setting
    engine = desk.engine("requirement")
    record = attrs.evolve(stored)
    for name, value in [("state", state), ("due_at", due), ("step_due_at", step_due),
                        ("paused_since", paused), ("next_deadline", nxt)]:  # fmt: skip
        object.__setattr__(record, name, value)
    t = SimpleNamespace(opens_review=False, requests_approval=False, signoff=False, effects=())
    ctx = SimpleNamespace(record=record, now=datetime(2026, 3, 2, 1, tzinfo=UTC), transition=t)
    want = outcome(reminders._earliest, due, step_due, paused, state, engine)
    changes = outcome(derive_version, desk, engine, ctx, state)
    if type(want) is tuple:  # raised
        assert changes == want
        return
    assert type(changes) is dict
    if "next_deadline" in changes:
        assert changes["next_deadline"] is want  # the very time, of two equal ones
        assert want != nxt
    else:
        assert want == nxt


def test_a_plain_move_keeps_the_due_time_of_two_equal_ones(setting: tuple[Desk, Record]) -> None:
    """A plain move's running deadline is _earliest's: of a due time and a step due time
    that are equal, the due time (the very object)."""
    desk, stored = setting
    engine = desk.engine("requirement")
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    t = SimpleNamespace(opens_review=False, requests_approval=False, signoff=False, effects=())
    for _ in range(2):  # the move decided, then looked up (the plain move's path)
        record = attrs.evolve(stored, state="received")
        derive_version(
            desk, engine, SimpleNamespace(record=record, now=now, transition=t), "evaluating"
        )  # type: ignore[arg-type]
    known, rule = step_rule_memo(desk.rules.version, "requirement", "evaluating")
    assert known
    assert rule is not None
    assert rule[1] is not None
    step_due = desk.calendar.add(now, rule[1])
    due = step_due.astimezone(timezone(timedelta(hours=8)))  # equal, another object
    record = attrs.evolve(stored, state="received", due_at=due)
    ctx = SimpleNamespace(record=record, now=now, transition=t)
    changes = derive_version(desk, engine, ctx, "evaluating")  # type: ignore[arg-type]
    assert changes["step_due_at"] == step_due
    assert (
        changes["next_deadline"]
        is due
        is reminders._earliest(due, step_due, None, "evaluating", engine)
    )
