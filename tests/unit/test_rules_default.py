"""The default rule set at its boundaries, one test per procedure clause."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from reqmgmt import Desk, Money, RuleError, ValidationError, hookimpl
from reqmgmt.rules import RuleSet, default_rules, load_rules

RULES = default_rules()


def contract(amount: Money, **flags: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "amount": amount,
        "new_product": False,
        "oem": False,
        "new_customer": False,
        "first_order": False,
        "foreign_trade": False,
    }
    facts.update(flags)
    return facts


class Rates:
    """USD → CNY at 7.10 on any day."""

    @hookimpl
    def reqmgmt_convert_money(self, money: Money, currency: str, on: date) -> Money | None:
        if (money.currency, currency) == ("USD", "CNY"):
            return Money(money.amount * Decimal("7.10"), "CNY")
        return None


def test_general_contract_below_200000_cny() -> None:
    """§3.1: 199,999.99 CNY, regular customer and product: general."""
    d = RULES.decide("contract_class", contract(Money("199999.99", "CNY")))
    assert d.outcome == {"class": "general"}
    assert d.matched == ("general",)


def test_special_contract_at_200000_cny() -> None:
    """§3.2: 200,000.00 CNY is special."""
    d = RULES.decide("contract_class", contract(Money("200000.00", "CNY")))
    assert d.outcome == {"class": "special"}
    assert d.matched == ("special-amount",)


def test_usd_contract_is_converted_before_comparing() -> None:
    """28,169.01 USD (199,999.97 CNY) is general; 28,169.02 USD (200,000.04 CNY) special."""
    with Desk.open(plugins=[Rates()]) as desk:
        below = desk.classify("contract", contract(Money("28169.01", "USD")))
        above = desk.classify("contract", contract(Money("28169.02", "USD")))
    assert below.outcome == {"class": "general"}
    assert above.outcome == {"class": "special"}
    assert "199,999.9710 CNY (28,169.01 USD)" in below.explain()


def test_a_currency_without_a_rate_is_never_compared_raw() -> None:
    """No conversion plugin: 30,000 USD is refused, not compared with 200,000."""
    with Desk.open() as desk, pytest.raises(ValidationError, match="never compared raw"):
        desk.classify("contract", contract(Money("30000", "USD")))


@pytest.mark.parametrize(
    ("flag", "row"),
    [
        ("new_product", "special-new-product"),
        ("oem", "special-oem-or-new-customer"),
        ("new_customer", "special-oem-or-new-customer"),
        ("first_order", "special-first-order"),
        ("foreign_trade", "special-foreign-trade"),
    ],
)
def test_special_contract_by_kind_below_the_threshold(flag: str, row: str) -> None:
    """§3.2: new product, OEM, new customer, first order, foreign trade are special at any amount."""
    d = RULES.decide("contract_class", contract(Money("1000", "CNY"), **{flag: True}))
    assert d.outcome == {"class": "special"}
    assert d.matched == (row,)


def route(
    document: str,
    amount: str,
    cls: str = "special",
    channel: str = "domestic",
    sample: bool = False,
) -> Any:
    return RULES.decide(
        "review_route",
        {
            "document": document,
            "contract_class": cls,
            "channel": channel,
            "amount": Money(amount, "CNY"),
            "sample": sample,
        },
    )


def test_bid_under_3_million_is_reviewed_in_the_department() -> None:
    """标书: 2,999,999 CNY, department review, the factory head signs."""
    d = route("bid", "2999999")
    assert d.outcome["route"] == "department_review"
    assert d.outcome["approver"] == "factory_head"


def test_bid_of_3_million_is_reviewed_centrally() -> None:
    """标书: 3,000,000 CNY, central review, the general manager signs."""
    d = route("bid", "3000000")
    assert d.outcome["route"] == "central_review"
    assert d.outcome["approver"] == "general_manager"


def test_foreign_trade_contract_central_review_general_manager() -> None:
    """外贸合同: central review, general manager signs."""
    d = route("contract", "50000", channel="foreign_trade")
    assert d.matched == ("foreign-trade-central",)
    assert d.outcome["approver"] == "general_manager"


def test_special_contract_route_all_departments_sales_manager() -> None:
    """§4.2: special contracts go to every department, then the sales manager."""
    d = route("contract", "500000")
    assert d.outcome["departments"] == [
        "sales",
        "production",
        "engineering",
        "quality",
        "materials",
    ]
    assert d.outcome["approver"] == "sales_manager"


def test_general_contract_route_sales_with_production() -> None:
    """§4.1: general contracts are reviewed by sales with production."""
    d = route("contract", "1000", cls="general")
    assert d.outcome["departments"] == ["sales", "production"]


def test_verbal_order_self_review_with_read_back() -> None:
    """非正式订单: self review by the signatory, confirmed by read-back."""
    d = route("verbal", "1000", cls="general")
    assert d.outcome["route"] == "self_review"
    assert d.outcome["confirmation"] == "read_back"


def test_a_general_sample_is_made_by_production_and_approved_by_quality() -> None:
    """样品: production makes it, quality confirms the sample approval (送样承认)."""
    d = route("order", "1500", cls="general", sample=True)
    assert (d.outcome["route"], d.outcome["departments"]) == (
        "sample_review",
        ["production", "quality"],
    )


@pytest.mark.parametrize("document", ["order", "contract", "bid"])
def test_a_special_sample_keeps_the_special_review(document: str) -> None:
    """A sample that is also a special contract is not reviewed more lightly."""
    d = route(document, "1500", cls="special", sample=True)
    assert d.outcome["route"] in ("countersign", "department_review")
    assert "quality" in d.outcome["departments"] or d.outcome["approver"] == "factory_head"


@pytest.mark.parametrize(("quantity", "sample"), [(200, True), (201, False), (1, True)])
def test_sample_order_at_200_pieces(quantity: int, sample: bool) -> None:
    """样品: 200 pieces or fewer is a sample, 201 is not."""
    d = RULES.decide("sample_order", {"quantity": quantity, "marked_sample": False})
    assert d.outcome == {"sample": sample}


def test_sample_order_marked_in_review() -> None:
    """样品: any quantity marked as sample production in the review."""
    d = RULES.decide("sample_order", {"quantity": 5000, "marked_sample": True})
    assert d.outcome == {"sample": True}
    assert d.matched == ("sample-marked",)


@pytest.mark.parametrize(
    ("facts", "category"),
    [
        (
            {
                "strategic_partner": True,
                "annual_sales": Money(0, "CNY"),
                "years_as_customer": 5,
                "credit_ok": True,
            },
            "strategic",
        ),
        (
            {
                "strategic_partner": False,
                "annual_sales": Money(5000000, "CNY"),
                "years_as_customer": 5,
                "credit_ok": True,
            },
            "important",
        ),
        (
            {
                "strategic_partner": False,
                "annual_sales": Money("4999999.99", "CNY"),
                "years_as_customer": 5,
                "credit_ok": True,
            },
            "general",
        ),
        (
            {
                "strategic_partner": False,
                "annual_sales": Money(10, "CNY"),
                "years_as_customer": 0,
                "credit_ok": True,
            },
            "potential",
        ),
        (
            {
                "strategic_partner": True,
                "annual_sales": Money(10**8, "CNY"),
                "years_as_customer": 0,
                "credit_ok": False,
            },
            "general",
        ),
    ],
)
def test_customer_categories(facts: dict[str, Any], category: str) -> None:
    """客户分类 from the host's facts."""
    assert RULES.decide("customer_category", facts).outcome == {"category": category}


@pytest.mark.parametrize(
    ("priority", "hours"), [("urgent", 8), ("high", 24), ("normal", 40), ("low", 80)]
)
def test_requirement_priority_gives_the_deadline(priority: str, hours: int) -> None:
    """§2.2: each priority has its deadline, in working hours."""
    assert RULES.decide("requirement_deadline", {"priority": priority}).outcome["hours"] == hours


def test_capa_trigger_boundary_two_vs_three_defects() -> None:
    """Same defect twice in 90 days: no CAPA; three times: CAPA."""
    two = RULES.decide("capa_trigger", {"safety_related": False, "same_defect_90_days": 2})
    three = RULES.decide("capa_trigger", {"safety_related": False, "same_defect_90_days": 3})
    assert two.outcome["capa"] is False
    assert three.outcome["capa"] is True


def test_return_window_boundary() -> None:
    """90 days after shipment is within the window, 91 is not (unless quality overrides)."""
    assert RULES.decide(
        "return_window", {"days_since_shipment": 90, "quality_override": False}
    ).outcome == {"within_window": True}
    assert RULES.decide(
        "return_window", {"days_since_shipment": 91, "quality_override": False}
    ).outcome == {"within_window": False}
    assert RULES.decide(
        "return_window", {"days_since_shipment": 91, "quality_override": True}
    ).outcome == {"within_window": True}


def test_explain_names_rows_and_values_in_both_languages() -> None:
    """explain() shows each evaluated row, whether it matched and the fact values."""
    d = RULES.decide("contract_class", contract(Money("150000", "CNY"), first_order=True))
    en, zh = d.explain("en"), d.explain("zh")
    assert "[no] special-amount: amount >= 200000  (amount = 150,000)" in en
    assert "[MATCH] special-first-order: first_order  (first_order = True)" in en
    assert "a customer's first order: special contract [客户需求管理程序 §3.2]" in en
    assert "outcome: {'class': 'special'}" in en
    assert "[未命中] special-amount" in zh
    assert "[命中] special-first-order" in zh
    assert "客户首次订单为特殊合同" in zh
    assert "结果: {'class': 'special'}" in zh
    assert "general" not in [r.row.id for r in d.results]  # first hit stops there
    with pytest.raises(ValidationError, match="'en' or 'zh'"):
        d.explain("fr")


def test_missing_and_mistyped_facts_are_named() -> None:
    """A missing fact lists the inputs; a float amount is refused."""
    with pytest.raises(ValidationError, match="new_product"):
        RULES.decide("contract_class", {"amount": Money(1, "CNY")})
    with pytest.raises(ValidationError, match="a money"):
        RULES.decide("contract_class", contract(Money(1, "CNY")) | {"amount": 5.0})
    with pytest.raises(ValidationError, match="a int"):
        RULES.decide("sample_order", {"quantity": True, "marked_sample": False})


def two_overlapping_rows(hit: str) -> RuleSet:
    """A table u where row a matches n > 1 and row b n > 5, with hit policy ``hit``."""
    return load_rules(
        {
            "tables": {
                "u": {
                    "hit": hit,
                    "inputs": {"n": "int"},
                    "outputs": ["x"],
                    "rows": [
                        {"id": "a", "when": "n > 1", "then": {"x": 1}},
                        {"id": "b", "when": "n > 5", "then": {"x": 2}},
                    ],
                }
            }
        }
    )


def test_unique_table_with_two_matches_is_an_error_at_evaluation() -> None:
    """A unique table where two rows match raises RuleError naming both and the facts."""
    rules = two_overlapping_rows("unique")
    assert rules.decide("u", {"n": 3}).outcome == {"x": 1}
    with pytest.raises(RuleError, match="rows 'a', 'b' all match") as info:
        rules.decide("u", {"n": 9})
    assert info.value.table == "u"
    assert info.value.facts == {"n": 9}
    assert "facts {'n': 9}" in str(info.value)


def test_collect_gives_every_match() -> None:
    """A collect table returns all matching rows' outputs, in order."""
    rules = two_overlapping_rows("collect")
    assert rules.decide("u", {"n": 9}).outcome == [{"x": 1}, {"x": 2}]
    assert rules.decide("u", {"n": 0}).outcome == []


@pytest.mark.parametrize(
    ("table", "output", "vocabulary"),
    [
        ("contract_class", "class", "contract_classes"),
        ("review_route", "route", "review_routes"),
        ("review_route", "approver", "approvers"),
    ],
)
def test_every_class_route_and_approver_of_the_default_rules_has_a_label(
    table: str, output: str, vocabulary: str
) -> None:
    """Forms print these answers by their zh/en labels; a new row must bring one."""
    rules = default_rules()
    labels = rules.vocabulary(vocabulary).labels
    answers = {row.then[output] for row in rules.tables[table].rows}
    assert answers
    assert answers <= set(labels), sorted(answers - set(labels))
