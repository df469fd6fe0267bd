"""The memory store's six-item outbox segment (a command's new notifications).

:func:`memory._append_command` keeps a command's notifications as one segment of
:func:`memory._new_segment` (the keys are not kept: :meth:`memory._Outbox.rows`
makes each again as the head and its recipient).  These scripts enqueue, commit,
claim, save and retry with hostile keys and texts (keys that are no head plus
recipient, ``\\x00``, ``\\x01``, refs with a colon, text outside the BMP, lone
surrogates, shared fields that differ across a batch, empty batches, 1 to 13
notifications) and compare every public answer with two slower stores: one
without the six-item form (the seven-item and long forms, as before it) and one
whose commit never takes the command's fast path.  Blobs of one store mix all
three forms, since a save rewrites a record's segments in the older forms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, MemoryStore, Notification, delivery
from reqmgmt.errors import ReqMgmtError
from reqmgmt.storage import memory
from reqmgmt.storage.base import OUTBOX_STATUSES, OutboxEntry
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive
from .test_store_commit_fast import _accept

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
T8 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))  # packed by pickle

#: Strings either form keeps (a colon, the ref, text outside the BMP, a lone surrogate).
_PLAIN = ["a", "", ":", "R:1:", "𝄞", "a\ud800", "通知", "R", "d0", "d:2"]
#: Strings that send a batch to the long form, and refs holding them (a ref with a
#: colon, drawn with the odd keys, turns the fast enqueue off for the whole store).
_HOSTILE = ["\x00", "\x01", "x\x01y", "\x00R"]
_PLAIN_REFS = ["R", "𝄞", "", "R\ud800"]
_HOSTILE_REFS = ["\x01R", "R\x00", "R\x01"]
_details = st.sampled_from(
    [(), (("k", "\x00"),), (("𝄞", "\x01"),), (("at", T0),), (("k", "v"), ("k", "v"))]
)


#: A shared field and a value for it that differs from every drawn one.
_OTHERS = [
    ("record_kind", "kind!"),
    ("version", 7),
    ("event", "event!"),
    ("topic", "topic!"),
    ("text_zh", "通知!"),
    ("text_en", "notice!"),
    ("created_at", T0 + timedelta(seconds=1)),
    ("note", "note!"),
    ("details", (("other", "!"),)),
]


def _copy(value: Any) -> Any:
    """An equal value that is (for most strings) another object."""
    return "".join(list(value)) if value.__class__ is str else value


@st.composite
def _command(draw: Any) -> list[Notification]:
    """A batch as a command makes it (shared fields the same objects), or one
    whose shared fields are copies, or differ for one notification."""
    # Mostly batches the six-item form holds (a hostile string anywhere sends the
    # batch to the older forms; an odd key or a colon ref turns the fast enqueue off).
    hostile = draw(st.integers(0, 3)) == 0  # texts
    odd = draw(st.integers(0, 7)) == 0  # refs and keys
    texts = st.sampled_from(_PLAIN + _HOSTILE if hostile else _PLAIN)
    refs = _PLAIN_REFS + _HOSTILE_REFS if hostile else _PLAIN_REFS
    ref = draw(st.sampled_from([*refs, "R:x"] if odd else refs))
    version = draw(st.sampled_from([1, 2, 13]))
    kind, event, topic, zh, en = (draw(texts) for _ in range(5))
    created = draw(st.sampled_from([T0, T0, T8]))
    note = draw(st.sampled_from([None, "why", "\x00", "𝄞"]))
    details = draw(_details)
    recipients = draw(st.lists(texts, max_size=13, unique=not odd))
    odd_keys = ["{r}:{v}:{t}!", "o:{v}:{t}", "{r}{v}{t}"] if odd else []
    forms = draw(
        st.lists(
            st.sampled_from(["{r}:{v}:{t}", *odd_keys]),
            min_size=len(recipients),
            max_size=len(recipients),
        )
    )
    shape = draw(st.sampled_from(["same"] * 3 + ["copies", "one differs", "one differs"]))
    differs = draw(st.integers(0, max(len(recipients) - 1, 0)))
    field, other = draw(st.sampled_from(_OTHERS))
    notes = []
    for i, (to, form) in enumerate(zip(recipients, forms, strict=True)):
        fields: dict[str, Any] = {
            "ref": ref, "record_kind": kind, "version": version, "event": event,
            "topic": topic, "text_zh": zh, "text_en": en, "created_at": created,
            "note": note, "details": details,
        }  # fmt: skip
        if shape == "copies":
            fields = {name: _copy(value) for name, value in fields.items()}
        elif shape == "one differs" and i == differs:
            fields[field] = other
        key = form.format(r=ref, v=version, t=to)
        notes.append(Notification(key=key, recipient=to, **fields))
    return notes


_ops = st.one_of(
    st.tuples(st.just("enqueue"), st.lists(_command(), max_size=2), st.booleans(), st.booleans()),
    st.tuples(st.just("claim"), st.sampled_from([None, 1, 5]), st.sampled_from([None, "R", "𝄞"])),
    st.tuples(
        st.just("save"),
        st.integers(0, 40),
        st.sampled_from(["pending", "delivered", "dead"]),
        st.sampled_from(_PLAIN + _HOSTILE),
        st.sampled_from([None, T0, T8]),
    ),
    st.tuples(st.just("retry"), st.sampled_from([None, "first", "missing"])),
)


class _Rollback(Exception):
    pass


def _answer(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except ReqMgmtError as exc:
        return ("error", type(exc), str(exc))


def _run(script: list[Any]) -> list[Any]:
    """Run ``script`` on a new store; every public answer, in order."""
    store = MemoryStore()
    desk: Any = SimpleNamespace(store=store)  # what delivery's retry and dead letters read
    keys: list[str] = []
    seen: list[Any] = []
    for op in script:
        if op[0] == "enqueue":
            _, commands, as_tuple, commit = op
            try:
                with store.transaction() as tx:
                    for notes in commands:
                        keys.extend(n.key for n in notes)
                        seen.append(tx.enqueue(tuple(notes) if as_tuple else notes))
                    if not commit:
                        raise _Rollback
            except _Rollback:
                pass
        elif op[0] == "claim":
            _, limit, ref = op
            with store.transaction() as tx:
                seen.append(tx.claim(now=T0, lease_until=T0 + timedelta(1), limit=limit, ref=ref))
        elif op[0] == "save":
            _, pick, status, error, next_at = op
            with store.transaction() as tx:
                every = [e for s in OUTBOX_STATUSES for e in tx.entries(status=s)]
                if every:
                    entry: OutboxEntry = every[pick % len(every)]
                    tx.save_outbox(
                        OutboxEntry(
                            notification=entry.notification, status=status,
                            attempts=entry.attempts + 1, last_error=error,
                            next_attempt_at=next_at, delivered_at=T0,
                        )
                    )  # fmt: skip
        else:
            _, which = op
            dead = _answer(lambda: delivery.dead_letters(desk))
            seen.append(dead)
            chosen: list[str] | None = None
            if which == "first":
                chosen = [e.notification.key for e in dead[1][:1]] if dead[0] == "ok" else []
            elif which == "missing":
                chosen = ["R:1:nobody"]
            seen.append(_answer(lambda picked=chosen: delivery.retry(desk, picked)))
        with store.transaction() as tx:
            seen.append([tx.entries(status=s) for s in OUTBOX_STATUSES])
            seen.append([tx.entries(status=s, limit=2) for s in OUTBOX_STATUSES])
            seen.append(tx.pending(now=T0 + timedelta(2)))
            seen.append(tx.pending(now=T0 + timedelta(2), ref="R", limit=3))
            seen.append([tx.outbox(k) for k in keys])
    return seen


def _no_six(*args: Any) -> None:
    return None


@settings(max_examples=300, deadline=None)
@given(script=st.lists(_ops, min_size=1, max_size=10))
def test_the_six_item_segment_answers_what_the_older_forms_and_slow_commit_do(
    script: list[Any],
) -> None:
    fast = _run(script)
    with patch.object(memory, "_new_segment", _no_six):  # the forms before it
        before = _run(script)
    with patch.object(memory, "_append_command", lambda *args: False):  # _append_new only
        slow = _run(script)
    assert fast == before
    assert fast == slow


@settings(max_examples=500, deadline=None)
@given(commands=st.lists(st.tuples(_command(), st.booleans()), min_size=1, max_size=3))
def test_commands_answer_what_the_older_forms_do(commands: list[Any]) -> None:
    """The script test's commands alone, more of them: each committed batch."""
    script = [("enqueue", [notes], as_tuple, True) for notes, as_tuple in commands]
    fast = _run(script)
    with patch.object(memory, "_new_segment", _no_six):
        assert _run(script) == fast
    with patch.object(memory, "_append_command", lambda *args: False):
        assert _run(script) == fast


def _segments(blob: bytes) -> list[tuple[Any, ...]]:
    out, pos = [], 0
    while pos < len(blob):
        size = int.from_bytes(blob[pos : pos + 4], "little")
        out.append(memory._unpack(blob[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return out


def test_a_commands_notifications_take_the_fast_commit_and_the_six_item_form() -> None:
    taken: list[bool] = []
    real = memory._append_command

    def spy(*args: Any) -> bool:
        taken.append(real(*args))
        return taken[-1]

    store = MemoryStore()
    # non-BMP text in the shared fields
    notes = [
        attrs.evolve(_accept("REQ-1", f"department:d{i}"), text_zh="通知 𝄞") for i in range(13)
    ]
    with patch.object(memory, "_append_command", spy), store.transaction() as tx:
        assert tx.enqueue(notes) == 13
    assert taken == [True]
    (segment,) = _segments(store._outbox["REQ-1"])
    assert len(segment) == 6
    with store.transaction() as tx:
        assert [e.notification for e in tx.entries(status="pending")] == notes
        assert tx.outbox("REQ-1:6:department:d12") == OutboxEntry(notification=notes[12])


def test_a_desks_commands_keep_their_notifications_in_the_six_item_form() -> None:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        ref = receive(desk)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        forms = [len(s) for blob in store._outbox.values() for s in _segments(blob)]
        assert forms
        assert 6 in forms, forms


def test_a_record_mixing_the_three_forms_answers_as_before() -> None:
    """One record's blob: a saved command (seven items), a long-form batch (a
    text with ``\\x01``) and a new command (six items), read back together."""

    def command(version: int, en: str, recipients: list[str]) -> list[Notification]:
        return [
            Notification(
                key=f"R:{version}:{to}",
                ref="R",
                record_kind="requirement",
                version=version,
                event="e",
                recipient=to,
                topic="t",
                text_zh="通知 𝄞",
                text_en=en,
                created_at=T0,
            )
            for to in recipients
        ]

    script: list[Any] = [
        ("enqueue", [command(1, "one", ["a", "b:c"])], False, True),
        ("save", 1, "dead", "boom\x00", T8),
        ("enqueue", [command(2, "two\x01", ["a"])], True, True),
        ("enqueue", [command(3, "three R", ["a", "𝄞", ""])], False, True),
        ("claim", 2, "R"),
        ("retry", "first"),
    ]
    seen_forms: list[list[int]] = []
    real = memory._Outbox.rows

    def rows(self: Any, blob: bytes) -> Any:
        seen_forms.append([len(s) for s in _segments(blob)])
        return real(self, blob)

    with patch.object(memory._Outbox, "rows", rows):
        fast = _run(script)
    assert [7, 3, 6] in seen_forms, seen_forms
    with patch.object(memory, "_new_segment", _no_six):
        assert _run(script) == fast
