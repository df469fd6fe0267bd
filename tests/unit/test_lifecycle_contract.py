"""Contract and order review (合同评审, DOMAIN §2): one test per clause, and every refusal."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import pytest

from reqmgmt import (
    Actor,
    ConfigError,
    Contract,
    ContractLine,
    Customer,
    Desk,
    InvalidTransition,
    Money,
    NotAuthorized,
    TransitionBlocked,
    ValidationError,
    hookimpl,
)
from reqmgmt.rules import RuleSet, load_rules
from reqmgmt.testing import FakeClock, RecordingNotifier

CLERK = Actor("sales1", "市场部 Sales", departments={"sales"}, roles={"sales"})
CLERK2 = Actor("sales2", "市场部 Sales 2", departments={"sales"}, roles={"sales"})
PRODUCTION = Actor("prod", "生产部", departments={"production"})
ENGINEERING = Actor("eng", "工程部", departments={"engineering"})
QUALITY = Actor("qa", "品质部", departments={"quality"})
MATERIALS = Actor("mat", "资材部", departments={"materials"})
FOREIGN = Actor("ft", "外贸部", departments={"foreign_trade"}, roles={"foreign_trade"})
SALES_MANAGER = Actor("sm", "营业经理", roles={"sales_manager"})
GM = Actor("gm", "总经理", roles={"general_manager"})
FACTORY_HEAD = Actor("fh", "分厂厂长", roles={"factory_head"})
REGULAR = Customer("C-100", "老客户 Regular Co")
SALES_SIGNER = Actor("sales3", "市场部 reviewer", departments={"sales"})
SIGNERS = {
    "sales": SALES_SIGNER,
    "production": PRODUCTION,
    "engineering": ENGINEERING,
    "quality": QUALITY,
    "materials": MATERIALS,
    "foreign_trade": Actor("ft2", "外贸部 reviewer", departments={"foreign_trade"}),
}


def line(qty: int = 300, price: str = "10", no: int = 1, currency: str = "CNY") -> ContractLine:
    return ContractLine(
        line_no=no,
        product="冲压支架 bracket",
        specification="SPCC 1.2 mm",
        quantity=qty,
        unit_price=Money(price, currency),
        delivery_date=date(2026, 4, 30),
    )


def draft(desk: Desk, *lines: ContractLine, **kw: Any) -> Contract:
    values: dict[str, Any] = {"customer": REGULAR, "currency": "CNY", "actor": CLERK}
    values.update(kw)
    return desk.contracts.draft(lines=lines or (line(),), **values)


def submit_and_sign_rest(desk: Desk, ref: str) -> Contract:
    """Sign every department of a submitted contract's route."""
    record = desk.get(ref)
    assert isinstance(record, Contract)
    for department in record.route_departments:
        desk.sign(ref, department=department, actor=SIGNERS[department], opinion="同意 agreed")
    result = desk.get(ref)
    assert isinstance(result, Contract)
    return result


def submit_and_sign(desk: Desk, ref: str) -> Contract:
    record = desk.fire(ref, "submit", actor=CLERK)
    assert isinstance(record, Contract)
    for department in record.route_departments:
        desk.sign(ref, department=department, actor=SIGNERS[department], opinion="同意 agreed")
    result = desk.get(ref)
    assert isinstance(result, Contract)
    return result


def stricter_rules() -> RuleSet:
    """The defaults with the special-contract threshold lowered to 100,000 CNY."""
    return load_rules(
        {
            "tables": {
                "contract_class": {
                    "examples": [],
                    "rows": [
                        {
                            "id": "special-amount",
                            "when": "amount >= 100000",
                            "then": {"class": "special"},
                        }
                    ],
                }
            }
        },
        with_defaults=True,
    )


def snapshot(desk: Desk, ref: str) -> tuple[object, int]:
    return desk.get(ref), len(desk.history(ref))


# --- the record -----------------------------------------------------------------------------


def test_amount_is_the_sum_of_the_lines(desk: Desk) -> None:
    """A contract's amount is computed from its lines."""
    c = draft(desk, line(100, "10.50", 1), line(20, "99.99", 2))
    assert c.amount == Money("3049.80", "CNY")
    assert c.ref == "CON-2026-000001"
    assert c.state == "draft"


def test_a_line_in_another_currency_is_refused(desk: Desk) -> None:
    """Lines are in the contract's currency; nothing is created otherwise."""
    with pytest.raises(ValidationError, match="convert first"):
        draft(desk, line(currency="USD"))


def test_an_amount_that_is_not_the_sum_is_refused() -> None:
    """The record itself refuses an amount that does not match its lines."""
    from reqmgmt.testing.contract import T0

    with pytest.raises(ValidationError, match="the sum of the lines, 3,000 CNY"):
        Contract(
            ref="CON-X",
            state="draft",
            created_at=T0,
            updated_at=T0,
            created_by="x",
            customer=REGULAR,
            currency="CNY",
            lines=(line(),),
            amount=Money(999, "CNY"),
        )


# --- classification and routes (§3, §4) ---------------------------------------------------


def test_clause_3_1_general_contract_reviewed_by_sales_with_production(desk: Desk) -> None:
    """§3.1/§4.1: under 200,000 CNY, regular customer and product: sales + production."""
    c = desk.fire(draft(desk).ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert (c.contract_class, c.route_departments, c.route_approver) == (
        "general",
        ("sales", "production"),
        "none",
    )
    assert c.rules_version == desk.rules.version
    decisions = desk.history(c.ref)[-1].decisions
    assert [d["table"] for d in decisions] == ["contract_class", "sample_order", "review_route"]
    assert c.sample is False


@pytest.mark.parametrize(("pieces", "flags"), [(200, ()), (1, ()), (5000, ("sample",))])
def test_a_sample_order_is_decided_on_submit_and_takes_the_sample_route(
    desk: Desk, pieces: int, flags: tuple[str, ...]
) -> None:
    """样品 (≤ 200 pieces, or marked sample production): production makes it, quality signs."""
    c = desk.fire(draft(desk, line(pieces, "1"), flags=flags).ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert (c.sample, c.route, c.route_departments) == (
        True,
        "sample_review",
        ("production", "quality"),
    )
    decision = desk.history(c.ref)[-1].decisions[1]
    assert decision["table"] == "sample_order"
    assert decision["facts"] == {"quantity": pieces, "marked_sample": bool(flags)}
    approved = submit_and_sign_rest(desk, c.ref)
    assert desk.fire(approved.ref, "approve", actor=CLERK2).state == "approved"


def test_a_sample_counts_goods_pieces_and_a_special_sample_keeps_the_special_review(
    desk: Desk,
) -> None:
    """201 pieces is an order; a first order of 10 pieces is a sample reviewed as special."""
    c = desk.fire(draft(desk, line(201, "1")).ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert (c.sample, c.route) == (False, "countersign")
    special = desk.fire(
        draft(desk, line(10, "1"), flags=("first_order",)).ref, "submit", actor=CLERK
    )
    assert isinstance(special, Contract)
    assert (special.sample, special.contract_class, special.route_approver) == (
        True,
        "special",
        "sales_manager",
    )
    assert "engineering" in special.route_departments


def test_clause_3_2_special_contract_at_200000_cny(desk: Desk) -> None:
    """§3.2: 200,000 CNY or more is special, reviewed by every department."""
    c = desk.fire(draft(desk, line(20000, "10")).ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert c.contract_class == "special"
    assert c.route_departments == ("sales", "production", "engineering", "quality", "materials")
    assert c.route_approver == "sales_manager"


def test_clause_3_2_first_order_of_a_regular_product_is_special(desk: Desk) -> None:
    """§3.2: a customer's first order is special whatever its amount."""
    c = desk.fire(draft(desk, flags={"first_order"}).ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert c.contract_class == "special"


def test_clause_3_2_new_customer_oem_new_product_are_special(desk: Desk) -> None:
    """§3.2: new customer, OEM and new product contracts are special."""
    new_customer = Customer("C-NEW", "新客户", flags={"new"})
    for kw in ({"customer": new_customer}, {"flags": {"oem"}}, {"flags": {"new_product"}}):
        c = desk.fire(draft(desk, **kw).ref, "submit", actor=CLERK)
        assert isinstance(c, Contract)
        assert c.contract_class == "special", kw


def test_clause_4_2_special_contract_countersigned_then_sales_manager(desk: Desk) -> None:
    """§4.2: every department signs the order review record, the sales manager approves."""
    c = submit_and_sign(desk, draft(desk, line(20000, "10")).ref)
    assert len(c.round_signoffs()) == 5
    with pytest.raises(NotAuthorized, match="needs one of the roles sales_manager"):
        desk.fire(c.ref, "approve", actor=GM)
    approved = desk.fire(c.ref, "approve", actor=SALES_MANAGER)
    assert approved.state == "approved"
    assert desk.history(c.ref)[-1].meaning == "approval"


def test_bid_under_3_million_department_review_factory_head(desk: Desk) -> None:
    """标书 < 3,000,000 CNY: department review, signed by the factory head."""
    c = submit_and_sign(desk, draft(desk, line(1000, "2999.99"), document="bid").ref)
    assert (c.route, c.route_approver) == ("department_review", "factory_head")
    assert desk.fire(c.ref, "approve", actor=FACTORY_HEAD).state == "approved"


def test_bid_of_3_million_central_review_general_manager(desk: Desk) -> None:
    """标书 ≥ 3,000,000 CNY: central review, signed by the general manager."""
    c = submit_and_sign(desk, draft(desk, line(1000, "3000"), document="bid").ref)
    assert (c.route, c.route_approver) == ("central_review", "general_manager")
    with pytest.raises(NotAuthorized):
        desk.fire(c.ref, "approve", actor=FACTORY_HEAD)
    assert desk.fire(c.ref, "approve", actor=GM).state == "approved"


def test_foreign_trade_contract_central_review_general_manager(desk: Desk) -> None:
    """外贸合同: reviewed centrally with the foreign-trade dept, signed by the GM."""
    c = draft(desk, channel="foreign_trade", actor=FOREIGN)
    c = submit_and_sign(desk, c.ref)
    assert c.contract_class == "special"
    assert c.route_approver == "general_manager"
    assert "foreign_trade" in c.route_departments
    assert desk.fire(c.ref, "approve", actor=GM).state == "approved"


def test_verbal_order_self_review_and_read_back(desk: Desk) -> None:
    """非正式订单: self review by the signatory, then the customer's read-back."""
    c = desk.fire(draft(desk, document="verbal").ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert (c.route, c.route_departments, c.confirmation_required, c.self_review) == (
        "self_review",
        (),
        "read_back",
        True,
    )
    done = desk.fire(c.ref, "self_review", actor=CLERK)
    assert done.state == "approved"
    event = desk.history(c.ref)[-1]
    assert (event.event, event.actor_id, event.meaning) == ("self_review", "sales1", "self_review")
    desk.fire(c.ref, "send", actor=CLERK)
    with pytest.raises(TransitionBlocked, match="read-back"):
        desk.fire(c.ref, "confirm", actor=CLERK, confirmation="phoned")
    done = desk.fire(c.ref, "confirm", actor=CLERK, confirmation="客户复述确认", read_back=True)
    assert done.state == "confirmed"


def test_a_self_reviewed_route_is_approved_only_by_its_signatory(desk: Desk) -> None:
    """自行评审 is the signatory's own: nobody else self-reviews it, and nobody approves it."""
    c = desk.fire(draft(desk, document="verbal").ref, "submit", actor=CLERK)
    before = snapshot(desk, c.ref)
    with pytest.raises(TransitionBlocked, match="only the signatory who took the order, 'sales1'"):
        desk.fire(c.ref, "self_review", actor=CLERK2)
    with pytest.raises(TransitionBlocked, match="reviewed by the signatory himself"):
        desk.fire(c.ref, "approve", actor=CLERK2)
    assert snapshot(desk, c.ref) == before
    assert "self_review" in desk.allowed_events(c.ref, actor=CLERK)
    assert "self_review" not in desk.allowed_events(c.ref, actor=CLERK2)


@pytest.mark.parametrize("document", ["contract", "order", "bid", "quotation"])
def test_every_other_route_keeps_no_self_approval(desk: Desk, document: str) -> None:
    """Only a route the rules mark self_review may be self-reviewed; the drafter is refused."""
    c = desk.fire(draft(desk, document=document).ref, "submit", actor=CLERK)
    assert isinstance(c, Contract)
    assert c.self_review is False
    before = snapshot(desk, c.ref)
    with pytest.raises(TransitionBlocked, match="is not self-reviewed"):
        desk.fire(c.ref, "self_review", actor=CLERK)
    assert snapshot(desk, c.ref) == before


def test_a_host_rule_may_not_make_a_countersigned_route_self_reviewed() -> None:
    """self_review = true needs no departments and the read-back as control, else the load fails."""
    with pytest.raises(ConfigError, match=r"self-reviewed route .* needs departments = \[\]"):
        load_rules(
            {
                "tables": {
                    "review_route": {
                        "rows": [
                            {
                                "id": "general-sales-production",
                                "when": "contract_class == 'general'",
                                "then": {
                                    "route": "countersign",
                                    "departments": ["sales", "production"],
                                    "approver": "none",
                                    "confirmation": "signed_copy",
                                    "self_review": True,
                                },
                            }
                        ]
                    }
                }
            },
            with_defaults=True,
        )
    with pytest.raises(ConfigError, match="'yes' is not true or false"):
        load_rules(
            {
                "tables": {
                    "review_route": {
                        "rows": [
                            {
                                "id": "verbal-self-review",
                                "when": "document == 'verbal'",
                                "then": {
                                    "route": "self_review",
                                    "departments": [],
                                    "approver": "signatory",
                                    "confirmation": "read_back",
                                    "self_review": "yes",
                                },
                            }
                        ]
                    }
                }
            },
            with_defaults=True,
        )


# --- separation of duties -------------------------------------------------------------------


def test_the_drafter_may_not_approve(desk: Desk) -> None:
    """No self-approval: whoever drafted the contract cannot give the final approval."""
    c = submit_and_sign(desk, draft(desk, actor=CLERK2).ref)
    before = snapshot(desk, c.ref)
    with pytest.raises(NotAuthorized, match="sales2 drafted CON-2026-000001 and may not approve"):
        desk.fire(c.ref, "approve", actor=CLERK2)
    assert snapshot(desk, c.ref) == before


def test_the_drafter_may_not_sign_the_review(desk: Desk) -> None:
    """Whoever drafted may not sign for a department either."""
    c = draft(desk, actor=CLERK2)
    desk.fire(c.ref, "submit", actor=CLERK)
    with pytest.raises(NotAuthorized, match="drafted CON-2026-000001 and may not sign"):
        desk.sign(c.ref, department="sales", actor=CLERK2)


def test_a_signer_may_not_also_approve(desk: Desk) -> None:
    """A department signer cannot be the approver of the same review."""
    signer_and_manager = Actor("dual", departments={"production"}, roles={"sales"})
    c = draft(desk)
    desk.fire(c.ref, "submit", actor=CLERK)
    desk.sign(c.ref, department="sales", actor=CLERK2)
    desk.sign(c.ref, department="production", actor=signer_and_manager)
    with pytest.raises(NotAuthorized, match="signed for a department in this review"):
        desk.fire(c.ref, "approve", actor=signer_and_manager)


def test_double_signing_is_refused(desk: Desk) -> None:
    """One person, two departments in one review: refused; nothing written."""
    both = Actor("both", departments={"sales", "production"})
    c = draft(desk)
    desk.fire(c.ref, "submit", actor=CLERK)
    desk.sign(c.ref, department="sales", actor=both)
    before = snapshot(desk, c.ref)
    with pytest.raises(NotAuthorized, match="already signed for sales"):
        desk.sign(c.ref, department="production", actor=both)
    assert snapshot(desk, c.ref) == before


def test_signing_for_a_department_you_do_not_belong_to(desk: Desk) -> None:
    """Eligibility: a quality inspector cannot sign for production."""
    c = draft(desk)
    desk.fire(c.ref, "submit", actor=CLERK)
    with pytest.raises(NotAuthorized, match="not an eligible signer for production"):
        desk.sign(c.ref, department="production", actor=QUALITY)


def test_a_department_outside_the_route_may_not_sign(desk: Desk) -> None:
    """Only the route's departments sign: engineering does not sign a general contract."""
    c = draft(desk)
    desk.fire(c.ref, "submit", actor=CLERK)
    with pytest.raises(TransitionBlocked, match="departments that sign here: sales, production"):
        desk.sign(c.ref, department="engineering", actor=ENGINEERING)


def test_approving_before_every_department_signed(desk: Desk) -> None:
    """The final approval waits for all the route's departments."""
    c = draft(desk, line(20000, "10"))
    desk.fire(c.ref, "submit", actor=CLERK)
    desk.sign(c.ref, department="sales", actor=CLERK2)
    before = snapshot(desk, c.ref)
    with pytest.raises(
        TransitionBlocked, match="still needs: production, engineering, quality, materials"
    ):
        desk.fire(c.ref, "approve", actor=SALES_MANAGER)
    assert snapshot(desk, c.ref) == before


def test_rejection_sends_back_to_draft_with_the_reason(desk: Desk) -> None:
    """A department declining sends the contract back for rework; the reason is kept."""
    c = draft(desk)
    desk.fire(c.ref, "submit", actor=CLERK)
    back = desk.sign(
        c.ref,
        department="production",
        actor=PRODUCTION,
        approve=False,
        opinion="交期不能满足 lead time too short",
    )
    assert back.state == "draft"
    assert back.reason == "交期不能满足 lead time too short"
    again = desk.fire(c.ref, "submit", actor=CLERK)
    assert again.review_round == 2
    assert again.round_signoffs() == ()
    assert len(again.signoffs) == 1  # the first round's decline stays on the record


# --- rules edits and pinning ------------------------------------------------------------------


def test_editing_rules_after_submission_does_not_change_the_route(desk: Desk) -> None:
    """A contract in review keeps the class and route it was submitted with."""
    c = desk.fire(draft(desk, line(15000, "10")).ref, "submit", actor=CLERK)  # 150,000: general
    assert isinstance(c, Contract)
    assert c.contract_class == "general"
    stricter = stricter_rules()
    edited = Desk(desk.store, desk.pm, clock=FakeClock(), rules=stricter)
    assert (
        edited.classify(
            "contract",
            {
                "amount": c.amount,
                "new_product": False,
                "oem": False,
                "new_customer": False,
                "first_order": False,
                "foreign_trade": False,
            },
        ).outcome["class"]
        == "special"
    )
    edited.sign(c.ref, department="sales", actor=CLERK2)
    signed = edited.sign(c.ref, department="production", actor=PRODUCTION)
    assert isinstance(signed, Contract)
    assert (signed.contract_class, signed.route_departments, signed.rules_version) == (
        "general",
        ("sales", "production"),
        desk.rules.version,
    )
    assert edited.fire(c.ref, "approve", actor=Actor("s3", roles={"sales"})).state == "approved"
    # New contracts follow the new rules.
    new = edited.fire(draft(edited, line(15000, "10")).ref, "submit", actor=CLERK)
    assert isinstance(new, Contract)
    assert new.contract_class == "special"


# --- confirmation and fulfilment (§5) -----------------------------------------------------------


def approved(desk: Desk, *lines: ContractLine) -> Contract:
    c = submit_and_sign(desk, draft(desk, *lines).ref)
    approver = (
        SALES_MANAGER if c.route_approver == "sales_manager" else Actor("s3", roles={"sales"})
    )
    result = desk.fire(c.ref, "approve", actor=approver)
    assert isinstance(result, Contract)
    return result


def test_order_confirmed_when_the_customer_signs_back(desk: Desk) -> None:
    """回传: sent to the customer, confirmed when the signed copy comes back."""
    c = approved(desk)
    desk.fire(c.ref, "send", actor=CLERK)
    with pytest.raises(ValidationError, match="requires 'confirmation'"):
        desk.fire(c.ref, "confirm", actor=CLERK)
    done = desk.fire(c.ref, "confirm", actor=CLERK, confirmation="客户盖章回传 2026-03-05")
    assert isinstance(done, Contract)
    assert done.confirmation == "客户盖章回传 2026-03-05"


def test_general_contract_goes_straight_to_shipping(
    desk: Desk, notifier: RecordingNotifier
) -> None:
    """A general contract's release notifies shipping only."""
    c = approved(desk)
    desk.fire(c.ref, "send", actor=CLERK)
    desk.fire(c.ref, "confirm", actor=CLERK, confirmation="signed copy")
    desk.fire(c.ref, "start_fulfilment", actor=CLERK)
    assert [n.recipient for n in notifier.sent if n.event == "start_fulfilment"] == [
        "department:shipping"
    ]


def test_special_contract_is_copied_to_the_acting_departments(
    desk: Desk, notifier: RecordingNotifier
) -> None:
    """A special contract's reviewed order goes to every department that acts on it."""
    c = approved(desk, line(20000, "10"))
    desk.fire(c.ref, "send", actor=CLERK)
    desk.fire(c.ref, "confirm", actor=CLERK, confirmation="signed copy")
    desk.fire(c.ref, "start_fulfilment", actor=CLERK)
    recipients = [n.recipient for n in notifier.sent if n.event == "start_fulfilment"]
    assert recipients == [f"department:{d}" for d in c.route_departments]


def in_fulfilment(desk: Desk) -> Contract:
    c = approved(desk, line(100, "10", 1), line(50, "20", 2))
    desk.fire(c.ref, "send", actor=CLERK)
    desk.fire(c.ref, "confirm", actor=CLERK, confirmation="signed copy")
    result = desk.fire(c.ref, "start_fulfilment", actor=CLERK)
    assert isinstance(result, Contract)
    return result


def test_partial_shipments_are_tracked_per_line(desk: Desk) -> None:
    """出货单: each shipping order adds to its lines; shipped only when all are."""
    c = in_fulfilment(desk)
    first = desk.fire(c.ref, "ship", actor=CLERK, shipment={1: 60})
    assert isinstance(first, Contract)
    assert [x.shipped for x in first.lines] == [60, 0]
    with pytest.raises(TransitionBlocked, match="line 1: 40 open, line 2: 50 open"):
        desk.fire(c.ref, "mark_shipped", actor=CLERK)
    with pytest.raises(ValidationError, match="at most the 40 still open on line 1"):
        desk.fire(c.ref, "ship", actor=CLERK, shipment={1: 41})
    with pytest.raises(ValidationError, match="line numbers of this contract"):
        desk.fire(c.ref, "ship", actor=CLERK, shipment={9: 1})
    desk.fire(c.ref, "ship", actor=CLERK, shipment={1: 40, 2: 50})
    assert desk.fire(c.ref, "mark_shipped", actor=CLERK).state == "shipped"
    desk.fire(c.ref, "complete", actor=CLERK)
    closed = desk.fire(c.ref, "close", actor=CLERK)
    assert closed.state == "closed"
    assert desk.verify_history(c.ref)
    assert desk.get(c.ref, version=2).state == "in_review"


def test_a_closed_contract_cannot_be_changed(desk: Desk) -> None:
    """No path edits a contract outside its lifecycle: a closed one takes no event."""
    c = in_fulfilment(desk)
    desk.fire(c.ref, "ship", actor=CLERK, shipment={1: 100, 2: 50})
    desk.fire(c.ref, "mark_shipped", actor=CLERK)
    desk.fire(c.ref, "complete", actor=CLERK)
    desk.fire(c.ref, "close", actor=CLERK)
    with pytest.raises(InvalidTransition, match="events allowed there: none"):
        desk.fire(c.ref, "ship", actor=CLERK, shipment={1: 1})


def test_cancel_needs_a_reason(desk: Desk) -> None:
    """Cancelling keeps the reason; without one it is refused."""
    c = draft(desk)
    with pytest.raises(ValidationError, match="requires one"):
        desk.fire(c.ref, "cancel", actor=CLERK)
    assert desk.fire(c.ref, "cancel", actor=CLERK, note="客户撤单").reason == "客户撤单"


def test_usd_contract_is_classified_in_cny(notifier: RecordingNotifier) -> None:
    """A USD contract is converted with the host's rate before the 200,000 CNY threshold."""

    class Rates:
        @hookimpl
        def reqmgmt_convert_money(self, money: Money, currency: str, on: date) -> Money | None:
            return Money(money.amount * Decimal("7.1"), "CNY") if currency == "CNY" else None

    with Desk.open(clock=FakeClock(), plugins=[Rates()]) as desk:
        c = desk.contracts.draft(
            customer=REGULAR,
            currency="USD",
            actor=CLERK,
            lines=[line(1000, "28.17", currency="USD")],
        )
        submitted = desk.fire(c.ref, "submit", actor=CLERK)
        assert isinstance(submitted, Contract)
        assert submitted.contract_class == "special"


# --- amendments (合同变更) ----------------------------------------------------------------------


def relined(c: Contract, **changes: Any) -> tuple[ContractLine, ...]:
    import attrs

    return (attrs.evolve(c.lines[0], **changes), *c.lines[1:])


def test_general_amendment_that_stays_general_applies_at_once(
    desk: Desk, notifier: RecordingNotifier
) -> None:
    """A general contract's change is handled at once and announced by liaison notice."""
    c = approved(desk)
    before = c.version
    changed = desk.contracts.amend(
        c.ref,
        {"lines": relined(c, delivery_date=date(2026, 5, 20))},
        actor=CLERK,
        reason="客户要求延期 customer asked for later delivery",
    )
    assert changed.lines[0].delivery_date == date(2026, 5, 20)
    assert changed.amendment is None
    assert changed.state == "approved"
    event = desk.history(c.ref)[-1]
    assert event.event == "amend"
    assert event.note.startswith("客户要求延期")
    lines_change = next(ch for ch in event.changes if ch.field == "lines")
    assert lines_change.old[0]["delivery_date"] == "2026-04-30"
    assert lines_change.new[0]["delivery_date"] == "2026-05-20"
    assert desk.get(c.ref, version=before).lines[0].delivery_date == date(2026, 4, 30)  # type: ignore[attr-defined]
    liaison = [n.recipient for n in notifier.sent if n.event == "amend"]
    # 业务联络书: every department of the rule set's vocabulary hears of the change.
    assert liaison == [f"department:{d}" for d in desk.rules.vocabulary("departments")]
    assert {"department:quality", "department:engineering", "department:finance"} <= set(liaison)


def test_the_liaison_notice_reaches_a_department_the_host_adds(notifier: RecordingNotifier) -> None:
    """A host's own department (its rule file's vocabulary) gets the liaison notice too."""
    rules = load_rules(
        {"vocabularies": {"departments": {"logistics": {"zh": "物流部", "en": "logistics"}}}},
        with_defaults=True,
    )
    desk = Desk.open("memory://", rules=rules, plugins=[notifier], clock=FakeClock())
    c = approved(desk)
    desk.contracts.amend(
        c.ref, {"packaging": "木箱 crates"}, actor=CLERK, reason="客户要求 customer asks"
    )
    liaison = [n.recipient for n in notifier.sent if n.event == "amend"]
    assert "department:logistics" in liaison
    assert len(liaison) == len(set(liaison))


def test_an_amendment_after_a_partial_shipment_carries_the_shipped_quantity(desk: Desk) -> None:
    """A fresh ContractLine in an amendment keeps what has shipped; less than that is refused."""
    c = approved(desk)
    for event, data in (("send", {}), ("confirm", {"confirmation": "signed"}),
                        ("start_fulfilment", {}), ("ship", {"shipment": {1: 120}})):  # fmt: skip
        desk.fire(c.ref, event, actor=CLERK, **data)
    fresh = line(400)
    changed = desk.contracts.amend(
        c.ref, {"lines": (fresh,)}, actor=CLERK, reason="客户加量 more pieces"
    )
    assert (changed.lines[0].quantity, changed.lines[0].shipped) == (400, 120)
    before = snapshot(desk, c.ref)
    with pytest.raises(ValidationError, match="at least the 120 already shipped on line 1"):
        desk.contracts.amend(c.ref, {"lines": (line(100),)}, actor=CLERK, reason="减量 fewer")
    with pytest.raises(ValidationError, match=r"120 \(or 0 to carry it over\)"):
        desk.contracts.amend(
            c.ref, {"lines": (attrs.evolve(fresh, shipped=7),)}, actor=CLERK, reason="x"
        )
    with pytest.raises(ValidationError, match="line 1 kept: 120 of it has shipped already"):
        desk.contracts.amend(c.ref, {"lines": (line(50, no=2),)}, actor=CLERK, reason="换行")
    assert snapshot(desk, c.ref) == before


def test_special_amendment_needs_only_the_departments_whose_fields_changed(desk: Desk) -> None:
    """A delivery-date change of a special contract is re-signed by production, then approved."""
    c = approved(desk, line(20000, "10"))
    pending = desk.contracts.amend(
        c.ref, {"lines": relined(c, delivery_date=date(2026, 6, 1))}, actor=CLERK, reason="延期"
    )
    assert pending.amendment is not None
    assert pending.amendment.departments == ("production",)
    assert pending.lines[0].delivery_date == date(2026, 4, 30)  # not yet in effect
    with pytest.raises(TransitionBlocked, match="still needs: production"):
        desk.fire(c.ref, "approve_amendment", actor=SALES_MANAGER)
    with pytest.raises(TransitionBlocked, match=r"an amendment .* is in review"):
        desk.fire(c.ref, "send", actor=CLERK)
    with pytest.raises(TransitionBlocked, match="departments that sign here: production"):
        desk.sign(c.ref, department="engineering", actor=ENGINEERING)
    desk.sign(c.ref, department="production", actor=PRODUCTION, opinion="6月可交")
    done = desk.fire(c.ref, "approve_amendment", actor=SALES_MANAGER)
    assert isinstance(done, Contract)
    assert done.lines[0].delivery_date == date(2026, 6, 1)
    assert done.amendment is None
    assert done.contract_class == "special"


def test_general_amendment_that_becomes_special_takes_the_full_route(desk: Desk) -> None:
    """Raised to 300,000 CNY, a general contract is reviewed by all, then the sales manager."""
    c = approved(desk)
    pending = desk.contracts.amend(
        c.ref, {"lines": relined(c, quantity=30000)}, actor=CLERK, reason="追加数量 more pieces"
    )
    assert pending.amendment is not None
    assert pending.amendment.reclassified
    assert pending.amendment.departments == (
        "sales",
        "production",
        "engineering",
        "quality",
        "materials",
    )
    assert pending.contract_class == "general"  # not before the review
    for department in pending.amendment.departments:
        desk.sign(c.ref, department=department, actor=SIGNERS[department])
    with pytest.raises(NotAuthorized, match="sales_manager"):
        desk.fire(c.ref, "approve_amendment", actor=Actor("s4", roles={"sales"}))
    done = desk.fire(c.ref, "approve_amendment", actor=SALES_MANAGER)
    assert isinstance(done, Contract)
    assert (done.contract_class, done.route_approver) == ("special", "sales_manager")
    assert done.amount == Money(300000, "CNY")


def test_a_declined_amendment_leaves_the_contract_as_it_was(desk: Desk) -> None:
    """A department declining drops the amendment; the contract is unchanged, the reason kept."""
    c = approved(desk, line(20000, "10"))
    desk.contracts.amend(c.ref, {"payment_terms": "货到付款"}, actor=CLERK, reason="付款方式")
    back = desk.sign(
        c.ref, department="sales", actor=SALES_SIGNER, approve=False, opinion="不接受货到付款"
    )
    assert isinstance(back, Contract)
    assert back.amendment is None
    assert back.payment_terms == ""
    assert back.reason == "不接受货到付款"
    assert back.state == "approved"


def test_the_amendment_submitter_may_not_approve_it(desk: Desk) -> None:
    """Separation of duties holds for amendment reviews too."""
    c = approved(desk, line(20000, "10"))
    manager_clerk = Actor("mc", roles={"sales", "sales_manager"})
    desk.contracts.amend(c.ref, {"packaging": "木箱"}, actor=manager_clerk, reason="包装")
    desk.sign(c.ref, department="materials", actor=MATERIALS)
    with pytest.raises(NotAuthorized, match="submitted this review"):
        desk.fire(c.ref, "approve_amendment", actor=manager_clerk)


def test_amendment_is_reclassified_with_the_pinned_rules_unless_asked(desk: Desk) -> None:
    """Re-classification uses the rule set the contract was submitted under."""
    c = approved(desk, line(15000, "10"))  # 150,000: general under the defaults
    stricter = stricter_rules()
    edited = Desk(desk.store, desk.pm, clock=FakeClock(), rules=stricter)
    with pytest.raises(ConfigError, match="does not have"):
        edited.contracts.amend(c.ref, {"packaging": "纸箱"}, actor=CLERK, reason="包装")
    edited = Desk(
        desk.store, desk.pm, clock=FakeClock(), rules=stricter, previous_rules=[desk.rules]
    )
    pinned = edited.contracts.amend(c.ref, {"packaging": "纸箱"}, actor=CLERK, reason="包装")
    assert pinned.amendment is None
    assert pinned.packaging == "纸箱"
    current = edited.contracts.amend(
        c.ref, {"packaging": "木箱"}, actor=CLERK, reason="包装", current_rules=True
    )
    assert current.amendment is not None
    assert current.amendment.contract_class == "special"
    assert current.amendment.rules_version == stricter.version


def test_amendments_refuse_what_they_may_not_change(desk: Desk) -> None:
    """Unknown fields, shipped quantities and empty changes are refused; nothing written."""
    c = approved(desk)
    before = snapshot(desk, c.ref)
    with pytest.raises(ValidationError, match="one of the amendable fields"):
        desk.contracts.amend(c.ref, {"contract_class": "general"}, actor=CLERK, reason="x")
    with pytest.raises(ValidationError, match="shipments are recorded by shipping orders"):
        desk.contracts.amend(c.ref, {"lines": relined(c, shipped=5)}, actor=CLERK, reason="x")
    with pytest.raises(ValidationError, match="at least one field that differs"):
        desk.contracts.amend(c.ref, {"payment_terms": ""}, actor=CLERK, reason="x")
    with pytest.raises(ValidationError, match="requires one"):
        desk.contracts.amend(c.ref, {"payment_terms": "T/T"}, actor=CLERK, reason="")
    assert snapshot(desk, c.ref) == before


def test_a_draft_is_revised_directly(desk: Desk) -> None:
    """Before review, a change applies at once (with the diff in the audit)."""
    c = draft(desk)
    revised = desk.contracts.amend(
        c.ref, {"lines": relined(c, quantity=200)}, actor=CLERK, reason="客户改数量"
    )
    assert revised.amount == Money(2000, "CNY")
    assert revised.state == "draft"
    assert desk.history(c.ref)[-1].event == "revise"


# --- quotations (报价单) and the ledger --------------------------------------------------------

SECTION_CHIEF = Actor("kz", "课长 section chief", departments={"section_chief"})


def confirmed_quotation(desk: Desk) -> Contract:
    q = draft(desk, line(500, "12"), document="quotation")
    submitted = desk.fire(q.ref, "submit", actor=CLERK)
    assert isinstance(submitted, Contract)
    assert (submitted.route_departments, submitted.route_approver) == (
        ("section_chief",),
        "general_manager",
    )
    desk.sign(q.ref, department="section_chief", actor=SECTION_CHIEF, opinion="价格合理")
    desk.fire(q.ref, "approve", actor=GM)
    desk.fire(q.ref, "send", actor=CLERK)
    done = desk.fire(q.ref, "confirm", actor=CLERK, confirmation="客户确认报价")
    assert isinstance(done, Contract)
    return done


def test_quotation_reviewed_by_section_chief_approved_by_gm_confirmed_by_customer(
    desk: Desk,
) -> None:
    """报价单: made by sales, reviewed by the section chief, approved by the GM, sent, confirmed."""
    q = confirmed_quotation(desk)
    assert q.state == "confirmed"
    assert q.confirmation == "客户确认报价"
    with pytest.raises(TransitionBlocked, match="a quotation is not fulfilled"):
        desk.fire(q.ref, "start_fulfilment", actor=CLERK)


def test_an_accepted_quotation_becomes_an_order_draft(desk: Desk) -> None:
    """The confirmed quotation closes as ordered; a new order draft carries its lines."""
    q = confirmed_quotation(desk)
    order = desk.contracts.order_from_quotation(q.ref, actor=CLERK)
    assert (order.document, order.state, order.quotation_ref) == ("order", "draft", q.ref)
    assert order.lines == q.lines
    assert order.amount == q.amount
    assert desk.get(q.ref).state == "ordered"
    assert desk.history(order.ref)[0].note == f"from quotation {q.ref}"
    submitted = desk.fire(order.ref, "submit", actor=CLERK)
    assert isinstance(submitted, Contract)
    assert submitted.route_departments == ("sales", "production")


def test_only_a_quotation_becomes_an_order(desk: Desk) -> None:
    """A confirmed contract cannot be 'converted'."""
    c = approved(desk)
    desk.fire(c.ref, "send", actor=CLERK)
    desk.fire(c.ref, "confirm", actor=CLERK, confirmation="signed")
    with pytest.raises(TransitionBlocked, match="only a quotation becomes an order"):
        desk.contracts.order_from_quotation(c.ref, actor=CLERK)


def test_quotation_conversion_is_one_transaction() -> None:
    """If the order cannot be created, the quotation is not marked ordered either."""

    class NoOrders:
        @hookimpl
        def reqmgmt_before_transition(self, record: Any, event: str, actor: Actor) -> None:
            if event == "draft" and getattr(record, "quotation_ref", None):
                raise TransitionBlocked("order intake closed for the year-end stock-take")

    with Desk.open(clock=FakeClock(), plugins=[NoOrders()]) as desk:
        q = confirmed_quotation(desk)
        before = snapshot(desk, q.ref)
        with pytest.raises(TransitionBlocked, match="year-end stock-take"):
            desk.contracts.order_from_quotation(q.ref, actor=CLERK)
        assert snapshot(desk, q.ref) == before
        assert [r.ref for r in desk.query(kind="contract")] == [q.ref]


def test_the_contract_ledger_lists_contracts_by_state_and_customer(desk: Desk) -> None:
    """合同台账: the records are kept and can be listed by kind, state and customer."""
    a = approved(desk)
    b = draft(desk, customer=Customer("C-200", "Other Co"))
    assert [r.ref for r in desk.query(kind="contract")] == [a.ref, b.ref]
    assert [r.ref for r in desk.query(kind="contract", state="draft")] == [b.ref]
    assert [r.ref for r in desk.query(customer="C-200")] == [b.ref]


def test_convert_to_order_is_not_fired_directly(desk: Desk) -> None:
    """The conversion only happens with the order it creates."""
    q = confirmed_quotation(desk)
    with pytest.raises(ValidationError, match=r"desk\.contracts\.order_from_quotation"):
        desk.fire(q.ref, "convert_to_order", actor=CLERK)
    assert desk.get(q.ref).state == "confirmed"


def test_reviewed_items_are_on_the_record(desk: Desk) -> None:
    """合同评审 items: product, specification, model, quantity, delivery, quality, price, terms."""
    c = desk.contracts.draft(
        customer=REGULAR,
        currency="CNY",
        actor=CLERK,
        lines=[
            ContractLine(
                line_no=1,
                product="支架",
                specification="SPCC",
                model="ZJ-12",
                quantity=10,
                unit="件",
                unit_price=Money("3.5", "CNY"),
                delivery_date=date(2026, 5, 1),
            )
        ],
        payment_terms="月结60天",
        delivery_method="送货上门",
        packaging="纸箱",
        quality_requirements="镀层 8-12 µm",
        acceptance_criteria="GB/T 2828.1 AQL 1.0",
    )
    x = c.lines[0]
    assert (x.product, x.specification, x.model, x.quantity, x.unit) == (
        "支架",
        "SPCC",
        "ZJ-12",
        10,
        "件",
    )
    assert (x.unit_price, x.delivery_date) == (Money("3.5", "CNY"), date(2026, 5, 1))
    assert (c.payment_terms, c.delivery_method, c.packaging) == ("月结60天", "送货上门", "纸箱")
    assert (c.quality_requirements, c.acceptance_criteria) == (
        "镀层 8-12 µm",
        "GB/T 2828.1 AQL 1.0",
    )
    with pytest.raises(ValidationError, match="one of payment_terms"):
        desk.contracts.draft(
            customer=REGULAR, currency="CNY", actor=CLERK, lines=[line()], colour="red"
        )


def test_a_reworked_draft_is_classified_afresh_on_resubmission(desk: Desk) -> None:
    """Declined, revised to 300,000 CNY, resubmitted: now special with the full route."""
    c = draft(desk)
    desk.fire(c.ref, "submit", actor=CLERK)
    desk.sign(c.ref, department="production", actor=PRODUCTION, approve=False, opinion="数量太少")
    current = desk.get(c.ref)
    assert isinstance(current, Contract)
    revised = desk.contracts.amend(
        c.ref, {"lines": relined(current, quantity=30000)}, actor=CLERK, reason="客户加量"
    )
    assert revised.contract_class is None
    again = desk.fire(c.ref, "submit", actor=CLERK)
    assert isinstance(again, Contract)
    assert (again.contract_class, again.route_approver) == ("special", "sales_manager")
    # Resubmitting unchanged keeps what was decided.
    c2 = draft(desk)
    desk.fire(c2.ref, "submit", actor=CLERK)
    desk.sign(c2.ref, department="sales", actor=SALES_SIGNER, approve=False, opinion="价格")
    kept = desk.fire(c2.ref, "submit", actor=CLERK)
    assert isinstance(kept, Contract)
    assert kept.contract_class == "general"
    assert len([e for e in desk.history(c2.ref) if e.decisions]) == 1


# --- amounts that cannot dodge a threshold (issue 13) ---------------------------------------


def discount(price: str, no: int = 9, currency: str = "CNY") -> ContractLine:
    return ContractLine(
        line_no=no,
        product="折让 volume discount",
        quantity=1,
        unit_price=Money(price, currency),
        kind="discount",
    )


def test_a_negative_line_cannot_halve_a_special_contract(desk: Desk) -> None:
    """300,000 CNY plus a -150,000 CNY line is refused; it never drafts as general."""
    with pytest.raises(ValidationError, match="kind 'discount'"):
        draft(desk, line(1, "300000", 1), line(1, "-150000", 2))
    assert desk.query(kind="contract") == []


def test_a_discount_is_subtracted_but_the_class_compares_the_gross_goods(desk: Desk) -> None:
    """A 150,000 CNY discount on 300,000 CNY of goods: amount 150,000, still special."""
    c = draft(desk, line(1, "300000", 1), discount("150000"))
    assert c.amount == Money("150000", "CNY")
    submitted = desk.fire(c.ref, "submit", actor=CLERK)
    assert isinstance(submitted, Contract)
    assert submitted.contract_class == "special"
    assert submitted.route_approver == "sales_manager"
    decision = desk.history(c.ref)[-1].decisions[0]
    assert decision["facts"]["amount"] == {"amount": "300000", "currency": "CNY"}


def test_a_contract_total_of_zero_or_less_is_refused(desk: Desk) -> None:
    """Discounts may not reach the goods' amount; a negative contract is refused."""
    with pytest.raises(ValidationError, match="total above zero"):
        draft(desk, line(1, "100", 1), discount("100"))
    with pytest.raises(ValidationError, match="unit_price"):
        draft(desk, line(1, "-100", 1))
    assert desk.query(kind="contract") == []


def test_a_no_charge_goods_line_is_not_drafted(desk: Desk) -> None:
    """Prices are positive where a caller gives them; no-charge lines come from replace_goods."""
    with pytest.raises(ValidationError, match="a positive price"):
        draft(desk, line(1, "1000", 1), line(5, "0", 2))


def test_an_amendment_may_not_bring_a_negative_or_free_line(desk: Desk) -> None:
    """Amended lines keep positive prices and a positive total."""
    c = draft(desk)
    with pytest.raises(ValidationError, match="a positive price"):
        desk.contracts.amend(c.ref, {"lines": (line(1, "0"),)}, actor=CLERK, reason="x")
    with pytest.raises(ValidationError, match="total is above zero"):
        desk.contracts.amend(
            c.ref, {"lines": (line(1, "10"), discount("10"))}, actor=CLERK, reason="x"
        )
    assert desk.get(c.ref).version == 1


def test_more_decimals_than_the_currency_has_are_refused(desk: Desk) -> None:
    """10.123 CNY cannot be a price; 10.10 (written 10.100) can."""
    with pytest.raises(ValidationError, match="at most 2 decimals for CNY"):
        draft(desk, line(1, "10.123"))
    assert draft(desk, line(1, "10.100")).amount == Money("10.10", "CNY")


def test_discount_lines_are_not_shipped(desk: Desk) -> None:
    """Shipping the goods ships the contract; a discount line has nothing open."""
    c = approved(desk, line(100, "10", 1), discount("50"))
    desk.fire(c.ref, "send", actor=CLERK)
    desk.fire(c.ref, "confirm", actor=CLERK, confirmation="signed copy")
    desk.fire(c.ref, "start_fulfilment", actor=CLERK)
    with pytest.raises(ValidationError, match="at most the 0 still open on line 9"):
        desk.fire(c.ref, "ship", actor=CLERK, shipment={9: 1})
    desk.fire(c.ref, "ship", actor=CLERK, shipment={1: 100})
    assert desk.fire(c.ref, "mark_shipped", actor=CLERK).state == "shipped"


def test_an_amendment_adding_a_discount_stays_special(desk: Desk) -> None:
    """A discount added after approval does not make a special contract general."""
    c = approved(desk, line(1, "300000", 1))
    assert c.contract_class == "special"
    amended = desk.contracts.amend(
        c.ref, {"lines": (*c.lines, discount("150000"))}, actor=CLERK, reason="volume rebate"
    )
    assert amended.amendment is not None
    assert amended.amendment.contract_class == "special"
    assert not amended.amendment.reclassified
    assert "lines" in amended.amendment.fields


def test_a_sample_amended_into_an_order_is_reviewed_on_the_order_route(desk: Desk) -> None:
    """A sample raised to 5,000 pieces is not applied at once: the order route reviews it."""
    c = desk.fire(draft(desk, line(100, "1")).ref, "submit", actor=CLERK)
    submit_and_sign_rest(desk, c.ref)
    desk.fire(c.ref, "approve", actor=CLERK2)
    amended = desk.fire(
        c.ref, "amend", actor=CLERK, changes={"lines": (line(5000, "1"),)}, note="客户加量"
    )
    assert isinstance(amended, Contract)
    assert amended.lines == c.lines, "a sample became an order without review"
    assert amended.amendment is not None
    assert amended.amendment.reclassified
    assert (amended.amendment.sample, amended.amendment.route) == (False, "countersign")
    assert amended.amendment.route_departments == ("sales", "production")
