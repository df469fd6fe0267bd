"""The in-memory store (``memory://``): for tests, scripts and benchmarks.

Thread-safe with optimistic concurrency: a transaction stages its writes and
checks, at each write and again at commit under one lock, that every record it
updates still has the version it read.  A failed transaction leaves nothing
behind.  Records are kept as the frozen objects themselves, so nothing is
copied or serialized.  Audit events are kept as their canonical JSON (the
bytes their hash covers, which sealing made already): a trail is written once
and read rarely, and millions of event objects would make the garbage
collector walk them all on every full collection.  Outbox entries are kept
as flat tuples of plain values for the same reason; the entry objects are
made when someone reads the outbox.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import orjson

from ..audit import canonical, from_canonical
from ..errors import ConflictError, StoreUnavailable
from ..model import AuditEvent, Notification, Record
from ..serialize import unstructure
from .base import OutboxEntry, RawRow, add_summary_rows

__all__ = ["MemoryStore"]


class MemoryStore:
    """Records, audit trail, outbox and sequences in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        # ref -> [(canonical JSON, hash)] oldest first
        self._audit: dict[str, list[tuple[bytes, str]]] = {}
        # key -> the entry as one flat tuple of plain values (_row): no object
        # per notification for the garbage collector to walk (a tuple of
        # strings, numbers and datetimes is untracked after its first collection).
        self._outbox: dict[str, _Row] = {}
        self._outbox_by_ref: dict[str, list[str]] = {}
        self._sequences: dict[str, int] = {}
        # ref -> the lock a transaction holds on it until it ends (RowLock)
        # RowLock: a fixed set of locks, one per stripe of refs, so locking leaves
        # nothing behind (a refused command writes nothing, the table never grows).
        self._row_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        # The report's summary rows (issue 15.3): (metric, day, kind, a, b) -> [n, amount]
        self._summary: dict[tuple[str, str, str, str, str], list[int]] = {}

    def transaction(self) -> _MemoryTransaction:
        """A unit of work: committed when the block ends normally, discarded otherwise."""
        return _MemoryTransaction(self)

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._records)


#: Seconds a transaction waits for a record another one holds (RowLock).
_LOCK_WAIT = 30.0
#: How many locks the refs share (two refs on one stripe wait for each other).
_LOCK_STRIPES = 64


#: An outbox entry as the memory store keeps it: the notification's fields in
#: their declared order; an entry saved back (delivered, failed, leased) has its
#: bookkeeping after them: status, attempts, last error, next attempt, delivered at.
#: A new notification has none (pending, no attempt yet): 40 bytes less each.
_Row = tuple[Any, ...]
_NOTIFICATION_FIELDS = tuple(a.name for a in attrs.fields(Notification))
_REF, _STATUS = 1, len(_NOTIFICATION_FIELDS)
_NEW: tuple[Any, ...] = ("pending", 0, None, None, None)


def _row(item: Notification | OutboxEntry) -> _Row:
    """The kept form of a new notification (pending) or of an entry saved back."""
    if isinstance(item, OutboxEntry):
        n = item.notification
        book: tuple[Any, ...] = (
            item.status,
            item.attempts,
            item.last_error,
            item.next_attempt_at,
            item.delivered_at,
        )
    else:
        n = item
        book = ()
    return (
        n.key, n.ref, n.record_kind, n.version, n.event, n.recipient, n.topic,
        n.text_zh, n.text_en, n.created_at, n.note, n.details, *book,
    )  # fmt: skip


def _book(row: _Row) -> tuple[Any, ...]:
    """status, attempts, last error, next attempt, delivered at."""
    return row[_STATUS:] if len(row) > _STATUS else _NEW


def _entry(row: _Row) -> OutboxEntry:
    """The entry a kept row stands for (built only when someone reads it)."""
    status, attempts, last_error, next_attempt_at, delivered_at = _book(row)
    return OutboxEntry(
        notification=Notification(**dict(zip(_NOTIFICATION_FIELDS, row, strict=False))),
        status=status,
        attempts=attempts,
        last_error=last_error,
        next_attempt_at=next_attempt_at,
        delivered_at=delivered_at,
    )


def _leased(row: _Row, until: datetime) -> _Row:
    status, attempts, last_error, _, delivered_at = _book(row)
    return (*row[:_STATUS], status, attempts, last_error, until, delivered_at)


class _MemoryTransaction:
    __slots__ = ("_audit", "_drawn", "_held", "_outbox", "_store", "_summary", "_writes")

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        # ref -> (record, expected version or None for an insert)
        self._writes: dict[str, tuple[Record, int | None]] = {}
        self._audit: list[AuditEvent] = []
        # key -> a new notification, or an entry saved back (made a row at commit)
        self._outbox: dict[str, Notification | OutboxEntry] = {}
        # name -> (value before this transaction drew, last value it drew)
        self._drawn: dict[str, tuple[int, int]] | None = None
        self._held: list[threading.Lock] = []
        self._summary: list[Sequence[Any]] | None = None

    def __enter__(self) -> _MemoryTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        # Staged writes are simply dropped when the block failed.
        try:
            if exc_type is None:
                self._commit()
            elif self._drawn:
                self._return_numbers(self._drawn)
        finally:
            for held in self._held:
                held.release()
            self._held.clear()

    def lock(self, ref: str) -> None:
        """Hold ``ref`` against other transactions until this one ends (RowLock)."""
        row_lock = self._store._row_locks[hash(ref) % _LOCK_STRIPES]
        if row_lock in self._held:
            return
        if not row_lock.acquire(timeout=_LOCK_WAIT):
            raise StoreUnavailable(
                "memory://",
                f"{ref} stayed locked by another transaction for {_LOCK_WAIT:g} s; "
                "nothing was written, retry the command",
            )
        self._held.append(row_lock)

    def _return_numbers(self, drawn: dict[str, tuple[int, int]]) -> None:
        """Give back the numbers a failed transaction drew, as a SQL rollback would.

        Only while nobody drew after it: a number another transaction holds
        stays drawn (a gap, never a number handed out twice).
        """
        store = self._store
        with store._lock:
            for name, (before, last) in drawn.items():
                if before >= 0 and store._sequences.get(name) == last:
                    if before:
                        store._sequences[name] = before
                    else:  # never drawn before: as if it had not been
                        del store._sequences[name]

    def get(self, ref: str) -> Record | None:
        staged = self._writes.get(ref)
        if staged is not None:
            return staged[0]
        # A single dict lookup is atomic in CPython and records are immutable:
        # no lock needed to read one (commit still checks the version).
        return self._store._records.get(ref)

    def insert(self, record: Record) -> None:
        current = self.get(record.ref)
        if current is not None:
            raise ConflictError(record.ref, None, current.version)
        self._writes[record.ref] = (record, None)

    def update(self, record: Record, *, expected_version: int) -> None:
        current = self.get(record.ref)
        if current is None or current.version != expected_version:
            raise ConflictError(
                record.ref, expected_version, None if current is None else current.version
            )
        staged = self._writes.get(record.ref)
        # An insert then update in one transaction stays an insert.
        first_expected = staged[1] if staged is not None else expected_version
        self._writes[record.ref] = (record, first_expected)

    def append_audit(self, event: AuditEvent) -> None:
        self._audit.append(event)

    # --- the report's summary rows (storage.base.Summaries, issue 15.3) ---------------

    def stage_summary(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._summary is None:
            self._summary = list(rows)
        else:
            self._summary.extend(rows)

    def summary(
        self, *, since: str | None = None, until: str | None = None
    ) -> list[tuple[str, str, str, str, str, int, int]]:
        with self._store._lock:
            items = list(self._store._summary.items())
        return [
            (metric, day[:7], kind, a, b, n, amount)
            for (metric, day, kind, a, b), (n, amount) in items
            if (since is None or day >= since) and (until is None or day < until)
        ]

    def replace_summary(self, rows: Iterable[Sequence[Any]]) -> None:
        kept: dict[tuple[str, str, str, str, str], list[int]] = {}
        add_summary_rows(kept, rows)
        with self._store._lock:
            self._store._summary = kept
        self._summary = None

    def compact_summary(self) -> int:
        return 0  # kept summed already

    def insert_many(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> None:
        for record in records:
            self.insert(record)
        self._audit.extend(events)

    def audit(self, ref: str) -> Sequence[AuditEvent]:
        with self._store._lock:
            committed = list(self._store._audit.get(ref, ()))
        return [from_canonical(*kept) for kept in committed] + [
            e for e in self._audit if e.ref == ref
        ]

    # --- raw reads, for verification (storage.base.RawRead) ---------------------------
    # Records are kept as objects, so a record "row" is the object's document
    # (and the key it is kept under); audit rows are the stored bytes as they are.

    def raw_record(self, ref: str) -> RawRow | None:
        record: object = self.get(ref)
        if record is None:
            return None
        try:
            doc = orjson.dumps(unstructure(record)).decode()
        except Exception:  # not a record any more: verification reports it
            doc = ""
        return RawRow({"ref": ref, "kind": getattr(record, "RECORD_KIND", None)}, doc)

    def raw_audit(self, ref: str) -> Sequence[RawRow]:
        with self._store._lock:
            committed = list(self._store._audit.get(ref, ()))
        rows = [
            RawRow({"hash": digest}, bytes(data).decode("utf-8", "replace"))
            for data, digest in committed
        ]
        rows.extend(
            RawRow({"hash": e.hash}, canonical(e).decode()) for e in self._audit if e.ref == ref
        )
        return rows

    def raw_refs(self, *, after: str | None = None, limit: int = 500) -> Sequence[str]:
        with self._store._lock:
            refs = set(self._store._records) | set(self._store._audit)
        refs.update(self._writes)
        refs.update(e.ref for e in self._audit)
        return sorted(r for r in refs if after is None or r > after)[:limit]

    def raw_count(self) -> int:
        return len(self.raw_refs(limit=2**62))

    def record_columns(self, record: Record) -> Mapping[str, Any]:
        return {"ref": record.ref, "kind": record.RECORD_KIND}

    def event_columns(self, event: AuditEvent) -> Mapping[str, Any]:
        return {"hash": event.hash}

    def last_hash(self, ref: str) -> str | None:
        for e in reversed(self._audit):
            if e.ref == ref:
                return e.hash
        trail = self._store._audit.get(ref)  # appended to under the lock only
        return trail[-1][1] if trail else None

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        store = self._store
        added = 0
        for n in notifications:
            if n.key in store._outbox or n.key in self._outbox:
                continue
            self._outbox[n.key] = n
            added += 1
        return added

    def next_sequence(self, name: str, count: int = 1) -> int:
        store = self._store
        with store._lock:
            before = store._sequences.get(name, 0)
            first = before + 1
            store._sequences[name] = first + count - 1
        if self._drawn is None:
            self._drawn = {}
        start, last = self._drawn.get(name, (before, before))
        # Another transaction drew between this one's draws: its numbers sit
        # inside this range, so none of it can be given back.
        self._drawn[name] = (start if last == before else -1, first + count - 1)
        return first

    def query(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        customer: str | None = None,
        due_before: datetime | None = None,
    ) -> Iterator[Record]:
        with self._store._lock:
            records = dict(self._store._records)
        records.update({ref: rec for ref, (rec, _) in self._writes.items()})
        order = sorted(records)
        if due_before is not None:
            order = sorted(
                (ref for ref in order if records[ref].next_deadline is not None),
                key=lambda ref: (records[ref].next_deadline, ref),
            )
        for ref in order:
            r = records[ref]
            if kind is not None and kind != r.RECORD_KIND:
                continue
            if state is not None and r.state != state:
                continue
            if (
                customer is not None
                and getattr(getattr(r, "customer", None), "id", None) != customer
            ):
                continue
            if due_before is not None:
                due = r.next_deadline
                if due is None or due >= due_before:
                    continue
            yield r

    def pending(
        self, *, now: datetime, limit: int | None = None, ref: str | None = None
    ) -> Sequence[OutboxEntry]:
        store = self._store
        with store._lock:
            if ref is None:
                entries = list(store._outbox.values())
            else:
                entries = [store._outbox[k] for k in store._outbox_by_ref.get(ref, ())]
        entries.extend(_row(e) for e in self._outbox.values())
        out = []
        for row in entries:
            if ref is not None and row[_REF] != ref:
                continue
            status, _, _, next_attempt_at, _ = _book(row)
            if status == "pending" and (next_attempt_at is None or next_attempt_at <= now):
                out.append(_entry(row))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int | None = None,
        ref: str | None = None,
    ) -> Sequence[OutboxEntry]:
        # The lease is written at once under the lock (not at commit), so two
        # transactions never take the same entry; a lease left by a
        # rolled-back transaction only delays delivery until it runs out.
        store = self._store
        claimed: list[OutboxEntry] = []
        blocked: set[str] = set()
        with store._lock:
            keys = store._outbox_by_ref.get(ref, []) if ref is not None else list(store._outbox)
            for key in keys:
                row = store._outbox[key]
                status, _, _, next_attempt_at, _ = _book(row)
                if status != "pending":
                    continue
                owner = row[_REF]
                if owner in blocked:
                    continue
                if next_attempt_at is not None and next_attempt_at > now:
                    blocked.add(owner)  # leased elsewhere or backing off: keep the order
                    continue
                if limit is not None and len(claimed) >= limit:
                    break
                leased = _leased(row, lease_until)
                store._outbox[key] = leased
                claimed.append(_entry(leased))
        return claimed

    def entries(self, *, status: str, limit: int | None = None) -> Sequence[OutboxEntry]:
        with self._store._lock:
            items = list(self._store._outbox.values())
        found = [_entry(row) for row in items if _book(row)[0] == status]
        return found if limit is None else found[:limit]

    def outbox(self, key: str) -> OutboxEntry | None:
        staged = self._outbox.get(key)
        if staged is not None:
            return _entry(_row(staged))
        with self._store._lock:
            kept = self._store._outbox.get(key)
        return None if kept is None else _entry(kept)

    def save_outbox(self, entry: OutboxEntry) -> None:
        self._outbox[entry.notification.key] = entry

    def _commit(self) -> None:
        store = self._store
        with store._lock:
            records = store._records
            # Check every write again: another transaction may have committed
            # since this one read.  Nothing is applied unless all still hold.
            for ref, (_, expected) in self._writes.items():
                current = records.get(ref)
                if expected is None:
                    if current is not None:
                        raise ConflictError(ref, None, current.version)
                elif current is None or current.version != expected:
                    raise ConflictError(ref, expected, None if current is None else current.version)
            for ref, (record, _) in self._writes.items():
                records[ref] = record
            audit = store._audit
            for event in self._audit:
                # A copy: orjson's output keeps an 8 KB buffer behind the bytes.
                kept = (memoryview(canonical(event)).tobytes(), event.hash)
                trail = audit.get(event.ref)
                if trail is None:
                    audit[event.ref] = [kept]
                else:
                    trail.append(kept)
            if self._summary:
                add_summary_rows(store._summary, self._summary)
            outbox = store._outbox
            by_ref = store._outbox_by_ref
            for key, item in self._outbox.items():
                if key in outbox and not isinstance(item, OutboxEntry):
                    continue  # enqueued by another transaction meanwhile: keep theirs
                row = _row(item)
                if key not in outbox:
                    keys = by_ref.get(row[_REF])
                    if keys is None:
                        by_ref[row[_REF]] = [key]
                    else:
                        keys.append(key)
                outbox[key] = row
