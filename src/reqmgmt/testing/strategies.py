"""Hypothesis strategies for reqmgmt's values and records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ..model import (
    CURRENCIES,
    MINOR_UNITS,
    REQUIREMENT_CHANNELS,
    REQUIREMENT_KINDS,
    REQUIREMENT_PRIORITIES,
    Actor,
    Customer,
    Money,
    Requirement,
)

__all__ = [
    "actors",
    "aware_datetimes",
    "customers",
    "identifiers",
    "money",
    "requirements",
    "texts",
]

ROLES = ("sales", "production", "materials", "vp", "quality", "engineering")
DEPARTMENTS = ("engineering", "materials", "production", "quality", "sales", "purchasing")

identifiers = st.from_regex(r"[a-z][a-z0-9._-]{0,11}", fullmatch=True)
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes in UTC or China Standard Time."""
    return st.builds(
        lambda d, tz: d.replace(tzinfo=tz),
        st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)),
        st.sampled_from([UTC, timezone(timedelta(hours=8))]),
    )


def actors(
    roles: tuple[str, ...] = ROLES, departments: tuple[str, ...] = DEPARTMENTS
) -> st.SearchStrategy[Actor]:
    """Actors with some of ``roles`` and ``departments``."""
    return st.builds(
        Actor,
        id=identifiers,
        name=st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20
        ),
        departments=st.frozensets(st.sampled_from(departments), max_size=3),
        roles=st.frozensets(st.sampled_from(roles), max_size=3),
    )


def money(currencies: tuple[str, ...] | None = None) -> st.SearchStrategy[Money]:
    """Money in one of ``currencies`` (default: all of ISO 4217), in its minor unit.

    The amount has the currency's decimals (CNY 2, JPY 0, KWD 3; 2 for codes
    without a minor unit), so it fits a unit price.
    """
    codes = sorted(CURRENCIES) if currencies is None else list(currencies)

    def in_currency(code: str) -> st.SearchStrategy[Money]:
        places = MINOR_UNITS.get(code)
        amounts = st.decimals(
            min_value=Decimal("-1e12"),
            max_value=Decimal("1e12"),
            places=2 if places is None else places,
            allow_nan=False,
        )
        return st.builds(Money, amounts, st.just(code))

    return st.sampled_from(codes).flatmap(in_currency)


def customers() -> st.SearchStrategy[Customer]:
    """Customers with a category and some of the usual flags."""
    return st.builds(
        Customer,
        id=identifiers,
        name=texts,
        category=st.sampled_from(["strategic", "important", "potential", "general"]),
        flags=st.frozensets(st.sampled_from(["new", "foreign", "oem"]), max_size=3),
    )


def requirements() -> st.SearchStrategy[Requirement]:
    """Requirement records as received (version 1, state received)."""

    def build(ref: str, when: datetime, **kw: Any) -> Requirement:
        return Requirement(
            ref=ref, state="received", created_at=when, updated_at=when, received_at=when, **kw
        )

    return st.builds(
        build,
        ref=st.from_regex(r"REQ-20[0-9]{2}-[0-9]{6}", fullmatch=True),
        when=aware_datetimes(),
        created_by=identifiers,
        customer=customers(),
        description=texts,
        kind=st.sampled_from(sorted(REQUIREMENT_KINDS)),
        channel=st.sampled_from(sorted(REQUIREMENT_CHANNELS)),
        priority=st.sampled_from(sorted(REQUIREMENT_PRIORITIES)),
    )
