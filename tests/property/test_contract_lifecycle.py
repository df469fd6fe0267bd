"""Stateful property test of contract review: random people, roles, rejections, shipments."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import strategies as st

from reqmgmt import Actor, Contract, ContractLine, Customer, Desk, Money, Record
from reqmgmt.lifecycle import Lifecycle
from reqmgmt.lifecycle.base import all_signed
from reqmgmt.model import lines_total
from reqmgmt.testing import LifecycleMachine, signed_departments

from .mutation import run_broken

ACTORS = (
    Actor("s1", roles={"sales"}, departments={"sales"}),
    Actor("s2", roles={"sales"}, departments={"sales"}),
    Actor("ft", roles={"foreign_trade"}, departments={"foreign_trade"}),
    Actor("prod", departments={"production"}),
    Actor("eng", departments={"engineering"}),
    Actor("qa", departments={"quality"}),
    Actor("mat", departments={"materials"}),
    Actor("multi", departments={"production", "quality", "sales"}, roles={"sales_manager"}),
    Actor("sm", roles={"sales_manager"}),
    Actor("gm", roles={"general_manager"}),
    Actor("fh", roles={"factory_head"}),
    Actor("visitor"),
)
DOCUMENTS = ["contract", "order", "bid", "verbal", "quotation"]
AFTER_APPROVAL = {"approved", "awaiting_customer", "confirmed", "in_fulfilment", "shipped",
                  "ordered", "completed", "closed"}  # fmt: skip


class ContractMachine(LifecycleMachine):
    """Random commands on a couple of contracts."""

    kind = "contract"
    actors: ClassVar = ACTORS
    max_records: ClassVar[int] = 2

    def create(self, data: st.DataObject) -> Record:
        drafter = data.draw(
            st.sampled_from([a for a in ACTORS if a.roles & {"sales", "foreign_trade"}])
        )
        count = data.draw(st.integers(1, 3), label="lines")
        lines = [
            ContractLine(
                line_no=i + 1,
                product=f"part {i + 1}",
                quantity=data.draw(st.integers(1, 30000), label="quantity"),
                unit_price=Money(data.draw(st.sampled_from(["0.5", "9.99", "12", "150"])), "CNY"),
                delivery_date=date(2026, 6, 1),
            )
            for i in range(count)
        ]
        return self.desk.contracts.draft(
            customer=Customer("C1", "Customer", flags=data.draw(st.sampled_from([(), ("new",)]))),
            lines=lines,
            currency="CNY",
            document=data.draw(st.sampled_from(DOCUMENTS)),
            channel=data.draw(st.sampled_from(["domestic", "domestic", "foreign_trade"])),
            flags=data.draw(st.sampled_from([(), ("first_order",), ("oem",)])),
            actor=drafter,
        )

    def event_data(
        self, record: Record, event: str, actor: Actor, data: st.DataObject
    ) -> dict[str, Any]:
        if event == "ship":
            assert isinstance(record, Contract)
            if data.draw(st.booleans(), label="ship everything open"):
                return {"shipment": {x.line_no: x.open_quantity for x in record.lines}}
            return {
                "shipment": {
                    x.line_no: data.draw(st.integers(0, max(x.open_quantity, 1)), label="qty")
                    for x in record.lines
                }
            }
        if event == "confirm":
            return {"confirmation": "signed copy", "read_back": data.draw(st.booleans())}
        if event in ("amend", "revise"):
            assert isinstance(record, Contract)
            first = record.lines[0]
            change = data.draw(
                st.sampled_from(["quantity", "delivery_date", "payment_terms", "packaging"]),
                label="amended field",
            )
            if change == "quantity":
                new = attrs.evolve(
                    first, quantity=max(first.shipped, 1) + data.draw(st.integers(0, 40000))
                )
                changes: dict[str, Any] = {"lines": (new, *record.lines[1:])}
            elif change == "delivery_date":
                changes = {
                    "lines": (
                        attrs.evolve(first, delivery_date=date(2026, 7, 1)),
                        *record.lines[1:],
                    )
                }
            else:
                changes = {change: data.draw(st.sampled_from(["T/T 30", "木箱", "纸箱"]))}
            return {"changes": changes, "note": "客户变更 customer change"}
        return super().event_data(record, event, actor, data)

    def on_success(self, before: Record, after: Record, event: str, actor: Actor) -> None:
        assert isinstance(before, Contract)
        assert isinstance(after, Contract)
        if event == "amend" and after.amendment is not None:
            # In review: nothing of the change has taken effect yet.
            assert (after.lines, after.amount, after.payment_terms, after.packaging) == (
                before.lines,
                before.amount,
                before.payment_terms,
                before.packaging,
            ), "an amendment took effect before its review"
        if event == "approve_amendment":
            a = before.amendment
            assert a is not None
            signed = signed_departments(before)
            assert set(a.departments) <= set(signed), "amendment applied without its signatures"
            assert actor.id not in signed.values()
            assert actor.id != before.submitted_by

    def check_record(self, record: Record) -> None:
        assert isinstance(record, Contract)
        assert record.amount == lines_total(record.lines, record.currency), "amount != sum of lines"
        for x in record.lines:
            assert 0 <= x.shipped <= x.quantity
        if record.state in ("shipped", "completed", "closed"):
            assert record.fully_shipped
        if record.state in AFTER_APPROVAL:
            # The review that approved it: the record as it stood before the approval.
            approvals = [
                e for e in self.desk.history(record.ref) if e.event in ("approve", "self_review")
            ]
            assert approvals, "approved without an approval event"
            reviewed = self.desk.get(record.ref, version=approvals[-1].version - 1)
            assert isinstance(reviewed, Contract)
            if approvals[-1].event == "self_review":
                # 自行评审: only on a route the rules mark so, by the drafter, with the
                # read-back as the control and no countersign skipped.
                assert reviewed.self_review, f"{record.ref} self-reviewed on {reviewed.route}"
                assert reviewed.route_departments == ()
                assert reviewed.confirmation_required == "read_back"
                assert approvals[-1].actor_id == record.created_by, (
                    f"{record.ref} self-reviewed by {approvals[-1].actor_id}, not its signatory"
                )
                return
            assert not reviewed.self_review, f"{record.ref}: a self-reviewed route approved"
            signed = signed_departments(reviewed)
            assert set(reviewed.route_departments) <= set(signed), (
                f"{record.ref} approved with {signed}, route {reviewed.route_departments}"
            )
            signers = [signed[d] for d in reviewed.route_departments]
            assert len(set(signers)) == len(signers), "one person signed twice"
            assert record.created_by not in signers, "the drafter signed"
            approver = approvals[-1].actor_id
            assert approver not in (record.created_by, reviewed.submitted_by, *signers), (
                f"{approver} approved {record.ref} after drafting, submitting or signing it"
            )


TestContractLifecycle = ContractMachine.TestCase


def _without(event: str, change: dict[str, object]) -> Lifecycle:
    """The contract lifecycle with ``event``'s transition changed (a broken variant)."""
    from reqmgmt.lifecycle import CONTRACT

    return attrs.evolve(
        CONTRACT,
        transitions=tuple(
            attrs.evolve(t, **change) if t.event == event else t for t in CONTRACT.transitions
        ),
    )


def _run_broken_with(lax: Lifecycle) -> None:
    from reqmgmt.lifecycle import REQUIREMENT

    class Broken(ContractMachine):
        def make_desk(self) -> Desk:
            return Desk.open("memory://", clock=self.clock, lifecycles=[REQUIREMENT, lax])

    run_broken(Broken, examples=300, steps=40)


def test_the_invariants_catch_an_approval_without_separation_of_duties() -> None:
    """With `independent_of` waived on approve, the machine finds a drafter or signer approving."""
    lax = _without(
        "approve",
        {
            "independent_of": (),
            "independence_waived": "removed for this test",
            "guards": (all_signed,),
        },
    )
    with pytest.raises(
        AssertionError, match=r"after drafting, submitting or signing it|a self-reviewed route"
    ):
        _run_broken_with(lax)


def test_the_invariants_catch_a_self_review_on_any_route() -> None:
    """With self_review's guard removed, the machine finds a self-review without leave.

    Either on a route the rules do not mark self-reviewed, or by someone who is not
    the signatory: both are what the guard stops.
    """
    lax = _without("self_review", {"guards": (all_signed,)})
    with pytest.raises(AssertionError, match=r"self-reviewed on|not its signatory"):
        _run_broken_with(lax)
