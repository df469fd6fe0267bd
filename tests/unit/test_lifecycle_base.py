"""Lifecycle declarations are checked at build time; one Machine per kind."""

from __future__ import annotations

import attrs
import pytest

from reqmgmt import ConfigError, Lifecycle, Requirement, SignoffStep, State, Transition
from reqmgmt.lifecycle import REQUIREMENT

S = (State("a", "甲", "a"), State("b", "乙", "b"), State("c", "丙", "c", final=True))


def lifecycle(**kw: object) -> Lifecycle:
    values: dict[str, object] = {
        "kind": "t",
        "record_type": Requirement,
        "initial": "a",
        "states": S,
        "transitions": (
            Transition("go", ("a",), "b"),
            Transition("end", ("b",), "c"),
        ),
    }
    values.update(kw)
    return Lifecycle(**values)  # type: ignore[arg-type]


def test_a_sound_declaration_builds() -> None:
    """A sound declaration builds an engine with its events."""
    engine = lifecycle().build()
    assert engine.events == ("end", "go")
    assert engine.events_from("a") == ("go",)
    assert engine.transition("a", "end") is None


def test_unknown_states_are_refused() -> None:
    """Unknown source, destination and initial states are named."""
    lc = lifecycle(initial="z", transitions=(Transition("go", ("a", "q"), "x"),))
    with pytest.raises(ConfigError) as info:
        lc.build()
    text = str(info.value)
    assert "initial state 'z'" in text
    assert "unknown source state 'q'" in text
    assert "unknown destination state 'x'" in text


def test_unreachable_states_are_refused() -> None:
    """A state nothing leads to is named."""
    lc = lifecycle(transitions=(Transition("go", ("a",), "b"),))
    with pytest.raises(ConfigError, match="state 'c' cannot be reached from 'a'"):
        lc.build()


def test_duplicate_events_from_one_state_are_refused() -> None:
    """The same event twice from one state is ambiguous."""
    lc = lifecycle(
        transitions=(
            Transition("go", ("a",), "b"),
            Transition("go", ("a",), "c"),
            Transition("end", ("b",), "c"),
        )
    )
    with pytest.raises(ConfigError, match="event 'go' is declared twice from state 'a'"):
        lc.build()


def test_labels_meanings_and_final_states_are_checked() -> None:
    """Missing labels, unknown meanings, exits from final states are refused."""
    lc = lifecycle(
        states=(State("a", "", "a"), S[1], S[2]),
        transitions=(
            Transition("go", ("a",), "b", meaning="blessing"),
            Transition("end", ("b",), "c"),
            Transition("back", ("c",), "a"),
        ),
    )
    with pytest.raises(ConfigError) as info:
        lc.build()
    problems = info.value.problems
    assert any("zh-CN and an English label" in p for p in problems)
    assert any("meaning 'blessing'" in p for p in problems)
    assert any("final state 'c' has outgoing transitions" in p for p in problems)


def test_duplicate_states_and_reserved_create_event_are_refused() -> None:
    """A state declared twice, or a transition named like the create event."""
    lc = lifecycle(
        states=(*S, S[0]),
        transitions=(Transition("create", ("a",), "b"), Transition("end", ("b",), "c")),
    )
    with pytest.raises(ConfigError) as info:
        lc.build()
    assert any("declared more than once" in p for p in info.value.problems)
    assert any("reserved for creating" in p for p in info.value.problems)


def test_signoff_steps_are_checked() -> None:
    """Unknown step states and rework states are refused."""
    lc = lifecycle(signoffs=(SignoffStep("q", ("x",), rework="nowhere"),))
    with pytest.raises(ConfigError) as info:
        lc.build()
    assert any("unknown state 'q'" in p for p in info.value.problems)
    assert any("unknown rework state 'nowhere'" in p for p in info.value.problems)


def test_signoff_steps_add_sign_and_decline_events() -> None:
    """A step adds a self-loop sign event and a decline back to rework."""
    engine = REQUIREMENT.build()
    sign = engine.transition("evaluating", "sign")
    decline = engine.transition("evaluating", "decline")
    assert sign is not None
    assert sign.dest == "evaluating"
    assert sign.signoff
    assert decline is not None
    assert decline.dest == "received"
    assert decline.note_required


def test_one_machine_per_kind_without_models() -> None:
    """The Machine has no model: records are never added to it."""
    engine = REQUIREMENT.build()
    assert engine.machine.models == []
    assert set(engine.machine.states) == {s.name for s in REQUIREMENT.states}
    assert not any(name.startswith("to_") for name in engine.machine.events)


def test_the_requirement_declaration_is_sound() -> None:
    """The shipped declaration has no problems."""
    assert REQUIREMENT.problems() == []


def test_state_lookup_names_the_known_states() -> None:
    """Asking for an unknown state lists the declared ones."""
    with pytest.raises(ValueError, match="one of received"):
        REQUIREMENT.state("nope")


def test_declarations_are_frozen_values() -> None:
    """Declarations cannot be changed after the engine is built."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        REQUIREMENT.initial = "x"  # type: ignore[misc]


def test_names_the_sql_columns_cannot_hold_are_refused() -> None:
    """States over 32 characters, events over 64 or with control characters: refused at build."""
    long_state = "s" * 33
    states = (State("a", "甲", "a"), State(long_state, "乙", "b", final=True))
    lc = lifecycle(
        states=states,
        transitions=(Transition("go\x00", ("a",), long_state), Transition("e" * 65, ("a",), "a")),
    )
    with pytest.raises(ConfigError) as info:
        lc.build()
    text = str(info.value)
    assert f"state {long_state!r}: at most 32 characters" in text
    assert "event 'go\\x00': one line of text without control characters" in text
    assert "at most 64 characters (got 65)" in text
