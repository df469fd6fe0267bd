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
