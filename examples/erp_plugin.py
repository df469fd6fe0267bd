"""A host ERP's plugin: org chart, mailbox, ERP numbering and a credit check.

What an ERP supplies through reqmgmt's hooks, in one class:

- ``reqmgmt_approvers``: who may sign for a department, from the org chart
  (here a dict; in an ERP, the HR tables);
- ``reqmgmt_notify``: notifications to a local mailbox file (mbox), where an
  ERP would send mail or post to its inbox; delivered after commit, each
  with its idempotency key as the Message-ID;
- ``reqmgmt_next_number``: the ERP's own document numbers (销售订单 SO-...);
- ``reqmgmt_before_transition``: a credit check that blocks submitting a
  contract for a customer over its credit limit, with the reason.

Run it: ``python examples/erp_plugin.py``.  A real ERP publishes the plugin
under the ``reqmgmt`` entry-point group, so ``reqmgmt remind`` and
``reqmgmt dispatch`` find it too.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import tempfile
from collections.abc import Collection, Sequence
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

from reqmgmt import (
    Actor,
    Contract,
    ContractLine,
    Customer,
    Desk,
    Money,
    Notification,
    Record,
    TransitionBlocked,
    hookimpl,
)

ORG_CHART = {  # department → employees who may sign for it
    "sales": {"wu.qiang"},
    "production": {"liu.yang"},
    "engineering": {"li.na"},
    "quality": {"chen.jing"},
    "materials": {"wang.fang"},
}
CREDIT_LIMITS = {"C-100": Decimal("1000000"), "C-900": Decimal("50000")}


class ErpPlugin:
    """Everything the ERP supplies; register it with Desk.open(plugins=[ErpPlugin(...)])."""

    def __init__(self, mailbox_path: Path) -> None:
        self.mailbox_path = mailbox_path
        self.next_so = 4711

    @hookimpl
    def reqmgmt_approvers(
        self, records: Sequence[Record], department: str
    ) -> list[Collection[str]]:
        # One answer per record (the same org chart for all of them here).
        return [ORG_CHART.get(department, set()) for _ in records]

    @hookimpl
    def reqmgmt_next_number(self, kind: str, year: int) -> str | None:
        if kind != "contract":
            return None  # reqmgmt numbers the others
        self.next_so += 1
        return f"SO-{year}-{self.next_so}"

    @hookimpl
    def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
        if event != "submit" or not isinstance(record, Contract):
            return
        limit = CREDIT_LIMITS.get(record.customer.id, Decimal(0))
        if record.amount.amount > limit:
            reason = (
                f"credit limit of {record.customer.id} is {limit} CNY; contract {record.amount}"
            )
            raise TransitionBlocked([reason])

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        message = EmailMessage()
        # "role:sales" → the ERP's distribution list role.sales@erp.example
        message["To"] = notification.recipient.replace(":", ".") + "@erp.example"
        message["Subject"] = notification.text_zh
        message["Message-ID"] = "<" + notification.key.replace(":", ".") + "@reqmgmt>"
        message["X-Reqmgmt-Key"] = notification.key
        message.set_content(f"{notification.text_zh}\n{notification.text_en}\n")
        box = mailbox.mbox(self.mailbox_path)
        try:
            box.lock()
            box.add(message)
            box.flush()
        finally:
            box.unlock()
            box.close()


def main() -> None:
    sales = Actor("zhou.min", "周敏", roles={"sales"})
    manager = Actor("he.sm", "何经理", roles={"sales_manager"})
    signers = {d: Actor(next(iter(ids)), departments={d}) for d, ids in ORG_CHART.items()}
    line = ContractLine(
        line_no=1, product="冲压支架 bracket", quantity=20000, unit_price=Money("10", "CNY"),
        delivery_date=date(2026, 6, 1),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        box_path = Path(tmp) / "erp.mbox"
        plugin = ErpPlugin(box_path)
        with Desk.open(f"sqlite:///{Path(tmp) / 'erp.db'}", plugins=[plugin]) as desk:
            # Over the credit limit: the ERP's check blocks the submission.
            risky = desk.contracts.draft(
                customer=Customer("C-900", "小客户 Small Buyer"), currency="CNY", lines=[line],
                actor=sales,
            )  # fmt: skip
            try:
                desk.fire(risky.ref, "submit", actor=sales)
            except TransitionBlocked as err:
                print(f"{risky.ref}: submit blocked: {err.reasons[0]}")

            # Within the limit: numbered by the ERP, signed by the org chart's people.
            ok = desk.contracts.draft(
                customer=Customer("C-100", "华南五金 South China Hardware"), currency="CNY",
                lines=[line], actor=sales,
            )  # fmt: skip
            submitted = desk.fire(ok.ref, "submit", actor=sales)
            assert isinstance(submitted, Contract)
            for department in submitted.route_departments:
                desk.sign(ok.ref, department=department, actor=signers[department])
            outsider = Actor("intern", departments={"production"})
            refused = desk.can(ok.ref, "sign", actor=outsider, department="production")
            print(f"an intern may sign for production? {bool(refused)}")
            approved = desk.fire(ok.ref, "approve", actor=manager)
            print(f"{approved.ref}: {approved.state} (route {submitted.route})")

        def parse(f: BinaryIO) -> EmailMessage:
            return email.message_from_binary_file(f, policy=email.policy.default)

        messages = list(mailbox.mbox(box_path, factory=parse))
        last = messages[-1]
        print(f"{len(messages)} messages in the ERP mailbox; the last to {last['To']}: "
              f"{last['Subject']}")  # fmt: skip
        keys = [m["X-Reqmgmt-Key"] for m in messages]
        assert len(keys) == len(set(keys)), "one message per idempotency key"


if __name__ == "__main__":
    main()
