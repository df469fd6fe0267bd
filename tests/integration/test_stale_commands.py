"""A→B→A: a command prepared before two transitions that return to the same state is refused.

Versions decide, not states.  On SQLite a command holds the write lock from
the moment it loads the record (BEGIN IMMEDIATE), so this interleaving
cannot happen there; memory and PostgreSQL check versions at the write.
"""

from __future__ import annotations

import pytest

from reqmgmt import Actor, ConflictError, Desk, Record, hookimpl
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive


class AToBToA:
    """During the first start_evaluation: clarify and answer (received → clarifying → received)."""

    def __init__(self) -> None:
        self.desk: Desk | None = None
        self.done = False

    @hookimpl
    def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
        if event == "start_evaluation" and not self.done and self.desk is not None:
            self.done = True
            self.desk.fire(record.ref, "clarify", actor=CLERK, note="which finish?")
            self.desk.fire(record.ref, "clarified", actor=CLERK, note="zinc")


def check_a_b_a(url: str) -> None:
    plugin = AToBToA()
    with Desk.open(url, clock=FakeClock(), plugins=[plugin], autodispatch=False) as desk:
        plugin.desk = desk
        ref = receive(desk)
        with pytest.raises(ConflictError) as info:
            desk.fire(ref, "start_evaluation", actor=CLERK)
        assert (info.value.expected, info.value.actual) == (1, 3)
        record = desk.get(ref)
        assert (record.state, record.version) == ("received", 3)  # same state, newer version
        assert [e.event for e in desk.history(ref)] == ["receive", "clarify", "clarified"]
        assert desk.verify_history(ref)


def test_a_b_a_on_memory() -> None:
    """Memory store: the stale start_evaluation is refused and writes nothing."""
    check_a_b_a("memory://")


def test_a_b_a_on_postgres(pg_url: str) -> None:
    """PostgreSQL: the same."""
    check_a_b_a(pg_url)
