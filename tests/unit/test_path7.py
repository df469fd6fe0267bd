"""Round seven's fast paths of the command's frame against the general ones (issue 15):
authorise's plain-transition flag, department_open's round written out, the guarded
conditions' ``check``, the memory transaction made without its ``__init__`` and its
reads before a write, after_commit asking for open units first, sign's step table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions.core import Condition, EventData

from reqmgmt import Actor, Desk, command, hookimpl, verbs
from reqmgmt.errors import ReqMgmtError
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
from reqmgmt.lifecycle.base import (
    Context,
    Engine,
    SignoffStep,
    _check_guards,
    _Cursor,
    department_open,
)
from reqmgmt.model import Requirement, Signoff
from reqmgmt.storage import hostunit, memory
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, ENG, MAT, PRO, VP, receive, to_accepted, to_evaluating
from .test_steps6 import _outcome

# --- hostile actors and hooks ---------------------------------------------------------------


class FakeRoles(frozenset[str]):
    """A roles set whose ``&`` answers from a script (then as a frozenset), counting calls."""

    script: ClassVar[list[bool]] = []
    calls: ClassVar[int] = 0

    def __and__(self, other: Any) -> Any:
        type(self).calls += 1
        if type(self).script:
            return {"x"} if type(self).script.pop(0) else set()
        return frozenset(self) & other


class OddActor(Actor):
    """An Actor subclass whose roles are a FakeRoles (set after attrs' converter)."""


def _odd_actor(base: Actor) -> OddActor:
    actor = OddActor(base.id, base.name, departments=base.departments, roles=base.roles)
    object.__setattr__(actor, "roles", FakeRoles(base.roles))
    return actor


class Veto:
    """reqmgmt_authorize answering as told (a wrong answer is the hook's error)."""

    def __init__(self) -> None:
        self.answer: object = None
        self.calls = 0

    @hookimpl
    def reqmgmt_authorize(self, actor: Any, record: Any, event: str) -> object:
        self.calls += 1
        return self.answer


@pytest.fixture(scope="module")
def vetoed() -> Iterator[tuple[Desk, Veto, dict[str, str]]]:
    veto = Veto()
    with Desk.open("memory://", clock=FakeClock(), plugins=[veto]) as desk:
        refs = {"evaluating": to_evaluating(desk), "accepted": to_accepted(desk)}
        refs["received"] = receive(desk)
        yield desk, veto, refs


def _general(plan: command.Plan) -> command.Plan:
    """``plan`` with its flag off: authorise takes the general way."""
    copy = object.__new__(command.Plan)
    for name in command.Plan.__slots__:
        setattr(copy, name, getattr(plan, name))
    copy.plain_auth = False
    return copy


# --- authorise's flag -----------------------------------------------------------------------


def test_plain_auth_is_set_where_nothing_but_the_role_is_asked() -> None:
    """The flag of every declared transition: no roles_from, no parties, no sign-off."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        plain = other = 0
        for lifecycle in BUILTIN_LIFECYCLES.values():
            engine = desk.engine(lifecycle.kind)
            for t in lifecycle.all_transitions():
                plan = command.plan_of(desk, engine, t)
                expected = t.roles_from is None and not engine.independence(t) and not t.signoff
                assert plan.plain_auth is expected, (lifecycle.kind, t.event)
                plain += expected
                other += not expected
        assert plain
        assert other


@given(
    who=st.sampled_from([CLERK, ENG, MAT, PRO, VP]),
    odd=st.booleans(),
    script=st.lists(st.booleans(), max_size=3),
    answer=st.sampled_from([None, True, False, "yes", 0]),
    case=st.sampled_from(
        [
            ("received", "start_evaluation", None, {}),
            ("accepted", "start", None, {}),
            ("accepted", "complete", "done", {}),
            ("evaluating", "sign", None, {"department": "engineering"}),
            ("evaluating", "sign", None, {"department": "materials"}),
            ("evaluating", "accept", None, {"delivery_plan": "2 lots"}),
        ]
    ),
)
def test_authorise_flag_answers_as_the_general_way(
    vetoed: tuple[Desk, Veto, dict[str, str]],
    who: Actor,
    odd: bool,
    script: list[bool],
    answer: object,
    case: tuple[str, str, str | None, dict[str, Any]],
) -> None:
    """The same refusal (reasons and their order), the same hook calls, the same
    number of role tests on a roles set that answers differently each time."""
    desk, veto, refs = vetoed
    state, event, note, data = case
    ref = refs[state if state in refs else "accepted"]
    record = desk.get(ref)
    engine = desk.engine("requirement")
    t = engine.transition(record.state, event)
    if t is None:  # complete is declared from in_progress: ask the accepted record anyway
        t = engine.transition("in_progress", event)
    assert t is not None
    plan = command.plan_of(desk, engine, t)
    now = desk.now()
    seen = []
    for way in (plan, _general(plan)):
        actor = _odd_actor(who) if odd else who
        FakeRoles.script, FakeRoles.calls = list(script), 0
        veto.answer, veto.calls = answer, 0
        got = _outcome(
            lambda actor=actor, way=way: command.authorise(
                desk, engine, t, record, event, actor, note, data, now, dry=False, plan=way
            )
        )
        seen.append((got, FakeRoles.calls, veto.calls))
    assert seen[0] == seen[1]
    veto.answer = None


# --- department_open ------------------------------------------------------------------------


def _old_department_open(ctx: Context) -> Any:
    """department_open as it was: Record.round_signoffs asked."""
    step = ctx.lifecycle.signoff_step(ctx.record.state)
    if step is None:
        return None
    department = ctx.data.get("department")
    required = step.required(ctx.record)
    if not required:
        return command.reason("signoff.no_review", state=ctx.record.state)
    if department not in required:
        return command.reason(
            "signoff.department_not_in_step",
            department=department,
            state=ctx.record.state,
            required=", ".join(required),
        )
    for s in ctx.record.round_signoffs():
        if s.department == department:
            return command.reason(
                "signoff.already_signed", department=department, round=s.round, actor=s.actor_id
            )
    return None


class Named(str):
    """A department whose equality is its own (equal to every department)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    def __hash__(self) -> int:
        return 0


class OtherRounds(Requirement):
    """A host's record class whose current round is the one before."""

    RECORD_KIND: ClassVar[str] = ""

    def round_signoffs(self, round: int | None = None) -> tuple[Signoff, ...]:
        return super().round_signoffs(self.review_round - 1 if round is None else round)


@pytest.fixture(scope="module")
def evaluating() -> Iterator[tuple[Desk, str]]:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        yield desk, to_evaluating(desk)


@given(
    rounds=st.lists(
        st.tuples(
            st.sampled_from(["engineering", "materials", "production", "x"]),
            st.sampled_from(["eng", "mat"]),
            st.integers(0, 3),
        ),
        max_size=5,
    ),
    current=st.integers(0, 3),
    cls=st.sampled_from([Requirement, OtherRounds]),
    state=st.sampled_from(["evaluating", "received"]),
    department=st.sampled_from(
        ["engineering", "materials", "production", "x", None, 3, Named("q"), Named("materials")]
    ),
)
def test_department_open_reads_the_round_as_round_signoffs(
    evaluating: tuple[Desk, str],
    rounds: list[Any],
    current: int,
    cls: Any,
    state: str,
    department: Any,
) -> None:
    """The same reason (or none) as through Record.round_signoffs; a class with its
    own round_signoffs is asked."""
    desk, ref = evaluating
    base = desk.get(ref)
    record = cls(
        **{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)}
        | {
            "signoffs": tuple(
                Signoff(d, a, True, "", "review", r, datetime.now(UTC)) for d, a, r in rounds
            ),
            "review_round": current,
            "state": state,
        }
    )
    engine = desk.engine("requirement")
    t = engine.transition("evaluating", "sign")
    assert t is not None
    ctx = Context(
        record, ENG, "sign", None, {"department": department}, desk.now(), t, engine.lifecycle
    )
    assert department_open(ctx) == _old_department_open(ctx)


# --- the guarded conditions ----------------------------------------------------------------


class _Guarded:
    """A context stand-in whose transition's guards answer as told."""

    def __init__(self, answers: list[Any]) -> None:
        self.transition = self
        self.guards = tuple((lambda ctx, a=a: a) for a in answers)


guard_answers = st.lists(
    st.sampled_from([None, "", "no", 0, 1, [], ["r"], False, True, b"", Named("")]), max_size=3
)


@given(answers=guard_answers)
def test_guarded_conditions_check_as_condition_check(answers: list[Any]) -> None:
    """Every condition of every built-in engine answers what transitions' own
    Condition.check answers, with the same reasons kept; the Machine is untouched."""
    checked = 0
    for lifecycle in BUILTIN_LIFECYCLES.values():
        engine = Engine(lifecycle)
        assert type(engine.machine).__name__ == "Machine"
        for event in engine.machine.events.values():
            for ways in event.transitions.values():
                for way in ways:
                    for condition in way.conditions:
                        assert type(condition) is Condition
                        assert condition.func is _check_guards
                        outcomes = []
                        for check in (
                            condition.check,
                            lambda ed, c=condition: Condition.check(c, ed),
                        ):
                            cursor = object.__new__(_Cursor)
                            cursor.state, cursor.reasons = way.source, []
                            cursor.ctx = _Guarded(answers)  # type: ignore[assignment]
                            data = EventData(None, event, engine.machine, cursor, (), {})
                            outcomes.append((check(data), list(cursor.reasons)))
                        assert outcomes[0] == outcomes[1]
                        assert type(outcomes[0][0]) is bool
                        checked += 1
    assert checked


def test_only_the_guarded_transitions_have_a_condition() -> None:
    """A transition without guards has no condition (its trigger as cheap as the bare
    one); each guarded one has the one, answered directly."""
    engine = Engine(BUILTIN_LIFECYCLES["requirement"])
    for event in engine.machine.events.values():
        for source, ways in event.transitions.items():
            t = engine.transition(source, event.name)
            assert t is not None
            for way in ways:
                if t.guards:
                    assert [vars(c).get("check") for c in way.conditions] == [_check_guards]
                else:
                    assert way.conditions == []


def test_a_blocked_guard_names_its_place_and_reasons() -> None:
    """Through the whole command: the blocked sign-off's reasons, nothing written."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_evaluating(desk)
        desk.sign(ref, department="engineering", actor=ENG, opinion="ok")
        other = Actor("eng2", "Second engineer", departments={"engineering"})
        with pytest.raises(ReqMgmtError) as caught:
            desk.sign(ref, department="engineering", actor=other)
        assert type(caught.value).__name__ == "TransitionBlocked"
        assert [r.code for r in caught.value.reasons] == ["signoff.already_signed"]  # type: ignore[attr-defined]
        assert ref in str(caught.value)
        assert "evaluating" in str(caught.value)
        with pytest.raises(ReqMgmtError) as early:
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
        assert [r.code for r in early.value.reasons] == ["signoff.incomplete"]  # type: ignore[attr-defined]
        assert desk.get(ref).version == 3


# --- the memory transaction ---------------------------------------------------------------


def test_transaction_is_what_init_makes() -> None:
    """Every slot as _MemoryTransaction.__init__ sets it: equal values, own containers."""
    store = memory.MemoryStore()
    made = store.transaction()
    init = memory._MemoryTransaction(store)
    assert type(made) is memory._MemoryTransaction
    for name in memory._MemoryTransaction.__slots__:
        a, b = getattr(made, name), getattr(init, name)
        assert type(a) is type(b), name
        assert a == b, name
    other = store.transaction()
    for name in ("_writes", "_audit", "_outbox", "_held"):
        assert getattr(made, name) is not getattr(other, name), name


def test_transaction_reads_staged_writes_first() -> None:
    """get and update with and without staged writes (the first write skips the look-up)."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        store = desk.store
        first = desk.get(ref)
        second = attrs.evolve(first, version=first.version + 1)
        third = attrs.evolve(first, version=first.version + 2)
        with store.transaction() as tx:
            assert tx.get(ref) is first
            assert tx.get("REQ-none") is None
            tx.update(second, expected_version=first.version)
            assert tx.get(ref) is second
            with pytest.raises(ReqMgmtError, match="version"):
                tx.update(third, expected_version=first.version)
            tx.update(third, expected_version=second.version)
            assert tx._writes[ref] == (third, first.version)  # still an update of the first
        assert desk.get(ref) is third
        with store.transaction() as tx:
            with pytest.raises(ReqMgmtError, match="version"):
                tx.update(second, expected_version=first.version)
            fresh = attrs.evolve(first, ref="REQ-fresh")
            tx.insert(fresh)
            tx.update(attrs.evolve(fresh, version=2), expected_version=fresh.version)
            assert tx._writes["REQ-fresh"][1] is None  # an insert then update stays an insert


# --- after_commit --------------------------------------------------------------------------


class Watcher:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def reqmgmt_after_transition(self, record: Any, audit_event: Any) -> None:
        self.seen.append(audit_event.event)


def test_after_commit_defers_in_a_unit_and_runs_now_outside(monkeypatch: Any) -> None:
    """No unit open: deferred is not even called; a unit open on the store: queued;
    a unit on another store: run now (as deferred answers)."""
    watcher = Watcher()
    with Desk.open("memory://", clock=FakeClock(), plugins=[watcher]) as desk:
        ref = receive(desk)
        calls: list[object] = []
        real = hostunit.deferred

        def counting(store: object, fn: Any, *args: Any) -> bool:
            calls.append(store)
            return real(store, fn, *args)

        monkeypatch.setattr(hostunit, "deferred", counting)
        assert hostunit.open_units() == ()
        desk.fire(ref, "start_evaluation", actor=CLERK)
        assert calls == []
        assert watcher.seen[-1] == "start_evaluation"
        for store, queued in ((desk.store, True), (object(), False)):
            unit = hostunit.HostUnit(store, None)  # type: ignore[arg-type]
            token = hostunit._OPEN.set((unit,))
            try:
                watcher.seen.clear()
                record = desk.get(ref)
                desk.fire(ref, "remark", actor=CLERK, note=f"queued {queued}")
            finally:
                hostunit._OPEN.reset(token)
            assert calls[-1] is desk.store
            assert unit.pending == queued
            assert watcher.seen == ([] if queued else ["remark"])
            assert desk.get(ref).version == record.version + 1
            if queued:
                unit._run()
                assert watcher.seen == ["remark"]


# --- sign's step ---------------------------------------------------------------------------


def test_the_engine_step_table_is_the_lifecycles_answer() -> None:
    """sign chooses from the engine's table: the lifecycle's step for every state."""
    for lifecycle in BUILTIN_LIFECYCLES.values():
        engine = Engine(lifecycle)
        for s in lifecycle.states:
            assert engine._signoff_steps[s.name] is lifecycle.signoff_step(s.name)


class _Steps:
    """A lifecycle stand-in whose step answer is its own."""

    def __init__(self, step: SignoffStep | None) -> None:
        self.step = step

    def signoff_step(self, state: str) -> SignoffStep | None:
        return self.step


def _chooser(desk: Desk, ref: str, approve: bool, monkeypatch: Any) -> Any:
    """sign's chooser, as verbs.sign hands it to command.run."""
    seen: list[Any] = []
    monkeypatch.setattr(command, "run", lambda desk, ref, choose, *rest, **kw: seen.append(choose))
    verbs.sign(desk, ref, "engineering", ENG, approve, "", None)
    monkeypatch.undo()
    return seen[0]


def test_sign_chooses_the_step_event_as_before(monkeypatch: Any) -> None:
    """From the engine's table where it holds the state, else the lifecycle's answer;
    no step: InvalidTransition for "sign" naming the events of the state."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_evaluating(desk)
        engine = desk.engine("requirement")
        record = desk.get(ref)
        sign, decline = (_chooser(desk, ref, a, monkeypatch) for a in (True, False))
        assert (sign(record, engine), decline(record, engine)) == ("sign", "decline")
        step = engine.lifecycle.signoff_step("evaluating")
        assert step is not None
        odd = attrs.evolve(record, state="no-such-state")
        for answer in (step, None):
            probe = object.__new__(Engine)
            probe.__dict__.update(vars(engine))
            probe.lifecycle = _Steps(answer)  # type: ignore[assignment]
            assert sign(record, probe) == "sign"  # the table holds evaluating
            got = _outcome(lambda p=probe: sign(odd, p))
            if answer is None:
                assert got is not None
                assert got[0] == "InvalidTransition"
                assert "'sign'" in got[1]
            else:
                assert got is None
                assert decline(odd, probe) == "decline"
        other = receive(desk)
        with pytest.raises(ReqMgmtError) as caught:
            desk.sign(other, department="engineering", actor=ENG)
        assert type(caught.value).__name__ == "InvalidTransition"
        assert "'sign'" in str(caught.value)
        assert "received" in str(caught.value)
