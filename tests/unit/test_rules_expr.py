"""The condition language: safe, exact, with clear errors."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from reqmgmt.rules import ExpressionError, compile_condition

FACTS = {"amount", "count", "flag", "name", "tags"}


def ev(source: str, **facts: object) -> bool:
    values = {"amount": Decimal(0), "count": 0, "flag": False, "name": "", "tags": ()}
    values.update(facts)
    return compile_condition(source, FACTS, {"is_vip": lambda n: n == "vip"})(values)


@pytest.mark.parametrize(
    ("source", "facts", "expected"),
    [
        ("amount >= 200000", {"amount": Decimal("200000.00")}, True),
        ("amount >= 200000", {"amount": Decimal("199999.99")}, False),
        ("amount < 0.1", {"amount": Decimal("0.09")}, True),
        ("0.1 + 0.2 == 0.3", {}, True),  # exact decimals, not binary floats
        ("flag or count > 2", {"count": 3}, True),
        ("not flag and count == 0", {}, True),
        ("1 < count <= 3", {"count": 3}, True),
        ("1 < count <= 3", {"count": 4}, False),
        ("name in ['a', 'b']", {"name": "b"}, True),
        ("name not in ('a', 'b')", {"name": "c"}, True),
        ("'oem' in tags", {"tags": ("oem",)}, True),
        ("count * 2 - 1 == 5", {"count": 3}, True),
        ("count / 2 == 1.5", {"count": 3}, True),
        ("-count == -3", {"count": 3}, True),
        ("true", {}, True),
        ("False", {}, False),
        ("name == none", {"name": None}, True),
        ("is_vip(name)", {"name": "vip"}, True),
    ],
)
def test_conditions_evaluate(source: str, facts: dict[str, object], expected: bool) -> None:
    """Each construct of the language gives the expected answer."""
    assert ev(source, **facts) is expected


def test_names_lists_the_facts_read() -> None:
    """A compiled condition knows which facts it reads, in order, once each."""
    c = compile_condition("amount > 1 and (flag or amount < 5)", FACTS, {})
    assert c.names == ("amount", "flag")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("amount >=", "does not parse"),
        ("amout > 1", "unknown fact 'amout'; known facts: amount, count, flag, name, tags"),
        ("open('x')", "unknown function 'open'"),
        ("name.upper()", "only registered functions called by name"),
        ("name[0]", "Subscript is not allowed"),
        ("count ** 2", "only + - * /"),
        ("count is 1", "comparison Is is not allowed"),
        ("{1: 2}", "Dict is not allowed"),
        ("f'{name}'", "JoinedStr is not allowed"),
        ("~count", "only not, - and +"),
        ("b'x' == name", "literal b'x' is not allowed"),
        ("", "non-empty"),
    ],
)
def test_bad_conditions_say_what_and_where(source: str, message: str) -> None:
    """Refused constructs name the problem (and the column where one applies)."""
    with pytest.raises(ExpressionError, match=re.escape(message)):
        compile_condition(source, FACTS, {})


def test_columns_are_reported() -> None:
    """The error points at the offending part."""
    with pytest.raises(ExpressionError) as info:
        compile_condition("count > 1 and amout > 2", FACTS, {})
    assert info.value.column == 15


def test_no_python_builtins_are_reachable() -> None:
    """Dunder tricks cannot reach Python objects."""
    for source in ("__builtins__", "().__class__", "count.__class__", "globals()"):
        with pytest.raises(ExpressionError):
            compile_condition(source, FACTS, {})
