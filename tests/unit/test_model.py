"""Records are frozen, validated, and refuse bad values with clear messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given

from reqmgmt import Actor, Customer, Money, Requirement, ValidationError
from reqmgmt.model import derive
from reqmgmt.testing import make_requirement, strategies


def test_money_keeps_decimal_exactly() -> None:
    """Strings and ints become Decimal; sums are exact."""
    assert Money("0.10", "CNY") + Money(Decimal("0.20"), "CNY") == Money("0.30", "CNY")
    assert Money(5, "USD").amount == Decimal(5)


def test_money_refuses_float_and_says_why() -> None:
    """A float is refused with the reason and the alternative."""
    with pytest.raises(ValidationError, match=r"floats cannot hold amounts.*Decimal\('0.10'\)"):
        Money(0.1, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", Decimal("NaN")])
def test_money_refuses_nan_and_infinity(bad: object) -> None:
    """NaN and infinity are not amounts."""
    with pytest.raises(ValidationError, match="finite amount"):
        Money(bad, "CNY")  # type: ignore[arg-type]


def test_money_refuses_garbage_amounts() -> None:
    """Text that is not a number is refused."""
    with pytest.raises(ValidationError, match="numeric string"):
        Money("twelve", "CNY")


def test_money_refuses_unknown_currency_and_suggests_case() -> None:
    """An unknown code is refused; a lowercase known one gets a hint."""
    with pytest.raises(ValidationError, match="ISO 4217"):
        Money(1, "XYZ")
    with pytest.raises(ValidationError, match="did you mean 'USD'"):
        Money(1, "usd")


def test_money_does_not_mix_currencies() -> None:
    """Adding or comparing different currencies says to convert first."""
    with pytest.raises(ValidationError, match="convert first"):
        _ = Money(1, "CNY") + Money(1, "USD")
    with pytest.raises(ValidationError, match="convert first"):
        _ = Money(1, "CNY") < Money(1, "USD")
    assert Money(1, "CNY") < Money(2, "CNY") <= Money(2, "CNY")
    assert Money(3, "CNY") > Money(2, "CNY") >= Money(2, "CNY")
    assert Money(3, "CNY") - Money(1, "CNY") == Money(2, "CNY")
    assert str(Money("200000", "CNY")) == "200,000 CNY"


@given(strategies.money(("CNY", "USD")), strategies.money(("CNY", "USD")))
def test_money_addition_is_exact_within_a_currency(a: Money, b: Money) -> None:
    """Sum of amounts equals the amount of the sum."""
    if a.currency == b.currency:
        assert (a + b).amount == a.amount + b.amount
    else:
        with pytest.raises(ValidationError):
            a + b


def test_records_are_frozen() -> None:
    """Assigning to a record field fails."""
    rec = make_requirement()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rec.state = "closed"  # type: ignore[misc]


def test_naive_datetimes_are_refused() -> None:
    """Naive times are ambiguous across servers and refused."""
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_requirement(received_at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", " ", "non-empty string"),
        ("channel", 3, "non-empty string"),
        ("priority", "asap", "one of 'low'"),
        ("description", "  ", "non-empty string"),
        ("version", -1, "whole number from 0"),
    ],
)
def test_requirement_fields_are_validated(field: str, value: object, message: str) -> None:
    """Each enumerated or required field names what it accepts."""
    with pytest.raises(ValidationError, match=message) as info:
        make_requirement(**{field: value})
    assert info.value.field == field
    assert info.value.where == "Requirement"


def test_actor_takes_a_single_role_string_as_one_role() -> None:
    """roles='sales' means {'sales'}, not a set of letters."""
    assert Actor("a", roles="sales").roles == frozenset({"sales"})
    assert Actor("a", departments=["x", "y"]).departments == frozenset({"x", "y"})
    with pytest.raises(ValidationError):
        Actor("")


def test_customer_flags() -> None:
    """Customer flags are a frozenset."""
    assert Customer("c", "C", flags=["new", "oem"]).flags == {"new", "oem"}


def test_case_number_is_the_ref() -> None:
    """The case number users see is the record's ref."""
    assert make_requirement("REQ-2026-000042").case_number == "REQ-2026-000042"


def test_derive_validates_changed_fields_and_keeps_the_rest() -> None:
    """derive() applies changes with validation; unknown fields are refused."""
    rec = make_requirement()
    new = derive(rec, {"state": "evaluating", "version": 2, "remarks": ["a"]})
    assert (new.state, new.version, new.remarks) == ("evaluating", 2, ("a",))
    assert new.customer is rec.customer
    assert rec.version == 1
    with pytest.raises(ValidationError, match="non-empty"):
        derive(rec, {"state": ""})
    with pytest.raises(ValidationError, match="a field of Requirement"):
        derive(rec, {"colour": "red"})


@given(strategies.requirements())
def test_generated_requirements_are_valid(rec: Requirement) -> None:
    """The requirements strategy makes records that pass validation."""
    assert attrs.evolve(rec) == rec


# --- amounts (issue 13) -------------------------------------------------------------------


def _line(price: Money, kind: str = "goods") -> object:
    from reqmgmt import ContractLine

    return ContractLine(line_no=1, product="p", quantity=1, unit_price=price, kind=kind)


@pytest.mark.parametrize(
    ("amount", "currency", "fits"),
    [
        ("10.12", "CNY", True),
        ("10.100", "CNY", True),
        ("10.123", "CNY", False),
        ("100", "JPY", True),
        ("100.5", "JPY", False),
        ("1.234", "KWD", True),
        ("1.2345", "KWD", False),
        ("0.00001", "XAU", True),
        ("1E+3", "CNY", True),
    ],
)
def test_kept_amounts_stay_within_the_currency_minor_unit(
    amount: str, currency: str, fits: bool
) -> None:
    """ISO 4217 minor units: CNY 2, JPY 0, KWD 3; XAU has none."""
    money = Money(amount, currency)
    assert money.in_minor_unit is fits
    if fits:
        assert _line(money)
    else:
        with pytest.raises(ValidationError, match=f"for {currency} \\(its ISO 4217 minor unit\\)"):
            _line(money)


def test_rounded_money_fits_its_currency() -> None:
    """Money.rounded rounds half up to the minor unit (for converted amounts)."""
    assert Money.rounded("10.125", "CNY") == Money("10.13", "CNY")
    assert Money.rounded("100.5", "JPY") == Money("101", "JPY")


def test_unit_prices_are_never_negative_and_discounts_positive() -> None:
    """A negative price is refused (say: discount line); a discount of 0 too."""
    with pytest.raises(ValidationError, match="kind 'discount'"):
        _line(Money("-1", "CNY"))
    with pytest.raises(ValidationError, match="a positive discount"):
        _line(Money("0", "CNY"), kind="discount")
    with pytest.raises(ValidationError, match="one of 'goods', 'discount'"):
        _line(Money("1", "CNY"), kind="rebate")


@given(strategies.money())
def test_generated_money_fits_its_currency(m: Money) -> None:
    """The shipped strategy gives amounts a host can use as prices in any currency."""
    assert m.in_minor_unit


# --- the input policy (the same on every backend) ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "multiline", "problem"),
    [
        ("冲压支架\u3000😀", False, None),
        ("a\x00b", True, "control characters (found '\\x00')"),
        ("a\x1bb", True, "control characters (found '\\x1b')"),
        ("a\x7fb", True, "control characters (found '\\x7f')"),
        ("a\nb\tc\r", True, None),
        ("a\nb", False, "one line of text"),
        ("a\ud800b", True, "no lone surrogates"),
        ("\udfff", False, "no lone surrogates"),
        ("x" * 65, False, "at most 64 characters (got 65)"),
        ("x" * 64, False, None),
    ],
)
def test_text_problem_names_what_is_wrong(value: str, multiline: bool, problem: str | None) -> None:
    """NUL and other controls, lone surrogates and overlong text are each named."""
    from reqmgmt.model import text_problem

    found = text_problem(value, 64, multiline)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


@pytest.mark.parametrize(
    ("make", "field", "where"),
    [
        (lambda: Customer("C\x00", "C"), "id", "Customer"),
        (lambda: Customer("C" * 65, "C"), "id", "Customer"),
        (lambda: Customer("C", "N" * 201), "name", "Customer"),
        (lambda: Customer("C", "C", flags={"new\n"}), "flags", "Customer"),
        (lambda: Actor("a", "Name\x00"), "name", "Actor"),
        (lambda: make_requirement(description="a\ud800"), "description", "Requirement"),
        (lambda: make_requirement(description="d" * 20_001), "description", "Requirement"),
        (lambda: make_requirement(remarks=["ok", "bad\x00"]), "remarks", "Requirement"),
        (lambda: make_requirement(ref="R" * 65), "ref", "Requirement"),
        (lambda: make_requirement(version=2**31), "version", "Requirement"),
    ],
)
def test_records_refuse_text_and_numbers_a_database_cannot_hold(
    make: Any, field: str, where: str
) -> None:
    """The ValidationError names the field and the record kind."""
    with pytest.raises(ValidationError) as info:
        make()
    assert (info.value.field, info.value.where) == (field, where)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), False),
        (datetime(1899, 12, 31, 23, 59, tzinfo=UTC), False),
        (datetime(1900, 1, 1, tzinfo=UTC), True),
        (datetime(2199, 12, 31, 23, 59, tzinfo=UTC), True),
        (datetime(2200, 1, 1, tzinfo=UTC), False),
        (datetime(9999, 12, 31, tzinfo=UTC), False),
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))), False),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), False),
    ],
)
def test_times_are_between_1900_and_2200(value: datetime, accepted: bool) -> None:
    """due_at 0001-01-01 (an ERP's "no date") or 9999 is refused, not an OverflowError later."""
    if accepted:
        assert make_requirement(due_at=value).due_at == value
    else:
        with pytest.raises(ValidationError, match="1900-01-01 to before 2200-01-01"):
            make_requirement(due_at=value)


def test_dates_are_dates_in_range() -> None:
    """Date fields refuse placeholders and datetimes."""
    from reqmgmt import ContractLine

    def line(on: object) -> ContractLine:
        return ContractLine(
            line_no=1, product="p", quantity=1, unit_price=Money(1, "CNY"), delivery_date=on
        )

    assert line(date(2199, 12, 31)).delivery_date == date(2199, 12, 31)
    for bad in (
        date(1, 1, 1),
        date(1899, 12, 31),
        date(2200, 1, 1),
        datetime(2026, 1, 1, tzinfo=UTC),
    ):
        with pytest.raises(ValidationError) as info:
            line(bad)
        assert info.value.field == "delivery_date"


def test_derive_applies_the_policy_to_changed_fields() -> None:
    """A command's new version is checked as a new record is."""
    rec = make_requirement()
    with pytest.raises(ValidationError, match="control characters"):
        derive(rec, {"delivery_plan": "week\x0012"})
    with pytest.raises(ValidationError, match="2200"):
        derive(rec, {"due_at": datetime(9999, 1, 1, tzinfo=UTC)})
    assert derive(rec, {"delivery_plan": "week 12\nby sea"}).delivery_plan == "week 12\nby sea"


def test_a_huge_value_is_named_not_repeated_in_the_message() -> None:
    """A 10,000-character id makes a short message that still says what is allowed."""
    with pytest.raises(ValidationError) as info:
        Customer("x" * 10_000, "C")
    assert len(str(info.value)) < 400
    assert "at most 64 characters (got 10000)" in str(info.value)
