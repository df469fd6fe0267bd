"""Stateful property test of complaints and returns."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from reqmgmt import Actor, Customer, Money, Record, Return
from reqmgmt.testing import REFUSALS, LifecycleMachine

ACTORS = (
    Actor("sales", roles={"sales"}),
    Actor("mat", roles={"materials"}),
    Actor("qc", roles={"quality"}),
    Actor("qm", roles={"quality_manager"}),
    Actor("qm2", roles={"quality_manager", "quality"}),
    Actor("sm", roles={"sales_manager"}),
    Actor("visitor"),
)


class ReturnMachine(LifecycleMachine):
    """Random commands on a few complaints and returns of two products."""

    kind = "return"
    actors: ClassVar = ACTORS
    max_records: ClassVar[int] = 4

    def create(self, data: st.DataObject) -> Record:
        return self.desk.returns.report(
            customer=Customer("C1", "Customer"),
            product=data.draw(st.sampled_from(["bracket", "hinge"]), label="product"),
            reason_code=data.draw(st.sampled_from(["quality", "damaged"]), label="reason"),
            reason_text="customer report",
            kind=data.draw(st.sampled_from(["return", "complaint"]), label="kind"),
            quantity=data.draw(st.integers(1, 500), label="quantity"),
            shipped_on=self.clock.now.date()
            - timedelta(days=data.draw(st.sampled_from([1, 30, 89, 90, 91, 200]), label="shipped")),
            actor=ACTORS[0],
        )

    def event_data(
        self, record: Record, event: str, actor: Actor, data: st.DataObject
    ) -> dict[str, Any]:
        if event == "receive_goods":
            return {"receipt_no": "WL-1", "quantity": 10}
        if event in ("judge_valid", "judge_invalid"):
            out: dict[str, Any] = {
                "findings": "f",
                "defect_category": data.draw(st.sampled_from(["plating", "burr"]), label="defect"),
                "cause": "c",
                "safety_related": data.draw(st.booleans(), label="safety"),
            }
            if event == "judge_valid" and data.draw(st.booleans(), label="override"):
                out["override_reason"] = "quality accepts"
            return out
        if event == "settle":
            return {"outcome": data.draw(st.sampled_from(["customer_accepts", "goods_sent_back"])),
                    "note": "agreed"}  # fmt: skip
        if event == "grant_goodwill":
            return {"credit": Money(100, "CNY"), "note": "goodwill"}
        if event == "open_capa":
            owner = data.draw(st.sampled_from(["qm", "qm2"]), label="owner")
            return {"owner": owner, "due_on": date(2026, 6, 1), "actions": "fix"}
        return super().event_data(record, event, actor, data)

    @rule(data=st.data())
    def dispose(self, data: st.DataObject) -> None:
        """The disposition, through desk.returns.dispose like a host would."""
        waiting = [r for r in self.refs if self.desk.get(r).state == "dispositioning"]
        if not waiting:
            return
        ref = data.draw(st.sampled_from(waiting), label="ref")
        # Mostly someone entitled to dispose, so runs get past it.
        managers = [a for a in ACTORS if "quality_manager" in a.roles]
        pool = managers if data.draw(st.integers(0, 3), label="manager") else list(ACTORS)
        actor = data.draw(st.sampled_from(pool), label="actor")
        before = self.desk.get(ref)
        trail = len(self.desk.history(ref))
        try:
            self.desk.returns.dispose(
                ref,
                data.draw(st.sampled_from(["rework", "refund", "scrap", "x"]), label="disposition"),
                actor=actor,
            )
        except REFUSALS:
            assert self.desk.get(ref) == before
            assert len(self.desk.history(ref)) == trail
        else:
            assert len(self.desk.history(ref)) == trail + 1

    def check_record(self, record: Record) -> None:
        assert isinstance(record, Return)
        if record.judgement == "invalid":
            assert record.disposition is None, "an invalid return got a disposition"
        if record.state == "closed" and record.judgement == "valid":
            assert record.disposition is not None, "closed valid without a disposition"
        if record.state == "closed" and record.capa_required:
            assert record.capa is not None, "closed with an open CAPA"
            assert record.capa.verified_by is not None, "closed with an open CAPA"
            assert record.capa.verified_by != record.capa.owner
        if record.kind == "complaint":
            assert record.receipt is None


TestReturnLifecycle = ReturnMachine.TestCase


def test_the_invariants_catch_closing_with_an_open_capa() -> None:
    """With the CAPA guard removed from close, the machine's invariant flags the closed return."""
    import attrs
    import pytest

    from reqmgmt import Desk
    from reqmgmt.lifecycle import CONTRACT, REQUIREMENT, RETURNS

    lax = attrs.evolve(
        RETURNS,
        transitions=tuple(
            attrs.evolve(t, guards=()) if t.event == "close" else t for t in RETURNS.transitions
        ),
    )

    class Broken(ReturnMachine):
        def make_desk(self) -> Desk:
            return Desk.open("memory://", clock=self.clock, lifecycles=[REQUIREMENT, CONTRACT, lax])

    machine = Broken()
    desk = machine.desk
    r = desk.returns.report(
        customer=Customer("C1", "C"),
        product="bracket",
        reason_code="quality",
        reason_text="crack",
        actor=ACTORS[0],
    )
    desk.fire(r.ref, "receive_goods", actor=ACTORS[1], receipt_no="WL-1", quantity=1)
    desk.fire(r.ref, "to_quality", actor=ACTORS[1])
    desk.fire(
        r.ref,
        "judge_valid",
        actor=ACTORS[2],
        findings="f",
        defect_category="crack",
        cause="c",
        safety_related=True,
    )
    desk.returns.dispose(r.ref, "scrap", actor=ACTORS[3])
    closed = desk.fire(r.ref, "close", actor=ACTORS[0])  # allowed only by the broken lifecycle
    with pytest.raises(AssertionError, match="closed with an open CAPA"):
        machine.check_record(closed)
    machine.teardown()
