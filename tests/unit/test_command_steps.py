"""The per-command steps' precomputed tables agree with the slow paths they replace (issue 15.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Desk, Requirement, Signoff, ValidationError, command, model
from reqmgmt.model import PlanReceipt, derive
from reqmgmt.rules.model import RuleSet
from reqmgmt.serialize import field_unstructurer
from reqmgmt.testing import FakeClock, strategies

from ..conftest import CLERK, ENG, MAT, PRO, receive

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


def _slow_diff(record: Any, changes: dict[str, Any]) -> tuple[model.FieldChange, ...]:
    """field_diff as it was: every value through its field's cattrs hook."""
    hooks = field_unstructurer(type(record))
    out = []
    for name, value in changes.items():
        old = getattr(record, name)
        if old == value:
            continue
        hook = hooks[name]
        if hook is None:
            out.append(model.FieldChange(name, old, value, "set"))
        elif (
            type(old) is tuple
            and type(value) is tuple
            and len(value) > len(old)
            and value[: len(old)] == old
        ):
            out.append(model.FieldChange(name, len(old), hook(value[len(old) :]), "append"))
        else:
            out.append(model.FieldChange(name, hook(old), hook(value), "set"))
    return tuple(out)


def _signoffs(n: int, at: datetime) -> tuple[Signoff, ...]:
    return tuple(
        Signoff(department=f"d{i}", actor_id=f"a{i}", approve=i % 2 == 0, opinion="ok",
                meaning="review", round=1, at=at + timedelta(seconds=i))
        for i in range(n)
    )  # fmt: skip


def test_field_diff_ways_are_decided_once_per_class() -> None:
    """Times go to iso directly, tuples of plain-and-time items by hand, the rest to cattrs."""
    ways = command.diff_ways(Requirement)
    assert command.diff_ways(Requirement) is ways
    assert ways["updated_at"][0] == command._TIME
    assert ways["step_due_at"][0] == command._OPTIONAL_TIME
    assert ways["signoffs"] == (command._ITEMS, tuple(
        (a.name, a.name == "at") for a in attrs.fields(Signoff)
    ))  # fmt: skip
    assert ways["plan_receipts"][0] == command._ITEMS
    assert ways["state"][0] == command._AS_IS
    assert ways["customer"][0] == command._HOOK


@given(
    strategies.requirements(),
    times,
    st.one_of(st.none(), times),
    st.integers(0, 3),
    st.integers(0, 3),
    st.booleans(),
)
def test_field_diff_agrees_with_the_cattrs_hooks(
    base: Requirement, now: datetime, due: datetime | None, before: int, more: int, cut: bool
) -> None:
    """Times, optional times, appended and replaced sign-offs, receipts: the same changes."""
    old_signoffs = _signoffs(before, now)
    record = attrs.evolve(base, signoffs=old_signoffs)
    new_signoffs = _signoffs(before + more, now)
    if cut:  # not an append: replaced
        new_signoffs = new_signoffs[1:]
    receipt = PlanReceipt(department="sales", actor_id="clerk", at=now)
    changes: dict[str, Any] = {
        "signoffs": new_signoffs,
        "plan_receipts": (receipt,),
        "state": "evaluating",
        "version": record.version + 1,
        "updated_at": now,
        "step_due_at": due,
        "next_deadline": None,
        "customer": record.customer,
        "remarks": (*record.remarks, "one more"),
    }
    assert command.field_diff(record, changes) == _slow_diff(record, changes)


_VALUES: dict[str, list[Any]] = {
    "remarks": [("a",), ("a", "b"), ["x"]],
    "priority": ["normal", "urgent"],
    "delivery_plan": [None, "2 lots"],
    "review_round": [0, 3],
    "updated_at": [datetime(2026, 1, 5, 9, tzinfo=UTC)],
    "step": [None, "evaluation"],
    "signoffs": [()],
}
_BAD: dict[str, list[Any]] = {
    "priority": ["whenever"],
    "remarks": [(1,)],
    "delivery_plan": [5],
    "updated_at": [datetime(2026, 1, 5, 9)],
}


@st.composite
def _changes(draw: st.DrawFn, bad: bool) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, unique=True))
    out = {name: draw(st.sampled_from(_VALUES[name])) for name in names}
    if bad:
        name = draw(st.sampled_from(sorted(_BAD)))
        out[name] = draw(st.sampled_from(_BAD[name]))
    return out


def _outcome(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except ValidationError as exc:
        return ("error", str(exc))


@given(strategies.requirements(), _changes(bad=False) | _changes(bad=True), st.booleans())
def test_derive_plan_agrees_with_the_planning_path(
    record: Requirement, changes: dict[str, Any], checked: bool
) -> None:
    """The plan kept for a shape of changes derives what the planning path derives
    (the same record, or the same error), and is used the second time."""
    done = frozenset(("review_round",)) if checked else ""
    model._KEYED.clear()
    slow = _outcome(model._derive_planning, record, changes, done)
    if not isinstance(slow, tuple):
        assert slow == attrs.evolve(record, **changes)
        assert (type(record), tuple(changes), done) in model._KEYED
    planned = _outcome(derive, record, changes, checked=done)
    assert planned == slow


def test_derive_plans_once_per_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second derive with the same field names does not plan again."""
    record = Requirement(
        ref="REQ-1", state="received", created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC), created_by="clerk",
        customer=model.Customer("C-1", "Customer"), description="brackets",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    planning = []
    slow = model._derive_planning
    monkeypatch.setattr(model, "_derive_planning", lambda *a: planning.append(1) or slow(*a))
    model._KEYED.clear()
    first = derive(record, {"state": "evaluating", "version": 2})
    second = derive(first, {"state": "accepted", "version": 3})
    assert planning == [1]
    assert (second.state, second.version, second.ref) == ("accepted", 3, "REQ-1")
    with pytest.raises(ValidationError, match="a field of Requirement"):
        derive(first, {"state": "accepted", "no_such_field": 1})
    with pytest.raises(ValidationError, match="priority"):
        derive(first, {"state": "accepted", "priority": "whenever"})


def test_recipients_are_routed_once_per_transition(monkeypatch: pytest.MonkeyPatch) -> None:
    """accept tells every department: the vocabulary is read for the first command only,
    and the remembered route is what the slow path computes."""
    calls: list[str] = []
    vocabulary = RuleSet.vocabulary

    def counting(self: RuleSet, name: str) -> Any:
        calls.append(name)
        return vocabulary(self, name)

    with Desk.open("memory://", clock=FakeClock()) as desk:
        refs = []
        for _ in range(2):
            ref = receive(desk)
            desk.fire(ref, "start_evaluation", actor=CLERK)
            desk.sign(ref, department="engineering", actor=ENG, opinion="can do")
            desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
            desk.sign(ref, department="production", actor=PRO, opinion="week 12")
            refs.append(ref)
        command._PLANS.clear()
        monkeypatch.setattr(RuleSet, "vocabulary", counting)
        for ref in refs:
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
        assert calls.count("departments") == 1
        new = desk.get(refs[1])
        t = desk.engine("requirement").transition("evaluating", "accept")
        assert t is not None
        # The recipients notifications take: kept in the transition's plan.
        routed = command.plan_of(desk, desk.engine("requirement"), t).recipients
        assert routed is not None
        assert list(routed) == command.recipients(desk, t, new)
        assert len(routed) > 10
        assert "department:*" not in routed


def test_per_transition_tables_agree_with_the_declarations() -> None:
    """The accepted data keys and each state's sign-off step, made once, are the declared ones."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        for kind in desk.engines:
            engine = desk.engine(kind)
            for state in engine.labels:
                assert engine._signoff_steps[state] == engine.lifecycle.signoff_step(state)
            for t in engine.lifecycle.all_transitions():
                keys = command.accepted_keys(t)
                assert keys == frozenset((*t.requires, *t.optional))
                assert command.accepted_keys(t) is keys
