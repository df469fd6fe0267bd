"""The guards' look-ups written without temporaries (issue 15, round six) answer as before."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Desk
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
from reqmgmt.lifecycle.base import Lifecycle, SignoffStep
from reqmgmt.model import Signoff

from ..conftest import sign_all, to_evaluating


def _slow_step(lifecycle: Lifecycle, state: str) -> SignoffStep | None:
    """``Lifecycle.signoff_step`` as it was: the first step whose ``states`` hold ``state``."""
    for step in lifecycle.signoffs:
        if state in step.states:
            return step
    return None


def test_signoff_step_finds_the_step_states_names() -> None:
    seen = 0
    for lifecycle in BUILTIN_LIFECYCLES.values():
        names = [s.name for s in lifecycle.states] + ["no-such-state", ""]
        for name in names:
            found = lifecycle.signoff_step(name)
            assert found is _slow_step(lifecycle, name), (lifecycle.kind, name)
            seen += found is not None
    assert seen > 0  # some state holds a step (else the comparison proves nothing)


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), st.sampled_from(["a", "b", "c"]))
def test_signoff_step_on_also_in(also_in: list[str], state: str) -> None:
    """A step held in several states is found from each, and only from those."""
    step = attrs.evolve(
        next(s for lc in BUILTIN_LIFECYCLES.values() for s in lc.signoffs),
        state="a",
        also_in=tuple(dict.fromkeys(s for s in also_in if s != "a")),
    )
    holder: Any = type("L", (), {"signoffs": (step,)})()
    assert Lifecycle.signoff_step(holder, state) is _slow_step(holder, state)


def test_round_signoffs_is_the_round_in_order(desk: Desk) -> None:
    ref = to_evaluating(desk)
    sign_all(desk, ref)
    record = desk.get(ref)
    assert record.signoffs, "the walk signs"
    for round_ in (None, record.review_round, record.review_round + 1, 0):
        current = record.review_round if round_ is None else round_
        kept = record.round_signoffs(round_)
        assert type(kept) is tuple
        assert kept == tuple(s for s in record.signoffs if s.round == current)
        assert all(type(s) is Signoff for s in kept)
