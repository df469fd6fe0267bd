"""Contract review (合同评审): general and special contracts, a rework, an amendment, export.

Run it: ``python examples/contract_review.py``.  Each contract is classified
by the default rule set when submitted (class and route pinned on the
record), countersigned by the route's departments (会签) and approved by the
approver the route names; nobody approves what they drafted or signed.
"""

from __future__ import annotations

from datetime import date

import attrs

from reqmgmt import (
    Actor,
    Contract,
    ContractLine,
    Customer,
    Desk,
    Money,
    NotAuthorized,
    hookimpl,
)

SALES = Actor("zhou", "周敏 (市场部)", departments={"sales"}, roles={"sales"})
SALES_REVIEWER = Actor("wu", "吴强 (市场部)", departments={"sales"}, roles={"sales"})
FOREIGN = Actor("sun", "孙丽 (外贸部)", roles={"foreign_trade"})
FOREIGN_REVIEWER = Actor("zheng", "郑华 (外贸部)", departments={"foreign_trade"})
REVIEWERS = {
    "sales": SALES_REVIEWER,
    "foreign_trade": FOREIGN_REVIEWER,
    "production": Actor("liu", "刘洋 (生产部)", departments={"production"}),
    "engineering": Actor("li", "李娜 (工程部)", departments={"engineering"}),
    "quality": Actor("chen", "陈静 (品质部)", departments={"quality"}),
    "materials": Actor("wang", "王芳 (资材部)", departments={"materials"}),
}
APPROVERS = {
    "sales_manager": Actor("he", "何经理 (营业经理)", roles={"sales_manager"}),
    "general_manager": Actor("gao", "高总 (总经理)", roles={"general_manager"}),
    "none": Actor("tang", "唐主管 (市场部主管)", roles={"sales"}),
}


class FixedRate:
    """The ERP's exchange rate: 1 USD = 7 CNY."""

    @hookimpl
    def reqmgmt_convert_money(self, money: Money, currency: str, on: date) -> Money | None:
        if (money.currency, currency) == ("USD", "CNY"):
            return Money(money.amount * 7, "CNY")
        return None


def bracket(quantity: int, price: str, currency: str = "CNY") -> ContractLine:
    return ContractLine(
        line_no=1,
        product="冲压支架 stamped bracket",
        specification="SPCC 1.2 mm, 镀锌",
        quantity=quantity,
        unit_price=Money(price, currency),
        delivery_date=date(2026, 5, 15),
    )


def review(desk: Desk, contract: Contract, submitter: Actor) -> Contract:
    """Submit, countersign by the route's departments, approve."""
    submitted = desk.fire(contract.ref, "submit", actor=submitter)
    assert isinstance(submitted, Contract)
    print(
        f"{contract.ref}: {submitted.contract_class} contract, {submitted.amount}, route "
        f"{submitted.route}: {', '.join(submitted.route_departments) or '(self review)'}"
        f" → {submitted.route_approver}"
    )
    for department in submitted.route_departments:
        desk.sign(contract.ref, department=department, actor=REVIEWERS[department], opinion="同意")
    approved = desk.fire(
        contract.ref, "approve", actor=APPROVERS[submitted.route_approver or "none"]
    )
    assert isinstance(approved, Contract)
    return approved


def fulfil(desk: Desk, ref: str, actor: Actor) -> None:
    desk.fire(ref, "send", actor=actor)
    desk.fire(ref, "confirm", actor=actor, confirmation="客户盖章回传 signed copy returned")
    desk.fire(ref, "start_fulfilment", actor=actor)
    contract = desk.get(ref)
    assert isinstance(contract, Contract)
    half = {x.line_no: x.quantity // 2 for x in contract.lines}
    desk.fire(ref, "ship", actor=actor, shipment=half)
    rest = {x.line_no: x.quantity - x.quantity // 2 for x in contract.lines}
    desk.fire(ref, "ship", actor=actor, shipment=rest)
    desk.fire(ref, "mark_shipped", actor=actor)
    desk.fire(ref, "complete", actor=actor)
    print(f"{ref}: {desk.fire(ref, 'close', actor=actor).state}")


def main() -> None:
    regular = Customer("C-100", "华南五金 South China Hardware")
    with Desk.open("memory://", plugins=[FixedRate()]) as desk:
        # A general contract: 50,000 CNY, regular customer and product.
        general = desk.contracts.draft(
            customer=regular,
            currency="CNY",
            lines=[bracket(5000, "10")],
            actor=SALES,
            payment_terms="月结30天",
            delivery_method="送货",
        )
        review(desk, general, SALES)

        # An amendment (合同变更) that raises it to 300,000 CNY: it becomes special, so
        # every department re-signs and the sales manager approves before it applies.
        bigger = (attrs.evolve(general.lines[0], quantity=30000),)
        pending = desk.contracts.amend(
            general.ref, {"lines": bigger}, actor=SALES, reason="客户追加数量 customer adds pieces"
        )
        assert pending.amendment is not None
        print(
            f"{general.ref}: amendment in review by {', '.join(pending.amendment.departments)}; "
            f"amount still {pending.amount}"
        )
        for department in pending.amendment.departments:
            desk.sign(general.ref, department=department, actor=REVIEWERS[department])
        amended = desk.fire(general.ref, "approve_amendment", actor=APPROVERS["sales_manager"])
        assert isinstance(amended, Contract)
        print(f"{general.ref}: amended to {amended.amount}, now {amended.contract_class}")
        print(f"  version 1 still reads {desk.get(general.ref, version=1).amount}")
        fulfil(desk, general.ref, SALES)

        # A special contract (250,000 CNY), declined once by production, reworked.
        special = desk.contracts.draft(
            customer=regular, currency="CNY", lines=[bracket(25000, "10")], actor=SALES
        )
        desk.fire(special.ref, "submit", actor=SALES)
        back = desk.sign(
            special.ref,
            department="production",
            actor=REVIEWERS["production"],
            approve=False,
            opinion="交期不足, 请改为6月 lead time too short",
        )
        print(f"{special.ref}: declined, back to {back.state}: {back.reason}")
        verdict = desk.can(special.ref, "approve", actor=APPROVERS["sales_manager"])
        print(f"  can approve now? {bool(verdict)}: {verdict.reasons[0]}")
        approved = review(desk, back, SALES)  # round 2: everybody signs again
        print(f"{special.ref}: approved in review round {approved.review_round}")
        try:
            desk.fire(special.ref, "cancel", actor=Actor("intern"), note="test")
        except NotAuthorized as err:
            print(f"  refused: {err.reasons[0]}")

        # A foreign-trade order in USD: special, central review, general manager signs.
        export = desk.contracts.draft(
            customer=Customer("US-7", "Acme Inc.", flags={"foreign"}),
            currency="USD",
            lines=[bracket(8000, "1.50", "USD")],
            channel="foreign_trade",
            actor=FOREIGN,
        )
        review(desk, export, FOREIGN)
        fulfil(desk, export.ref, FOREIGN)

        for ref in (general.ref, special.ref, export.ref):
            check = desk.verify_history(ref)
            assert check, check.problem
        print("audit chains intact")


if __name__ == "__main__":
    main()
