"""Round eight's savings in the front of the command (issue 15) against the general
ways: ``ctx.find`` made only where an effect may read it, sign's shared choosers and
its department check written out, the engine's cursor made by a class call."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from unittest.mock import patch

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Actor, Desk, command, hookimpl, verbs
from reqmgmt.errors import InvalidTransition, NotAuthorized, NotFound
from reqmgmt.i18n import reason
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
from reqmgmt.lifecycle.base import (
    PARTIES,
    Context,
    Engine,
    Lifecycle,
    SignoffStep,
    _Cursor,
    all_signed,
    department_open,
    step_table,
)
from reqmgmt.lifecycle.requirement import REQUIREMENT
from reqmgmt.model import Record, Requirement, Signoff
from reqmgmt.rules.model import RuleSet
from reqmgmt.rules.vocabulary import Vocabulary
from reqmgmt.storage import memory
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, CUSTOMER, ENG, MAT, PRO, receive, to_evaluating
from .test_steps6 import Blank, Loud, _outcome

# --- ctx.find: made where an effect may read it ----------------------------------------------


class Seen:
    """What the effects and guards of a command saw of ``ctx.find``."""

    def __init__(self) -> None:
        self.finds: list[Any] = []
        self.found: list[list[str]] = []

    def effect(self, ctx: Context) -> Mapping[str, Any]:
        self.finds.append(ctx.find)
        assert ctx.find is not None
        self.found.append([r.ref for r in ctx.find(kind="requirement")])
        return {}

    def guard(self, ctx: Context) -> str | None:
        self.finds.append(ctx.find)
        return None


def _spied(seen: Seen) -> Any:
    """REQUIREMENT with an effect on ``start`` and a decline effect, a guard on ``close``."""
    transitions = tuple(
        attrs.evolve(t, effects=(*t.effects, seen.effect))
        if t.event == "start"
        else attrs.evolve(t, guards=(*t.guards, seen.guard))
        if t.event == "close"
        else t
        for t in REQUIREMENT.transitions
    )
    steps = tuple(attrs.evolve(s, decline_effects=(seen.effect,)) for s in REQUIREMENT.signoffs)
    return attrs.evolve(REQUIREMENT, transitions=transitions, signoffs=steps)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The transactions command.finder made a find for."""
    made: list[Any] = []
    real = command.finder

    def finder(tx: Any) -> Any:
        made.append(tx)
        return real(tx)

    monkeypatch.setattr(command, "finder", finder)
    return made


def test_an_effect_finds_records_in_the_command_transaction(counted: list[Any]) -> None:
    """An effect (a transition's, a decline's) reads the records through ctx.find as
    before; a guard sees none; a command without an effect to run makes none."""
    seen = Seen()
    with Desk.open("memory://", clock=FakeClock(), lifecycles=[_spied(seen)]) as desk:
        other = receive(desk)
        ref = to_evaluating(desk)
        assert counted == []  # receive is a creation; start_evaluation has no effect
        desk.sign(ref, department="engineering", actor=ENG, opinion="ok")
        desk.sign(ref, department="materials", actor=MAT, opinion="ok")
        assert counted == []  # a sign-off approving runs no decline effect
        desk.sign(ref, department="production", actor=PRO, approve=False, opinion="no")
        assert len(counted) == 1  # the decline's effect
        assert seen.found == [sorted([other, ref])]
        desk.fire(ref, "start_evaluation", actor=CLERK)
        for department, actor in (("engineering", ENG), ("materials", MAT), ("production", PRO)):
            desk.sign(ref, department=department, actor=actor)
        desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
        assert len(counted) == 2  # accept's own effects
        desk.fire(ref, "start", actor=PRO)
        assert len(counted) == 3
        assert seen.found[-1] == sorted([other, ref])
        desk.fire(ref, "complete", actor=PRO, note="done")
        desk.fire(ref, "close", actor=CLERK)
        assert len(counted) == 4  # complete's effect; close has only the guard
        assert seen.finds[-1] is None  # the guard of close
        assert all(callable(f) for f in seen.finds[:-1])


def test_the_plan_finds_where_an_effect_can_run() -> None:
    """Every built-in transition: the plan says find where the transition has an
    effect, or is a sign-off of a lifecycle with a decline effect."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        for engine in desk.engines.values():
            steps = engine.lifecycle.signoffs
            for t in engine.lifecycle.all_transitions():
                plan = command.plan_of(desk, engine, t)
                declines = any(s.decline_effects and s.decline_event == t.event for s in steps)
                assert plan.finds == (bool(t.effects) or (t.signoff and declines))


# --- sign: the shared choosers and the department check --------------------------------------


@pytest.fixture(scope="module")
def evaluating() -> Iterator[tuple[Desk, str]]:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        yield desk, to_evaluating(desk)


def _chosen(desk: Desk, ref: Any, approve: Any, department: Any = "engineering") -> Any:
    """The chooser verbs.sign hands command.run (nothing run)."""
    seen: list[Any] = []
    real = command.run
    command.run = lambda desk, ref, choose, *rest: seen.append(choose)  # type: ignore[assignment]
    try:
        verbs.sign(desk, ref, department, ENG, approve, "", None)
    finally:
        command.run = real
    return seen[0]


def test_sign_names_the_ref_it_was_given_when_no_step_is_there() -> None:
    """A store answering a record whose ref reads otherwise (a plugin finding refs
    loosely): sign's refusal names the caller's ref, as it always did (a chooser shared
    by every command named record.ref; found in review and taken out)."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        store = desk.store
        real_get = store.transaction

        class Loose:
            def __init__(self, tx: Any) -> None:
                self._tx = tx

            def __getattr__(self, name: str) -> Any:
                return getattr(self._tx, name)

            def get(self, asked: str) -> Any:
                return self._tx.get(ref if asked == ref.lower() else asked)

        @contextlib.contextmanager
        def loose() -> Iterator[Any]:
            with real_get() as tx:
                yield Loose(tx)

        with (
            patch.object(store, "transaction", loose),
            pytest.raises(InvalidTransition) as caught,
        ):
            desk.sign(ref.lower(), department="engineering", actor=ENG)
        assert caught.value.ref == ref.lower()


class Ref(str):
    """A ref that formats as something else."""

    def __format__(self, spec: str) -> str:
        return "ODD"


class Truth:
    """An approve whose truth is asked only when the event is chosen."""

    def __init__(self, answer: bool) -> None:
        self.answer, self.asked = answer, 0

    def __bool__(self) -> bool:
        self.asked += 1
        return self.answer


def test_a_hostile_ref_or_approve_gets_its_own_chooser(evaluating: tuple[Desk, str]) -> None:
    """A str subclass ref keeps naming itself; an approve that is no bool is asked
    inside the transaction, once, as before (not before a missing record is found)."""
    desk, ref = evaluating
    engine = desk.engine("requirement")
    received = desk.get(receive(desk))
    odd = _chosen(desk, Ref(received.ref), True)
    with pytest.raises(InvalidTransition) as caught:
        odd(received, engine)
    assert "ODD" in str(caught.value)
    truth = Truth(False)
    choose = _chosen(desk, ref, truth)
    assert truth.asked == 0
    assert choose(desk.get(ref), engine) == "decline"
    assert truth.asked == 1
    with pytest.raises(NotFound):
        desk.sign("REQ-NOPE", department="engineering", actor=ENG, approve=Truth(True))  # type: ignore[arg-type]


departments = (
    st.sampled_from(["engineering", "materials", "production", "Engineering", "", "\ud800"])
    | st.text(max_size=6)
    | st.none()
    | st.integers()
    | st.sampled_from([b"engineering", ["engineering"], 1.5])
)
hostile_departments = (
    departments
    | st.sampled_from(["engineering", "quality", "x"]).map(lambda s: Blank(s))
    | st.sampled_from(["engineering", "x"]).map(lambda s: Loud(s))
)


@given(department=hostile_departments)
def test_sign_checks_the_department_as_the_vocabulary(
    evaluating: tuple[Desk, str], department: Any
) -> None:
    """Whatever the department: the vocabulary's own error, or none and the command run."""
    desk, ref = evaluating
    expected = _outcome(
        lambda: desk.rules.vocabulary("departments").check(department, "department", ref)
    )
    got = _outcome(lambda: _chosen(desk, ref, True, department))
    assert got == expected


class LoudRules(RuleSet):
    """A rule set whose vocabulary look-up is counted."""

    asked = 0

    def vocabulary(self, name: str) -> Vocabulary:
        type(self).asked += 1
        return super().vocabulary(name)


class Strict(Vocabulary):
    """A vocabulary refusing every value."""

    def check(self, value: object, field: str, where: str) -> None:
        raise ValueError(f"no {value!r}")


def test_a_rule_set_or_vocabulary_of_its_own_is_asked(evaluating: tuple[Desk, str]) -> None:
    """The check written out serves the library's own classes only."""
    desk, ref = evaluating
    rules = desk.rules
    try:
        desk.rules = LoudRules(**attrs.asdict(rules, recurse=False))
        _chosen(desk, ref, True)
        assert LoudRules.asked == 1
        words = dict(rules.vocabularies)
        words["departments"] = Strict("departments", rules.vocabularies["departments"].labels)
        desk.rules = attrs.evolve(rules, vocabularies=words)
        with pytest.raises(ValueError, match="no 'engineering'"):
            _chosen(desk, ref, True)
    finally:
        desk.rules = rules


# --- the engine's cursor -------------------------------------------------------------------------


def test_the_cursor_is_made_without_an_init_of_its_own() -> None:
    """_Cursor() runs object's __new__ and __init__ only: nothing set but by Engine.run."""
    assert "__init__" not in vars(_Cursor)
    assert "__new__" not in vars(_Cursor)
    assert _Cursor.__init__ is object.__init__
    cursor = _Cursor()
    for name in _Cursor.__slots__:
        assert not hasattr(cursor, name)


def test_the_engine_moves_each_transition_to_its_destination(
    evaluating: tuple[Desk, str],
) -> None:
    """Engine.run through the cursor: every unguarded declared move lands on its dest."""
    desk, ref = evaluating
    engine: Engine = desk.engine("requirement")
    record: Record = desk.get(ref)
    checked = 0
    for t in engine.lifecycle.all_transitions():
        if t.guards:
            continue
        for source in t.sources:
            moved = attrs.evolve(record, state=source)
            ctx = Context(moved, CLERK, t.event, None, {}, desk.now(), t, engine.lifecycle)
            assert engine.run(ctx) == t.dest
            checked += 1
    assert checked > 10


# --- the sign-off guards: the step from the lifecycle's table, missing written out ------------


def _old_all_signed(ctx: Context) -> Any:
    """all_signed as it was: the lifecycle, the step and the record asked."""
    step = ctx.lifecycle.signoff_step(ctx.record.state)
    if step is None:
        return None
    missing = step.missing(ctx.record)
    if missing:
        return reason(
            "signoff.incomplete", round=ctx.record.review_round, missing=", ".join(missing)
        )
    return None


def _old_department_open(ctx: Context) -> Any:
    """department_open as it was before round seven: every answer asked."""
    step = ctx.lifecycle.signoff_step(ctx.record.state)
    if step is None:
        return None
    department = ctx.data.get("department")
    required = step.required(ctx.record)
    if not required:
        return reason("signoff.no_review", state=ctx.record.state)
    if department not in required:
        return reason(
            "signoff.department_not_in_step",
            department=department,
            state=ctx.record.state,
            required=", ".join(required),
        )
    for s in ctx.record.round_signoffs():
        if s.department == department:
            return reason(
                "signoff.already_signed", department=department, round=s.round, actor=s.actor_id
            )
    return None


class OtherRounds(Requirement):
    """A host's record class whose current round is the one before."""

    RECORD_KIND: ClassVar[str] = ""

    def round_signoffs(self, round: int | None = None) -> tuple[Signoff, ...]:
        return super().round_signoffs(self.review_round - 1 if round is None else round)


class Wanting(SignoffStep):
    """A step whose own required and missing answer otherwise."""

    def required(self, record: Record) -> tuple[str, ...]:
        return ("quality",)

    def missing(self, record: Record) -> tuple[str, ...]:
        return ("quality", "vp")


class Moving(Lifecycle):
    """A lifecycle whose step answer is asked each time (it changes)."""

    answers: ClassVar[list[SignoffStep | None]] = []

    def signoff_step(self, state: str) -> SignoffStep | None:
        return type(self).answers.pop() if type(self).answers else None


class State(str):
    """A state that is no plain str (equal to its text)."""


STEP = REQUIREMENT.signoffs[0]
steps = st.sampled_from(
    [
        STEP,
        attrs.evolve(STEP, departments=lambda r: ["materials", "engineering"]),
        attrs.evolve(STEP, departments=()),
        Wanting(**attrs.asdict(STEP, recurse=False)),
    ]
)


@given(
    rounds=st.lists(
        st.tuples(
            st.sampled_from(["engineering", "materials", "production", "x"]),
            st.sampled_from(["eng", "mat"]),
            st.booleans(),
            st.integers(0, 3),
        ),
        max_size=5,
    ),
    current=st.integers(0, 3),
    cls=st.sampled_from([Requirement, OtherRounds]),
    state=st.sampled_from(["evaluating", "received", "nowhere", State("evaluating")]),
    step=steps,
    moving=st.booleans(),
    department=st.sampled_from(["engineering", "materials", "x", None, 3, Blank("materials")]),
)
def test_sign_off_guards_answer_as_before(
    evaluating: tuple[Desk, str],
    rounds: list[Any],
    current: int,
    cls: Any,
    state: Any,
    step: SignoffStep,
    moving: bool,
    department: Any,
) -> None:
    """The same reason (or none) as the guards asking the lifecycle, step and record,
    whatever the record class, step class, lifecycle class and state."""
    desk, ref = evaluating
    base = desk.get(ref)
    record = cls(
        **{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)}
        | {
            "signoffs": tuple(
                Signoff(d, a, ok, "", "review", r, datetime.now(UTC)) for d, a, ok, r in rounds
            ),
            "review_round": current,
            "state": state,
        }
    )
    fields = attrs.asdict(REQUIREMENT, recurse=False) | {"signoffs": (step,)}
    lc = Moving(**fields) if moving else Lifecycle(**fields)
    t = desk.engine("requirement").transition("evaluating", "sign")
    assert t is not None
    ctx = Context(record, ENG, "sign", None, {"department": department}, desk.now(), t, lc)
    for guard, old in ((all_signed, _old_all_signed), (department_open, _old_department_open)):
        Moving.answers = [step, None, step]
        got = guard(ctx)
        Moving.answers = [step, None, step]
        assert got == old(ctx)


def test_the_step_table_is_the_lifecycle_answer() -> None:
    """Every built-in lifecycle's table: each declared state's signoff_step; a subclass: none."""
    for lc in BUILTIN_LIFECYCLES.values():
        table = step_table(lc)
        assert table == {s.name: lc.signoff_step(s.name) for s in lc.states}
        assert step_table(lc) is table
    assert step_table(Moving(**attrs.asdict(REQUIREMENT, recurse=False))) == {}


# --- authorise: independence and the signer written out ---------------------------------------


def _old_refusals(desk: Desk, engine: Engine, t: Any, record: Record, actor: Actor) -> list[Any]:
    """authorise's refusals as they were: every check a call, asked in order."""
    data = {"department": _DEPARTMENT[0]}
    refusals = command.role_problems(t, actor, None, record)
    parties = engine.independence(t)
    if parties:
        refusals.extend(command.independence_problems(record, actor, parties, t.signoff))
    if t.signoff:
        refusals.extend(command.signer_problems(desk, record, actor, data.get("department")))
    if not refusals and desk.pm.hook.reqmgmt_authorize._hookimpls:
        refusals.extend(command.vetoes(desk, actor, record, t.event))
    return refusals


_DEPARTMENT: list[Any] = [None]


class Approvers:
    """reqmgmt_approvers naming who may sign for each department."""

    def __init__(self, named: list[str]) -> None:
        self.named = named

    @hookimpl
    def reqmgmt_approvers(self, records: Any, department: str) -> list[list[str]]:
        return [list(self.named) for _ in records]


ids = st.sampled_from(["eng", "ENG", " Eng ", "eng\u200b", "mat", "clerk", "ｅｎｇ"])
actors = st.sampled_from(
    [
        ENG,
        MAT,
        Actor("eng", "Both", departments={"engineering", "materials"}),
        Actor("other", "Nobody", departments=set()),
    ]
)


@given(
    created=ids,
    submitted=st.none() | ids,
    rounds=st.lists(
        st.tuples(st.sampled_from(["engineering", "materials"]), ids, st.integers(0, 2)),
        max_size=3,
    ),
    current=st.integers(0, 2),
    cls=st.sampled_from([Requirement, OtherRounds]),
    actor=actors,
    event=st.sampled_from(["sign", "decline"]),
    department=st.sampled_from(["engineering", "materials", "x", None, 3, Blank("engineering")]),
    approvers=st.none() | st.lists(st.sampled_from(["eng", "mat"]), max_size=2),
)
def test_authorise_refuses_as_every_check_called(
    created: str,
    submitted: str | None,
    rounds: list[Any],
    current: int,
    cls: Any,
    actor: Actor,
    event: str,
    department: Any,
    approvers: list[str] | None,
) -> None:
    """The same NotAuthorized (reasons in order) or none as the checks called one by
    one, whoever drafted, submitted and signed, whatever the department and hooks."""
    plugins = [] if approvers is None else [Approvers(approvers)]
    with Desk.open("memory://", clock=FakeClock(), plugins=plugins) as desk:
        base = desk.get(to_evaluating(desk))
        record = cls(
            **{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)}
            | {
                "created_by": created,
                "submitted_by": submitted,
                "signoffs": tuple(
                    Signoff(d, a, True, "", "review", r, datetime.now(UTC)) for d, a, r in rounds
                ),
                "review_round": current,
            }
        )
        engine = desk.engine("requirement")
        t = engine.transition("evaluating", event)
        assert t is not None
        _DEPARTMENT[0] = department
        data = {"department": department}
        refusals = _old_refusals(desk, engine, t, record, actor)
        expected = (
            _outcome(lambda: _raise(NotAuthorized(record.ref, event, actor.id, refusals)))
            if refusals
            else None
        )
        got = _outcome(
            lambda: command.authorise(
                desk, engine, t, record, event, actor, None, data, desk.now(), True
            )
        )
        assert got == expected


def _raise(exc: Exception) -> None:
    raise exc


def test_party_fields_are_what_the_parties_read() -> None:
    """Each of the library's parties reads its field (and only that); another party,
    even of the same name, is called."""
    record = Requirement(
        ref="REQ-1", state="received", created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC), created_by="a", submitted_by="b", requested_by="c",
        customer=CUSTOMER, description="d", received_at=datetime.now(UTC),
    )  # fmt: skip
    for name, field in command._PARTY_FIELDS.values():
        assert PARTIES[name.name] is name
        assert tuple(name.ids(record)) == (getattr(record, field),)
    assert command.party_fields(tuple(PARTIES[n] for n in ("submitter", "drafter"))) == (
        "submitted_by",
        "created_by",
    )
    assert command.party_fields((PARTIES["signers"],)) is None
    assert command.party_fields((attrs.evolve(PARTIES["drafter"]),)) is None
    assert command.party_fields(()) == ()


# --- the memory transaction's exit -------------------------------------------------------------


def test_the_transaction_exit_takes_three_named_arguments() -> None:
    """No tuple packed for the with statement's three arguments; a block that ends
    normally commits, one that raises writes nothing and gives its locks back."""
    params = inspect.signature(memory._MemoryTransaction.__exit__).parameters
    assert [p.kind for p in params.values()] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 4
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        first = desk.get(ref)
        store = desk.store

        def failing() -> None:
            with store.transaction() as tx:
                tx.lock(ref)
                tx.update(attrs.evolve(first, version=first.version + 1), expected_version=1)
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            failing()
        assert desk.get(ref) is first
        with store.transaction() as tx:
            tx.lock(ref)  # given back by the failed block: not waited for
            tx.update(attrs.evolve(first, version=first.version + 1), expected_version=1)
        assert desk.get(ref).version == first.version + 1
