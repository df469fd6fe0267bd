"""The command path's per-transition plans and fast checks agree with the slow paths (15.2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, HookError, ValidationError, command, hookimpl
from reqmgmt.desk import _utcnow
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive


def _outcome(fn: Any, *args: Any) -> str:
    """What ``fn(*args)`` did: returned, or the error it raised, as text."""
    try:
        fn(*args)
    except ValidationError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_plans_hold_what_the_slow_paths_compute() -> None:
    """Every declared transition's plan: its accepted keys, parties, topic and route."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        for engine in desk.engines.values():
            for t in engine.lifecycle.all_transitions():
                plan = command.plan_of(desk, engine, t)
                assert command.plan_of(desk, engine, t) is plan
                assert plan.transition is t
                assert plan.engine is engine
                assert plan.rules is desk.rules
                assert plan.accepted == frozenset((*t.requires, *t.optional))
                assert plan.parties == engine.lifecycle.independence(t)
                assert plan.topic == f"{engine.kind}.{t.event}"
                assert plan.plain_input == (not t.note_required and not t.requires)
                if t.notify_from is None:
                    assert plan.recipients is not None
                    declared = command.every_department(desk, list(t.notify))
                    assert list(plan.recipients) == declared
                else:
                    assert plan.recipients is None


def test_desk_plans_follow_the_rule_set() -> None:
    """A Desk's plan is used while the rule set is the same object, remade after."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        engine = desk.engine("requirement")
        plan = desk._plans[engine, "received", "start_evaluation"]
        assert plan.transition is engine.transition("received", "start_evaluation")
        desk.rules = attrs.evolve(desk.rules)  # an equal rule set, another object
        ref = receive(desk)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        remade = desk._plans[engine, "received", "start_evaluation"]
        assert remade is not plan
        assert remade.rules is desk.rules


notes = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.just("  "))
keys = st.sampled_from(
    ["department", "opinion", "delivery_plan", "changes", "reason", "x", "disposition"]
)
datas = st.dictionaries(keys, st.one_of(st.none(), st.text(max_size=3), st.integers()), max_size=3)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), note=notes, payload=datas)
def test_fast_input_check_agrees_with_check_input(data: Any, note: Any, payload: Any) -> None:
    """authorise skips check_input only where check_input finds nothing: same error or none."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        record = desk.get(ref)
        engine = desk.engine("requirement")
        transitions = list(engine.lifecycle.all_transitions())
        t = data.draw(st.sampled_from(transitions))
        plan = command.plan_of(desk, engine, t)
        slow = _outcome(command.check_input, record, t, note, payload)
        plain = plan.plain_input and (note is None or type(note) is str)
        fast = "skipped" if plain and payload.keys() <= plan.accepted else slow
        assert fast in (slow, "skipped")
        if fast == "skipped":
            assert slow == "ok"


def test_now_fast_path_is_aware_and_a_host_clock_is_still_checked() -> None:
    """The built-in clock skips the zone check (always UTC); a host's clock keeps it."""
    with Desk.open("memory://") as desk:
        assert desk._clock is _utcnow
        now = desk.now()
        assert now.tzinfo is not None
        assert now.utcoffset() == timedelta(0)
    naive = datetime(2026, 3, 2, 9, 0)
    with (
        Desk.open("memory://", clock=lambda: naive) as desk,
        pytest.raises(ValidationError, match="timezone-aware"),
    ):
        desk.now()
    aware = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    with Desk.open("memory://", clock=lambda: aware) as desk:
        assert desk.now() is aware


class _Recorder:
    """Implements the command's hooks, recording each call; ``authorize`` answers as told."""

    def __init__(self, answer: object = None) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.answer = answer

    @hookimpl
    def reqmgmt_authorize(self, actor: Any, record: Any, event: str) -> object:
        self.calls.append(("authorize", record.ref, event))
        return self.answer

    @hookimpl
    def reqmgmt_before_transition(self, record: Any, event: str, actor: Any) -> None:
        self.calls.append(("before", record.ref, event))

    @hookimpl
    def reqmgmt_after_transition(self, record: Any, audit_event: Any) -> None:
        self.calls.append(("after", record.ref, audit_event.event))


def test_implemented_hooks_are_still_called_once_each_in_order() -> None:
    """The inline "implemented?" tests call each implemented hook once, in the old order."""
    recorder = _Recorder()
    with Desk.open("memory://", clock=FakeClock(), plugins=[recorder]) as desk:
        ref = receive(desk)
        recorder.calls.clear()
        desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        desk.fire(ref, "remark", actor=CLERK, note="asked by phone")
    assert recorder.calls == [
        ("authorize", ref, "clarify"),
        ("before", ref, "clarify"),
        ("after", ref, "clarify"),
        ("authorize", ref, "remark"),
        ("before", ref, "remark"),
        ("after", ref, "remark"),
    ]


def test_a_hostile_authorize_answer_is_refused_and_nothing_written() -> None:
    """An answer other than True/False/None: HookError, the record unchanged."""
    recorder = _Recorder(answer="yes")
    with Desk.open("memory://", clock=FakeClock(), plugins=[recorder]) as desk:
        recorder.answer = None
        ref = receive(desk)
        recorder.answer = "yes"
        recorder.calls.clear()
        with pytest.raises(HookError, match="reqmgmt_authorize"):
            desk.fire(ref, "start_evaluation", actor=CLERK)
        assert desk.get(ref).version == 1
        assert recorder.calls == [("authorize", ref, "start_evaluation")]
