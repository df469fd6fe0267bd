"""The command path in its own module (issue 15.6) and the compact memory outbox (15.2)."""

from __future__ import annotations

import ast
import cProfile
import gc
import pstats
from pathlib import Path

from reqmgmt import Desk, MemoryStore, Notification
from reqmgmt.testing import FakeClock, RecordingNotifier

from ..conftest import CLERK, receive

SRC = Path(__file__).resolve().parents[2] / "src" / "reqmgmt"


def _imports(module: str) -> set[str]:
    """The modules ``module`` imports, at run time or for type checking alike."""
    tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_each_step_of_a_command_is_a_function_a_profiler_names() -> None:
    """fire runs load, check, trigger, derive_version, field_diff, seal, stage, after_commit."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        profile = cProfile.Profile()
        profile.runcall(desk.fire, ref, "clarify", actor=CLERK, note="which finish?")
    called = {
        name
        for filename, _, name in pstats.Stats(profile).stats  # type: ignore[attr-defined]
        if filename.endswith("command.py")
    }
    steps = {"run", "fire_in", "load", "authorise", "trigger", "derive_version", "field_diff"}
    steps |= {"seal", "notifications", "stage", "after_commit"}
    assert steps <= called


def test_imports_point_one_way() -> None:
    """reminders.py takes what it needs, not the Desk; demo.py does not import cli.py."""
    assert ".desk" not in _imports("reminders.py")
    assert ".cli" not in _imports("demo.py")
    for module in ("command.py", "delivery.py", "creation.py", "verbs.py"):
        # The Desk only for type checking: no import of desk.py at run time.
        tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
        runtime = [
            n
            for n in tree.body
            if isinstance(n, ast.ImportFrom) and n.module == "desk" and n.level == 1
        ]
        assert runtime == [], module


def test_the_memory_outbox_keeps_no_object_per_notification() -> None:
    """Entries are packed in one bytes blob per record: nothing for the collector to walk."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        refs = [receive(desk) for _ in range(5)]
        for ref in refs:
            desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        store = desk.store
        assert isinstance(store, MemoryStore)
        assert list(store._outbox) == refs
        assert all(type(blob) is bytes for blob in store._outbox.values())
        assert not gc.is_tracked(store._outbox)
        assert not any(isinstance(v, Notification) for v in gc.get_referents(store._outbox))
        # Read back, they are the same notifications, pending, in enqueue order.
        pending = desk.outbox()
        assert len(pending) == 10
        assert [e.notification.ref for e in pending] == refs + refs
        assert [e.notification.version for e in pending] == [1] * 5 + [2] * 5
        assert all(e.status == "pending" and e.attempts == 0 for e in pending)


def test_delivered_entries_read_back_from_their_rows() -> None:
    """A delivered entry keeps its status, attempts and delivery time in the row."""
    notifier = RecordingNotifier()
    with Desk.open("memory://", clock=FakeClock(), plugins=[notifier]) as desk:
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        assert notifier.sent
        with desk.store.transaction() as tx:
            entries = tx.entries(status="delivered")
        assert [e.notification for e in entries] == notifier.sent
        assert all(e.attempts == 1 and e.delivered_at is not None for e in entries)
        assert desk.outbox() == []
