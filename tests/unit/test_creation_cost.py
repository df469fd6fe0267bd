"""The creating command's cheaper parts (issue 15 point 2) give exactly what they replace.

- ``serialize.attrs_unstructurer``: the generated unstructure of every record
  class (and every attrs class inside one) equals cattrs' own, on values
  drawn for each field's declared type.
"""

from __future__ import annotations

import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqmgmt import serialize
from reqmgmt.model import maker, record_classes
from reqmgmt.serialize import attrs_unstructurer, converter, unstructure
from reqmgmt.testing.strategies import aware_datetimes

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
        return st.tuples(*fields).map(lambda v, make=maker(type_): make(*v))
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

from datetime import UTC, timedelta, timezone  # noqa: E402

from reqmgmt import Customer, Requirement  # noqa: E402
from reqmgmt import model as model_module  # noqa: E402
from reqmgmt.building import first_version, set_fields  # noqa: E402
from reqmgmt.model import constructor, derive  # noqa: E402

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
_ODD_TEXT = st.sampled_from(["", " ", "x", "a\x00b", "\ud800", "x" * 70_000, "备注"])
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
    except Exception as exc:  # noqa: BLE001 - the errors themselves are compared
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
