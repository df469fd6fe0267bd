"""The condition language: safe, exact, with clear errors."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from reqmgmt.rules import Compiled, ExpressionError, compile_condition
from reqmgmt.rules.expr import MAX_DEPTH, MAX_REPEAT, RepeatTooLong

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


# --- type checks against the declared inputs ------------------------------------------------

TYPES = {
    "amount": "money",
    "count": "int",
    "flag": "bool",
    "name": "str",
    "tags": "list",
    "day": "date",
    "rate": "decimal",
}


def is_vip(name: str) -> bool:
    """A registered predicate with an annotated signature."""
    return name == "vip"


def typed(source: str) -> Compiled:
    return compile_condition(source, TYPES, {"is_vip": is_vip}, types=TYPES)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("name > 3", "cannot compare name (a string) with 3 (a number) using >"),
        ("3 <= name", "cannot compare 3 (a number) with name (a string) using <="),
        ("amount >= '200000'", "amount (a number) with '200000' (a string)"),
        ("flag < 1", "cannot compare flag (a bool) with 1 (a number)"),
        ("day > 3", "cannot compare day (a date) with 3 (a number)"),
        ("name == 3", "compares a string with a number: it is never true"),
        ("count != 'x'", "compares a number with a string: it is always true"),
        ("flag == 1", "compares a bool with a number"),
        ("name + 1 > 2", "cannot add name (a string) and 1 (a number)"),
        ("name - 'a' == ''", "cannot subtract name (a string) and 'a' (a string)"),
        ("name / 2 > 1", "cannot divide name (a string) and 2 (a number)"),
        ("name * name == ''", "cannot multiply name (a string) and name (a string)"),
        ("flag + 1 > 1", "cannot add flag (a bool) and 1 (a number)"),
        ("day - day > 1", "cannot subtract day (a date) and day (a date)"),
        ("tags + tags == tags", "cannot add tags (a list) and tags (a list)"),
        ("-name == 'a'", "- needs a number: name (a string)"),
        ("'a' in count", "'in' needs a list or a string on its right, not count (a number)"),
        ("count in name", "'in' a string needs a string on its left, not count (a number)"),
        ("count in ['a', 'b']", "count (a number) in a list of string values is never true"),
        ("name not in [1, 2]", "is always true"),
        ("rate / 0 > 1", "division by zero (at column 8)"),
        ("count / 0.0 > 1", "division by zero"),
        ("is_vip(count)", "is_vip() takes its parameter 'name' as a string, not count"),
        ("is_vip(name, name)", "is_vip() cannot be called with 2 arguments"),
        ("is_vip()", "is_vip() cannot be called with 0 arguments"),
        ("is_vip(name) > 1", "cannot compare is_vip(name) (a bool) with 1 (a number)"),
    ],
)
def test_type_errors_are_refused_at_compile_time(source: str, message: str) -> None:
    """What would raise TypeError (or never match) at evaluation is refused when compiled."""
    with pytest.raises(ExpressionError, match=re.escape(message)):
        typed(source)


@pytest.mark.parametrize(
    "source",
    [
        "name == 'a' and count > 1 and amount >= 200000.5",
        "count + 1 > amount - rate * 2",
        "name + 'x' == 'ax' and name * 2 == 'aa' and 2 * name != ''",
        "day < day and not flag",
        "'a' in tags and 'b' not in tags and count in [1, 2] and name in 'abc'",
        "name == none or count != none",
        "is_vip(name) and flag == true",
        "not name or not tags",
        "-count < +rate",
        "1 < count <= 3",
    ],
)
def test_well_typed_conditions_compile(source: str) -> None:
    """Type checks refuse only what cannot work: every allowed construct still compiles."""
    assert typed(source).names


def test_a_function_without_annotations_is_checked_for_arity_only() -> None:
    """A plain lambda's result is of unknown type: compared freely, checked at evaluation."""
    functions = {"twice": lambda x: x * 2}
    c = compile_condition("twice(count) > 3", TYPES, functions, types=TYPES)
    assert c({"count": 2})
    with pytest.raises(ExpressionError, match=r"twice\(\) cannot be called with 2 arguments"):
        compile_condition("twice(count, count) > 3", TYPES, functions, types=TYPES)


def test_a_registered_function_must_be_callable() -> None:
    """A rule function registry holding a non-callable is refused where it is used."""
    with pytest.raises(ExpressionError, match="registered function 'rate' is not callable"):
        compile_condition("rate(1)", TYPES, {"rate": 3})


def test_division_is_exact_and_mixes_with_decimals() -> None:
    """3 / 2 is Decimal 1.5, so it adds to a decimal literal (a float would raise TypeError)."""
    assert typed("count / 2 + 0.5 == 2")({"count": 3})


# --- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("not " * (MAX_DEPTH + 10) + "flag", f"nested more than {MAX_DEPTH} levels deep"),
        (" + ".join(["count"] * 60) + " > 0", f"nested more than {MAX_DEPTH} levels deep"),
        # Python's own parser gives up on these (RecursionError, MemoryError).
        ("count > " + "+".join(["1"] * 4000), "nested too deeply to parse"),
        ("-" * 5000 + "count > 0", "nested too deeply to parse"),
        ("(" * 300 + "count" + ")" * 300, "does not parse: too many nested parentheses"),
        ("count > " + "9" * 5000, "does not parse"),
        (" or ".join(["flag"] * 3000), "characters long; at most 10,000 are allowed"),
    ],
)
def test_deep_and_long_conditions_are_refused_cleanly(source: str, message: str) -> None:
    """Depth and length limits: an ExpressionError, never RecursionError or MemoryError."""
    with pytest.raises(ExpressionError, match=re.escape(message)):
        typed(source)


def test_a_condition_at_the_depth_limit_compiles_and_evaluates() -> None:
    """The limit leaves room: a condition just under it works."""
    source = " + ".join(["count"] * (MAX_DEPTH - 3)) + " > 0"
    assert typed(source)({"count": 1})


@pytest.mark.parametrize(
    "source",
    [
        "name * 1000000000 == ''",
        "1000000000 * name == ''",
        "'ab' * 60000 == name",
        "name * count * 1000000 == ''",
    ],
)
def test_repetition_past_the_limit_is_refused_at_compile_time(source: str) -> None:
    """``name * 1000000000`` would allocate a gigabyte per evaluation: refused when known."""
    with pytest.raises(ExpressionError, match=f"longer than {MAX_REPEAT:,} characters"):
        typed(source)


def test_repetition_past_the_limit_is_capped_at_evaluation() -> None:
    """A size known only from the facts is checked before the string is built."""
    c = typed("name * count == ''")
    assert c({"name": "ab", "count": 3}) is False
    with pytest.raises(RepeatTooLong, match="longer than 100,000"):
        c({"name": "x" * 1000, "count": 1000})
    unknown = compile_condition("twice(name) * 99999 == ''", TYPES, {"twice": lambda x: x * 2})
    with pytest.raises(RepeatTooLong):
        unknown({"name": "ab"})


def test_date_literals() -> None:
    """``date('2026-01-31')`` is a date literal, type-checked like one; a registered ``date`` wins."""
    due = compile_condition("received >= date('2026-01-31')", ["received"], {},
                            types={"received": "date"})  # fmt: skip
    assert due({"received": date(2026, 2, 1)}) is True
    assert due({"received": date(2026, 1, 30)}) is False
    for source, message in [
        ("received >= date('2026-02-30')", "is not a date YYYY-MM-DD"),
        ("received >= date(20260131)", "takes one string"),
        ("count >= date('2026-01-31')", "cannot compare count"),
    ]:
        with pytest.raises(ExpressionError, match=message):
            compile_condition(source, ["received", "count"], {},
                              types={"received": "date", "count": "int"})  # fmt: skip
    mine = compile_condition("date(received)", ["received"], {"date": lambda d: d.day == 1})
    assert mine({"received": date(2026, 3, 1)}) is True
