"""Hostile inputs for the adversarial suite: people, customers, money, text, times, fields.

Value objects (``Actor``, ``Customer``, ``ContractLine``, ``Money``) are
described here as plain specs and built inside the guarded call, because
building them is a public call too: a hostile value may be refused there
(with a library error) or later by the Desk, and either is fine.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st


@functools.lru_cache(maxsize=4096)
def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten, else ``bad`` (shrinks towards ``good``).

    A call has several arguments: hostile ones now and then keep most calls
    valid enough to reach deep states, and each refusal names one culprit.
    """
    return _NINE_IN_TEN.flatmap(lambda ok: good if ok else bad)


_NINE_IN_TEN = st.sampled_from((True,) * 9 + (False,))


def sampled(good: Sequence[Any], bad: Sequence[Any]) -> st.SearchStrategy[Any]:
    """Mostly one of ``good``, sometimes one of ``bad``."""
    return mostly(st.sampled_from(tuple(good)), st.sampled_from(tuple(bad)))


# --- people --------------------------------------------------------------------------

#: (id, name, departments, roles).  "clerk" submits; the near-duplicates of
#: its id ("Clerk", "clerk ", "clerk\u200b", full-width) are the same person
#: once ids are normalised (NFKC, stripped, case-folded) and each may sign a
#: department; "boss" holds sales and vp; "multi" many departments and roles.
ACTOR_SPECS: tuple[tuple[str, str, frozenset[str], frozenset[str]], ...] = tuple(
    (i, n, frozenset(d), frozenset(r))
    for i, n, d, r in [
        ("clerk", "张伟 Clerk", {"shipping"}, {"sales"}),
        ("Clerk", "Same clerk, capital", {"engineering"}, set()),
        ("clerk ", "Same clerk, trailing space", {"materials"}, set()),
        ("clerk\u200b", "Same clerk, zero-width space", {"production"}, {"production"}),
        ("\uff43\uff4c\uff45\uff52\uff4b", "Same clerk, full width", {"sales"}, {"sales_manager"}),
        ("CLERK", "Same clerk, upper case", {"quality", "sales"}, {"vp", "quality_manager"}),
        ("sales2", "Second clerk", {"sales"}, {"sales"}),
        ("ft", "Foreign trade", {"foreign_trade"}, {"foreign_trade"}),
        ("eng", "李娜 Engineer", {"engineering"}, set()),
        ("mat", "王芳 Warehouse", {"materials"}, {"materials"}),
        ("pro", "刘洋 Production", {"production"}, {"production"}),
        ("qa", "Inspector", {"quality"}, {"quality"}),
        ("qm", "Quality manager", {"quality"}, {"quality_manager"}),
        ("boss", "Sales and VP", {"sales"}, {"sales", "vp"}),
        ("vp", "Vice president", set(), {"vp"}),
        ("sm", "Sales manager", set(), {"sales_manager"}),
        ("gm", "General manager", set(), {"general_manager"}),
        ("fh", "Factory head", set(), {"factory_head"}),
        ("chief", "Section chief", {"section_chief"}, set()),
        (
            "multi",
            "Many hats",
            {"production", "quality", "sales", "engineering", "materials"},
            {"sales_manager", "quality", "quality_manager", "sales"},
        ),
        ("nobody", "Visitor", set(), set()),
        ("x" * 300, "Very long id", {"engineering"}, {"sales"}),
        ("eng\x00", "NUL in id", {"engineering"}, {"sales"}),
        ("\ud800eng", "Lone surrogate in id", {"materials"}, {"sales"}),
    ]
)

#: Values passed as ``actor`` that are not an Actor at all.
NON_ACTORS: tuple[Any, ...] = (None, "clerk", 42, {"id": "clerk", "roles": ["sales"]})

# --- vocabularies, with typos -----------------------------------------------------------

DEPARTMENTS = (
    "engineering",
    "materials",
    "production",
    "quality",
    "sales",
    "foreign_trade",
    "section_chief",
    "shipping",
)
BAD_DEPARTMENTS = ("Engineering", "engineering ", "enginering", "", "*")
requirement_channels = sampled(("fax", "email", "phone", "portal"), ("Fax", "faks", ""))
requirement_kinds = sampled(("order", "memo", "special", "bid"), ("oder", "Order"))
priorities = sampled(("low", "normal", "high", "urgent"), ("Urgent", "critical"))
documents = sampled(
    ("contract", "contract", "order", "bid", "verbal", "quotation", "technical_agreement"),
    ("contarct", "Contract"),
)
contract_channels = sampled(("domestic", "domestic", "foreign_trade"), ("foriegn_trade", ""))
flags = sampled(
    ((), (), ("first_order",), ("oem",), ("new_product",)), (("frist_order",), ("OEM",))
)
categories = sampled(("general", "important", "strategic"), ("importnat", ""))
customer_flags = sampled(((), (), ("new",), ("foreign",)), (("nwe",), ("New",)))
reason_codes = sampled(("quality", "wrong_item", "late", "other"), ("qualty", ""))
dispositions = sampled(("rework", "replace", "refund", "scrap"), ("Scrap", "burn"))
TERMS = (
    "payment_terms",
    "delivery_method",
    "packaging",
    "quality_requirements",
    "acceptance_criteria",
)
currencies = sampled(("CNY",), ("USD", "JPY", "cny", "RMB"))

# --- text and times ---------------------------------------------------------------------

TEXTS = (
    "冲压支架 10,000 pcs",
    "ok",
    "",
    "   ",
    "NUL\x00inside",
    "lone \ud800 surrogate",
    "x" * 5000,
    "zero\u200bwidth",
    "line\r\nbreak",
)
texts = mostly(st.sampled_from(TEXTS[:2]), st.sampled_from(TEXTS[2:]) | st.text(max_size=20))
notes = st.none() | texts

EPOCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: Datetimes at and beyond the edges: year 1 (an ERP's "no date"), 9999, naive, odd offsets.
EXTREME_TIMES = (
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
    datetime(2201, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    datetime(2026, 3, 2, 9, 0),  # naive
    datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=14))),
    datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-12))),
)
ordinary_times = st.integers(-30 * 24, 60 * 24).map(lambda h: EPOCH + timedelta(hours=h))
times = mostly(ordinary_times, st.sampled_from(EXTREME_TIMES))
optional_times = st.none() | times
#: Where a host's clock may jump: back to an ordinary day, or to the calendar's edges.
clock_jumps = mostly(
    ordinary_times,
    st.sampled_from(
        (
            datetime(1, 1, 2, tzinfo=UTC),
            datetime(1899, 12, 31, tzinfo=UTC),
            datetime(2201, 1, 1, tzinfo=UTC),
            datetime(9000, 1, 1, tzinfo=UTC),  # far out, yet the fake clock can still tick
        )
    ),
)
dates = sampled((date(2025, 12, 1), date(2026, 2, 1)), (date(1, 1, 1), date(9999, 12, 31)))

# --- money and lines ------------------------------------------------------------------------

amounts = sampled(
    ("9.99", "12", "150", "0.5", "199999.99", "200000", "300000", "3000000"),
    ("0", "-100", "-150000", "10.123", "0.001", "1E+3"),
)


@st.composite
def line_specs(draw: st.DrawFn, currency: str | None = None) -> list[dict[str, Any]]:
    """Contract lines as ContractLine keyword arguments (prices as (amount, currency))."""
    pattern = draw(sampled(("any", "single"), ("discount",)))
    cur = currency or draw(currencies)
    if pattern == "discount":
        # A big line plus a negative one: the net dodges the 200,000 threshold.
        return [
            {"line_no": 1, "product": "press", "quantity": 1, "unit_price": ("300000", cur)},
            {"line_no": 2, "product": "discount", "quantity": 1, "unit_price": ("-150000", cur)},
        ]
    count = 1 if pattern == "single" else draw(st.integers(1, 3))
    return [
        {
            "line_no": draw(sampled((i + 1,), (0, 1))),
            "product": draw(mostly(st.sampled_from(["bracket", "支架", "part"]), texts)),
            "quantity": draw(sampled((1, 10, 200, 5000), (0, -5))),
            "unit_price": (draw(amounts), cur),
            "delivery_date": draw(st.none() | dates),
        }
        for i in range(count)
    ]


# --- forged fields ----------------------------------------------------------------------

#: Fields only the engine may set, offered at creation by a hostile caller.
FORGEABLE = (
    "signoffs",
    "review_round",
    "submitted_by",
    "contract_class",
    "route",
    "route_departments",
    "route_approver",
    "amendment",
    "state",
    "version",
    "confirmation_required",
    "confirmation",
    "rules_version",
    "created_by",
    "ref",
    "outsourcing",
    "delivery_plan",
    "reason",
    "judgement",
    "disposition",
    "capa_required",
    "quotation_ref",
    "step",
    "next_deadline",
    "paused_seconds",
    "unknown_field",
)


def forged_values(name: str) -> st.SearchStrategy[Any]:
    """Plausible values for a forged field (specs where a value object is needed)."""
    special: dict[str, st.SearchStrategy[Any]] = {
        "signoffs": st.just("FORGED_SIGNOFFS"),
        "amendment": st.just("FORGED_AMENDMENT"),
        "review_round": st.sampled_from([0, 1, 2]),
        "version": st.sampled_from([1, 5]),
        "paused_seconds": st.just(0),
        "capa_required": st.booleans(),
        "route_departments": st.sampled_from([(), ("sales",)]),
        "contract_class": st.sampled_from(["general", "special"]),
        "route": st.sampled_from(["countersign", "self_review"]),
        "route_approver": st.sampled_from(["none", "signatory", "sales_manager"]),
        "state": st.sampled_from(["accepted", "approved", "dispositioned", "received"]),
        "next_deadline": optional_times,
    }
    return special.get(name, st.sampled_from(["clerk", "plan A", "valid", "sales2", "x"]))
