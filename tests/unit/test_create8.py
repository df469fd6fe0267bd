"""The creating command's cheaper parts, round eight (issue 15): each gives exactly
what it replaces.

- ``building.first_document``: a new record's JSON form, copied from a template
  of its defaults with only the fields that differ stored, equals
  ``unstructure`` (and cattrs) for records of every kind, with fields at their
  default objects, at equal-but-other objects, and datetimes shared between
  fields; no two documents share a list.
- ``CreationCheck.fields``: a plain dict's names checked with ``issuperset``
  refuses and accepts as the general path (any other mapping) does.
- ``creation.create_with`` (``Desk.create``, ``desk.requirements.receive``):
  the same records, events and refusals as the keyword path.
- ``verbs._hours``: the same timedelta as ``timedelta(hours=float(hours))``, or
  the same error.
- ``building``'s fills read attrs' validator switch as attrs' ``__init__`` does.
- ``serialize.attrs_unstructurer`` writes the library's set hook as ``sorted()``
  (the same list or error as the lambda), a host's hook called as its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqmgmt import (
    Actor,
    Customer,
    Desk,
    ValidationError,
    audit,
    building,
    creation,
    serialize,
    verbs,
)
from reqmgmt.building import first_document, first_version
from reqmgmt.model import FieldChange, constructor, record_classes
from reqmgmt.serialize import attrs_unstructurer as serialize_attrs
from reqmgmt.serialize import converter, unstructure
from reqmgmt.testing import FakeClock

from . import test_creation_cost as _cost

CLERK = Actor("clerk", "Clerk", roles={"sales"}, departments={"sales"})
CUSTOMER = Customer(id="C-1", name="华南五金")
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class _Str(str):
    """Equal to a word, but not it (nor a plain str)."""


def _defaults(cls: type) -> dict[str, Any]:
    """Each defaulted field's value as a record built by first_version holds it."""
    out = {}
    for a in attrs.fields(cls):
        kept, value, _ = building._folded(a, converter.get_unstructure_hook(a.type))
        if kept:
            out[a.name] = value
    return out


def _others(value: Any) -> list[Any]:
    """Objects equal to ``value`` (or of its JSON form) that are not it."""
    if value is None:
        return []
    if type(value) is str:
        return [_Str(value), "".join(list(value)) + ""]
    if type(value) is int:
        return [int(str(10**30)) - 10**30 + value]
    if type(value) is tuple:
        return [list(value)]
    return []


@pytest.mark.parametrize("kind", sorted(record_classes()))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_first_document_is_unstructure(kind: str, data: st.DataObject) -> None:
    cls = record_classes()[kind]
    record = data.draw(_cost._values(cls))
    defaults = _defaults(cls)
    dated = [a.name for a in attrs.fields(cls) if a.type in (datetime, datetime | None)]
    pool = [getattr(record, n) for n in dated]
    for a in attrs.fields(cls):
        choice = data.draw(st.integers(0, 3))
        if a.name in defaults and choice == 1:  # the very default object
            object.__setattr__(record, a.name, defaults[a.name])
        elif a.name in defaults and choice == 2:  # equal to it, not it
            others = _others(defaults[a.name])
            if others:
                object.__setattr__(record, a.name, data.draw(st.sampled_from(others)))
        elif a.name in dated and choice == 3 and pool:  # another field's datetime itself
            object.__setattr__(record, a.name, data.draw(st.sampled_from(pool)))
    try:
        expected = converter.unstructure(record)
    except Exception as exc:  # a value no record holds (None where a time must be)
        with pytest.raises(type(exc)) as raised:
            first_document(record)
        assert str(raised.value) == str(exc)  # noqa: PT017 (the same error as unstructure's)
        return
    made = first_document(record)
    assert made == expected
    assert list(made) == list(expected)  # the fields' order
    assert repr(made) == repr(expected)  # the same types (a tuple is not a list)
    assert made == unstructure(record)
    again = first_document(record)
    for name, value in made.items():  # no list (nor anything mutable) shared
        if isinstance(value, (list, dict)):
            assert again[name] is not value, name


def test_a_new_records_defaults_are_the_kept_objects() -> None:
    """The saving itself: a record first_version builds holds each folded default as the
    very object the document maker compares with (else it converts it again)."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        made = desk.requirements.receive(customer=CUSTOMER, description="brackets", actor=CLERK)
    defaults = _defaults(type(made))
    assert len(defaults) >= 20
    at_default = [n for n, v in defaults.items() if getattr(made, n) is v]
    assert len(at_default) >= 20, at_default
    code = building._DOCUMENTS[type(made)].__code__
    assert "unstructure_optional" not in code.co_names


def test_a_class_with_its_own_hook_gets_it() -> None:
    @attrs.frozen
    class Odd:
        x: int = 0

    converter.register_unstructure_hook(Odd, lambda o: {"odd": o.x})
    try:
        assert first_document(Odd()) == {"odd": 0}
    finally:
        building._DOCUMENTS.pop(Odd, None)


def test_shared_datetimes_are_written_once() -> None:
    """created_at and updated_at (one ``now``) are one iso call, not two."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        made = desk.requirements.receive(customer=CUSTOMER, description="brackets", actor=CLERK)
    assert made.created_at is made.updated_at
    seen: list[Any] = []
    maker = building._DOCUMENTS[type(made)]
    namespace = maker.__globals__
    hooks = {k: v for k, v in namespace.items() if k.startswith("_h") and v is building.iso}
    assert hooks
    for k in hooks:
        namespace[k] = lambda v: seen.append(v) or building.iso(v)
    try:
        first_document(made)
    finally:
        namespace.update(hooks)
    assert seen.count(made.created_at) == 1
    assert made.next_deadline is None or seen.count(made.next_deadline) == 1


# --- CreationCheck.fields -----------------------------------------------------------------

_NAMES = st.sampled_from(
    [
        *("customer", "description", "channel", "kind", "priority", "due_at", "received_at"),
        *("state", "ref", "nonsense", "credit", "a|b", "\ud800", ""),
    ]
)


def _outcome(check: creation.CreationCheck, given: Any, rules: Any) -> str:
    try:
        check.fields(given, rules)
    except (ValidationError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


class _Keys(dict[str, Any]):
    """A dict whose keys() (not its iteration) shows an extra name."""

    def keys(self) -> Any:
        return super().keys() | {"nonsense"}


@settings(max_examples=150, deadline=None)
@given(names=st.lists(_NAMES, max_size=8, unique=True), data=st.data())
def test_fields_checks_a_dict_as_any_mapping(names: list[str], data: st.DataObject) -> None:
    with Desk.open("memory://") as desk:
        check = desk._creation_check("requirement")
        given = {
            n: data.draw(st.sampled_from([CUSTOMER, "x", "order", "normal", AT, None, 3]))
            for n in names
        }
        general = _outcome(check, MappingProxyType(given), desk.rules)
        assert _outcome(check, dict(given), desk.rules) == general
        # A dict subclass goes the general way, asking its own keys() (which
        # names one it does not hold: looked up for the refusal, a KeyError).
        if "nonsense" not in given:
            unknown = sorted((given.keys() | {"nonsense"}) - check._allowed)
            expected = "KeyError: 'nonsense'" if unknown[0] == "nonsense" else general
            assert _outcome(check, _Keys(given), desk.rules) == expected


def test_fields_still_refuses_what_is_not_a_mapping() -> None:
    with Desk.open("memory://") as desk:
        check = desk._creation_check("requirement")
        for bad in (["customer"], "customer", None, 3):
            with pytest.raises(ValidationError, match="a mapping of input name to value"):
                check.fields(bad, desk.rules)  # type: ignore[arg-type]


# --- create_with: the path of Desk.create and receive ----------------------------------------


@pytest.fixture
def two() -> Iterator[tuple[Desk, Desk]]:
    with (
        Desk.open("memory://", clock=FakeClock()) as a,
        Desk.open("memory://", clock=FakeClock()) as b,
    ):
        yield a, b


def _trail(desk: Desk, ref: str) -> list[Any]:
    with desk.store.transaction() as tx:
        rows = tx.raw_audit(ref)
    return [orjson.loads(r.doc) for r in rows]


def test_receive_makes_what_the_keyword_path_makes(two: tuple[Desk, Desk]) -> None:
    a, b = two
    made = a.requirements.receive(
        customer=CUSTOMER, description="brackets", actor=CLERK, priority="urgent", note="n"
    )
    # The keyword path, as receive wrote it before: the deadline decided the same way.
    received = b.now()
    decision = creation.classified(b, "requirement_deadline", {"priority": "urgent"})
    due = b.calendar.add(received, timedelta(hours=float(decision.outcome["hours"])))
    other = creation.create(
        b, "requirement", actor=CLERK, note="n", decisions=[decision], customer=CUSTOMER,
        description="brackets", channel="fax", kind="order", priority="urgent", due_at=due,
        received_at=received,
    )  # fmt: skip
    assert made == other
    assert _trail(a, made.ref) == _trail(b, other.ref)
    assert audit.event_hash(a.history(made.ref)[0]) == audit.event_hash(b.history(other.ref)[0])


def test_desk_create_refuses_as_before(two: tuple[Desk, Desk]) -> None:
    a, _ = two
    with pytest.raises(ValidationError, match="not a field of a requirement"):
        a.create(
            "requirement", actor=CLERK, customer=CUSTOMER, description="x", received_at=AT,
            colour="red",
        )  # fmt: skip
    with pytest.raises(ValidationError, match="needs description"):
        a.create("requirement", actor=CLERK, customer=CUSTOMER, received_at=AT)
    made = a.create("requirement", actor=CLERK, customer=CUSTOMER, description="x", received_at=AT)
    assert made.version == 1
    assert made.description == "x"


def test_create_with_does_not_touch_the_callers_fields(two: tuple[Desk, Desk]) -> None:
    a, _ = two
    fields: Mapping[str, Any] = {"customer": CUSTOMER, "description": "x", "received_at": AT}
    before = dict(fields)
    creation.create_with(a, "requirement", CLERK, None, (), fields)
    assert fields == before


# --- verbs._hours ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    hours=st.one_of(
        st.integers(-(10**12), 10**12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=4),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.sampled_from([True, 1, 1.0, 0, -0.0, 0.0, "5", "nan"]),
    )
)
def test_hours_is_the_timedelta_it_stands_for(hours: Any) -> None:
    def plain() -> Any:
        try:
            return timedelta(hours=float(hours))
        except Exception as exc:
            return (type(exc), str(exc))

    def kept() -> Any:
        try:
            return verbs._hours(hours)
        except Exception as exc:
            return (type(exc), str(exc))

    assert kept() == plain()
    assert kept() == plain()  # a second time: from the map, if kept
    if not (type(hours) is int or type(hours) is float):
        assert all(k is not hours for k in verbs._SPANS)
    if type(hours) is float and math.isnan(hours):
        assert not any(type(k) is float and math.isnan(k) for k in verbs._SPANS)


# --- the fills' validator switch ------------------------------------------------------------


def test_a_fill_validates_unless_attrs_validators_are_disabled() -> None:
    cls = record_classes()["requirement"]
    values = {
        "ref": "REQ-1", "state": "received", "version": 1, "created_at": AT, "updated_at": AT,
        "created_by": "clerk", "customer": CUSTOMER, "description": "x", "received_at": AT,
    }  # fmt: skip
    bad = {**values, "description": ""}
    with pytest.raises(ValidationError) as fill_error:
        first_version(cls)(bad)
    with pytest.raises(ValidationError) as init_error:
        constructor(cls)(bad)
    assert str(fill_error.value) == str(init_error.value)
    attrs.validators.set_disabled(True)
    try:
        assert first_version(cls)(bad) == constructor(cls)(bad)
        assert first_version(cls)(bad).description == ""
    finally:
        attrs.validators.set_disabled(False)
    assert first_version(cls)(values).description == "x"


# --- a set field's hook written as sorted() ---------------------------------------------------


@attrs.frozen
class _Tagged:
    tags: frozenset[str] = frozenset()
    counts: frozenset[int] = frozenset()


def test_a_set_is_sorted_inline_and_a_host_hook_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    def host(value: frozenset[int]) -> list[int]:
        return sorted(value, reverse=True)

    # The host's hook on a copy of the converter, for this test only (the library's
    # converter is shared by every test of the process).
    hosts = converter.copy()
    hosts.register_unstructure_hook_func(lambda t: t == frozenset[int], host)
    monkeypatch.setattr(serialize, "converter", hosts)
    monkeypatch.setattr(serialize, "_FAST", {})
    made = serialize_attrs(_Tagged)
    code = made.__code__
    assert "sorted" in code.co_names  # the library's own hook: sorted() itself
    assert made(_Tagged(frozenset({"b", "a"}), frozenset({1, 3}))) == {
        "tags": ["a", "b"],
        "counts": [3, 1],  # the host's hook, called as its own
    }


@settings(max_examples=100, deadline=None)
@given(
    tags=st.one_of(
        st.frozensets(st.text(max_size=3), max_size=4),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=2)), max_size=3),
        st.none(),
        st.integers(),
        st.lists(st.text(max_size=2), max_size=3),
    )
)
def test_sorted_inline_is_the_lambda(tags: Any) -> None:
    """Any value, even one no record holds: the same list or the same error."""
    record = _Tagged()
    object.__setattr__(record, "tags", tags)

    def outcome(fn: Any) -> Any:
        try:
            return fn(record)["tags"]
        except Exception as exc:
            return (type(exc), str(exc))

    assert outcome(serialize_attrs(_Tagged)) == outcome(converter.get_unstructure_hook(_Tagged))


def test_the_creating_change_is_the_field_change_attrs_makes() -> None:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        made = desk.requirements.receive(customer=CUSTOMER, description="brackets", actor=CLERK)
        (change,) = desk.history(made.ref)[0].changes
    assert type(change) is FieldChange
    assert change == FieldChange("*", None, unstructure(made), "create")
    assert attrs.asdict(change, recurse=False) == attrs.asdict(
        FieldChange("*", None, unstructure(made), "create"), recurse=False
    )
