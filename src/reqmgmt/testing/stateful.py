"""A hypothesis state machine that drives any lifecycle through a Desk.

Subclass :class:`LifecycleMachine`, say how to create a record and (if you
like) what else must always hold, and hypothesis fires random events, legal
and illegal, by random actors, checking after every step that:

- every record is in a declared state;
- every change has exactly one audit event, versions 1..n with no gaps;
- the hash chain verifies and replaying the audit rebuilds the record;
- a refused command (illegal event, unauthorised actor, blocked guard, bad
  input) changes nothing: record, audit trail and outbox stay as they were.

The host's own plugins and rules take part through :meth:`make_desk`.  See
docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import hypothesis
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ..desk import Desk
from ..errors import InvalidTransition, NotAuthorized, TransitionBlocked, ValidationError
from ..model import Actor, Record
from .plugins import ApprovedSubcontractors, DesignProjects, FakeClock

__all__ = ["REFUSALS", "LifecycleMachine", "signed_departments"]

#: The errors a refused command may raise; anything else fails the test.
REFUSALS = (InvalidTransition, NotAuthorized, TransitionBlocked, ValidationError)


class LifecycleMachine(RuleBasedStateMachine):
    """Base class: set ``kind`` and ``actors``, implement :meth:`create`."""

    #: The record kind driven (a lifecycle the Desk knows).
    kind: ClassVar[str] = ""
    #: The people who act; include some who may not do much.
    actors: ClassVar[Sequence[Actor]] = ()
    #: At most this many records per run.
    max_records: ClassVar[int] = 4

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.desk = self.make_desk()
        self.engine = self.desk.engine(self.kind)
        self.refs: list[str] = []
        self.commands = 0
        self.refusals = 0

    # --- what a subclass provides -----------------------------------------------------

    def make_desk(self) -> Desk:
        """The Desk under test (override to add your plugins or store)."""
        plugins = [ApprovedSubcontractors(), DesignProjects()]
        return Desk.open("memory://", clock=self.clock, plugins=plugins)

    def create(self, data: st.DataObject) -> Record:
        """Create one record of ``kind`` through the Desk."""
        raise NotImplementedError("implement create() in your subclass")

    def event_data(
        self, record: Record, event: str, actor: Actor, data: st.DataObject
    ) -> dict[str, Any]:
        """Keyword arguments for ``desk.fire``: a note and every required data key."""
        t = self.engine.transition(record.state, event)
        kwargs: dict[str, Any] = {}
        if t is None:
            return kwargs
        if t.note_required or data.draw(st.booleans(), label="with note"):
            kwargs["note"] = data.draw(
                st.sampled_from(["ok", "客户确认", "see fax", "capacity short"]), label="note"
            )
        for key in t.requires:
            if key == "department":
                step = self.engine.lifecycle.signoff_step(record.state)
                choices = list(step.required(record)) if step else []
                # Mostly a department the actor belongs to and that has not
                # signed yet, so reviews complete; sometimes anything.
                mine = [d for d in (step.missing(record) if step else ()) if d in actor.departments]
                if step is None:  # a department signing for something else (a plan)
                    choices = sorted(actor.departments)
                    mine = choices
                if mine and data.draw(st.integers(0, 9), label="own department") > 1:
                    choices = mine
                else:
                    choices = [*choices, "nobody"]
                kwargs[key] = data.draw(st.sampled_from(choices), label=key)
            elif key == "subcontractor":
                # Mostly one of the approved list (ApprovedSubcontractors), sometimes not.
                kwargs[key] = data.draw(st.sampled_from(["hongda", "xinhua", "nobody"]), label=key)
            elif key == "novelty":
                kwargs[key] = data.draw(
                    st.sampled_from(["new_product", "new_process", "old"]), label=key
                )
            elif key in dict(t.vocabularies):
                # A word of the vocabulary the transition names, mostly; sometimes not.
                words = [*self.desk.rules.vocabulary(dict(t.vocabularies)[key]), "nonsense"]
                kwargs[key] = data.draw(st.sampled_from(words), label=key)
            else:
                kwargs[key] = data.draw(st.sampled_from(["plan A", "lot 2", "交货计划"]), label=key)
        return kwargs

    def check_record(self, record: Record) -> None:
        """Extra invariants of one record (override; raise AssertionError)."""

    # --- rules ----------------------------------------------------------------------------

    @rule(data=st.data())
    def new_record(self, data: st.DataObject) -> None:
        if len(self.refs) >= self.max_records:
            return
        record = self.create(data)
        assert record.version == 1
        self.refs.append(record.ref)

    @rule(data=st.data())
    def fire_allowed_event(self, data: st.DataObject) -> None:
        """An event the Desk says is allowed, by someone it is allowed for."""
        if not self.refs:
            return
        ref = data.draw(st.sampled_from(self.refs), label="ref")
        record = self.desk.get(ref)
        pairs = [
            (actor, event)
            for actor in self.actors
            for event in self.desk.allowed_events(ref, actor=actor)
        ]
        if not pairs:
            return
        # Events into final states end a record's walk, declines restart a
        # review and notes anyone may add (remarks, identified requirements)
        # go nowhere: take them less often, so runs reach the deep states too.
        lc = self.engine.lifecycle
        final = {s.name for s in lc.states if s.final}
        declines = {step.decline_event for step in lc.signoffs}
        onward = [
            (a, e)
            for a, e in pairs
            if e not in declines
            and self._dest(record.state, e) not in final
            and not self._stays(record.state, e)
        ]
        if onward and data.draw(st.integers(0, 9), label="onward") > 1:
            pairs = onward
        actor, event = data.draw(st.sampled_from(pairs), label="actor, event")
        self._fire(ref, event, actor, data)

    @rule(data=st.data())
    def sign_every_missing_department(self, data: st.DataObject) -> None:
        """In a sign-off step, each missing department signed by someone allowed to."""
        if not self.refs:
            return
        ref = data.draw(st.sampled_from(self.refs), label="ref")
        record = self.desk.get(ref)
        step = self.engine.lifecycle.signoff_step(record.state)
        if step is None:
            return
        for department in step.missing(record):
            record = self.desk.get(ref)
            signers = [
                a
                for a in self.actors
                if self.desk.can(ref, step.sign_event, actor=a, department=department)
            ]
            if not signers:
                return
            actor = data.draw(st.sampled_from(signers), label=f"signer for {department}")
            after = self.desk.sign(ref, department=department, actor=actor)
            self._check_success(record, after, step.sign_event, actor)

    @rule(data=st.data())
    def fire_any_event(self, data: st.DataObject) -> None:
        """Any event of the lifecycle, by anyone: legal or not."""
        if not self.refs:
            return
        ref = data.draw(st.sampled_from(self.refs), label="ref")
        actor = data.draw(st.sampled_from(list(self.actors)), label="actor")
        event = data.draw(st.sampled_from(self.engine.events), label="event")
        self._fire(ref, event, actor, data)

    def _stays(self, state: str, event: str) -> bool:
        """A note anyone may add without moving the record (a remark, an identified requirement).

        Open to every actor, such events would crowd the (actor, event) pairs.
        """
        t = self.engine.transition(state, event)
        return (
            t is not None
            and t.dest == state
            and not t.signoff
            and not t.opens_review
            and not t.roles
            and t.roles_from is None
        )

    def _dest(self, state: str, event: str) -> str | None:
        t = self.engine.transition(state, event)
        return None if t is None else t.dest

    def _fire(self, ref: str, event: str, actor: Actor, data: st.DataObject) -> None:
        before = self.desk.get(ref)
        trail = len(self.desk.history(ref))
        outbox = self._outbox_keys()
        kwargs = self.event_data(before, event, actor, data)
        try:
            after = self.desk.fire(ref, event, actor=actor, **kwargs)
        except REFUSALS:
            self.refusals += 1
            assert self.desk.get(ref) == before, "a refused command changed the record"
            assert len(self.desk.history(ref)) == trail, "a refused command wrote audit"
            assert self._outbox_keys() == outbox, "a refused command queued notifications"
            return
        assert len(self.desk.history(ref)) == trail + 1, "one command, one audit event"
        self._check_success(before, after, event, actor)

    def _check_success(self, before: Record, after: Record, event: str, actor: Actor) -> None:
        self.commands += 1
        hypothesis.event(f"reached {after.state}")
        assert after.version == before.version + 1
        self.on_success(before, after, event, actor)

    def on_success(self, before: Record, after: Record, event: str, actor: Actor) -> None:
        """Called after every successful command (override to check transitions)."""

    def _outbox_keys(self) -> list[str]:
        return [e.notification.key for e in self.desk.outbox(now=self.clock.now)]

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def records_are_sound(self) -> None:
        states = {s.name for s in self.engine.lifecycle.states}
        for ref in self.refs:
            record = self.desk.get(ref)
            assert record.state in states, f"{ref} is in undeclared state {record.state!r}"
            events = self.desk.history(ref)
            assert [e.version for e in events] == list(range(1, record.version + 1))
            check = self.desk.verify_history(ref)
            assert check, check.problem
            self.check_record(record)

    def teardown(self) -> None:
        self.desk.close()


def signed_departments(record: Record) -> Mapping[str, str]:
    """Department → signer of the approving signatures of the current round."""
    return {s.department: s.actor_id for s in record.round_signoffs() if s.approve}
