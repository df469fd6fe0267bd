"""Diagrams generated from declarations."""

from __future__ import annotations

from reqmgmt import diagram
from reqmgmt.lifecycle import REQUIREMENT


def test_mermaid_has_every_state_with_both_labels_and_every_edge() -> None:
    """Each state shows zh and en labels; each transition is an edge."""
    text = diagram.mermaid(REQUIREMENT)
    assert text.startswith("stateDiagram-v2\n")
    for s in REQUIREMENT.states:
        assert f'state "{s.zh}<br/>{s.en}" as {s.name}' in text
    for t in REQUIREMENT.all_transitions():
        for src in t.sources:
            assert f"{src} --> {t.dest}: {t.event}" in text
    assert "[*] --> received: receive" in text
    assert "closed --> [*]" in text


def test_graphviz_is_a_digraph_with_final_states_doubled() -> None:
    """DOT output marks final states with two outlines."""
    text = diagram.graphviz(REQUIREMENT)
    assert text.startswith('digraph "requirement" {')
    assert '"closed" [label="已关闭\\nclosed", peripheries=2];' in text
    assert '"evaluating" -> "accepted" [label="accept"];' in text


def test_markdown_lists_roles_notes_and_signoffs() -> None:
    """The reference page has the transition table and the sign-off step."""
    text = diagram.markdown(REQUIREMENT)
    assert "| `reject` | `received`, `clarifying`, `negotiating` | `rejected` |" in text
    assert "engineering, materials, production each sign once per review round" in text
    assert (
        "| `evaluating` | 评估中 | evaluating | sign-off: engineering, materials, production |"
        in text
    )
