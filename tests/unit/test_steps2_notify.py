"""A command whose transition tells no one skips :func:`reqmgmt.command.notifications`
(issue 15.2): the same (empty) notifications, the call made only where someone is told."""

from __future__ import annotations

from typing import Any

from reqmgmt import Desk, command
from reqmgmt.testing import FakeClock

from ..conftest import to_accepted


def test_notifications_are_asked_only_of_transitions_that_tell_someone(monkeypatch: Any) -> None:
    asked: list[str] = []
    made: list[tuple[str, int]] = []
    real = command.notifications

    def counting(desk: Desk, engine: Any, t: Any, *args: Any, **kw: Any) -> Any:
        asked.append(t.event)
        notes = real(desk, engine, t, *args, **kw)
        made.append((t.event, len(notes)))
        return notes

    monkeypatch.setattr(command, "notifications", counting)
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_accepted(desk)
        # Every skipped transition's plan tells no one, whatever the record: the
        # slow path finds no notification for it either.
        engine = desk.engine("requirement")
        record = desk.get(ref)
        for (_, state, event), plan in desk._plans.items():
            if plan.recipients == ():
                t = engine.transition(state, event)
                assert t is not None
                assert real(desk, engine, t, record, record, desk.now()) == ()
        entries = desk.outbox()
    assert "sign" not in asked
    assert [e for e, n in made if n == 0] == []
    assert {"start_evaluation", "accept"} <= set(asked)
    assert len(entries) == sum(n for _, n in made) + 1  # and the creation's own
