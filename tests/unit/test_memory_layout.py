"""The memory store's layout (issue 15.2): what the garbage collector and the RSS see.

Every dictionary that grows with the data maps refs to bytes, so the collector
neither tracks nor walks it; only the last records written stay as objects.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, MemoryStore, Notification
from reqmgmt.storage.base import OUTBOX_STATUSES, OutboxEntry
from reqmgmt.storage.memory import (
    _HOT,
    _Outbox,
    _pack_record,
    _pack_trail,
    _trail,
    _unpack_record,
)
from reqmgmt.testing import FakeClock, RecordingNotifier

from ..conftest import CLERK, receive, to_closed

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _walk(desk: Desk, n: int) -> list[str]:
    """``n`` requirements through their full path (9 audited commands each)."""
    refs = []
    for _ in range(n):
        refs.append(to_closed(desk))
    return refs


def _tracked_under(root: object) -> int:
    """How many objects the collector tracks that ``root`` reaches (``root`` included)."""
    seen: set[int] = set()
    todo: list[Any] = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not gc.is_tracked(obj) or isinstance(obj, type):
            continue  # classes lead to modules, to everything
        seen.add(id(obj))
        todo.extend(gc.get_referents(obj))
    return len(seen)


def test_tracked_objects_do_not_grow_with_the_records() -> None:
    """Past the hot records, a stored requirement costs the collector no object at all.

    The store of 0.5 kept each requirement as ~6.6 tracked objects (the record,
    its sign-offs, its trail and outbox lists): 2,600 more for 400 requirements.
    """
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        _walk(desk, _HOT + 20)
        gc.collect()
        before = _tracked_under(store)
        _walk(desk, 400)
        gc.collect()
        after = _tracked_under(store)
        assert after - before < 20, (before, after)
        # The growing dictionaries hold bytes only: never tracked, never walked.
        for name in ("_cold", "_audit", "_outbox", "_outbox_keys"):
            assert not gc.is_tracked(getattr(store, name)), name
        assert len(store._records) == _HOT
        assert len(store) == _HOT + 420


def test_the_outbox_costs_tens_of_bytes_per_notification() -> None:
    """A command's notifications share one segment; strings repeated across records are numbers.

    The 0.5 layout (a tuple per notification, its key and texts as strings)
    cost ~590 bytes per notification.
    """
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        _walk(desk, 20)  # the table of strings fills with the first ones
        gc.collect()
        tracemalloc.start()
        try:
            _walk(desk, 100)
            with store.transaction() as tx:
                notifications = len(tx.entries(status="pending"))
            store._outbox.clear()
            store._outbox_keys.clear()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            _walk(desk, 100)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            store._outbox.clear()
            store._outbox_keys.clear()
            gc.collect()
            freed = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    per_notification = (grown - freed) / (notifications * 100 / 120)
    assert 0 < per_notification < 80, per_notification


def test_delivered_entries_stay_compact_and_answer_like_the_sql_stores() -> None:
    """Delivered entries stay in the blob: outbox(key), entries() and enqueue see them."""
    notifier = RecordingNotifier()
    with Desk.open("memory://", clock=FakeClock(), plugins=[notifier]) as desk:
        refs = _walk(desk, 3)
        store = desk.store
        assert isinstance(store, MemoryStore)
        assert desk.outbox() == []
        assert not gc.is_tracked(store._outbox)
        with store.transaction() as tx:
            delivered = tx.entries(status="delivered")
            assert [e.notification for e in delivered] == notifier.sent
            again = [e.notification for e in delivered[:5]]
            assert tx.enqueue(again) == 0  # a repeated pass delivers nothing twice
            for entry in delivered:
                assert tx.outbox(entry.notification.key) == entry
        assert {e.notification.ref for e in delivered} == set(refs)


def _script(desk: Desk) -> Iterator[Any]:
    """Everything a desk stores, as values (records, trails, every outbox entry)."""
    for record in desk.query():
        yield record
        yield from desk.history(record.ref)
    with desk.store.transaction() as tx:
        for status in OUTBOX_STATUSES:
            yield from tx.entries(status=status)


def test_packed_records_read_back_equal() -> None:
    """Every record packed at once (no hot ones): the same records, trails and outbox."""
    stores = []
    for hot in (_HOT, 0):
        notifier = RecordingNotifier()
        with Desk.open("memory://", clock=FakeClock(), plugins=[notifier]) as desk:
            store = desk.store
            assert isinstance(store, MemoryStore)
            store._hot = hot
            refs = _walk(desk, 3)
            desk.fire(receive(desk), "clarify", actor=CLERK, note="which finish?")
            assert (len(store._records), len(store._cold)) == ((4, 0) if hot else (0, 4))
            stores.append(list(_script(desk)))
            assert desk.verify_all().intact == 4
            assert desk.get(refs[0]).signoffs[2].opinion == "week 12"
    assert stores[0] == stores[1]
    assert len(stores[0]) > 40


def test_a_record_outside_utc_packs_through_pickle() -> None:
    """A datetime in another zone keeps its zone; a record reads back equal."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        record = desk.get(receive(desk))
    plus8 = timezone(timedelta(hours=8))
    moved = attrs.evolve(record, received_at=record.received_at.astimezone(plus8))
    back = _unpack_record(_pack_record(moved))
    assert back == moved
    assert back.received_at.tzinfo == plus8
    assert _unpack_record(_pack_record(record)) == record


_hashes = st.one_of(
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.text(max_size=80),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=300), _hashes), max_size=12))
def test_a_trail_blob_reads_back_what_was_written(pairs: list[tuple[bytes, str]]) -> None:
    """Any JSON bytes and any hash text (a SHA-256 digest kept as 32 bytes) come back as given."""
    assert _trail(_pack_trail(pairs)) == pairs


# Separators and the ref's letters often: both forms of a segment are read back.
_texts = st.one_of(st.text(max_size=40), st.text(alphabet="aR:\x00\x01", max_size=8))
_when = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]))
_at = st.one_of(st.none(), _when)


@settings(max_examples=150, deadline=None)
@given(
    ref=st.one_of(st.text(max_size=12), st.text(alphabet="aR:\x01", max_size=3)),
    rows=st.lists(
        st.tuples(
            _texts,
            _texts,
            st.integers(-(2**40), 2**40),
            st.one_of(st.none(), _texts),
            st.tuples(_when, st.sampled_from(OUTBOX_STATUSES)),
            st.one_of(st.none(), st.tuples(st.integers(0, 9), st.one_of(st.none(), _texts), _at)),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_outbox_rows_read_back_what_was_written(ref: str, rows: list[Any]) -> None:
    """Strings holding the ref, NUL or nothing; UTC or other datetimes; with and without books."""
    store = MemoryStore()
    packer = _Outbox(store, ref)
    kept = []
    for i, (key, text, version, note, (created, status), book) in enumerate(rows):
        n = Notification(
            key=f"{ref}:{key}",
            ref=ref,
            record_kind="requirement",
            version=version,
            event=f"{text}{ref}",
            recipient=text,
            topic="requirement.x",
            text_zh=f"客户需求 {ref}:{text}",
            text_en=f"{ref}{ref}",
            created_at=created,
            note=note,
            details=(("plan", text),),
        )
        row: Any
        if book is None:
            row = (n.key, ref, *(getattr(n, f) for f in _FIELDS[2:]))
        else:
            attempts, error, at = book
            entry = OutboxEntry(
                notification=n,
                status=status,
                attempts=attempts,
                last_error=error,
                next_attempt_at=at,
                delivered_at=at,
            )
            row = (*(getattr(n, f) for f in _FIELDS), status, attempts, error, at, at)
            assert entry.notification == n
        kept.append((i, row))
    blob = b"".join(packer.segment(i, [row]) for i, row in kept)
    assert _Outbox(store, ref).rows(blob) == kept


_FIELDS = tuple(a.name for a in attrs.fields(Notification))


def test_a_record_pickle_refuses_stays_an_object() -> None:
    """A host's value that cannot be packed keeps its record hot; the commit is whole."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        ref = receive(desk)
        odd = attrs.evolve(desk.get(ref))
        object.__setattr__(odd, "remarks", (lambda: None,))  # past the validators
        store._records[ref] = odd
        store._hot = 0
        other = receive(desk)  # the refused one goes to the end, the others wait
        assert store._records[ref] is odd
        third = receive(desk)
        assert other in store._cold
        assert store._records[ref] is odd
        assert [desk.get(r).ref for r in (other, third)] == [other, third]
