"""Order intake (客户需求管理程序): a faxed order from receipt to completion.

A Hong Kong customer faxes an order; the shipping/sales clerk clarifies the
plating with the customer, engineering, the warehouse and production sign
their opinions on the production notice; raw material is short, so the VP
approves outsourcing (裁剪单); the delivery plan is issued, the order is
produced and closed.  Run it: ``python examples/order_intake.py``.
"""

from __future__ import annotations

from reqmgmt import Actor, Customer, Desk, NotAuthorized, Notification, Record, hookimpl


class ApprovedSubcontractors:
    """The ERP's approved subcontractor list (外包加工商清单)."""

    @hookimpl
    def reqmgmt_subcontractors(self, record: Record) -> list[str]:
        return ["宏达五金", "新华冲压"]


class PrintNotifications:
    """Where an ERP would send mail, this prints."""

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        print(f"  → {notification.recipient:24} {notification.text_zh}")


def main() -> None:
    clerk = Actor("zhang.wei", "张伟", departments={"shipping"}, roles={"sales"})
    engineer = Actor("li.na", "李娜", departments={"engineering"})
    warehouse = Actor("wang.fang", "王芳", departments={"materials"}, roles={"materials"})
    production = Actor("liu.yang", "刘洋", departments={"production"}, roles={"production"})
    vp = Actor("chen.vp", "陈副总", roles={"vp"})
    customer = Customer("HK-001", "Hong Kong Trading Ltd", category="important", flags={"foreign"})

    with Desk.open("memory://", plugins=[PrintNotifications(), ApprovedSubcontractors()]) as desk:
        req = desk.requirements.receive(
            customer=customer,
            description="冲压支架 10,000 pcs, 镀锌",
            channel="fax",
            priority="high",
            actor=clerk,
        )
        ref = req.ref
        print(f"received {ref}")
        desk.fire(ref, "clarify", actor=clerk, note="镀层厚度? plating thickness?")
        desk.fire(ref, "clarified", actor=clerk, note="8-12 µm")
        desk.fire(ref, "start_evaluation", actor=clerk)

        # The clerk submitted the review, so the clerk may not sign it.
        try:
            desk.sign(ref, department="engineering", actor=clerk)
        except NotAuthorized as err:
            print(f"refused as expected: {err.reasons[0]}")

        desk.sign(ref, department="engineering", actor=engineer, opinion="现有模具可做")
        desk.fire(
            ref,
            "request_outsourcing",
            actor=warehouse,
            note="钢带不足 steel strip short",
            subcontractor="宏达五金",  # from the host's approved list
        )
        desk.fire(ref, "approve_outsourcing", actor=vp, outsourcing="裁剪单 CJ-0419 to 宏达五金")
        # The customer confirms the cutting order before the subcontractor is told.
        desk.fire(ref, "cutting_confirmed", actor=clerk, note="客户传真确认 confirmed by fax")
        desk.sign(ref, department="materials", actor=warehouse, opinion="外包后材料足够")
        desk.sign(ref, department="production", actor=production, opinion="第12周")
        print("can accept now:", bool(desk.can(ref, "accept", actor=clerk)))
        desk.fire(ref, "accept", actor=clerk, delivery_plan="第12周 5,000; 第14周 5,000")
        desk.fire(ref, "start", actor=production)
        desk.fire(ref, "complete", actor=production, note="全部交货")
        final = desk.fire(ref, "close", actor=clerk)

        print(f"{ref} is {final.state}, version {final.version}")
        for e in desk.history(ref):
            print(f"  v{e.version:<2} {e.event:20} {e.from_state or '-':12} → {e.to_state}")
        check = desk.verify_history(ref)
        assert check, check.problem
        print(f"audit chain intact over {check.events} events")


if __name__ == "__main__":
    main()
