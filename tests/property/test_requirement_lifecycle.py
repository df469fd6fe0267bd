"""Stateful property test of the requirement lifecycle, through reqmgmt.testing."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st

from reqmgmt import Actor, Record, Requirement
from reqmgmt.lifecycle.requirement import EVALUATING_DEPARTMENTS
from reqmgmt.testing import LifecycleMachine, signed_departments, strategies

from .mutation import run_broken

ACTORS = (
    Actor("clerk", roles={"sales"}),
    Actor("clerk2", roles={"sales"}, departments={"engineering"}),
    Actor("eng", departments={"engineering"}),
    Actor("mat", departments={"materials"}, roles={"materials"}),
    Actor("pro", departments={"production"}, roles={"production"}),
    Actor("allround", departments={"engineering", "materials", "production"}),
    Actor("vp", roles={"vp"}),
    Actor("visitor"),
)
AFTER_ACCEPT = {"accepted", "in_progress", "completed", "closed"}


class RequirementMachine(LifecycleMachine):
    """Random legal and illegal commands on a few requirements."""

    kind = "requirement"
    actors: ClassVar = ACTORS
    max_records: ClassVar[int] = 2

    def create(self, data: st.DataObject) -> Record:
        actor = data.draw(st.sampled_from([a for a in ACTORS if "sales" in a.roles]), label="clerk")
        return self.desk.requirements.receive(
            customer=data.draw(strategies.customers(), label="customer"),
            description=data.draw(strategies.texts, label="description"),
            channel=data.draw(st.sampled_from(["fax", "email", "phone"]), label="channel"),
            actor=actor,
        )

    def check_record(self, record: Record) -> None:
        assert isinstance(record, Requirement)
        if record.state in AFTER_ACCEPT:
            signed = signed_departments(record)
            assert set(EVALUATING_DEPARTMENTS) <= set(signed), (
                f"{record.ref} reached {record.state} with sign-offs {signed}"
            )
            signers = list(signed.values())
            assert len(set(signers)) == len(signers), "one person signed twice in a round"
            assert record.submitted_by not in signers, "the submitter signed"
            assert record.delivery_plan
        if record.state in ("rejected", "cancelled"):
            assert record.reason

    def on_success(self, before: Record, after: Record, event: str, actor: Actor) -> None:
        assert after.ref == before.ref
        t = self.engine.transition(before.state, event)
        assert t is not None
        assert after.state == t.dest
        assert not t.roles or actor.roles & t.roles


TestRequirementLifecycle = RequirementMachine.TestCase


def test_the_invariants_catch_a_lifecycle_without_the_signoff_guard() -> None:
    """With the accept guard removed, the machine finds an unsigned acceptance."""
    import attrs
    import pytest

    from reqmgmt import Desk
    from reqmgmt.lifecycle import REQUIREMENT

    unguarded = attrs.evolve(
        REQUIREMENT,
        transitions=tuple(
            attrs.evolve(t, guards=()) if t.event == "accept" else t
            for t in REQUIREMENT.transitions
        ),
    )

    class Broken(RequirementMachine):
        def make_desk(self) -> Desk:
            return Desk.open("memory://", clock=self.clock, lifecycles=[unguarded])

    with pytest.raises(AssertionError, match="reached accepted with sign-offs"):
        run_broken(Broken, examples=300, steps=30)
