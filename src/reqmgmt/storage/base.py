"""The storage protocol: what reqmgmt needs from a database, and nothing more.

A store keeps records (the current version of each), their append-only audit
events, the notification outbox and named sequences.  Everything a command
writes goes through one :class:`Transaction`: either all of it is committed or
none of it is.  Stores know records, not lifecycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from attrs import frozen

from ..model import AuditEvent, Notification, Record

__all__ = [
    "OUTBOX_STATUSES",
    "BulkInsert",
    "Lenient",
    "OutboxEntry",
    "RawRead",
    "RawRow",
    "RowLock",
    "Store",
    "Summaries",
    "SummaryRow",
    "Transaction",
]

#: One row of the report's summaries: metric, UTC day, kind, a, b, n, amount
#: (see :mod:`reqmgmt.summaries`).
SummaryRow = tuple[str, str, str, str, str, int, int]


def add_summary_rows(
    sums: dict[tuple[str, str, str, str, str], list[int]], rows: Iterable[Sequence[Any]]
) -> None:
    """Add summary rows (metric, day or month, kind, a, b, n, amount) to ``sums``,
    kept per (metric, day or month, kind, a, b) as ``[n, amount]``."""
    for metric, day, kind, a, b, n, amount in rows:
        key = (metric, day, kind, a, b)
        slot = sums.get(key)
        if slot is None:
            sums[key] = [n, amount]
        else:
            slot[0] += n
            slot[1] += amount


#: pending: not yet delivered (or to retry); delivered; dead: gave up after retries.
OUTBOX_STATUSES = ("pending", "delivered", "dead")


@frozen(kw_only=True)
class OutboxEntry:
    """A notification in the outbox with its delivery bookkeeping."""

    notification: Notification
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@runtime_checkable
class Transaction(Protocol):
    """One unit of work.  Writes become visible to others only on commit.

    ``update`` and ``insert`` raise :class:`reqmgmt.ConflictError` when the
    stored version is not the expected one (or the ref is taken); the store
    then writes nothing of the transaction.
    """

    def get(self, ref: str) -> Record | None:
        """The current version of the record, or ``None``."""
        ...

    def insert(self, record: Record) -> None:
        """Store a new record (version 1)."""
        ...

    def update(self, record: Record, *, expected_version: int) -> None:
        """Replace the record whose stored version is ``expected_version``."""
        ...

    def append_audit(self, event: AuditEvent) -> None:
        """Append one audit event; audit events are never changed or removed."""
        ...

    def audit(self, ref: str) -> Sequence[AuditEvent]:
        """The record's audit events, oldest first."""
        ...

    def last_hash(self, ref: str) -> str | None:
        """The hash of the record's newest audit event (the next one chains to it), or ``None``."""
        ...

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        """Put notifications in the outbox; a key already there is left as it is.

        Returns how many were new.  Idempotency keys make a repeated enqueue
        (a reminder pass run twice, by two workers) harmless.
        """
        ...

    def next_sequence(self, name: str, count: int = 1) -> int:
        """The next number of the named sequence (1, 2, ...); gaps are allowed.

        With ``count``, reserves that many consecutive numbers and returns the
        first (an import numbers a batch with one update of the sequence).
        """
        ...

    def query(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        customer: str | None = None,
        due_before: datetime | None = None,
    ) -> Iterator[Record]:
        """Records matching every given criterion, in ref order.

        ``due_before``: records whose next running deadline
        (``Record.next_deadline``) is before that time, earliest deadline
        first (then by ref); SQL stores answer it from the due-date index.
        """
        ...

    def pending(
        self, *, now: datetime, limit: int | None = None, ref: str | None = None
    ) -> Sequence[OutboxEntry]:
        """Pending outbox entries due at ``now`` (of record ``ref`` only, if given).

        Oldest first, so each record's notifications come in version order.
        """
        ...

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int | None = None,
        ref: str | None = None,
    ) -> Sequence[OutboxEntry]:
        """Take pending entries due at ``now`` for delivery, oldest first.

        The entries returned are leased: their ``next_attempt_at`` becomes
        ``lease_until``, so no other worker takes them until the lease runs
        out (a worker that dies loses nothing: the entries come back then).
        Per record, only a run from the record's oldest pending entry is
        taken: an entry waiting behind one that is leased elsewhere or backing
        off is left, so each record's notifications are delivered in order.
        Several workers may claim at once (PostgreSQL: ``FOR UPDATE SKIP
        LOCKED``; SQLite: the write lock); each entry goes to one of them.
        """
        ...

    def entries(self, *, status: str, limit: int | None = None) -> Sequence[OutboxEntry]:
        """Outbox entries in ``status`` (one of :data:`OUTBOX_STATUSES`), oldest first."""
        ...

    def outbox(self, key: str) -> OutboxEntry | None:
        """One outbox entry by idempotency key."""
        ...

    def save_outbox(self, entry: OutboxEntry) -> None:
        """Write back an entry's delivery bookkeeping."""
        ...


@runtime_checkable
class BulkInsert(Protocol):
    """Optional for a :class:`Transaction`: write an import batch at once.

    :meth:`reqmgmt.Desk.create_many` uses ``insert_many`` when the
    transaction has it, else ``insert`` and ``append_audit`` row by row.  The
    SQL stores write each table with one ``executemany``.
    """

    def insert_many(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> None:
        """Store new records (version 1) and their creating audit events.

        The same outcome as ``insert`` then ``append_audit`` for each; a ref
        that is taken (stored already, or twice in ``records``) raises
        :class:`reqmgmt.ConflictError` naming it.
        """
        ...


@runtime_checkable
class RowLock(Protocol):
    """Optional for a :class:`Transaction`: hold a record against other writers.

    A creating command that checks its inputs against another record (a
    return against the quantities shipped on its contract) locks that record
    first, so two such commands racing on it run one after the other and the
    second sees what the first wrote.  PostgreSQL: ``SELECT ... FOR UPDATE``
    until the transaction ends; SQLite needs nothing (every transaction is
    ``BEGIN IMMEDIATE``, one writer at a time); the memory store holds a
    per-record lock until commit or rollback.  A store without it runs the
    check inside the transaction but leaves the race window open.
    """

    def lock(self, ref: str) -> None:
        """Hold ``ref`` (stored or not) until this transaction ends."""
        ...


@frozen
class RawRow:
    """A stored row as it is, for verification: its columns and its document text.

    ``columns`` holds the indexed columns exactly as the database returned
    them (a surrogate row id left out); ``doc`` the JSON document unparsed.
    Nothing is checked or parsed: the row may be damaged in any way.
    """

    columns: Mapping[str, Any]
    doc: str


@runtime_checkable
class RawRead(Protocol):
    """Optional for a :class:`Transaction`: read rows as stored, for verification.

    :meth:`reqmgmt.Desk.verify_history` and :meth:`reqmgmt.Desk.verify_all`
    use it to compare every indexed column with the documents and to read
    damaged rows without raising.  A transaction without it is verified
    through ``get`` and ``audit`` (documents only).
    """

    def raw_record(self, ref: str) -> RawRow | None:
        """The record row of ``ref`` as stored, or ``None``."""
        ...

    def raw_audit(self, ref: str) -> Sequence[RawRow]:
        """Every audit row of ``ref`` as stored, in the order they were appended."""
        ...

    def raw_refs(self, *, after: str | None = None, limit: int = 500) -> Sequence[str]:
        """Up to ``limit`` refs after ``after``, in order, having a record row or audit rows."""
        ...

    def raw_count(self) -> int:
        """How many refs :meth:`raw_refs` lists in all."""
        ...

    def record_columns(self, record: Record) -> Mapping[str, Any]:
        """The indexed columns this store writes for ``record`` (as ``raw_record`` reads them)."""
        ...

    def event_columns(self, event: AuditEvent) -> Mapping[str, Any]:
        """The columns this store writes for ``event`` (as ``raw_audit`` reads them)."""
        ...


@runtime_checkable
class Lenient(Protocol):
    """Optional for a :class:`Transaction`: skip stored rows that cannot be read, and say which.

    The workers (reminders, dispatch, report) set ``unreadable`` to a list
    before they read.  While it is a list, ``query`` and ``claim`` skip a
    stored row that cannot be read back (a damaged document, a value the
    records refuse) and append ``(ref, reason)`` to it, so one bad row does
    not stop the pass for every other record.  ``None`` (the default):
    they raise, as any other reader wants.  The SQL stores have it; records
    in the memory store are kept as objects and cannot be unreadable.
    """

    unreadable: list[tuple[str, str]] | None


@runtime_checkable
class Summaries(Protocol):
    """Optional for a :class:`Transaction`: keep the report's summary rows (issue 15.3).

    Commands stage delta rows (:mod:`reqmgmt.summaries`); the report reads
    their sums.  A transaction without it makes ``Desk.report()`` compute
    everything from the records and audit trails (O(events)).
    """

    def stage_summary(self, rows: Sequence[SummaryRow]) -> None:
        """Add ``rows`` to the summaries when the transaction commits."""
        ...

    def summary(
        self, *, since: str | None = None, until: str | None = None
    ) -> Sequence[SummaryRow]:
        """Rows whose UTC day is in ``since <= day < until`` (``YYYY-MM-DD``), the day
        cut to its month (``YYYY-MM``); several rows may share a key (the reader sums them)."""
        ...

    def replace_summary(self, rows: Iterable[SummaryRow]) -> None:
        """Drop every summary row and keep ``rows`` instead (a rebuild)."""
        ...

    def compact_summary(self) -> int:
        """Sum the delta rows into one per key and day; how many rows there were before."""
        ...


@runtime_checkable
class Store(Protocol):
    """A place to keep records; ``transaction()`` opens a unit of work."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A context manager: commits when the block ends normally, else rolls back."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
