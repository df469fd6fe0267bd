"""Step 4's round eight (issue 15): the generated diff's plain runs, its one appended
item written inline and its FieldChanges made by calling their stand-in, against the
general way (``command.general_diff``) on hostile values.

- a shape's plain fields (str and int fields) whose values are all exactly str, int
  or None take their changes and rows from one ``command._RUNS`` entry: the same
  changes, rows, order and types as the general way, on the first call (made) and
  the next (found); a bool, a subclass, a float or any other value takes the whole
  way; 1 and True, "x" and a str subclass's "x" never share an entry; long texts are
  not kept; no ``plain_change`` call and one entry per key (the work saved);
- one appended item (a sign-off) is written inline as ``items_of`` writes it: the
  same dict, the same reads in the same order, iso's text or its error;
- a FieldChange is made by calling its stand-in where its ``__new__`` and
  ``__init__`` are object's (else through ``object.__new__``): exactly a FieldChange.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import command, model
from reqmgmt.model import FieldChange, Requirement, Signoff, made_by

from .test_diff6 import _READS, CLASSES, SIGN, _base, _LoudSignoff, _outcome, _typed

AT = datetime(2026, 3, 2, 9, 30, 15, 250, tzinfo=UTC)


class _Text(str):
    """A str subclass: equal to its text, not the same value."""


class _Number(int):
    """An int subclass."""


_PLAIN = st.one_of(
    st.sampled_from(
        [
            None, 0, 1, True, False, 1.0, 2**70, "", "x", _Text("x"), _Number(1),
            "received", "evaluating", "x" * (model.MAX_ID + 1), "\ud800", b"x", (), ("x",),
        ]
    ),
    st.integers(-3, 3),
    st.text(max_size=3),
)  # fmt: skip


def _same(record: Any, changes: dict[str, Any]) -> None:
    """The generated diff (made, then run again) is the general way, rows included."""
    general = _outcome(command.general_diff, record, changes)
    for _ in range(2):
        command._LAST_ROWS = ((), [])
        fast = _outcome(command.field_diff, record, changes)
        assert fast == general
        if general[0] == "made":
            last = command._LAST_ROWS
            rows = [list(row) for row in last[1]]
            assert _typed(rows) == _typed([[c.field, c.old, c.new, c.op] for c in last[0]])
    assert (type(record), tuple(changes)) in command._SHAPES


@st.composite
def _plain_case(draw: st.DrawFn) -> tuple[Requirement, dict[str, Any]]:
    """A requirement, and changes of its plain fields (and of a time, a sign-off) in
    any order, old and new values of any plain kind, hostile ones included."""
    record = _base(Requirement)
    plain = ["state", "version", "step", "review_round", "submitted_by", "delivery_plan"]
    for name in draw(st.lists(st.sampled_from(plain), unique=True, max_size=3)):
        object.__setattr__(record, name, draw(_PLAIN))
    names = draw(
        st.lists(st.sampled_from([*plain, "updated_at", "signoffs"]), unique=True, min_size=1)
    )
    changes: dict[str, Any] = {}
    for name in names:
        if name == "updated_at":
            changes[name] = draw(st.sampled_from([AT, AT + timedelta(seconds=1)]))
        elif name == "signoffs":
            changes[name] = (*record.signoffs, attrs.evolve(SIGN, department="sales"))
        else:
            changes[name] = draw(st.one_of(_PLAIN, st.just(getattr(record, name))))
    return record, changes


@settings(max_examples=800, deadline=None)
@given(_plain_case())
def test_plain_runs_are_the_general_diff(case: tuple[Requirement, dict[str, Any]]) -> None:
    record, changes = case
    _same(record, changes)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_class_with_bool_fields_is_the_general_diff(data: st.DataObject) -> None:
    """Records with bool fields (diffed on their own, beside the runs) and plain fields."""
    cls = data.draw(st.sampled_from(CLASSES))
    record = _base(cls)
    fields = attrs.fields(cls)
    plain = [a.name for a in fields if command.diff_ways(cls)[a.name][0] == command._AS_IS]
    names = data.draw(st.lists(st.sampled_from(plain), unique=True, min_size=1, max_size=6))
    changes = {name: data.draw(st.one_of(_PLAIN, st.just(getattr(record, name)))) for name in names}
    _same(record, changes)


def test_equal_values_of_other_types_never_share_an_entry() -> None:
    """1 and True, "x" and _Text("x"): equal and alike in hash, never one entry."""
    record = attrs.evolve(_base(Requirement), review_round=0, delivery_plan="x")
    for new, kind in [(1, int), (True, bool), (1, int), (True, bool)]:
        (change,) = command.field_diff(record, {"review_round": new, "version": record.version})
        assert type(change.new) is kind
    (change,) = command.field_diff(record, {"delivery_plan": _Text("y")})
    assert type(change.new) is _Text
    (change,) = command.field_diff(record, {"delivery_plan": "y"})
    assert type(change.new) is str
    (change,) = command.field_diff(record, {"delivery_plan": _Text("y")})
    assert type(change.new) is _Text
    odd = attrs.evolve(record, delivery_plan=None)
    object.__setattr__(odd, "review_round", _Number(0))
    (change,) = command.field_diff(odd, {"review_round": 1})
    assert type(change.old) is _Number


def test_one_look_up_and_no_plain_change_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The work saved: the plain fields' changes are made once per key (no plain_change
    call), then found; a long text is made each time and never kept."""
    calls: list[Any] = []
    monkeypatch.setattr(command, "plain_change", lambda key: calls.append(key))
    monkeypatch.setattr(command, "_SHAPES", {})
    record = _base(Requirement)
    changes = {
        "state": "evaluating",
        "version": record.version + 1,
        "updated_at": AT + timedelta(seconds=1),
    }
    first = command.field_diff(record, changes)
    before = len(command._RUNS)
    again = command.field_diff(record, changes)
    assert calls == []
    assert len(command._RUNS) == before
    assert again[0] is first[0]
    assert again[1] is first[1]
    assert [c.field for c in again] == ["state", "version", "updated_at"]
    long = "x" * (model.MAX_ID + 1)
    made = command.field_diff(record, {"delivery_plan": long})
    assert made[0].new == long
    assert not any(long in key for key in command._RUNS if type(key) is tuple)
    assert command.field_diff(record, {"delivery_plan": long})[0] is not made[0]
    assert calls == []


_ZONE = timezone(timedelta(hours=8))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            AT, AT.astimezone(_ZONE), datetime(2026, 3, 2), "2026-03-02", None, 0,
            AT.replace(fold=1), AT + timedelta(microseconds=7),
        ]
    ),
    st.integers(0, 2),
    st.booleans(),
)  # fmt: skip
def test_one_appended_item_is_written_as_items_of_writes_it(
    at: Any, before: int, loud: bool
) -> None:
    """The inline dict: the same values, reads (in order) and errors as the general way."""
    kept = tuple(attrs.evolve(SIGN, department=f"d{i}") for i in range(before))
    record = attrs.evolve(_base(Requirement), signoffs=kept)
    cls: type[Signoff] = _LoudSignoff if loud else Signoff
    item = cls(**attrs.asdict(SIGN, recurse=False))
    object.__setattr__(item, "at", at)
    _same(record, {"signoffs": (*kept, item), "version": record.version + 1})
    _READS.clear()


def test_the_stand_in_is_called_only_where_object_makes_it() -> None:
    namespace: dict[str, Any] = {}
    line = command._change_line(namespace)("'f'", "1", "2", "'set'")
    assert "_c_stand_in_()" in line
    assert "_new_(" not in line

    class Odd:
        __slots__ = ("field", "new", "old", "op")

        def __init__(self) -> None:  # not object's: the stand-in is made by object.__new__
            raise AssertionError("called")

    class OddNew:
        __slots__ = ()

        def __new__(cls) -> OddNew:  # not object's either
            raise AssertionError("called")

    assert made_by(Odd, "_c_stand_in_") == "_new_(_c_stand_in_)"
    assert made_by(OddNew, "_x_") == "_new_(_x_)"
    stand_in = model._stand_in(FieldChange)
    assert stand_in is not None
    assert made_by(stand_in, "_x_") == "_x_()"
    made = command.field_diff(_base(Requirement), {"state": "evaluating"})
    assert all(type(c) is FieldChange for c in made)


def test_two_shapes_made_at_once_never_share_a_tag() -> None:
    """Thread 1 is held on the line after the one that takes its shape's tag until
    thread 2 has made another shape (found in review: the tag was read, then bumped,
    in two steps; two shapes with one tag answered each other's changes)."""
    import inspect
    import sys
    import threading

    source, first = inspect.getsourcelines(command.diff_of_shape)
    took = next(i for i, line in enumerate(source) if "tag = " in line and "_RUN_TAGS" in line)
    held = first + took + 1
    go, paused = threading.Event(), threading.Event()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not command.diff_of_shape.__code__:
            return None

        def local(f: Any, e: str, a: Any) -> Any:
            if e == "line" and f.f_lineno == held:
                paused.set()
                go.wait(10)
            return local

        return local

    made: dict[str, Any] = {}

    def make(name: str, trace: bool) -> None:
        if trace:
            sys.settrace(tracer)
        try:
            made[name] = command.diff_of_shape(Requirement, (name, "version"))
        finally:
            sys.settrace(None)

    one = threading.Thread(target=make, args=("description", True))
    one.start()
    assert paused.wait(10)
    two = threading.Thread(target=make, args=("channel", False))
    two.start()
    two.join(10)
    go.set()
    one.join(10)
    record = attrs.evolve(_base(Requirement), description="phone", channel="phone")
    for name in ("description", "channel"):
        changes = {name: "email", "version": record.version + 1}
        assert made[name](record, changes)[0] == command.general_diff(record, changes)


def test_a_stand_in_whose_metaclass_calls_is_made_by_object_new() -> None:
    """A host's attrs class whose base has a metaclass with its own __call__: its stand-in
    is made by object.__new__, so the host's __call__ never runs (found in review)."""
    called: list[str] = []

    class Meta(type):
        def __call__(cls, *args: Any, **kw: Any) -> Any:
            called.append(cls.__name__)
            return super().__call__(*args, **kw)

    class Base(metaclass=Meta):
        __slots__ = ()

    @attrs.frozen(weakref_slot=False)
    class Item(Base):
        a: int
        b: int

    stand_in = model._stand_in(Item)
    assert stand_in is not None
    assert made_by(stand_in, "_x_") == "_new_(_x_)"
    item = model.maker(Item)(1, 2)
    assert (type(item), item.a, item.b) == (Item, 1, 2)
    assert called == []
