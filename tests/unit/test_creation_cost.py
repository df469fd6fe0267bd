"""The creating command's cheaper parts (issue 15 point 2) give exactly what they replace.

- ``serialize.attrs_unstructurer``: the generated unstructure of every record
  class (and every attrs class inside one) equals cattrs' own, on values
  drawn for each field's declared type.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime, time, timedelta, timezone
from datetime import date as _date
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqmgmt import Customer, Desk, Requirement, ValidationError, creation, serialize
from reqmgmt import model as model_module
from reqmgmt.building import first_version, set_fields
from reqmgmt.calendar import CalendarEntry, CompanyCalendar
from reqmgmt.creation import classified
from reqmgmt.model import constructor, derive, maker, record_classes
from reqmgmt.reminders import _DAY, _HORIZON_DAYS, WorkCalendar
from reqmgmt.rules.model import RuleSet
from reqmgmt.serialize import attrs_unstructurer, converter, unstructure
from reqmgmt.testing.strategies import aware_datetimes

from ..conftest import CLERK, CUSTOMER

_TEXT = st.text(max_size=4)


def _values(type_: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a field's declared type, built without validators (what is unstructured)."""
    if type_ is type(None):
        return st.none()
    if type_ is str:
        return _TEXT
    if type_ is bool:
        return st.booleans()
    if type_ is int:
        return st.integers(-(2**40), 2**40)
    if type_ is Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False, places=2)
    if type_ is datetime:
        return aware_datetimes()
    if type_ is date:
        return st.dates()
    if isinstance(type_, type) and attrs.has(type_):
        if depth > 5:
            return st.nothing()
        attrs.resolve_types(type_)
        fields = [_values(a.type, depth + 1) for a in attrs.fields(type_)]
        make = maker(type_)
        return st.tuples(*fields).map(lambda v: make(*v))
    origin = typing.get_origin(type_)
    args = typing.get_args(type_)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_values(a, depth) for a in args))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(_values(args[0], depth), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*(_values(a, depth) for a in args))
    if origin is frozenset:
        return st.frozensets(_values(args[0], depth), max_size=3)
    raise AssertionError(f"no strategy for {type_!r}: add one")


@pytest.mark.parametrize("kind", sorted(record_classes()))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_unstructure_equals_cattrs(kind: str, data: st.DataObject) -> None:
    cls = record_classes()[kind]
    record = data.draw(_values(cls))
    expected = converter.unstructure(record)
    assert attrs_unstructurer(cls)(record) == expected
    assert unstructure(record) == expected
    # The same types, not only equal values (a tuple is not a list in JSON).
    assert repr(unstructure(record)) == repr(expected)


def test_generated_unstructure_is_a_function_of_its_own() -> None:
    """Not cattrs' generated function: no dispatch per optional field."""
    for cls in record_classes().values():
        made = attrs_unstructurer(cls)
        assert made is not converter.get_unstructure_hook(cls)
        assert "unstructure_optional" not in made.__code__.co_names


def test_a_host_hook_for_a_class_is_kept() -> None:
    """A class whose hook is not one cattrs generated gets that hook, as cattrs would call it."""

    @attrs.frozen
    class Odd:
        x: int

    local = serialize.converter
    local.register_unstructure_hook(Odd, lambda o: {"odd": o.x})
    try:
        assert unstructure(Odd(3)) == {"odd": 3}
        assert attrs_unstructurer(Odd)(Odd(4)) == {"odd": 4}
    finally:
        serialize._FAST.pop(Odd, None)


# --- building.first_version and set_fields: constructor and derive, cheaper -------------


AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
_BASE = {
    "ref": "REQ-2026-000001",
    "state": "received",
    "version": 1,
    "created_at": AT,
    "updated_at": AT,
    "created_by": "clerk",
    "customer": Customer("C-1", "客户"),
    "description": "支架",
    "received_at": AT,
}
_ODD_TEXT = st.sampled_from(["", " ", "x", "a\x00b", "\ud800", "x" * 70_000, "备注", 7, None])
_ODD_TIME = st.sampled_from(
    [None, AT, datetime(2026, 3, 2), AT.astimezone(timezone(timedelta(hours=8))), "2026-03-02"]
)
_OPTIONAL = {
    "kind": _ODD_TEXT,
    "channel": _ODD_TEXT,
    "description": _ODD_TEXT,
    "priority": st.sampled_from(["normal", "urgent", "nope", 3]),
    "remarks": st.sampled_from([(), ("a",), ("",), ["x", "y"], "abc", (1,)]),
    "delivery_plan": st.one_of(st.none(), _ODD_TEXT),
    "due_at": _ODD_TIME,
    "step_due_at": _ODD_TIME,
    "version": st.sampled_from([1, 0, -1, True, "1"]),
    "credit": st.sampled_from([None, "A"]),
    "rules_version": st.one_of(st.none(), _ODD_TEXT),
    "nonsense": st.just(1),
}


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        made = fn(*args)
    except Exception as exc:  # the errors themselves are compared
        return ("raised", type(exc), str(exc))
    return ("made", type(made), attrs.asdict(made, recurse=False))


@settings(max_examples=300, deadline=None)
@given(extra=st.fixed_dictionaries({}, optional=_OPTIONAL), drop=st.sampled_from([None, "ref"]))
def test_first_version_builds_or_refuses_as_the_constructor(
    extra: dict[str, Any], drop: str | None
) -> None:
    values = {**_BASE, **extra}
    if drop is not None:
        del values[drop]
    assert _outcome(first_version(Requirement), values) == _outcome(
        constructor(Requirement), values
    )


def test_first_version_does_not_check_untouched_defaults_again() -> None:
    """Of the optional text fields only the given one is checked (the constructor checks all)."""
    calls: list[str] = []
    real = model_module._optional_text

    def counting(instance: Any, attribute: Any, value: Any) -> None:
        calls.append(attribute.name)
        real(instance, attribute, value)

    counting.__module__ = real.__module__  # one of the model's own checks

    @attrs.frozen(weakref_slot=False)
    class Counted(Requirement):
        RECORD_KIND = ""

    # The subclass's attributes are its own copies: Requirement is not touched.
    for a in attrs.fields(Counted):
        if a.validator is real:
            object.__setattr__(a, "validator", counting)
    build = first_version(Counted)
    calls.clear()  # generating it checked each default once
    record = build({**_BASE, "delivery_plan": "2 lots"})
    assert record.delivery_plan == "2 lots"
    assert calls == ["delivery_plan"]
    calls.clear()
    constructor(Counted)({**_BASE, "delivery_plan": "2 lots"})
    assert len(calls) > 10  # what the saving is measured against


@settings(max_examples=200, deadline=None)
@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "step": st.one_of(st.none(), _ODD_TEXT),
            "step_due_at": _ODD_TIME,
            "next_deadline": _ODD_TIME,
            "remarks": st.sampled_from([(), ("a",), ["b"], ("",)]),
            "nonsense": st.just(1),
        },
    )
)
def test_set_fields_checks_as_derive(changes: dict[str, Any]) -> None:
    def derived() -> Any:
        return derive(constructor(Requirement)(_BASE), changes)

    def set_in() -> Any:
        record = first_version(Requirement)(_BASE)
        set_fields(record, changes)
        return record

    assert _outcome(set_in) == _outcome(derived)


# --- WorkCalendar.add: the walk past the first period kept per (day, period, amount) ---


def _reference_add(cal: WorkCalendar, start: datetime, amount: timedelta) -> datetime:
    """WorkCalendar.add as it was before the walk was kept (one day after another)."""
    if amount < timedelta(0):
        return cal._subtract(start, -amount)
    local = start.astimezone(cal.zone)
    remaining = amount
    day = local.date()
    first = True
    for _ in range(_HORIZON_DAYS):
        if not first:
            total = cal._total(day)
            if remaining > total:
                remaining -= total
                day += _DAY
                continue
        first = False
        for a, b in cal._spans(day):
            a = max(a, local)
            if a >= b:
                continue
            if remaining <= b - a:
                return (a + remaining).astimezone(start.tzinfo)
            remaining -= b - a
        day += _DAY
    raise AssertionError("no working time")


_CALENDARS = [
    WorkCalendar(),
    WorkCalendar(country="DE", timezone="Europe/Berlin"),  # daylight saving time
    WorkCalendar(
        hours=((time(0, 0), time(1, 0)), (time(9, 0), time(9, 1)), (time(23, 0), time(23, 59)))
    ),
    WorkCalendar(
        company=CompanyCalendar(
            entries=(
                CalendarEntry("holiday", _date(2026, 3, 4), _date(2026, 3, 4)),
                CalendarEntry("workday", _date(2026, 3, 7), _date(2026, 3, 7)),
                CalendarEntry("shutdown", _date(2026, 3, 16), _date(2026, 3, 27)),
            )
        )
    ),
]


@settings(max_examples=400, deadline=None)
@given(
    which=st.integers(0, len(_CALENDARS) - 1),
    starts=st.lists(
        st.datetimes(
            min_value=datetime(2026, 3, 1), max_value=datetime(2026, 4, 30), timezones=st.just(UTC)
        ),
        min_size=1,
        max_size=6,
    ),
    amount=st.sampled_from([0, 1, 60, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 80 * 3600, 12_345]).map(
        lambda s: timedelta(seconds=s)
    ),
)
def test_add_ends_where_the_day_by_day_walk_ends(
    which: int, starts: list[datetime], amount: timedelta
) -> None:
    cal = _CALENDARS[which]
    for start in starts:  # later starts find the kept walks of earlier ones
        for again in (start, start + timedelta(minutes=7), start + timedelta(microseconds=1)):
            assert cal.add(again, amount) == _reference_add(cal, again, amount), (again, amount)


def test_a_second_add_from_the_same_period_does_not_walk_the_days_again(monkeypatch: Any) -> None:
    cal = WorkCalendar()
    start = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
    amount = timedelta(hours=80)  # ten working days on
    first = cal.add(start, amount)
    looked: list[_date] = []
    spans, total = WorkCalendar._spans, WorkCalendar._total
    monkeypatch.setattr(WorkCalendar, "_spans", lambda s, d: (looked.append(d), spans(s, d))[1])
    monkeypatch.setattr(WorkCalendar, "_total", lambda s, d: (looked.append(d), total(s, d))[1])
    later = start + timedelta(minutes=30)
    cal._slots.clear()  # the stretch add kept (test_derive8.py) aside: the walk's own memory
    assert cal.add(later, amount) == first + timedelta(minutes=30)
    assert looked == [_date(2026, 3, 3)]  # the first day only; the walk before did not
    assert cal.add(later + timedelta(minutes=1), amount) == first + timedelta(minutes=31)
    assert looked == [_date(2026, 3, 3)]  # in the kept stretch: not even the first day


# --- classified: a creation's deadline decision kept per rule set -----------------------


def test_classified_decides_as_classify_once_per_rule_set(monkeypatch: Any) -> None:
    decided: list[str] = []
    real = RuleSet.decide

    def counting(self: RuleSet, name: str, facts: Any, **kw: Any) -> Any:
        decided.append(name)
        return real(self, name, facts, **kw)

    monkeypatch.setattr(RuleSet, "decide", counting)
    # The default rule set is shared: decisions other tests kept are forgotten first.
    monkeypatch.setattr(creation, "_DECIDED", {})
    with Desk.open() as desk:
        for priority in ("normal", "urgent", "normal", "urgent", "normal"):
            kept = classified(desk, "requirement_deadline", {"priority": priority})
            fresh = desk.classify("requirement_deadline", {"priority": priority})
            assert kept == fresh
            assert kept.summary() == fresh.summary()
        # Two decisions made for the five kept ones, plus the five fresh ones.
        assert decided.count("requirement_deadline") == 2 + 5
        decided.clear()
        for _ in range(20):
            desk.requirements.receive(customer=CUSTOMER, description="支架", actor=CLERK)
        assert decided.count("requirement_deadline") == 0
        # A bad fact is refused every time, as classify refuses it.
        for _ in range(2):
            with pytest.raises(ValidationError, match="priority"):
                classified(desk, "requirement_deadline", {"priority": 3})


def test_classified_reads_the_clock_as_classify_does() -> None:
    """A clock that moves per reading (a simulation's) moves alike with the kept decision."""
    ticks: list[datetime] = []

    def clock() -> datetime:
        ticks.append(AT + timedelta(minutes=len(ticks)))
        return ticks[-1]

    with Desk.open(clock=clock) as desk:
        classified(desk, "requirement_deadline", {"priority": "normal"})
        before = len(ticks)
        classified(desk, "requirement_deadline", {"priority": "normal"})
        assert len(ticks) == before + 1


# --- CreationCheck.fields: the vocabularies resolved once per rule set -------------------


def test_creation_check_looks_the_vocabularies_up_once(monkeypatch: Any) -> None:
    looked: list[str] = []
    real = RuleSet.vocabulary

    def counting(self: RuleSet, name: str) -> Any:
        looked.append(name)
        return real(self, name)

    monkeypatch.setattr(RuleSet, "vocabulary", counting)
    with Desk.open() as desk:
        check = desk._creation_check("requirement")
        fields = {"customer": CUSTOMER, "description": "支架", "received_at": AT}
        check.fields(fields, desk.rules)
        looked.clear()
        for _ in range(5):
            check.fields(fields, desk.rules)
        assert looked == []
        with pytest.raises(ValidationError, match="channel") as refused:
            check.fields({**fields, "channel": "faks"}, desk.rules)
        assert "did you mean" in str(refused.value) or "fax" in str(refused.value)
        with pytest.raises(ValidationError, match="customer_flags vocabulary"):
            check.fields({**fields, "customer": Customer("C", "c", flags={"nonsense"})}, desk.rules)
