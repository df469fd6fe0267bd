"""A command's notifications on the memory store, made only when read (round eight).

:func:`reqmgmt.command.write` asks :func:`~reqmgmt.command.notifications` for a
:class:`~reqmgmt.command.LazyNotifications` when its transaction is the memory
store's: what the notifications are made of, the tuple made the first time anyone
reads it.  The memory transaction stages the command's ``notices.made`` itself
(``_enqueue_made``) and makes the key -> notification dict only when something reads
what it staged (``outbox``, ``pending``, ``save_outbox``, a second ``enqueue``, a
commit that must look again): a command that only stages and commits makes no
notification at all.  These tests compare every public answer and every byte the
store keeps with the tuple path and with a store that never sees ``notices.made``,
on hostile values and with every kind of read, count the notifications made, and
run the demo (all three lifecycles, delivery on) with and without the lazy path.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reqmgmt.demo
from reqmgmt import Desk, MemoryStore, command, notices
from reqmgmt.command import LazyNotifications, _make_notifications
from reqmgmt.demo import run_demo
from reqmgmt.serialize import unstructure
from reqmgmt.storage import memory
from reqmgmt.storage.base import OUTBOX_STATUSES, OutboxEntry
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive, sign_all, to_evaluating
from .test_outbox7 import T0, T8, _command, _kept, _number, _plain_batch, _Plus, _Sub

#: The demo's clock (as the seeded run's).
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class _NotMemory:
    """Stands for the memory transaction's class in :mod:`reqmgmt.command`: no
    transaction is of it, so ``write`` asks for the tuple (the path before round eight)."""


@pytest.fixture(autouse=True)
def _made_cleared() -> Iterator[None]:
    yield
    notices.made = ((),)


class _Counted:
    """Counts the notifications :data:`reqmgmt.command._make_notifications` makes."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, *args: Any) -> Any:
        notes = _make_notifications(*args)
        self.made += len(notes)
        return notes


# --- the sequence itself ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(args=_command(), index=st.integers(-15, 15), start=st.none() | st.integers(-15, 15))
def test_lazy_notifications_answer_as_the_tuple_they_stand_for(
    args: tuple[Any, ...], index: int, start: int | None
) -> None:
    """Length (without making them), items, slices, iteration, membership, equality
    both ways, hash and repr: each as the tuple's (hostile values: str subclasses, a
    recipient whose + is its own, \\x00 and \\x01, odd types)."""
    counted = _Counted()
    with patch.object(command, "_make_notifications", counted):
        lazy = LazyNotifications(args)
        assert len(lazy) == len(args[0])
        assert bool(lazy)
        assert counted.made == 0  # length and truth read none
        made = _make_notifications(*args)
        assert len(lazy) == len(made)
        if -len(made) <= index < len(made):
            assert lazy[index] == made[index]
        else:
            with pytest.raises(IndexError):
                lazy[index]
        assert lazy[start:index] == made[start:index]
        assert type(lazy[start:index]) is tuple
        assert list(lazy) == list(made)
        assert list(reversed(lazy)) == list(reversed(made))
        assert made[0] in lazy
        assert lazy.index(made[-1]) == made.index(made[-1])
        assert lazy.count(made[0]) == made.count(made[0])
        assert lazy == made
        assert made == lazy
        assert lazy != made[:-1]
        assert lazy != list(made)  # as the tuple: no list is equal to it
        assert hash(lazy) == hash(made)
        assert repr(lazy) == repr(made)
        # Made once, then every reader gets the same objects.
        assert counted.made == len(made)
        assert lazy.made() is lazy.made()
        assert all(a is b for a, b in zip(lazy, lazy.made(), strict=True))
        assert counted.made == len(made)
        assert lazy == LazyNotifications(args)


def test_notifications_lazy_leaves_what_they_are_made_of_and_makes_the_same() -> None:
    """``lazy=True`` makes nothing; notices.made holds the sequence and the same values
    as the tuple path's; read, it is that tuple's equal, field by field."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_evaluating(desk)
        record = desk.get(ref)
        engine = desk.engine("requirement")
        t = engine.transition("evaluating", "accept")
        assert t is not None
        new = attrs.evolve(record, state="accepted", version=record.version + 1)
        now = desk.now()
        data = {"delivery_plan": "2 lots \x01 R 𝄞 :", "n": 5}
        counted = _Counted()
        with patch.object(command, "_make_notifications", counted):
            lazy = command.notifications(desk, engine, t, record, new, now, "why", data, lazy=True)
            assert counted.made == 0
            assert type(lazy) is LazyNotifications
            lazy_made = notices.made
            plain = command.notifications(desk, engine, t, record, new, now, "why", data)
            plain_made = notices.made
        assert type(plain) is tuple
        assert lazy_made[0] is lazy
        assert plain_made[0] is plain
        assert lazy_made[1:] == plain_made[1:]
        assert len(lazy) == len(plain) == 13
        assert lazy == plain
        for a, b in zip(lazy, plain, strict=True):
            assert a.key == b.key == f"{ref}:{new.version}:{a.recipient}"


# --- the memory transaction against the tuple path and the slow path -----------------------------


def _fresh(args: tuple[Any, ...], n: int) -> tuple[Any, ...]:
    """``args`` with a text of its own (a note no other command had): a text the
    store's table has not numbered, which the commit packs."""
    zh = args[7]
    return (*args[:7], f"{zh} {n}" if type(zh) is str else zh, *args[8:])


@st.composite
def _plain_command(draw: Any) -> tuple[Any, ...]:
    """What a command makes its notifications of, the values a command has (the lazy
    path's case: distinct recipients of str in a tuple, the prefix ``ref:version:``)."""
    ref = draw(st.sampled_from(["R", "S", "𝄞", "R-1"]))
    version = draw(st.integers(1, 3))
    recipients = draw(
        st.lists(
            st.sampled_from(["role:sales", "customer", "department:d", "R", "", "通知 R:1:"]),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    texts = st.sampled_from(["requirement", "accept", "通知 R 𝄞", "notice R:1:", ""])
    kind, event, topic, zh, en = (draw(texts) for _ in range(5))
    created = draw(st.sampled_from([T0, T8]))
    note = draw(st.sampled_from([None, "why", "通" * 600]))
    details = draw(st.sampled_from([(), (("k", "v"),), (("k", T0),)]))
    return (tuple(recipients), f"{ref}:{version}:", ref, kind, version, event, topic, zh, en,
            created, note, details)  # fmt: skip


#: A command's values: hostile (test_outbox7's) or plain, some with a text of their own.
_commands = (
    _command()
    | _plain_command()
    | st.builds(_fresh, _plain_command() | _command(), st.integers(0, 10**9))
)
#: What is read between a command's enqueue and its transaction's end.
_READS = ["outbox", "outbox_other", "pending", "pending_ref", "save", "again", "again_tuple"]
#: (Mostly none: the commit then keeps what was staged unread.)
_reads = st.just([]) | st.just([]) | st.lists(st.sampled_from(_READS), min_size=1, max_size=2)
_ops = st.one_of(
    st.tuples(
        st.just("enqueue"),
        st.lists(st.tuples(_commands, _reads), min_size=1, max_size=2),
        st.sampled_from(["commit", "commit", "commit", "rollback", "between"]),
        st.integers(0, 3).map(bool),
    ),
    st.tuples(st.just("claim"), st.sampled_from([None, 1, 5])),
)


class _Rollback(Exception):
    pass


def _read(tx: Any, what: str, notes: Any, args: tuple[Any, ...]) -> Any:
    """One read of what ``tx`` staged (or the store keeps), as a host's code might."""
    later = T0 + timedelta(2)
    if what == "outbox":
        return tx.outbox(_make_notifications(*args)[0].key)
    if what == "outbox_other":
        return tx.outbox("nobody:1:x")
    if what == "pending":
        return tx.pending(now=later)
    if what == "pending_ref":
        return tx.pending(now=later, ref=args[2] if type(args[2]) is str else "R", limit=3)
    if what == "save":
        tx.save_outbox(OutboxEntry(notification=_make_notifications(*args)[-1], status="dead"))
        return None
    if what == "again":
        return tx.enqueue(notes)
    return tx.enqueue(_make_notifications(*args))


def _run(script: list[Any], mode: str) -> tuple[list[Any], int]:
    """Run ``script`` on a new store, each command's notifications handed as a
    ``lazy`` sequence or a ``tuple`` left in notices.made, or (``slow``) a tuple the
    store is not told of; every public answer, what the store keeps after each step,
    and how many notifications the lazy sequences made."""
    store = MemoryStore()
    keys: list[str] = []
    seen: list[Any] = []
    counted = _Counted()
    with patch.object(command, "_make_notifications", counted):
        for op in script:
            if op[0] == "enqueue":
                _, commands, end, warm = op
                try:
                    with store.transaction() as tx:
                        for args, reads in commands:
                            if warm:
                                _number(store, args)
                            keys.extend(n.key for n in _make_notifications(*args))
                            notes: Any = (
                                LazyNotifications(args)
                                if mode == "lazy"
                                else _make_notifications(*args)
                            )
                            notices.made = ((),) if mode == "slow" else (notes, *args)
                            seen.append(tx.enqueue(notes))
                            seen.extend(_read(tx, what, notes, args) for what in reads)
                        if end == "rollback":
                            raise _Rollback
                        if end == "between":  # another transaction keeps entries meanwhile
                            with store.transaction() as other:
                                other.enqueue(list(_plain_batch("B")))
                except _Rollback:
                    pass
            else:
                with store.transaction() as tx:
                    seen.append(tx.claim(now=T0, lease_until=T0 + timedelta(1), limit=op[1]))
            with store.transaction() as tx:
                seen.append([tx.entries(status=s) for s in OUTBOX_STATUSES])
                seen.append(tx.pending(now=T0 + timedelta(2)))
                seen.append(tx.pending(now=T0 + timedelta(2), ref="R", limit=3))
                seen.append([tx.outbox(k) for k in keys])
            seen.append(_kept(store))
    return seen, counted.made


@settings(max_examples=300, deadline=None)
@given(script=st.lists(_ops, min_size=1, max_size=5))
def test_lazy_notifications_answer_and_keep_what_tuples_and_the_slow_path_do(
    script: list[Any],
) -> None:
    lazy, _ = _run(script, "lazy")
    assert lazy == _run(script, "tuple")[0]
    assert lazy == _run(script, "slow")[0]


@settings(max_examples=100, deadline=None)
@given(script=st.lists(_ops, min_size=1, max_size=4))
def test_with_a_full_string_table_too(script: list[Any]) -> None:
    with patch.object(memory, "_MAX_STRINGS", 2):
        lazy, _ = _run(script, "lazy")
        assert lazy == _run(script, "tuple")[0] == _run(script, "slow")[0]


def _accept(ref: str, count: int = 13) -> tuple[Any, ...]:
    """What an accept of ``ref`` (version 6) makes its notifications of (plain values)."""
    recipients = tuple(f"department:d{i}" for i in range(count))
    return (recipients, f"{ref}:6:", ref, "requirement", 6, "accept", "requirement.accept",
            f"通知 {ref} 𝄞", "notice", T0, None, (("k", "v"),))  # fmt: skip


@pytest.mark.parametrize("warm", [True, False])
def test_a_command_that_only_stages_and_commits_makes_no_notification(warm: bool) -> None:
    """Plain values, nothing read before the commit: none made, the same bytes kept
    (packed at enqueue when the text is numbered, at the commit when not)."""
    script = [("enqueue", [(_accept(ref), [])], "commit", warm) for ref in ("R", "S", "T")]
    lazy, made = _run(script, "lazy")
    # (_run's own reads after each step read the store, never the sequences)
    assert made == 0
    assert lazy == _run(script, "tuple")[0] == _run(script, "slow")[0]


@pytest.mark.parametrize("what", [*_READS, "rollback", "between"])
def test_each_read_makes_them_once_and_answers_as_before(what: str) -> None:
    """Each read before the commit makes the command's 13 notifications, once
    (``outbox_other`` too: it looks in what was staged); a rollback makes none."""
    reads = [] if what in ("rollback", "between") else [what, what]
    end = what if what in ("rollback", "between") else "commit"
    script = [
        ("enqueue", [(_accept("W"), [])], "commit", False),
        ("enqueue", [(_accept("R"), reads)], end, True),
        ("claim", 5),
    ]
    lazy, made = _run(script, "lazy")
    assert made == (0 if what == "rollback" else 13)
    assert lazy == _run(script, "tuple")[0] == _run(script, "slow")[0]


@pytest.mark.parametrize(
    "recipients",
    [
        ["department:d0", "department:d1"],  # a list (notify_from's): keys read off them
        ("department:d0", "department:d0"),  # twice: the loop's way
        ("department:d0", _Sub("sub")),
        ("department:d0", _Plus("plus")),
        ("a\x00", "b"),
        ("a", "b\x01c"),
    ],
)
def test_recipients_the_staging_cannot_trust_are_read_as_before(recipients: Any) -> None:
    """Where the keys are not plainly the prefix and distinct recipients of str itself,
    the notifications are made and read (as the tuple path reads them)."""
    args = (recipients, *_accept("R")[1:])
    script = [("enqueue", [(args, [])], "commit", True), ("claim", None)]
    lazy, made = _run(script, "lazy")
    assert made == len(recipients)
    assert lazy == _run(script, "tuple")[0] == _run(script, "slow")[0]


def test_staging_keeps_what_they_are_made_of_until_read() -> None:
    """The transaction holds notices.made until a read makes the dict (private layout,
    checked here so a change to it is seen)."""
    store = MemoryStore()
    args = _accept("R")
    with store.transaction() as tx:
        lazy = LazyNotifications(args)
        notices.made = made = (lazy, *args)
        assert tx.enqueue(lazy) == 13
        assert tx._outbox is made
        assert lazy._made is None
        entry = tx.outbox("R:6:department:d3")
        assert entry is not None
        assert entry.notification.recipient == "department:d3"
        assert type(tx._outbox) is dict
        assert list(tx._outbox) == [n.key for n in lazy]
        assert all(a is b for a, b in zip(tx._outbox.values(), lazy, strict=True))


# --- a Desk's commands -----------------------------------------------------------------------


def _desk_run(lazy: bool) -> tuple[Any, ...]:
    """A few commands on a memory Desk (notes, data, 13 recipients, a two-record
    transaction); what fire_in answered, the outbox and every byte it keeps."""
    with (
        patch.object(
            command, "_MemoryTransaction", memory._MemoryTransaction if lazy else _NotMemory
        ),
        Desk.open("memory://", clock=FakeClock()) as desk,
    ):
        store = desk.store
        assert isinstance(store, MemoryStore)
        first = to_evaluating(desk)
        sign_all(desk, first)
        asked, started = receive(desk), receive(desk)
        counted = _Counted()
        with patch.object(command, "_make_notifications", counted):
            desk.fire(first, "accept", actor=CLERK, delivery_plan="lot 1\tR 𝄞 :")
            desk.fire(asked, "clarify", actor=CLERK, note="which finish? 通知 R:1:")
            made_by_fire = counted.made
            with store.transaction() as tx:
                staged = command.fire_in(desk, tx, started, "start_evaluation", CLERK, None, {})
                assert type(staged[2]) is (LazyNotifications if lazy else tuple)
                inside = tx.pending(now=desk.now())
        answers = [_store_entries(store), list(staged[2]), inside]
        return (answers, _kept(store), made_by_fire)


def _store_entries(store: MemoryStore) -> list[Any]:
    with store.transaction() as tx:
        return [tx.entries(status=s) for s in OUTBOX_STATUSES]


def test_a_desks_commands_answer_and_keep_what_the_tuple_path_does() -> None:
    lazy = _desk_run(True)
    plain = _desk_run(False)
    assert lazy[:2] == plain[:2]
    assert lazy[2] == 0  # the commands made none: nothing read them
    assert plain[2] == 14  # the accept's 13 and the clarify's one


def _demo_dump(lazy: bool) -> tuple[list[bytes], tuple[Any, ...]]:
    """The demo run on memory:// (delivery on, through its notifier): every record,
    event and outbox entry, canonically, and the bytes the store keeps."""
    opened: list[Desk] = []
    real_open = Desk.open

    def keep(*args: Any, **kw: Any) -> Desk:
        desk = real_open(*args, **kw)
        opened.append(desk)
        return desk

    with (
        patch.object(
            command, "_MemoryTransaction", memory._MemoryTransaction if lazy else _NotMemory
        ),
        patch.object(reqmgmt.demo.Desk, "open", keep),
    ):
        assert run_demo("memory://", io.StringIO(), start=START) == 0
    desk = opened[0]
    store = desk.store
    assert isinstance(store, MemoryStore)
    lines = []
    for record in sorted(desk.query(), key=lambda r: r.ref):
        lines.append(orjson.dumps(unstructure(record), option=orjson.OPT_SORT_KEYS))
        for event in desk.history(record.ref):
            lines.append(orjson.dumps(unstructure(event), option=orjson.OPT_SORT_KEYS))
    for entries in _store_entries(store):
        lines.extend(orjson.dumps(unstructure(e), option=orjson.OPT_SORT_KEYS) for e in entries)
    return lines, _kept(store)


def test_the_demo_on_memory_stores_what_the_tuple_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo writes its notification log here
    lazy = _demo_dump(True)
    assert len(lazy[0]) > 150
    assert lazy == _demo_dump(False)


def _receive_run(lazy: bool) -> tuple[Any, ...]:
    """Requirements received (creating commands that tell people) on a memory Desk, and
    a contract drafted: the outbox, the bytes kept and the notifications made."""
    with (
        patch.object(
            command, "_MemoryTransaction", memory._MemoryTransaction if lazy else _NotMemory
        ),
        Desk.open("memory://", clock=FakeClock()) as desk,
    ):
        store = desk.store
        assert isinstance(store, MemoryStore)
        counted = _Counted()
        with patch.object(command, "_make_notifications", counted):
            refs = [receive(desk) for _ in range(3)]
        made = counted.made
        return (_store_entries(store), _kept(store), refs, made)


def test_a_creation_on_memory_makes_its_notifications_only_when_read() -> None:
    """creation.create_in asks command.makes_lazily as write does: a receive written in
    its own transaction on the memory store makes none, and keeps what the tuple kept."""
    lazy = _receive_run(True)
    plain = _receive_run(False)
    assert lazy[:3] == plain[:3]
    assert plain[3] > 0  # a requirement received tells its reviewers
    assert lazy[3] == 0
