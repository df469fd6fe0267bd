"""The memory store's commit of a command (issue 15.2, round 5) against the slow paths.

``_enqueue_new`` checks a command's keys share one head with two counts over
the keys joined by ``\\x01`` (keys holding it go the loop's way) and hands the
head's mark to the commit, which then keeps it without looking at the keys
again.  The scripts here hold keys with ``\\x01`` and heads that are prefixes
of one another; the fast store must answer and keep what the slow one does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import ConflictError, Desk, MemoryStore, Notification
from reqmgmt.audit import canonical
from reqmgmt.errors import StoreUnavailable
from reqmgmt.storage import memory
from reqmgmt.storage.memory import _pack_trail
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive, sign_all, to_evaluating
from .test_memory_packing import _bytecodes
from .test_store_outbox_fast import _run, scripts

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@st.composite
def _note(draw: Any) -> Notification:
    ref = draw(st.sampled_from(["R", "R1", "S"]))
    version = draw(st.sampled_from(["1", "11", "1\x01"]))
    to = draw(st.sampled_from(["a", "\x01", "R:1:", "x\x01R:1:", ""]))
    key = draw(
        st.sampled_from(
            [
                f"{ref}:{version}:{to}",
                f"{ref}:{version}:\x01{ref}:{version}:",
                f"\x01{ref}:{version}:",
            ]
        )
    )
    return Notification(
        key=key, ref=ref, record_kind="requirement", version=1, event="e",
        recipient=to, topic="requirement.e", text_zh=f"通知 {ref}", text_en=f"notice {ref}",
        created_at=T0,
    )  # fmt: skip


_scripts = scripts(_note())


@settings(max_examples=300, deadline=None)
@given(script=_scripts)
def test_keys_with_the_separator_answer_and_keep_what_the_slow_paths_do(
    script: list[Any],
) -> None:
    fast = _run(MemoryStore(), script, slow=False)
    with patch.object(memory._MemoryTransaction, "_enqueue_new", lambda self, notes: 0):
        slow = _run(MemoryStore(), script, slow=True)
    assert fast == slow


def _accept(ref: str, to: str) -> Notification:
    return Notification(
        key=f"{ref}:6:{to}", ref=ref, record_kind="requirement", version=6,
        event="accept", recipient=to, topic="requirement.accept", text_zh="通知",
        text_en="notice", created_at=T0,
    )  # fmt: skip


def _batch(ref: str, count: int) -> list[Notification]:
    """A command's notifications: one ``ref`` object, so their shared fields are the same."""
    return [_accept(ref, f"department:d{i}") for i in range(count)]


def test_a_commands_keys_are_looked_at_once() -> None:
    """Staging 13 notifications runs as many bytecodes as staging one (no loop per
    key: no key is looked up in the store).  Keeping them costs one small constant
    per notification, the same for each (the fast commit's one loop, reading each
    one's fields; no lookup per key): a lookup or a segment per key would cost
    several times that."""

    def command(notes: list[Notification]) -> None:
        with store.transaction() as tx:
            tx.enqueue(notes)

    def staging(notes: list[Notification]) -> int:
        with store.transaction() as tx:
            return _bytecodes(lambda: tx.enqueue(notes))

    store = MemoryStore()
    command([_accept("REQ-0", "a"), _accept("REQ-0", "b")])  # the string table and code warm
    assert staging(_batch("S-1", 1)) == staging(_batch("S-13", 13))
    for n in (1, 2, 13):  # each batch's strings numbered in the table already
        command(_batch(f"W-{n}", n))
    batches = [_batch(f"C-{n}", n) for n in (1, 2, 13)]
    one, two, thirteen = (_bytecodes(lambda n=notes: command(n)) for notes in batches)
    per = two - one
    assert thirteen - one == 12 * per, (one, two, thirteen)
    # 60 on CPython 3.11: the loop's ten identity checks and the recipient's append.
    assert per <= 60, per


def test_the_commit_keeps_the_mark_enqueue_found() -> None:
    store = MemoryStore()
    with (
        store.transaction() as tx,
        patch.object(memory, "_head", side_effect=AssertionError("looked again")),
    ):
        tx.enqueue([_accept("REQ-1", "a"), _accept("REQ-1", "b")])
    assert store._outbox_keys["REQ-1"] == memory._head_mark("REQ-1:6:")
    with store.transaction() as tx:
        assert [e.notification.key for e in tx.entries(status="pending")] == [
            "REQ-1:6:a",
            "REQ-1:6:b",
        ]


def test_get_and_update_read_hot_records_without_a_call_and_cold_ones_as_before() -> None:
    """``get`` and ``update`` look a hot record up themselves (no ``_record`` call);
    a packed one is unpacked as before, and a stale version is refused either way."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        cold_ref, hot_ref = receive(desk), receive(desk)
        store._hot = 1
        receive(desk)  # the first two are packed now
        store._hot = 3
        desk.fire(hot_ref, "start_evaluation", actor=CLERK)  # hot again
        hot, cold = store._record(hot_ref), store._record(cold_ref)
        assert hot is not None
        assert cold is not None
        assert cold_ref in store._cold
        assert hot_ref in store._records
        with (
            patch.object(MemoryStore, "_record", side_effect=AssertionError("called")),
            store.transaction() as tx,
        ):
            assert tx.get(hot_ref) is hot
            tx.update(hot, expected_version=hot.version)
            assert tx.get(hot_ref) is hot
        calls: list[str] = []
        slow = MemoryStore._record

        def counted(self: MemoryStore, ref: str) -> Any:
            calls.append(ref)
            return slow(self, ref)

        with patch.object(MemoryStore, "_record", counted):
            with store.transaction() as tx:
                assert tx.get(cold_ref) == cold
                tx.update(cold, expected_version=cold.version)
                assert tx.get(cold_ref) is cold  # staged
            with pytest.raises(ConflictError), store.transaction() as tx:
                tx.update(cold, expected_version=cold.version + 1)
            with pytest.raises(ConflictError), store.transaction() as tx:
                tx.update(hot, expected_version=hot.version + 1)
            with pytest.raises(ConflictError), store.transaction() as tx:
                tx.update(attrs.evolve(cold, ref="REQ-none"), expected_version=1)
        assert calls == [cold_ref, cold_ref, "REQ-none"]


def test_a_commands_event_is_appended_as_the_trail_packs_it() -> None:
    """The commit's one-event append (joined to the trail in one copy) keeps the bytes
    _pack_trail makes of the same events, and refuses a hash too long as it did."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        ref = to_evaluating(desk)
        sign_all(desk, ref)
        with store.transaction() as tx:
            events = list(tx.audit(ref))
        assert len(events) == 5
        assert store._audit[ref] == _pack_trail((canonical(e), e.hash) for e in events)
        long = attrs.evolve(events[-1], hash="x" * 0x10000)
        with pytest.raises(StoreUnavailable), store.transaction() as tx:
            tx.append_audit(long)
        assert store._audit[ref] == _pack_trail((canonical(e), e.hash) for e in events)
