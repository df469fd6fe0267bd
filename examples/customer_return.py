"""Customer complaints and returns (客户投诉和退货): three cases end to end.

1. A valid return with a safety-related defect: received (物料入库单), inspected
   (品质异常处理报告), judged valid, replaced (the contract reopens its delivery
   through its own lifecycle), CAPA opened and verified, closed.
2. An invalid return: judged not valid, negotiated, closed with a goodwill
   credit the sales manager approved.
3. A complaint without goods: straight to quality, judged valid, reworked.

Run it: ``python examples/customer_return.py``.
"""

from __future__ import annotations

from datetime import date, timedelta

from reqmgmt import (
    Actor,
    Contract,
    ContractLine,
    Customer,
    Desk,
    Money,
    Notification,
    TransitionBlocked,
    hookimpl,
)

SALES = Actor("zhou", "周敏 (市场部)", departments={"sales"}, roles={"sales"})
MATERIALS = Actor("wang", "王芳 (资材部)", roles={"materials"})
INSPECTOR = Actor("chen", "陈静 (品质部)", roles={"quality"})
QUALITY_MANAGER = Actor("lin", "林经理 (品质经理)", roles={"quality_manager"})
QA_DIRECTOR = Actor("xu", "徐总监 (品保)", roles={"quality_manager"})
SALES_MANAGER = Actor("he", "何经理 (营业经理)", roles={"sales_manager"})
CUSTOMER = Customer("C-100", "华南五金 South China Hardware")


class Copies:
    """Where the ERP would route the receipt copies and notices."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        self.sent.append(notification)


def shipped_contract(desk: Desk) -> Contract:
    c = desk.contracts.draft(
        customer=CUSTOMER, currency="CNY", actor=SALES,
        lines=[ContractLine(line_no=1, product="冲压支架 ZJ-12", quantity=1000,
                            unit_price=Money("10", "CNY"), delivery_date=date(2026, 3, 10))],
    )  # fmt: skip
    desk.fire(c.ref, "submit", actor=SALES)
    desk.sign(c.ref, department="sales", actor=Actor("wu", departments={"sales"}))
    desk.sign(c.ref, department="production", actor=Actor("liu", departments={"production"}))
    manager = Actor("tang", roles={"sales"})
    desk.fire(c.ref, "approve", actor=manager)
    desk.fire(c.ref, "send", actor=SALES)
    desk.fire(c.ref, "confirm", actor=SALES, confirmation="客户盖章回传")
    desk.fire(c.ref, "start_fulfilment", actor=SALES)
    desk.fire(c.ref, "ship", actor=SALES, shipment={1: 1000})
    result = desk.fire(c.ref, "mark_shipped", actor=SALES)
    assert isinstance(result, Contract)
    return result


def main() -> None:
    copies = Copies()
    with Desk.open("memory://", plugins=[copies]) as desk:
        contract = shipped_contract(desk)

        # 1. Valid return, safety-related: replacement and CAPA.
        r = desk.returns.report(
            customer=CUSTOMER, product="冲压支架 ZJ-12", contract_ref=contract.ref, line_no=1,
            quantity=200,
            reason_code="quality", reason_text="支架开裂 brackets crack under load", actor=SALES,
        )  # fmt: skip
        desk.fire(r.ref, "receive_goods", actor=MATERIALS, receipt_no="WL-2026-0311", quantity=200)
        receipt_copies = [n.recipient for n in copies.sent if n.event == "receive_goods"]
        print(f"{r.ref}: received, receipt copies to {', '.join(receipt_copies)}")
        desk.fire(r.ref, "to_quality", actor=MATERIALS)
        desk.fire(
            r.ref, "judge_valid", actor=INSPECTOR, findings="R角处开裂", defect_category="crack",
            cause="模具R角磨损 worn die radius", safety_related=True,
        )  # fmt: skip
        disposed = desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)
        reopened = desk.get(contract.ref)
        print(f"{r.ref}: valid, replace; CAPA required: {disposed.capa_required}; "
              f"{contract.ref} is {reopened.state} again")  # fmt: skip
        try:
            desk.fire(r.ref, "close", actor=SALES)
        except TransitionBlocked as err:
            print(f"  close refused: {err.reasons[0]}")
        desk.fire(r.ref, "open_capa", actor=INSPECTOR, owner="lin",
                  due_on=desk.now().date() + timedelta(days=30),
                  actions="更换模具, 增加首件检验 new die, first-article check")  # fmt: skip
        closed = desk.fire(r.ref, "verify_capa", actor=QA_DIRECTOR, note="连续5批无开裂")
        print(f"{r.ref}: {closed.state} after CAPA verification")

        # 2. Invalid return: negotiated, goodwill credit.
        r2 = desk.returns.report(
            customer=CUSTOMER, product="冲压支架 ZJ-12", quantity=50, reason_code="damaged",
            reason_text="包装破损 damaged boxes", actor=SALES,
        )  # fmt: skip
        desk.fire(r2.ref, "receive_goods", actor=MATERIALS, receipt_no="WL-2026-0312", quantity=50)
        desk.fire(r2.ref, "to_quality", actor=MATERIALS)
        desk.fire(r2.ref, "judge_invalid", actor=INSPECTOR, findings="产品无缺陷",
                  defect_category="none", cause="客户仓储受潮")  # fmt: skip
        done = desk.fire(
            r2.ref, "grant_goodwill", actor=SALES_MANAGER, credit=Money(300, "CNY"),
            note="长期客户 long-standing customer",
        )  # fmt: skip
        print(f"{r2.ref}: invalid, {done.state} with a goodwill credit of 300 CNY")

        # 3. Complaint without goods.
        c = desk.returns.report(
            customer=CUSTOMER, product="铰链 hinge", kind="complaint", reason_code="quality",
            reason_text="表面划伤 scratches", actor=SALES,
        )  # fmt: skip
        desk.fire(c.ref, "to_quality", actor=SALES)
        desk.fire(c.ref, "judge_valid", actor=INSPECTOR, findings="划伤", defect_category="scratch",
                  cause="包装隔层缺失")  # fmt: skip
        desk.returns.dispose(c.ref, "rework", actor=QUALITY_MANAGER)
        print(f"{c.ref}: complaint, {desk.fire(c.ref, 'close', actor=SALES).state}")

        for ref in (r.ref, r2.ref, c.ref, contract.ref):
            check = desk.verify_history(ref)
            assert check, check.problem
        print("audit chains intact")


if __name__ == "__main__":
    main()
