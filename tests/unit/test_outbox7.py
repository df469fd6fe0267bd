"""The memory store's enqueue of the notifications a command made (round seven).

:func:`reqmgmt.command.notifications` leaves what it made the notifications of in
:data:`reqmgmt.notices.made`; ``enqueue``, handed that very tuple, takes the values
from there (:meth:`memory._MemoryTransaction._enqueue_made`), packs the command's
segment at once and the commit appends it without reading the notifications
again.  These scripts hand the store hostile values (refs, prefixes, recipients
and texts with ``\\x00``, ``\\x01`` and colons, str subclasses, one whose ``+``
makes keys that are not the prefix and the recipient, texts too long to number,
values marshal refuses, a full string table) and compare every public answer and
every byte the store keeps with a store that never sees ``notices.made``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, MemoryStore, Notification, notices
from reqmgmt.command import _make_notifications
from reqmgmt.storage import memory
from reqmgmt.storage.base import OUTBOX_STATUSES, OutboxEntry
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, receive, sign_all, to_evaluating
from .test_memory_packing import _bytecodes

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
T8 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))  # pickled


class _Sub(str):
    """A str subclass that behaves as a str (join takes it, marshal refuses it)."""


class _Plus(str):
    """A recipient whose ``prefix + recipient`` is not the two joined."""

    def __radd__(self, other: str) -> str:
        return f"{other}+{str.__str__(self)}"


class _Faker(_Plus):
    """A :class:`_Plus` that claims to be str itself (``__class__``): only ``type()``
    tells it apart.  Tried one value at a time (_ALONE): pickling refuses it, on
    either path, when it lands in a long-form segment, which a random script finds."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return str


_TEXTS = [
    "a",
    "",
    ":",
    "R:1:",
    "𝄞",
    "a\ud800",
    "通知",
    "R",
    "d:2",
    "x" * 1100,
    "通" * 40_000,
    _Sub("s"),
    5,
    "\x00",
    "\x01",
    "x\x01y",
    "\x00R",
    "R\x01",
]
_texts = st.sampled_from(_TEXTS)
_plain = st.sampled_from(["a", "通知 R", "R:1:", "𝄞", "", "department:d"])
_refs = st.sampled_from(["R", "R", "", "𝄞", "R\ud800", "R:x", "\x01R", "R\x00", _Sub("R")])
_versions = st.sampled_from([1, 13, 1, "1:2", "x", "1\x01", "1\x00"])
#: Prefixes that are not the ref and the version (each fails another check).
_PREFIXES = ["{r}:{v}:x:", "{r}:", "", "X{r}:{v}:", "{r}:{v}", "{r}{v}:", "Q:{v}:", "sub"]
_recipients = st.sampled_from(
    [
        "role:sales",
        "department:d",
        "customer",
        "",
        ":",
        "𝄞",
        "a\x00",
        "b\x01c",
        "R",
        _Sub("sub"),
        _Plus("plus"),
        "y" * 1100,
    ]
)


def _maybe(draw: Any, plain: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """Mostly ``plain``, sometimes ``hostile`` (each value on its own: most batches
    hold one hostile value, which alone decides the path)."""
    return draw(hostile if draw(st.integers(0, 5)) == 0 else plain)


@st.composite
def _command(draw: Any) -> tuple[Any, ...]:
    """What a command makes its notifications of (as ``notices.made`` holds it,
    without the notifications)."""
    ref = _maybe(draw, st.sampled_from(["R", "S", "𝄞"]), _refs)
    version = _maybe(draw, st.sampled_from([1, 2, 13]), _versions)
    prefix = _maybe(
        draw,
        st.just("{r}:{v}:"),
        st.sampled_from(_PREFIXES),
    )
    prefix = _Sub(f"{ref}:{version}:") if prefix == "sub" else prefix.format(r=ref, v=version)
    recipients = draw(
        st.lists(_plain, min_size=1, max_size=13, unique=True)
        | st.lists(_plain | _recipients, min_size=1, max_size=13)
    )
    if draw(st.booleans()):
        recipients = tuple(recipients)
    kind, event, topic, zh, en = (_maybe(draw, _plain, _texts) for _ in range(5))
    created = _maybe(draw, st.just(T0), st.sampled_from([T8, datetime(2026, 3, 2)]))
    note = _maybe(draw, st.sampled_from([None, "why"]), st.sampled_from(["\x00", "通" * 2000]))
    details = _maybe(
        draw,
        st.sampled_from([(), (("k", "v"),)]),
        st.sampled_from([(("k", T0),), (("k", _Sub("v")),), (("\x01", "v"),)]),
    )
    return (recipients, prefix, ref, kind, version, event, topic, zh, en, created, note, details)


def _made(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """The notifications and ``notices.made`` of ``command``, as a command leaves it."""
    notes = _make_notifications(*command)
    return (notes, *command)


def _accepted(
    ref: str, recipients: list[str], zh: str, en: str, details: tuple[Any, ...]
) -> tuple[Any, ...]:
    """:func:`_made` of an ``accept`` of requirement ``ref`` version 6 (plain values)."""
    command = (recipients, f"{ref}:6:", ref, "requirement", 6, "accept", "requirement.accept")
    return _made((*command, zh, en, T0, None, details))


def _plain_batch(ref: str) -> tuple[Notification, ...]:
    """Another transaction's notifications (handed as a list: never ``notices.made``)."""
    return _make_notifications(
        ["x", "y"], f"{ref}:9:", ref, "k", 9, "e", "t", "z", "n", T0, None, ()
    )


_ops = st.one_of(
    st.tuples(
        st.just("enqueue"),
        st.lists(_command(), min_size=1, max_size=2),
        st.sampled_from(["commit", "commit", "rollback", "between", "save"]),
        st.integers(0, 3).map(bool),
    ),
    st.tuples(st.just("claim"), st.sampled_from([None, 1, 5])),
    st.tuples(st.just("save"), st.integers(0, 40), st.sampled_from(["delivered", "dead"])),
)


class _Rollback(Exception):
    pass


def _kept(store: MemoryStore) -> tuple[Any, ...]:
    """Every byte and table the store keeps of its outbox."""
    return (
        dict(store._outbox),
        dict(store._outbox_keys),
        dict(store._odd_keys),
        store._colon_refs,
        dict(store._string_ids),
        dict(store._strings),
        store._enqueued,
    )


def _number(store: MemoryStore, command: tuple[Any, ...]) -> None:
    """Number the text of ``command`` in the store's table (as a command of the same
    transition on another record would have), where the table numbers it."""
    recipients, prefix, ref, kind, _, event, topic, zh, en = command[:9]
    try:
        text = "\x01".join((kind, event, topic, zh, en, prefix, *recipients))
    except TypeError:
        return
    if ref.__class__ is str:
        memory._Outbox(store, ref).number(text.replace(ref, "\x00") if ref else text)


def _run(script: list[Any], *, fast: bool) -> list[Any]:
    """Run ``script`` on a new store, ``notices.made`` left for each command (``fast``)
    or not; every public answer, and what the store keeps after each step."""
    store = MemoryStore()
    keys: list[str] = []
    seen: list[Any] = []
    for op in script:
        if op[0] == "enqueue":
            _, commands, end, warm = op
            try:
                with store.transaction() as tx:
                    for command in commands:
                        if warm:
                            _number(store, command)
                        made = _made(command)
                        keys.extend(n.key for n in made[0])
                        notices.made = made if fast else ((),)
                        seen.append(tx.enqueue(made[0]))
                        seen.append(tx.outbox(made[0][0].key))
                    if end == "rollback":
                        raise _Rollback
                    if end == "between":  # another transaction keeps entries meanwhile
                        with store.transaction() as other:
                            other.enqueue(list(_plain_batch("B")))
                    elif end == "save":
                        note = made[0][-1]
                        tx.save_outbox(OutboxEntry(notification=note, status="dead"))
            except _Rollback:
                pass
        elif op[0] == "claim":
            with store.transaction() as tx:
                seen.append(tx.claim(now=T0, lease_until=T0 + timedelta(1), limit=op[1]))
        else:
            _, pick, status = op
            with store.transaction() as tx:
                every = [e for s in OUTBOX_STATUSES for e in tx.entries(status=s)]
                if every:
                    entry = every[pick % len(every)]
                    tx.save_outbox(
                        OutboxEntry(
                            notification=entry.notification,
                            status=status,
                            attempts=entry.attempts + 1,
                            last_error="boom\x00",
                            next_attempt_at=T8,
                            delivered_at=T0,
                        )
                    )
        with store.transaction() as tx:
            seen.append([tx.entries(status=s) for s in OUTBOX_STATUSES])
            seen.append(tx.pending(now=T0 + timedelta(2)))
            seen.append(tx.pending(now=T0 + timedelta(2), ref="R", limit=3))
            seen.append([tx.outbox(k) for k in keys])
        seen.append(_kept(store))
    notices.made = ((),)
    return seen


@pytest.fixture(autouse=True)
def _made_cleared() -> Iterator[None]:
    yield
    notices.made = ((),)


@settings(max_examples=300, deadline=None)
@given(script=st.lists(_ops, min_size=1, max_size=6))
def test_a_commands_notifications_answer_and_keep_what_the_slow_path_does(
    script: list[Any],
) -> None:
    assert _run(script, fast=True) == _run(script, fast=False)


@settings(max_examples=200, deadline=None)
@given(script=st.lists(_ops, min_size=1, max_size=4))
def test_a_full_string_table_answers_and_keeps_what_the_slow_path_does(
    script: list[Any],
) -> None:
    """With a table of two strings, most texts are kept as themselves."""
    with patch.object(memory, "_MAX_STRINGS", 2):
        assert _run(script, fast=True) == _run(script, fast=False)


_BASE = (["role:vp", "customer"], "R:6:", "R", "requirement", 6, "accept", "requirement.accept")
_BASE += ("通知 R 𝄞", "notice R", T0, None, (("k", "v"),))
_FIELDS = ["recipients", "prefix", "ref", "kind", "version", "event", "topic", "zh", "en"]
_FIELDS += ["created", "note", "details"]
_RECIPIENTS = ["a\x00", "b\x01c", "", "R", _Sub("sub"), _Plus("plus"), "y" * 1100, "role:vp"]
_RECIPIENTS += [_Faker("faker")]
_ALONE = (
    [("ref", r) for r in ["", "𝄞", "R\ud800", "R:x", "\x01R", "R\x00", _Sub("R"), _Faker("R")]]
    + [("version", v) for v in [1, "1:2", "x", "1\x01", "1\x00"]]
    + [("prefix", p) for p in _PREFIXES]
    + [("recipients", [to, "customer"]) for to in _RECIPIENTS]
    + [("recipients", ("customer", to)) for to in _RECIPIENTS]
    + [(name, text) for name in ("kind", "event", "topic", "zh", "en") for text in _TEXTS]
    + [("created", T8), ("created", datetime(2026, 3, 2)), ("note", "\x00"), ("note", "通" * 2000)]
    + [("details", (("k", T0),)), ("details", (("k", _Sub("v")),)), ("details", (("\x01", "v"),))]
)


@pytest.mark.parametrize("kept", [tuple, list])
@pytest.mark.parametrize(("field", "value"), _ALONE)
def test_each_hostile_value_alone_answers_and_keeps_what_the_slow_path_does(
    field: str, value: Any, kept: type
) -> None:
    """One hostile value in a command the fast path would take (its text numbered),
    its recipients a tuple (as a plan keeps them) or a list: each check of
    _enqueue_made is the one that decides here."""
    command = list(_BASE)
    command[0] = kept(command[0])
    command[_FIELDS.index(field)] = kept(value) if field == "recipients" else value
    ref, version = command[2], command[4]
    if field in ("ref", "version"):
        command[1] = f"{ref}:{version}:"
    elif field == "prefix":
        command[1] = _Sub(f"{ref}:{version}:") if value == "sub" else value.format(r=ref, v=version)
    later = list(command)
    later[4] = "7" if version.__class__ is str else version + 1
    later[1] = later[1].replace(f":{version}:", f":{later[4]}:")
    script = [
        ("enqueue", [tuple(command)], "commit", True),
        ("enqueue", [tuple(later)], "commit", True),
        ("claim", 1),
        ("enqueue", [tuple(command)], "commit", True),
    ]
    assert _run(script, fast=True) == _run(script, fast=False)


def test_a_commands_segment_is_packed_at_enqueue_and_appended_by_the_commit() -> None:
    """A command whose text is numbered already takes the packed way (the commit calls
    neither _append_command nor _new_segment); a text not numbered yet is packed at
    the commit; a new one too long to number is packed at once; all keep what the
    slow path keeps."""
    recipients = [f"department:d{i}" for i in range(13)]
    fast, slow = MemoryStore(), MemoryStore()
    for store, is_fast in ((fast, True), (slow, False)):
        for ref, en in (("R", "notice"), ("S", "notice"), ("T", "z" * 1100)):
            made = _accepted(ref, recipients, f"通知 {ref} 𝄞", en, (("k", "v"),))
            notices.made = made if is_fast else ((),)
            packed = is_fast and ref != "R"
            with (
                patch.object(memory, "_append_command", side_effect=AssertionError)
                if packed
                else patch.object(memory, "_MAX_NUMBERED", memory._MAX_NUMBERED),
                patch.object(memory, "_new_segment", side_effect=AssertionError)
                if packed
                else patch.object(memory, "_MAX_STRINGS", memory._MAX_STRINGS),
                store.transaction() as tx,
            ):
                assert tx.enqueue(made[0]) == 13
                assert tx._mark is not None
                assert (len(tx._mark) > 2) is packed, ref
    assert _kept(fast) == _kept(slow)
    with fast.transaction() as tx, slow.transaction() as other:
        assert tx.entries(status="pending") == other.entries(status="pending")
        assert len(tx.entries(status="pending")) == 39


def test_notifications_leave_what_they_are_made_of() -> None:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_evaluating(desk)
        made = notices.made
        notes = made[0]
        assert len(notes) == 3
        recipients, prefix = made[1], made[2]
        assert prefix == f"{ref}:2:"
        fields = ("ref", "record_kind", "version", "event", "topic", "text_zh", "text_en")
        fields += ("created_at", "note", "details")
        for i, n in enumerate(notes):
            assert n.key == prefix + recipients[i]
            assert n.recipient is recipients[i]
            for name, value in zip(fields, made[3:], strict=True):
                assert getattr(n, name) is value, name


def _desk_run(fast: bool) -> tuple[Any, ...]:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        target = memory if fast else SimpleNamespace(notices=SimpleNamespace(made=((),)))
        with patch.object(memory, "notices", target.notices):
            refs = [to_evaluating(desk) for _ in range(3)]
            sign_all(desk, refs[0])
            desk.fire(refs[0], "accept", actor=CLERK, delivery_plan="lot 1\tR 𝄞 :")
            receive(desk, description="通" * 3000)
            with store.transaction() as tx:
                answers = [tx.entries(status=s) for s in OUTBOX_STATUSES]
        return (answers, _kept(store))


def test_a_desks_commands_keep_what_they_keep_without_notices_made() -> None:
    taken: list[int] = []
    real = memory._MemoryTransaction._enqueue_made

    def spy(self: Any, made: tuple[Any, ...]) -> int:
        taken.append(len(self._mark or b"") if real(self, made) else -1)
        return len(made[0])

    with patch.object(memory._MemoryTransaction, "_enqueue_made", spy):
        fast = _desk_run(True)
    # packed: each command's but the first of its transition (its text not numbered yet)
    assert sum(t > 2 for t in taken) >= 4, taken
    assert fast == _desk_run(False)


def test_a_made_command_stages_and_commits_without_a_loop_per_notification() -> None:
    """Staging and keeping 13 notifications a command made runs as many bytecodes
    as one: the commit reads none of them (the slow commit compares each one's
    fields in a loop)."""

    def made(count: int, ref: str) -> tuple[Any, ...]:
        return _accepted(ref, [f"department:d{i}" for i in range(count)], "通知", "notice", ())

    def command(made: tuple[Any, ...]) -> None:
        notices.made = made
        with store.transaction() as tx:
            tx.enqueue(made[0])

    store = MemoryStore()
    for n in (1, 13):
        command(made(n, f"W-{n}"))  # each text numbered
    one, thirteen = (_bytecodes(partial(command, made(n, f"C-{n}"))) for n in (1, 13))
    assert one == thirteen, (one, thirteen)
    with store.transaction() as tx:
        assert len(tx.entries(status="pending")) == 28
