"""The command path's cheap constructors (issue 15): the same values, the same classes.

``reqmgmt.model.maker`` and the copies ``derive`` makes fill a stand-in of the
record class and then make it a real instance of that class; these tests
show the result cannot be told from an attrs-built one, and that classes the
trick does not fit still work.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
import pytest
from attrs import field, frozen
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Customer, Requirement, ValidationError
from reqmgmt.audit import canonical, event_hash, seal, sealed_event
from reqmgmt.model import (
    AuditEvent,
    FieldChange,
    Notification,
    _stand_in,
    constructor,
    derive,
    maker,
    record_classes,
)
from reqmgmt.reminders import WorkCalendar
from reqmgmt.testing import make_requirement

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _values(cls: type) -> dict[str, Any]:
    samples: dict[type, dict[str, Any]] = {
        FieldChange: {"field": "state", "old": "a", "new": "b", "op": "set"},
        AuditEvent: {
            "ref": "REQ-1",
            "record_kind": "requirement",
            "version": 2,
            "event": "go",
            "from_state": "a",
            "to_state": "b",
            "actor_id": "u",
            "actor_name": "U",
            "at": AT,
            "note": "n",
            "meaning": None,
            "changes": (),
            "decisions": (),
            "prev_hash": "p",
            "hash": "h",
        },
        Notification: {
            "key": "REQ-1:2:sales",
            "ref": "REQ-1",
            "record_kind": "requirement",
            "version": 2,
            "event": "go",
            "recipient": "sales",
            "topic": "requirement.go",
            "text_zh": "z",
            "text_en": "e",
            "created_at": AT,
            "note": None,
            "details": (("k", "v"),),
        },
    }
    return samples[cls]


@pytest.mark.parametrize("cls", [FieldChange, AuditEvent, Notification])
def test_maker_builds_what_attrs_builds(cls: type) -> None:
    """Positional values in field order give an equal, frozen instance of the class itself."""
    values = _values(cls)
    made = maker(cls)(*values.values())
    assert type(made) is cls
    assert made == cls(**values)
    assert attrs.asdict(made, recurse=False) == values
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.ref = "x"  # type: ignore[attr-defined]
    assert _stand_in(cls) is not None  # the cheap path, not the fallback


def test_derive_validators_see_the_whole_new_version() -> None:
    """A field's validator sees the other fields the same change sets (not half a record)."""
    seen: list[str] = []

    def plan_after_state(instance: Any, attribute: Any, value: object) -> None:
        seen.append(instance.state)

    @frozen(kw_only=True)
    class Checked(Requirement):
        RECORD_KIND: ClassVar[str] = ""
        memo: str = field(default="", validator=plan_after_state)

    base = make_requirement()
    rec = Checked(**{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)})
    seen.clear()
    new = derive(rec, {"memo": "m", "state": "evaluating"})
    assert type(new) is Checked
    assert (new.memo, new.state, new.customer) == ("m", "evaluating", rec.customer)
    assert seen == ["evaluating"]
    with pytest.raises(ValidationError, match="a field of Checked"):
        derive(rec, {"colour": "red"})


def test_stand_ins_are_never_record_classes() -> None:
    """A host's record class keeps its kind; its stand-in is not listed with it."""

    @frozen(kw_only=True)
    class Fitting(Requirement):
        RECORD_KIND: ClassVar[str] = "fitting_lean_test"
        size: int = 1

    base = make_requirement()
    rec = Fitting(**{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)})
    assert type(derive(rec, {"size": 2})) is Fitting
    assert _stand_in(Fitting) is not None
    assert record_classes()["fitting_lean_test"] is Fitting
    assert all(not c.__name__.startswith("_StandIn") for c in record_classes().values())


def test_classes_the_stand_in_does_not_fit_still_copy() -> None:
    """A record class with a ``__dict__`` (no slots) is copied attribute by attribute."""

    @attrs.define(frozen=True, kw_only=True, slots=False)
    class Loose(Requirement):
        RECORD_KIND: ClassVar[str] = ""
        extra: str = ""

    assert _stand_in(Loose) is None
    rec = Loose(**{a.name: getattr(make_requirement(), a.name) for a in attrs.fields(Requirement)})
    new = derive(rec, {"extra": "x", "version": 2})
    assert type(new) is Loose
    assert (new.extra, new.version, new.ref) == ("x", 2, rec.ref)
    assert maker(Customer)("C-1", "Name", "general", frozenset()) == Customer("C-1", "Name")


def test_seal_and_sealed_event_hash_the_same_bytes() -> None:
    """The positional ``seal`` and ``sealed_event`` make the same event; its bytes are the
    canonical JSON the verifier recomputes."""
    changes = (
        FieldChange("state", "a", "b"),
        FieldChange("signoffs", 1, [{"z": 1, "a": AT.isoformat()}], "append"),
    )
    values = {
        "ref": "REQ-1", "record_kind": "requirement", "version": 2, "event": "go",
        "from_state": "a", "to_state": "b", "actor_id": "u", "actor_name": "U", "at": AT,
        "note": "说明", "meaning": "review", "changes": changes, "decisions": ({"t": 1},),
        "prev_hash": "p" * 64,
    }  # fmt: skip
    one = sealed_event(**values)
    two = seal(*values.values())
    assert one == two
    assert event_hash(one) == one.hash
    assert canonical(one) == canonical(two)
    assert b'"changes":[["state","a","b","set"],["signoffs",1,[{"a":' in canonical(one)
    with pytest.raises(TypeError, match="colour"):
        sealed_event(**values, colour="red")
    with pytest.raises(ValidationError, match="note"):
        seal(*{**values, "note": "bad\x00note"}.values())


def test_constructor_is_attrs_init() -> None:
    """``constructor(cls)(values)`` equals ``cls(**values)``: converters, defaults,
    validators, errors (attrs' own TypeError for a missing or unknown name)."""
    base = make_requirement()
    values = {a.name: getattr(base, a.name) for a in attrs.fields(Requirement)}
    build = constructor(Requirement)
    made = build({**values, "remarks": ["a", "b"]})
    assert type(made) is Requirement
    assert made == Requirement(**{**values, "remarks": ["a", "b"]})
    assert made.remarks == ("a", "b")  # the converter ran
    minimal = {k: values[k] for k in ("ref", "state", "created_at", "updated_at", "created_by",
                                      "customer", "description", "received_at")}  # fmt: skip
    assert build(minimal) == Requirement(**minimal)  # the defaults
    with pytest.raises(ValidationError, match="description") as fast:
        build({**values, "description": " "})
    with pytest.raises(ValidationError) as slow:
        Requirement(**{**values, "description": " "})
    assert str(fast.value) == str(slow.value)
    for broken in ({**values, "colour": "red"}, {k: v for k, v in values.items() if k != "ref"}):
        with pytest.raises(TypeError) as fast_type:
            build(broken)
        with pytest.raises(TypeError) as slow_type:
            Requirement(**broken)
        assert str(fast_type.value) == str(slow_type.value)
    with attrs.validators.disabled():
        assert build({**values, "description": " "}).description == " "


def test_derive_takes_a_set_of_checked_fields() -> None:
    """Fields named in ``checked`` are not validated again; the others still are."""
    rec = make_requirement()
    new = derive(
        rec, {"state": "evaluating", "version": 2}, checked=frozenset({"state", "version"})
    )
    assert (new.state, new.version) == ("evaluating", 2)
    with pytest.raises(ValidationError, match="version"):
        derive(rec, {"state": "evaluating", "version": -1}, checked="state")
    with pytest.raises(ValidationError, match="due_at"):
        derive(rec, {"due_at": datetime(2300, 1, 1, tzinfo=UTC)}, checked=frozenset({"state"}))


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 6, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 40),
)
def test_calendar_add_skipping_whole_days_is_exact(start: datetime, minutes: int) -> None:
    """WorkCalendar.add takes later days whole; the answer is the span-by-span one."""
    calendar = WorkCalendar()
    amount = timedelta(minutes=minutes, microseconds=start.microsecond)
    local = start.astimezone(calendar.zone)
    remaining, day = amount, local.date()
    expected = None
    while expected is None:
        for a, b in calendar._spans(day):
            a = max(a, local)
            if a >= b:
                continue
            if remaining <= b - a:
                expected = (a + remaining).astimezone(start.tzinfo)
                break
            remaining -= b - a
        day += timedelta(days=1)
    assert calendar.add(start, amount) == expected
