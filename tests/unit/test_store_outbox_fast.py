"""The memory store's fast outbox paths against the slow ones (issue 15.2, round 4).

``enqueue`` stages a command's notifications at once when their keys share one
head ``ref:version:`` that the ref's marks lack (:meth:`_enqueue_new`), and a
commit of new notifications only goes straight to ``_append_new``; marks are
kept per key head (:func:`_mark`), one per command.  Every test here runs the
same script on a store whose fast paths are switched off and compares what
each answers and keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import MemoryStore, Notification
from reqmgmt.storage import memory
from reqmgmt.storage.base import OUTBOX_STATUSES, OutboxEntry
from reqmgmt.storage.memory import _head, _mark, _marks

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

_refs = st.sampled_from(["R", "S", "R:1", "a:b", "RS"])
_recipients = st.sampled_from(["role:sales", "department:eng", "x", ":", ""])


@st.composite
def _note(draw: Any) -> Notification:
    ref = draw(_refs)
    version = draw(st.integers(1, 3))
    to = draw(_recipients)
    key = draw(
        st.sampled_from(
            [
                f"{ref}:{version}:{to}",
                f"{ref}:{version}:{to}",
                f"{ref}:{version}",
                f"{ref}:d@{version}:s:{to}",
                f"other:{version}:{to}",
                f"{ref}{version}{to}",
            ]
        )
    )
    return Notification(
        key=key, ref=ref, record_kind="requirement", version=version, event="e",
        recipient=to, topic="requirement.e", text_zh=f"通知 {ref}", text_en=f"notice {ref}",
        created_at=T0,
    )  # fmt: skip


def scripts(notes: st.SearchStrategy[Notification]) -> st.SearchStrategy[list[Any]]:
    """A script: transactions, each some enqueue calls of ``notes`` (a list or a
    tuple), committed or not."""
    return st.lists(
        st.tuples(
            st.lists(st.tuples(st.lists(notes, max_size=5), st.booleans()), min_size=1, max_size=3),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    )


_scripts = scripts(_note())


class _Rollback(Exception):
    pass


def _run(store: MemoryStore, script: list[Any], slow: bool) -> list[Any]:
    """Run ``script``; everything enqueue answered, staged and the store kept after each step."""
    seen: list[Any] = []
    for calls, commit in script:
        try:
            with store.transaction() as tx:
                if slow:
                    tx._saved = True  # the commit's loop over the staged items
                for notes, as_tuple in calls:
                    seen.append(tx.enqueue(tuple(notes) if as_tuple else notes))
                    seen.append([(k, v) for k, v in tx._outbox.items()])
                if not commit:
                    raise _Rollback
        except _Rollback:
            pass
        with store.transaction() as tx:
            for status in OUTBOX_STATUSES:
                seen.append(tx.entries(status=status))
            for notes, _ in calls:
                seen.append([tx.outbox(n.key) for n in notes])
        seen.append(
            (
                dict(store._outbox),
                dict(store._outbox_keys),
                dict(store._odd_keys),
                store._colon_refs,
                store._enqueued,
            )
        )
    return seen


@settings(max_examples=300, deadline=None)
@given(script=_scripts)
def test_the_fast_outbox_paths_answer_and_keep_what_the_slow_ones_do(script: list[Any]) -> None:
    fast = _run(MemoryStore(), script, slow=False)
    with patch.object(memory._MemoryTransaction, "_enqueue_new", lambda self, notes: 0):
        slow = _run(MemoryStore(), script, slow=True)
    assert fast == slow


@settings(max_examples=300, deadline=None)
@given(script=_scripts)
def test_every_kept_key_is_found_and_never_enqueued_twice(script: list[Any]) -> None:
    """Marks are a filter only: whatever was kept, ``outbox`` and ``enqueue`` find it."""
    store = MemoryStore()
    for calls, _ in script:
        with store.transaction() as tx:
            for notes, _ in calls:
                tx.enqueue(notes)
    kept = {n.key for calls, _ in script for notes, _ in calls for n in notes}
    with store.transaction() as tx:
        for key in kept:
            entry = tx.outbox(key)
            assert isinstance(entry, OutboxEntry)
            assert entry.notification.key == key
            assert tx.enqueue([entry.notification]) == 0
        assert len(tx.entries(status="pending")) == len(kept)


@given(st.lists(st.text(alphabet="ab:", max_size=6), min_size=1, max_size=6))
def test_marks_are_the_marks_of_each_key_head_once(keys: list[str]) -> None:
    assert _marks(keys) == b"".join(dict.fromkeys(_mark(k) for k in keys))
    for key in keys:
        head = _head(key)
        assert key.startswith(head)
        assert head.count(":") == min(2, key.count(":"))
        assert _mark(key) == (hash(head) & 0xFFFF).to_bytes(2, "little")


def test_a_commands_keys_share_one_mark() -> None:
    keys = [f"REQ-1:6:{to}" for to in ("role:vp", "department:eng", "x")]
    assert _marks(keys) == _mark("REQ-1:6:")
    assert len(_marks(keys)) == 2


def _accept(to: str) -> Notification:
    return Notification(
        key=f"REQ-1:6:{to}", ref="REQ-1", record_kind="requirement", version=6,
        event="accept", recipient=to, topic="requirement.accept", text_zh="通知",
        text_en="notice", created_at=T0,
    )  # fmt: skip


def test_a_command_is_staged_without_a_loop_per_notification() -> None:
    """13 notifications: the fast path runs a fixed number of bytecodes (the loop ran ~25 each)."""
    from .test_memory_packing import _bytecodes

    store = MemoryStore()
    notes = [_accept(f"department:d{i}") for i in range(13)]
    with store.transaction() as tx:  # the ref has marks (of another version)
        tx.enqueue([attrs.evolve(notes[0], key="REQ-1:5:x")])
    few = _bytecodes(lambda: store.transaction().enqueue(notes[1:2]))
    many = _bytecodes(lambda: store.transaction().enqueue(notes[1:]))
    assert many == few, (few, many)
