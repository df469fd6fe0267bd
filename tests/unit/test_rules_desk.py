"""Rules inside the Desk: classify, decisions kept in the audit, versions pinned."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import ConfigError, Desk, hookimpl
from reqmgmt.rules import default_rules, load_rules
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive

FASTER = {
    "tables": {
        "requirement_deadline": {
            "examples": [],
            "rows": [{"id": "normal", "when": "priority == 'normal'", "then": {"hours": 8}}],
        }
    }
}


def test_receive_sets_the_deadline_from_the_rules(clock: FakeClock) -> None:
    """Priority → deadline hours; the decision is in the audit event; the version pinned."""
    with Desk.open(clock=clock) as desk:
        start = clock.now
        ref = receive(desk, priority="urgent")
        record = desk.get(ref)
        assert record.due_at == start + timedelta(hours=24)  # type: ignore[attr-defined]
        assert record.rules_version == desk.rules.version
        (decision,) = desk.history(ref)[0].decisions
        assert decision["table"] == "requirement_deadline"
        assert decision["matched"] == ["urgent"]
        assert decision["version"] == desk.rules.version
        assert decision["facts"] == {"priority": "urgent"}
        assert desk.verify_history(ref)


def test_an_explicit_due_date_is_kept_without_a_decision(clock: FakeClock) -> None:
    """A given due_at wins; no decision is recorded then."""
    with Desk.open(clock=clock) as desk:
        due = clock.now + timedelta(days=30)
        ref = receive(desk, due_at=due)
        assert desk.get(ref).due_at == due  # type: ignore[attr-defined]
        assert desk.history(ref)[0].decisions == ()
        assert desk.get(ref).rules_version is None


def test_editing_rules_later_does_not_change_records_in_flight(clock: FakeClock) -> None:
    """A record keeps the deadline and version decided at receipt under new rules."""
    store = None
    with Desk.open(clock=clock) as desk:
        ref = receive(desk)
        before = desk.get(ref)
        store = desk.store
    edited = Desk(store, desk.pm, clock=clock, rules=load_rules(FASTER, with_defaults=True))
    assert edited.rules.version != before.rules_version
    after_cmd = edited.fire(ref, "clarify", actor=CLERK, note="?")
    assert after_cmd.due_at == before.due_at  # type: ignore[attr-defined]
    assert after_cmd.rules_version == before.rules_version
    # New records follow the new rules.
    new = edited.get(receive(edited))
    # 8 working hours from Monday 17:00:04 in Shanghai: Tuesday 17:00:04.
    assert new.received_at == datetime(2026, 3, 2, 9, 0, 4, tzinfo=UTC)  # type: ignore[attr-defined]
    assert new.due_at == datetime(2026, 3, 3, 9, 0, 4, tzinfo=UTC)


def test_desk_open_merges_host_rule_files_over_the_defaults(tmp_path: Path) -> None:
    """Desk.open(rules=[file]) = defaults + the host's file."""
    host = tmp_path / "host.toml"
    host.write_text(
        "[tables.requirement_deadline]\nexamples = []\n"
        '[[tables.requirement_deadline.rows]]\nid = "low"\nwhen = "priority == \'low\'"\n'
        "then = { hours = 480, remind_before_hours = 48 }\n",
        encoding="utf-8",
    )
    with Desk.open(rules=[host]) as desk:
        assert desk.classify("deadline", {"priority": "low"}).outcome["hours"] == 480
        assert desk.classify("deadline", {"priority": "high"}).outcome["hours"] == 24
    with Desk.open(rules=default_rules()) as desk:
        assert desk.rules.version == default_rules().version


def test_rule_functions_from_plugins_are_callable_in_conditions() -> None:
    """reqmgmt_rule_functions adds named predicates to the language."""

    class Watch:
        @hookimpl
        def reqmgmt_rule_functions(self) -> Mapping[str, Callable[..., Any]]:
            return {"watched": lambda customer: customer in {"C-013"}}

    rules = {
        "tables": {
            "watch": {
                "inputs": {"customer": "str"},
                "outputs": ["hold"],
                "default": {"hold": False},
                "rows": [{"id": "w", "when": "watched(customer)", "then": {"hold": True}}],
            }
        }
    }
    with Desk.open(rules=rules, plugins=[Watch()]) as desk:
        assert desk.classify("watch", {"customer": "C-013"}).outcome == {"hold": True}
        assert desk.classify("watch", {"customer": "C-001"}).outcome == {"hold": False}
    with pytest.raises(ConfigError, match="unknown function 'watched'"):
        Desk.open(rules=rules)


def test_a_rule_function_given_twice_is_refused() -> None:
    """Two plugins naming the same function: ConfigError naming both."""

    class A:
        @hookimpl
        def reqmgmt_rule_functions(self) -> Mapping[str, Callable[..., Any]]:
            return {"f": len}

    class B(A):
        pass

    with pytest.raises(ConfigError, match="given by both plugin"):
        Desk.open(plugins=[A(), B()])


def test_classify_names_unknown_tables() -> None:
    """An unknown kind lists the tables there are."""
    with (
        Desk.open() as desk,
        pytest.raises(ConfigError, match="tables: amendment_departments, capa_trigger"),
    ):
        desk.classify("widget", {})
