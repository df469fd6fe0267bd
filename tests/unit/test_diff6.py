"""The command path's derive and diff of one shape, found by one look-up (issue 15.6).

- ``command.diff_of_shape`` writes items of attrs objects (sign-offs, plan
  receipts, survey answers...) through a dict display generated per item class
  (``command.items_of``) and a field's hook inline, instead of calling
  ``one_change``: the changes, their rows, their order, their values and
  types, or the error, are the general way's (``general_diff``) for any
  change of any field of every record class, hostile values included;
- ``command.write`` finds the generated derive (``model.planned_derive``) and
  the generated diff of a shape with one look-up (``command._WRITES``): each
  derives what the planning path derives (or raises its error) and diffs what
  ``general_diff`` diffs, and a command of a known shape does not call
  ``derive`` and hands ``field_diff`` (still the step a profiler names) the
  generated diff it found, so ``field_diff`` looks nothing up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Actor, Desk, command, model
from reqmgmt.errors import ValidationError
from reqmgmt.model import (
    MAX_COUNT,
    Capa,
    ContractLine,
    Customer,
    FieldChange,
    IdentifiedRequirement,
    Money,
    PlanReceipt,
    Record,
    Signoff,
    SurveyAnswer,
    record_classes,
)

AT = datetime(2026, 3, 2, 9, 30, 15, 250, tzinfo=UTC)
LATER = AT + timedelta(hours=3, microseconds=1)


class _Text(str):
    """A hostile str: equal to its text, another type (its JSON may not be the same)."""


class _Items(tuple):  # type: ignore[type-arg]
    """A tuple subclass: never an append, always a "set"."""


class _Moment(datetime):
    """A datetime subclass: iso's slow way."""


@attrs.frozen
class _LoudSignoff(Signoff):
    """A sign-off whose reads count: both ways must read each field once, in order."""

    def __getattribute__(self, name: str) -> Any:
        _READS.append(name)
        return object.__getattribute__(self, name)


_READS: list[str] = []


def _forced(item: Any, **values: Any) -> Any:
    """A copy of ``item`` with ``values`` set unchecked (what no validator would let in)."""
    copy = attrs.evolve(item)
    for name, value in values.items():
        object.__setattr__(copy, name, value)
    return copy


SIGN = Signoff(
    department="engineering", actor_id="eng", approve=True, opinion="can do",
    meaning="review", round=1, at=AT,
)  # fmt: skip
SIGN_LATER = attrs.evolve(SIGN, department="materials", approve=False, at=LATER)
RECEIPT = PlanReceipt(department="sales", actor_id="clerk", at=AT)
ANSWER = SurveyAnswer(question="quality", score=5)
IDENTIFIED = IdentifiedRequirement(kind="explicit", text="zinc", identified_by="x", at=AT)
LINE = ContractLine(line_no=1, product="bracket", quantity=10, unit_price=Money(3, "CNY"))
CUSTOMER = Customer("C-1", "客户")
SHANGHAI = timezone(timedelta(hours=8))

#: Items of any class, a sign-off of another class, nested tuples, non-attrs items.
_ITEM = st.sampled_from(
    [
        SIGN, SIGN_LATER, RECEIPT, ANSWER, IDENTIFIED, LINE, CUSTOMER,
        _LoudSignoff(**attrs.asdict(SIGN, recurse=False)),
        _forced(SIGN, at=_Moment(2026, 3, 2, tzinfo=UTC)),
        _forced(SIGN, at=AT.astimezone(SHANGHAI)),
        _forced(SIGN, round=True), _forced(SIGN, opinion=_Text("can do")),
        (SIGN, (RECEIPT,)), "text", 1, None,
    ]
)  # fmt: skip
_SCALAR = st.one_of(
    st.sampled_from(
        [
            None, 0, 1, 1.0, True, False, -0.0, 2**70, float("inf"), Decimal("1.0"),
            Decimal("1.00"), Decimal("NaN"), "", "x", _Text("x"), "\ud800", "中文",
            "x" * 65, "x" * 300, "received", "evaluating", b"x", frozenset({"a"}),
            Money(3, "CNY"), Money(Decimal("3.00"), "CNY"), CUSTOMER, date(2026, 3, 2),
            Capa(owner="o", due_on=date(2026, 4, 1), actions="a"),
        ]
    ),
    st.integers(),
    st.text(max_size=5),
)  # fmt: skip
_TIME = st.one_of(
    st.sampled_from(
        [
            AT, LATER, _Moment(2026, 3, 2, 9, 30, tzinfo=UTC), AT.astimezone(SHANGHAI),
            datetime(2026, 3, 2), date(2026, 3, 2), "2026-03-02T09:30:00+00:00", None,
        ]
    ),
    st.datetimes(timezones=st.just(UTC)),
)  # fmt: skip


@st.composite
def _collection(draw: st.DrawFn, old: Any) -> Any:
    """A tuple that often extends ``old`` (an append), or any collection of items."""
    items = tuple(draw(st.lists(_ITEM | _SCALAR, max_size=3)))
    how = draw(st.sampled_from(["append", "same", "tuple", "subclass", "list", "prefix"]))
    start = tuple(old) if isinstance(old, (tuple, list)) else ()
    if how == "append":
        return start + items
    if how == "same":
        return tuple(start)  # equal, another object when old was not a tuple
    if how == "subclass":
        return _Items(start + items)
    if how == "list":
        return list(start + items)
    if how == "prefix":
        return start[1:] + items
    return items


@st.composite
def _value(draw: st.DrawFn, old: Any) -> Any:
    """A new value for a field now holding ``old``: of its kind, or anything."""
    if isinstance(old, (tuple, list, frozenset)):
        kind = _collection(old)
    elif isinstance(old, (datetime, date)) or old is None:
        kind = _TIME
    else:
        kind = _SCALAR
    return draw(st.one_of(kind, _SCALAR, _collection(()), st.just(old)))


def _base(cls: type[Record]) -> Record:
    """A valid record of ``cls`` with every required field."""
    values: dict[str, Any] = {
        "ref": "X-1", "state": "received", "created_at": AT, "updated_at": AT,
        "created_by": "clerk", "customer": CUSTOMER, "description": "brackets",
        "received_at": AT, "currency": "CNY", "lines": (LINE,), "amount": Money(30, "CNY"),
        "product": "bracket", "reason_code": "damaged", "reason_text": "bent",
        "answers": (ANSWER,), "signoffs": (SIGN,),
    }  # fmt: skip
    names = {a.name for a in attrs.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


CLASSES = sorted(record_classes().values(), key=lambda c: c.__name__)


@st.composite
def _case(draw: st.DrawFn) -> tuple[Record, dict[str, Any]]:
    """A record of any class (some fields holding hostile old values, set without
    checks) and changes of any of its fields, in any order."""
    cls = draw(st.sampled_from(CLASSES))
    record = _base(cls)
    names = [a.name for a in attrs.fields(cls)]
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=3)):
        object.__setattr__(record, name, draw(_value(getattr(record, name))))
    changed = draw(st.lists(st.sampled_from(names), unique=True, min_size=1, max_size=8))
    return record, {name: draw(_value(getattr(record, name))) for name in changed}


def _typed(value: Any) -> Any:
    """``value`` with every type and repr spelt out (1 == True == 1.0 are not the same
    here, nor Decimal("1.0") and Decimal("1.00"), nor a str and a str subclass)."""
    if type(value) in (list, tuple) or isinstance(value, (list, tuple)):
        return (type(value), [_typed(v) for v in value])
    if isinstance(value, dict):
        return (type(value), [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, FieldChange):  # filled in place: exactly a FieldChange
        return (type(value), [_typed(getattr(value, a)) for a in ("field", "old", "new", "op")])
    if isinstance(value, Record):
        return (
            type(value),
            [(a.name, _typed(getattr(value, a.name))) for a in attrs.fields(type(value))],
        )
    return (type(value), repr(value))


def _outcome(fn: Callable[..., Any], *args: Any) -> Any:
    _READS.clear()
    try:
        return ("made", _typed(fn(*args)), list(_READS))
    except Exception as exc:  # any error: the same type and words on both ways
        return ("error", type(exc), str(exc), list(_READS))


def _rows(diff: tuple[FieldChange, ...]) -> list[list[Any]]:
    return [[c.field, c.old, c.new, c.op] for c in diff]


@settings(max_examples=1500, deadline=None)
@given(_case())
def test_the_generated_diff_is_the_general_diff(case: tuple[Record, dict[str, Any]]) -> None:
    """Generated (first call) and run (second): the general way's changes, rows and
    types, or its error, with each item's fields read as often and in the same order."""
    record, changes = case
    general = _outcome(command.general_diff, record, changes)
    for _ in range(2):
        command._LAST_ROWS = ((), [])
        fast = _outcome(command.field_diff, record, changes)
        assert fast == general
        if general[0] == "made":
            last = command._LAST_ROWS
            assert _typed([list(row) for row in last[1]]) == _typed(_rows(last[0]))
            assert _typed(last[0]) == general[1]
    assert (type(record), tuple(changes)) in command._SHAPES  # the generated way ran


def test_items_are_written_out_without_one_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sign-off appended, plan receipts replaced, a remark appended: no one_change call."""
    record = _base(model.Requirement)
    monkeypatch.setattr(command, "one_change", None)  # a call would raise TypeError
    command._SHAPES.clear()
    changes = {
        "signoffs": (SIGN, SIGN_LATER), "plan_receipts": (RECEIPT,), "remarks": ("one",),
        "updated_at": LATER,
    }  # fmt: skip
    diff = command.field_diff(record, changes)
    assert [(c.field, c.old, c.op) for c in diff] == [
        ("signoffs", 1, "append"), ("plan_receipts", 0, "append"), ("remarks", 0, "append"),
        ("updated_at", "2026-03-02T09:30:15.000250+00:00", "set"),
    ]  # fmt: skip
    assert diff[0].new == [
        {
            "department": "materials", "actor_id": "eng", "approve": False,
            "opinion": "can do", "meaning": "review", "round": 1,
            "at": "2026-03-02T12:30:15.000251+00:00",
        }
    ]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_case())
def test_without_a_stand_in_the_diff_makes_its_changes(
    case: tuple[Record, dict[str, Any]],
) -> None:
    """Where FieldChange had no stand-in (fill_line: None) the generated diff calls
    its maker: the same changes and errors as the general way."""
    record, changes = case
    general = _outcome(command.general_diff, record, changes)
    saved = dict(command._SHAPES)
    command._SHAPES.clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(command, "fill_line", lambda cls, var: None)
            shape = command.diff_of_shape(type(record), tuple(changes))
        assert shape is not None
        assert _outcome(lambda r, c: shape(r, c)[0], record, changes) == general
    finally:
        command._SHAPES.clear()
        command._SHAPES.update(saved)


def test_fill_line_needs_a_stand_in() -> None:
    @attrs.frozen(slots=False)
    class Loose:
        a: int

    assert model.fill_line(Loose, "c") is None
    line, names = model.fill_line(FieldChange, "c") or ("", {})
    namespace = dict(names)
    exec(f"def make():\n    {line.format('1', '2', '3', '4')}\n    return c", namespace)
    made = namespace["make"]()
    assert type(made) is FieldChange
    assert made == FieldChange(1, 2, 3, 4)  # type: ignore[arg-type]


def test_items_of_is_made_once_and_refuses_names_it_cannot_write() -> None:
    fields = (("department", False), ("at", True))
    made = command.items_of(fields)
    assert made is not None
    assert command.items_of(fields) is made
    assert made((RECEIPT,)) == command._items(fields, (RECEIPT,))
    assert command.items_of((("not a name", False),)) is None
    assert command.items_of((("class", False),)) is None


_CHECKED = st.sampled_from(["", "state", command._ENGINE_CHECKED, frozenset({"version"})])


@settings(max_examples=1000, deadline=None)
@given(_case(), _CHECKED)
def test_the_write_look_up_derives_and_diffs_as_the_slow_ways(
    case: tuple[Record, dict[str, Any]], checked: Any
) -> None:
    """The entry write finds for a shape (made from a valid change of that shape)
    derives what the planning path derives and diffs what general_diff diffs, or
    raises the same error, for hostile values of the same names."""
    record, changes = case
    valid = _base(type(record))
    same = {name: getattr(valid, name) for name in changes}  # every validator passes
    key = (type(record), tuple(changes))
    model._KEYED.clear()
    command._WRITES.clear()
    model.derive(valid, same, checked=checked)  # planned
    command.field_diff(valid, same)  # generated
    command.remember_write(key, checked)
    entry = command._WRITES[key]
    assert entry[0] is checked
    assert entry[1] is model.planned_derive(*key, checked)
    slow = _outcome(model._derive_planning, record, changes, checked)
    assert _outcome(entry[1], record, changes) == slow
    general = _outcome(command.general_diff, record, changes)
    made = _outcome(entry[2], record, changes)
    if general[0] == "error":
        assert made == general
    else:
        assert made[0] == "made"
        assert made[1][1][0] == general[1]


def test_no_entry_without_both_generated_functions() -> None:
    """An unknown name: neither a plan nor a shape, no entry (write goes the slow way)."""
    record = _base(model.Requirement)
    key = (model.Requirement, ("state", "no_such_field"))
    command._WRITES.clear()
    with pytest.raises(ValidationError, match="a field of Requirement"):
        model.derive(record, {"state": "x", "no_such_field": 1})
    command.remember_write(key, "")
    assert key not in command._WRITES
    assert model.planned_derive(*key, "") is None


# --- write itself ---------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _write_once(
    monkeypatch: pytest.MonkeyPatch, record: Record, changes: dict[str, Any]
) -> tuple[Any, ...]:
    """command.write with its neighbours stubbed: what it hands to seal, or its error."""
    seen: list[Any] = []

    def seal(engine: Any, ctx: Any, old: Any, new: Any, dest: Any, diff: Any, h: Any) -> Any:
        last = command._LAST_ROWS
        seen.append((new, diff, last[1] if last[0] is diff else None))
        raise _Stop

    monkeypatch.setattr(command, "derive_version", lambda *a: dict(changes))
    monkeypatch.setattr(command, "seal", seal)
    tx, ctx = _Fake(), _Fake()
    ctx.record = record
    try:
        command.write(None, tx, None, ctx, "x")  # type: ignore[arg-type]
    except _Stop:
        return seen[0]  # type: ignore[no-any-return]
    except ValidationError as exc:
        return ("error", str(exc))
    raise AssertionError("seal not reached")


class _Fake:
    record: Any

    def last_hash(self, ref: str) -> None:
        return None


def test_write_finds_a_known_shape_without_derive_or_a_second_look_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first command of a shape plans it; the next call neither derive nor
    field_diff and hand seal the same new version, changes and rows."""
    record = _base(model.Requirement)
    changes = {
        "signoffs": (SIGN, SIGN_LATER), "state": "evaluating", "version": 2, "updated_at": LATER,
    }  # fmt: skip
    command._WRITES.clear()
    first = _write_once(monkeypatch, record, changes)
    calls: list[str] = []
    derive, field_diff = command.derive, command.field_diff
    monkeypatch.setattr(
        command, "derive", lambda *a, **k: calls.append("derive") or derive(*a, **k)
    )
    monkeypatch.setattr(
        command, "field_diff", lambda *a: calls.append(f"field_diff/{len(a)}") or field_diff(*a)
    )
    second = _write_once(monkeypatch, record, changes)
    assert calls == ["field_diff/3"]  # the shape handed over: no look-up in field_diff
    assert _typed(list(second)) == _typed(list(first))
    assert second[2] is not None  # the rows for seal
    assert _typed(second[1]) == _typed(command.general_diff(record, changes))


class _Dict(dict):  # type: ignore[type-arg]
    pass


def test_write_at_the_last_version_checks_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record at MAX_COUNT: the entry planned for the engine's checked names is not
    used; the version's validator refuses the next version, as before."""
    record = _base(model.Requirement)
    changes = {"state": "evaluating", "version": 2, "updated_at": LATER}
    command._WRITES.clear()
    _write_once(monkeypatch, record, changes)
    _write_once(monkeypatch, record, changes)  # the entry for _ENGINE_CHECKED is kept
    last = attrs.evolve(record, version=MAX_COUNT)
    over = {"state": "evaluating", "version": MAX_COUNT + 1, "updated_at": LATER}
    refused = _write_once(monkeypatch, last, over)
    assert refused[0] == "error"
    assert "version" in refused[1]
    with pytest.raises(ValidationError) as slow:
        model._derive_planning(last, over, "state")
    assert refused[1] == str(slow.value)


def test_write_with_another_mapping_goes_the_slow_way(monkeypatch: pytest.MonkeyPatch) -> None:
    record = _base(model.Requirement)
    changes = {"state": "evaluating", "version": 2, "updated_at": LATER}
    command._WRITES.clear()
    first = _write_once(monkeypatch, record, changes)
    _write_once(monkeypatch, record, changes)
    calls: list[str] = []
    derive = command.derive
    monkeypatch.setattr(
        command, "derive", lambda *a, **k: calls.append("derive") or derive(*a, **k)
    )
    monkeypatch.setattr(command, "derive_version", lambda *a: _Dict(changes))
    tx, ctx = _Fake(), _Fake()
    ctx.record = record
    seen: list[Any] = []

    def seal(*a: Any) -> Any:
        seen.append(a[5])
        raise _Stop

    monkeypatch.setattr(command, "seal", seal)
    with pytest.raises(_Stop):
        command.write(None, tx, None, ctx, "x")  # type: ignore[arg-type]
    assert calls == ["derive"]
    assert _typed(seen[0]) == _typed(first[1])


CLERK = Actor("clerk", "Clerk", roles={"sales"})
ENG = Actor("eng", "Engineer", departments={"engineering"})
MAT = Actor("mat", "Warehouse", departments={"materials"})
PRO = Actor("pro", "Production", departments={"production"}, roles={"production"})


def test_a_desk_run_derives_and_diffs_as_the_slow_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real commands, each shape three times: what write hands to seal is the
    planning path's new version and general_diff's changes of what derive_version
    made (derive_version again: its changes are the same values), and after the
    first requirement no command calls derive or looks its diff up in field_diff."""
    seal, derive_version = command.seal, command.derive_version
    checked: list[int] = []
    calls: list[str] = []
    desks: list[Desk] = []

    def checking_seal(
        engine: Any, ctx: Any, record: Any, new: Any, dest: Any, diff: Any, h: Any
    ) -> Any:
        changes = derive_version(desks[0], engine, ctx, dest)
        done = command._ENGINE_CHECKED
        assert _typed(new) == _typed(model._derive_planning(record, changes, done))
        assert _typed(diff) == _typed(command.general_diff(record, changes))
        last = command._LAST_ROWS
        assert last[0] is diff
        assert _typed([list(row) for row in last[1]]) == _typed(_rows(diff))
        checked.append(1)
        return seal(engine, ctx, record, new, dest, diff, h)

    monkeypatch.setattr(command, "seal", checking_seal)
    derive, field_diff = command.derive, command.field_diff
    monkeypatch.setattr(command, "derive", lambda *a, **k: calls.append("d") or derive(*a, **k))
    monkeypatch.setattr(
        command, "field_diff", lambda *a: calls.append(f"f/{len(a)}") or field_diff(*a)
    )
    customer = Customer("HK-001", "Hong Kong customer", category="important")
    with Desk.open("memory://") as desk:
        desks.append(desk)
        for n in range(3):
            if n == 1:
                calls.clear()
            ref = desk.requirements.receive(
                customer=customer, description="brackets", actor=CLERK
            ).ref
            desk.fire(ref, "start_evaluation", actor=CLERK)
            desk.sign(ref, department="engineering", actor=ENG, opinion="can do")
            desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
            desk.sign(ref, department="production", actor=PRO, opinion="week 12")
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
            desk.fire(ref, "start", actor=PRO)
            desk.fire(ref, "complete", actor=PRO, note="shipped")
            desk.fire(ref, "close", actor=CLERK)
            assert desk.verify_history(ref).ok
    assert len(checked) == 24
    assert calls == ["f/3"] * 16
