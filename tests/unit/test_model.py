"""Records are frozen, validated, and refuse bad values with clear messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

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
        ("kind", "email", "one of 'order'"),
        ("channel", "pigeon", "one of 'fax'"),
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
