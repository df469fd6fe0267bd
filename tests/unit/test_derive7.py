"""Step 3's fast paths against the general ones (issue 15, round seven).

- ``model.texts_pass`` (the ``_each_text`` test of a generated derive, remembering
  the collections it passed) answers as ``derive_pass``'s written test, on a
  first look and on every later one, for hostile collections; a remembered
  collection never lets through an equal-looking one of ``str`` subclasses;
- a generated derive with such a field derives what the general path
  (``derive`` of a mapping) derives, or raises the same error, twice over;
- ``command.derive_version`` (the same-state case and the plain move, no pause
  started or ended and no step deadline or one of working hours, written out)
  gives what the effects, the three engine fields and ``deadline_changes`` gave,
  for records holding naive, other-zone and missing times and states that are
  ``str`` subclasses;
- ``WorkCalendar.add`` (the zone from a plain dict) answers as with ``zone``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType, SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, Requirement, model, reminders
from reqmgmt.command import derive_version
from reqmgmt.errors import ValidationError
from reqmgmt.lifecycle.base import Engine
from reqmgmt.model import FAST_NAMES, Record, derive, derive_pass, texts_pass
from reqmgmt.reminders import WorkCalendar, deadline_changes
from reqmgmt.testing.contract import make_requirement
from tests.conftest import receive
from tests.unit.test_iso6 import BASE, TIMES

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class _Str(str):
    """A hostile item: equal to and hashing as any plain text of its own."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(str(self))

    def isprintable(self) -> bool:
        return True


class _FakeTuple:
    """Claims to be a tuple and equals any: only its items are ever plain texts."""

    __class__ = tuple  # type: ignore[assignment]

    def __init__(self, items: tuple[str, ...]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(self.items)


_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(" a\t\n\x00\x7f\u00a0备\ud800"), max_size=8),
    st.sampled_from(["", "sales", "x" * 64, "x" * 65, "x" * 300, "备注"]),
)
_ITEM = st.one_of(_TEXT, _TEXT.map(_Str), st.sampled_from([7, None, b"x", ("a",)]))
_COLLECTION = st.one_of(
    st.lists(_ITEM, max_size=12).map(tuple),
    st.lists(_ITEM, max_size=5),
    st.frozensets(_TEXT, max_size=5),
    st.lists(_TEXT, max_size=5).map(lambda items: _FakeTuple(tuple(items))),
    st.sampled_from(["abc", None, 3, (), frozenset(), ("x" * 64,) * 70]),
)


def _written(value: Any) -> bool:
    """derive_pass's test for _each_text as the generated derive wrote it before."""
    a = attrs.fields_dict(Requirement)["plan_departments"]
    test = derive_pass(a.validator, a)
    assert test is not None
    return bool(eval(test, {**FAST_NAMES, "_STR_": frozenset((str,)), "v": value}))


@settings(max_examples=500)
@given(st.lists(_COLLECTION, min_size=1, max_size=6))
def test_texts_pass_is_the_written_test(values: list[Any]) -> None:
    # Each value twice (a miss, then perhaps a hit), and its plain-text twin after.
    for value in values:
        want = _written(value)
        assert texts_pass(value) is want
        assert texts_pass(value) is want
        if isinstance(value, tuple):
            twin = tuple(_Str(v) if type(v) is str else v for v in value)
            assert texts_pass(twin) is _written(twin)


def test_a_remembered_collection_lets_no_look_alike_through() -> None:
    plain = ("sales", "engineering")
    assert texts_pass(plain)
    assert plain in model._TEXTS_PASSED
    # Equal to the remembered one by their own __eq__, yet never looked up.
    hostile = (_Str("sales\x00"), _Str("engineering"))
    assert texts_pass(hostile) is _written(hostile) is False
    fake = _FakeTuple(("x" * 65,))
    assert texts_pass(fake) is _written(fake) is False
    long = ("x" * 65,) * 2
    assert texts_pass(long) is False
    assert long not in model._TEXTS_PASSED
    many = ("a",) * (model._TEXTS_ITEMS + 1)
    assert texts_pass(many)
    assert many not in model._TEXTS_PASSED


def test_the_memory_is_bounded() -> None:
    for i in range(model._TEXTS_MAX + 10):
        assert texts_pass((f"d{i}",))
    assert len(model._TEXTS_PASSED) <= model._TEXTS_MAX


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except ValidationError as exc:  # the same refusal, in the same words
        return "raised", (type(exc), str(exc))
    except Exception as exc:
        return "raised", type(exc)


def _fields(record: Record) -> dict[str, Any]:
    return {a.name: getattr(record, a.name) for a in attrs.fields(type(record))}


@settings(max_examples=300)
@given(_COLLECTION, _COLLECTION, st.sampled_from([None, "2 lots", "x" * 65, _Str("a\x00")]))
def test_generated_derive_with_texts_is_the_general_path(
    departments: Any, remarks: Any, plan: Any
) -> None:
    record = make_requirement(state="evaluating")
    checked = frozenset({"state", "version"})
    changes = {
        "delivery_plan": plan,
        "plan_departments": departments,
        "remarks": remarks,
        "state": "accepted",
        "version": record.version + 1,
        "updated_at": AT,
    }
    for _ in range(2):  # the planning call, then the generated derive (and its memory)
        got = _outcome(lambda: _fields(derive(record, dict(changes), checked=checked)))
        want = _outcome(lambda: _fields(derive(record, MappingProxyType(changes), checked=checked)))
        assert got == want
    assert model.planned_derive(Requirement, tuple(changes), checked) is not None


# --- derive_version -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def setting() -> Iterator[tuple[Desk, Record]]:
    with Desk.open("memory://") as desk:
        ref = receive(desk)
        yield desk, desk.get(ref)


class _Engine:
    """The engine's deadline attributes, with the effects' changes given."""

    def __init__(self, engine: Engine, effects: Mapping[str, Any]) -> None:
        self.kind, self.waiting, self.final = engine.kind, engine.waiting, engine.final
        self.effects = effects

    def changes(self, ctx: Any) -> dict[str, Any]:
        return dict(self.effects)


def _previous(desk: Desk, engine: Any, ctx: Any, dest: str) -> dict[str, Any]:
    """command.derive_version as it was (main 76c0b6d)."""
    record = ctx.record
    changes = engine.changes(ctx)
    changes["state"] = dest
    changes["version"] = record.version + 1
    changes["updated_at"] = ctx.now
    changes.update(
        deadline_changes(desk.deadlines(), engine, record, dest, ctx.now, changes=changes)
    )
    return changes


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.data(),
    TIMES,
    TIMES,
    TIMES,
    TIMES,
    st.sampled_from(["first_response", None, "步骤"]),
    st.integers(-5_000, 5_000),
    st.sampled_from(
        [{}, {"next_deadline": "not a time"}, {"step": 7, "remarks": ("a",)}, {"state": "x"}]
    ),
)
def test_derive_version_is_the_previous(
    setting: tuple[Desk, Record],
    data: st.DataObject,
    due: datetime | None,
    step_due: datetime | None,
    paused: datetime | None,
    nxt: datetime | None,
    step: str | None,
    minutes: int,
    effects: dict[str, Any],
) -> None:
    desk, record = setting
    real = desk.engine(record.RECORD_KIND)
    states = sorted(s.name for s in real.lifecycle.states)
    old_state = data.draw(st.one_of(st.sampled_from(states), st.just("最终")))
    dest = data.draw(
        st.one_of(
            st.sampled_from(states),
            st.just(old_state),
            st.just("".join(old_state)),
            st.builds(type("S", (str,), {}), st.just(old_state)),
            st.builds(_Str, st.sampled_from(states)),  # equal to any state
        )
    )
    old = attrs.evolve(record, step=step)
    # Past the validators: a store never holds these, both must fail (or not) alike.
    for name, value in [
        ("state", old_state), ("due_at", due), ("step_due_at", step_due),
        ("paused_since", paused), ("next_deadline", nxt),
    ]:  # fmt: skip
        object.__setattr__(old, name, value)
    engine = _Engine(real, effects)
    ctx = SimpleNamespace(record=old, now=BASE + timedelta(minutes=minutes))
    want = _outcome(lambda: _previous(desk, engine, ctx, dest))
    # Twice: the move decided (plain_move, or the rule's answer not known yet), then
    # the decision looked up.
    got = _outcome(lambda: derive_version(desk, engine, ctx, dest))  # type: ignore[arg-type]
    assert got == want
    got = _outcome(lambda: derive_version(desk, engine, ctx, dest))  # type: ignore[arg-type]
    assert got == want
    if got[0] == "ok":
        assert list(got[1]) == list(want[1])  # the same order (the derive's shape)
        inputs = [due, step_due, paused, nxt, ctx.now, dest, *effects.values()]
        for key, value in want[1].items():
            if any(value is i for i in inputs):
                assert got[1][key] is value, key  # an input passed on is the very object


# --- WorkCalendar.add ---------------------------------------------------------------------


@settings(max_examples=200)
@given(
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC"]),
    st.integers(-3_000_000, 3_000_000),
    st.integers(-100, 200),
    st.sampled_from([UTC, timezone(timedelta(hours=8)), ZoneInfo("Asia/Hong_Kong")]),
)
def test_add_is_the_add_through_zone(name: str, seconds: int, hours: int, tz: Any) -> None:
    start = (BASE + timedelta(seconds=seconds)).astimezone(tz)
    amount = timedelta(hours=hours, minutes=7)
    calendar = WorkCalendar(timezone=name)
    reminders._ZONES.clear()
    missed = calendar.add(start, amount)  # the zone looked up through _zone
    hit = WorkCalendar(timezone=name).add(start, amount)  # from _ZONES
    # The zone it reads is the property's very object (what the previous add read).
    if amount >= timedelta(0):  # a negative amount subtracts (through self.zone)
        assert reminders._ZONES[name] is calendar.zone is reminders._zone(name)
    assert missed == hit
    assert missed.tzinfo is start.tzinfo is hit.tzinfo


def test_the_zones_are_bounded() -> None:
    names = sorted(available_timezones())[:100]
    for name in names:
        WorkCalendar(timezone=name).add(BASE, timedelta(hours=1))
    assert 0 < len(reminders._ZONES) <= 64
