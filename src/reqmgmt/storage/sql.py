"""SQL storage on SQLAlchemy Core: SQLite (the embedded default) and PostgreSQL.

Records are stored as a JSON document (the one cattrs converter) beside
indexed columns (kind, state, customer, due date, version); audit events are
append-only (triggers refuse UPDATE and DELETE); the outbox and sequences are
tables too.  Every update is ``WHERE ref = ? AND version = ?``: a stale write
raises :class:`ConflictError` and the whole transaction rolls back.

SQLite settings: WAL journal, ``BEGIN IMMEDIATE`` for every transaction (so
two writers never deadlock half-way; the second waits up to the busy
timeout), ``synchronous=FULL`` by default: a committed command survives a
power loss.  ``?synchronous=NORMAL`` in the URL trades the last commits on
power loss for speed.
"""

from __future__ import annotations

import json
import operator
import re
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..audit import canonical, from_canonical, release
from ..errors import ConfigError, ConflictError, NoDatabase, StoreUnavailable, TamperedRecord
from ..model import AuditEvent, Notification, Record, record_classes, text_problem
from ..serialize import (
    ByIdentity,
    document,
    field_unstructurer,
    iso,
    remembered,
    structure,
    unstructure,
)
from . import hostunit, migrate, summary_tables
from .base import OutboxEntry, RawRow

__all__ = [
    "SqlStore",
    "TableBuilder",
    "build_metadata",
    "check_prefix",
    "connecting",
    "make_engine",
    "metadata",
    "register_tables",
    "shown_url",
]

#: A table prefix (``Desk.open(engine=..., table_prefix="rq_")``): lower-case letters,
#: digits and ``_``, starting with a letter, at most 20 characters (PostgreSQL
#: names stop at 63; the longest reqmgmt name is 26 long).  Nothing else reaches SQL text.
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,19}")

#: A table builder: adds its tables to the MetaData, each name (tables,
#: indexes, constraints) starting with the prefix.  See :func:`register_tables`.
TableBuilder = Callable[[sa.MetaData, str], None]


def check_prefix(prefix: object) -> str:
    """``prefix`` if it is an allowed table prefix ("" or :data:`_PREFIX`), else ConfigError."""
    if prefix == "" or (
        isinstance(prefix, str) and _PREFIX.fullmatch(prefix) and not prefix.startswith("sqlite_")
    ):
        return prefix
    raise ConfigError(
        f"table_prefix {prefix!r}",
        "a prefix is lower-case ASCII letters, digits and '_', starting with a letter, "
        "at most 20 characters, not 'sqlite_...' (SQLite keeps those names), e.g. 'rq_'; "
        "or '' for none",
    )


def _core_tables(metadata: sa.MetaData, p: str) -> None:
    """records, audit, outbox, sequences (the migrations in storage/migrations make them)."""
    sa.Table(
        f"{p}records",
        metadata,
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("customer", sa.String(64)),
        sa.Column("due_at", sa.String(32)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Index(f"{p}ix_records_kind_state", "kind", "state"),
        sa.Index(f"{p}ix_records_customer", "customer"),
        sa.Index(f"{p}ix_records_due_at", "due_at"),
    )
    sa.Table(
        f"{p}audit",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        # For reports (revision 0002): what happened when, without parsing documents.
        sa.Column("kind", sa.String(32)),
        sa.Column("event", sa.String(64)),
        sa.Column("from_state", sa.String(32)),
        sa.Column("to_state", sa.String(32)),
        sa.Column("at", sa.String(32)),
        sa.UniqueConstraint("ref", "version", name=f"{p}uq_audit_ref_version"),
        sa.Index(f"{p}ix_audit_kind_to_state", "kind", "to_state"),
        sa.Index(f"{p}ix_audit_at", "at"),
    )
    sa.Table(
        f"{p}outbox",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.String(32)),
        sa.Column("delivered_at", sa.String(32)),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Index(f"{p}ix_outbox_status_next", "status", "next_attempt_at"),
        sa.Index(f"{p}ix_outbox_ref", "ref"),
    )
    sa.Table(
        f"{p}sequences",
        metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )


#: Every module's tables; a new table joins with :func:`register_tables`.
def _summary_tables(metadata: sa.MetaData, p: str) -> None:
    """The report's summary rows (issue 15.3), defined in their own module."""
    summary_tables.define(metadata, p)
    summary_tables.define_delta(metadata, p)


_BUILDERS: list[TableBuilder] = [_core_tables, _summary_tables]


def register_tables(builder: TableBuilder) -> TableBuilder:
    """Add a table builder (usable as a decorator): every MetaData built from now has its tables.

    The builder names everything ``prefix + name``, and its migration uses
    :func:`reqmgmt.storage.migrate.prefixed`, so a store opened with a
    ``table_prefix`` finds its tables under the same names.
    """
    if builder not in _BUILDERS:
        _BUILDERS.append(builder)
    return builder


def build_metadata(prefix: str = "") -> sa.MetaData:
    """The tables as the queries see them, named with ``prefix``.

    A test checks that the migrations make exactly these tables.
    """
    check_prefix(prefix)
    built = sa.MetaData()
    for builder in _BUILDERS:
        builder(built, prefix)
    return built


# The tables without a prefix, as 0.2 had them at module level.
metadata = build_metadata("")
records = metadata.tables["records"]
audit = metadata.tables["audit"]
outbox = metadata.tables["outbox"]
sequences = metadata.tables["sequences"]
summary = metadata.tables["summary"]
#: The summary table's driver-level statements by (backend, prefix).
_SUMMARY: dict[tuple[str, str], dict[str, str]] = {}


def _summary_sql(backend: str, prefix: str) -> dict[str, str]:
    texts = _SUMMARY.get((backend, prefix))
    if texts is None:
        texts = _SUMMARY[backend, prefix] = summary_tables.statements(backend, prefix)
    return texts


#: The PostgreSQL advisory lock key held while a store checks or creates the schema.
_SCHEMA_LOCK = 0x7265716D676D74  # "reqmgmt"

#: Records kept parsed, by ref with their exact document text (see _SqlTransaction._known).
_CACHE_SIZE = 2048

#: The indexed columns of a record row after ``kind`` and ``doc``, in the order of _Fast.GET.
_RECORD_COLUMNS = ("ref", "state", "customer", "due_at", "version", "created_at", "updated_at")
_AUDIT_COLUMNS = ("ref", "version", "hash", "kind", "event", "from_state", "to_state", "at")
_RAW_RECORD = "SELECT kind, " + ", ".join(_RECORD_COLUMNS) + ", doc FROM {p}records WHERE ref = ?"
_RAW_AUDIT = "SELECT " + ", ".join(_AUDIT_COLUMNS) + ", doc FROM {p}audit WHERE ref = ? ORDER BY id"
_RAW_REFS = (
    "SELECT ref FROM {p}records WHERE ref > ? UNION SELECT ref FROM {p}audit WHERE ref > ? "
    "ORDER BY ref LIMIT ?"
)
_RAW_COUNT = (
    "SELECT count(*) FROM (SELECT ref FROM {p}records UNION SELECT ref FROM {p}audit) AS refs"
)


class _Fast:
    """The statements of every command, run on the driver's connection itself.

    SQLAlchemy's execution machinery (compiled-cache lookup, parameter
    processing, result set-up, events) cost several times the SQL of these
    small statements (benchmarks/bench_sqlite.py, bench_postgres.py).  The
    transaction, the connection and everything else stay with SQLAlchemy.
    Written with ``?``; :func:`_fast` gives each backend its own texts.  A
    duplicate key is not an error (``ON CONFLICT DO NOTHING``): the row count
    (SQLite) or ``RETURNING`` (PostgreSQL) says whether the row was new, so a
    PostgreSQL transaction is never aborted and needs no savepoint.
    """

    # The indexed columns come along: a record whose columns disagree with its
    # document is refused (see _SqlTransaction._checked).
    GET = (
        "SELECT kind, doc, ref, state, customer, due_at, version, created_at, updated_at "
        "FROM {p}records WHERE ref = ?"
    )
    VERSION = "SELECT version FROM {p}records WHERE ref = ?"
    INSERT = (
        "INSERT INTO {p}records (ref, kind, state, customer, due_at, version, created_at, "
        "updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO NOTHING"
    )
    SEQUENCE_CREATE = (
        "INSERT INTO {p}sequences (name, value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING"
    )
    SEQUENCE_BUMP = "UPDATE {p}sequences SET value = value + ? WHERE name = ?"
    SEQUENCE_READ = "SELECT value FROM {p}sequences WHERE name = ?"
    UPDATE = (
        "UPDATE {p}records SET kind = ?, state = ?, customer = ?, due_at = ?, version = ?, "
        "created_at = ?, updated_at = ?, doc = ? WHERE ref = ? AND version = ?"
    )
    AUDIT = (
        "INSERT INTO {p}audit (ref, version, hash, doc, kind, event, from_state, to_state, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ref, version) DO NOTHING"
    )
    LAST_HASH = "SELECT hash FROM {p}audit WHERE ref = ? ORDER BY version DESC LIMIT 1"
    AUDIT_HASH = "SELECT hash FROM {p}audit WHERE ref = ? AND version = ?"
    ENQUEUE = (
        "INSERT INTO {p}outbox (key, ref, status, attempts, doc) VALUES (?, ?, 'pending', 0, ?) "
        "ON CONFLICT (key) DO NOTHING"
    )


_RETURNING = {"INSERT": " RETURNING ref", "AUDIT": " RETURNING id", "ENQUEUE": " RETURNING seq"}


def _fast(backend: str, prefix: str = "") -> dict[str, str]:
    """The statements of :class:`_Fast` in ``backend``'s dialect, tables named with ``prefix``.

    The inserts also come as ``*_MANY``, without ``RETURNING``, for
    ``executemany``: its row count is the number of new rows on both drivers.
    The raw reads of verification come as ``RAW_*`` (written with ``?``).
    """
    texts = {k: v for k, v in vars(_Fast).items() if k.isupper()}
    texts.update({f"{k}_MANY": texts[k] for k in _RETURNING})
    if backend == "postgresql":
        texts = {k: v.replace("?", "%s") + _RETURNING.get(k, "") for k, v in texts.items()}
    else:
        # The audit and outbox documents are bound as the UTF-8 bytes the encoder
        # made and stored as TEXT (the same bytes; see _SqlTransaction.doc_bytes).
        for k in ("AUDIT", "AUDIT_MANY"):
            texts[k] = texts[k].replace("VALUES (?, ?, ?, ?,", "VALUES (?, ?, ?, CAST(? AS TEXT),")
        for k in ("ENQUEUE", "ENQUEUE_MANY"):
            texts[k] = texts[k].replace("'pending', 0, ?)", "'pending', 0, CAST(? AS TEXT))")
    texts.update(
        RAW_RECORD=_RAW_RECORD, RAW_AUDIT=_RAW_AUDIT, RAW_REFS=_RAW_REFS, RAW_COUNT=_RAW_COUNT
    )
    texts["PREFIX"] = "{p}"
    # The prefix passed check_prefix: letters, digits and "_" only.
    return {k: v.replace("{p}", check_prefix(prefix)) for k, v in texts.items()}


_FAST = {backend: _fast(backend) for backend in ("sqlite", "postgresql")}

#: See _SqlTransaction.doc_bytes (False: bound as text, the same stored value).
_DOC_BYTES = True


def _utc_text(value: datetime) -> str:
    # isoformat is fixed-width with timespec (years below 1000 padded too);
    # the first 26 characters drop the "+00:00".
    if value.__class__ is datetime and value.tzinfo is UTC:
        # The same characters as the document's (iso, remembered: a record's
        # times were written into its document just before): isoformat shows
        # the microseconds when there are some, none when they are zero (a
        # deadline: the C isoformat and astimezone cost 4k instructions a
        # record of an import), and a UTC time is itself.
        text = iso(value)
        return text[:26] if value.microsecond else text[:19] + ".000000"
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:26]


_utc_remembered = remembered(_utc_text)


def _utc(value: datetime | None) -> str | None:
    """A sortable UTC text form (fixed width, so text order is time order)."""
    return None if value is None else _utc_remembered(value)


def _storable(value: object) -> bool:
    """Can ``value`` be stored or looked up as text?  Not NUL, lone surrogates, non-strings.

    A lookup by such a value finds nothing on every backend alike (records
    refuse them), where PostgreSQL would raise for NUL and SQLite for surrogates.
    """
    return isinstance(value, str) and (
        value.isprintable() or text_problem(value, len(value), True) is None
    )


def _from_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(value: Any) -> str:
    return _json(unstructure(value))


def _json(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # orjson.JSONEncodeError: integers beyond 64 bits, non-string keys
        return _ENCODER.encode(data)


#: A Notification's fields in the order cattrs writes them (its generated unstructure
#: function cost about as much as encoding the document).  Another field list (a
#: changed model) falls back to cattrs: :func:`_notification_json`.
_NOTE_FIELDS = (
    "key", "ref", "record_kind", "version", "event", "recipient", "topic", "text_zh", "text_en",
    "created_at", "note", "details",
)  # fmt: skip
_NOTE_DIRECT = tuple(f.name for f in attrs.fields(Notification)) == _NOTE_FIELDS
_note_values = operator.attrgetter(*_NOTE_FIELDS)


def _notification_json(n: Notification) -> str:
    """``_dumps(n)``, the same text, without cattrs's walk of the fields."""
    return _json(_notification_data(n))


def _notification_data(n: Notification) -> Any:
    """``unstructure(n)`` in a form that encodes to the same JSON, made directly.

    Every field but ``created_at`` is its own JSON form (strings, an int,
    ``None``, tuples of string pairs, which JSON writes as arrays as cattrs's
    lists); ``created_at`` goes through the converter's own ``iso``.
    """
    if not _NOTE_DIRECT or type(n) is not Notification:
        return unstructure(n)
    key, ref, kind, version, event, recipient, topic, zh, en, at, note, details = _note_values(n)
    return {"key": key, "ref": ref, "record_kind": kind, "version": version, "event": event,
            "recipient": recipient, "topic": topic, "text_zh": zh, "text_en": en,
            "created_at": iso(at), "note": note, "details": details}  # fmt: skip


def _json_bytes(data: Any) -> bytes:
    """:func:`_json`'s text as UTF-8 bytes, without decoding orjson's bytes."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return _ENCODER.encode(data).encode()


#: Per record class: a getter of every field's value (one tuple) and each field's
#: name and unstructure function (``None``: the value is its JSON form).
_FIELDS: dict[type[Record], tuple[Callable[[Any], tuple[Any, ...]], tuple[Any, ...]]] = {}


def _fields(cls: type[Record]) -> tuple[Callable[[Any], tuple[Any, ...]], tuple[Any, ...]]:
    found = _FIELDS.get(cls)
    if found is None:
        hooks = field_unstructurer(cls)
        # attrgetter of one name gives the value itself, not a tuple.
        names = (*hooks, *hooks) if len(hooks) == 1 else tuple(hooks)
        found = _FIELDS[cls] = (operator.attrgetter(*names), tuple(hooks.items()))
    return found


def _next_document(
    base: Record, record: Record, base_doc: dict[str, Any] | None
) -> dict[str, Any] | None:
    """``unstructure(record)`` made from ``base_doc``, the document of ``base``.

    ``record`` is the next version of ``base``: ``derive`` copies the
    fields that did not change, so they are the very same objects, and an
    immutable value's JSON form is what it was.  Only the fields holding
    other objects are unstructured (most commands change three or four of
    about forty), the rest come from ``base_doc``.  ``None`` when there is
    nothing to start from (another class, no document known).
    """
    if base_doc is None or type(base) is not type(record):
        return None
    values, hooks = _fields(type(record))
    data = base_doc.copy()
    for (name, hook), old, new in zip(hooks, values(base), values(record), strict=False):
        if old is not new:
            data[name] = new if hook is None else hook(new)
    return data


def _columns(record: Record) -> tuple[Any, ...]:
    """A record's indexed columns, in the order of _RECORD_COLUMNS."""
    return (
        record.ref,
        record.state,
        getattr(getattr(record, "customer", None), "id", None),
        _utc(record.next_deadline),
        record.version,
        _utc(record.created_at),
        _utc(record.updated_at),
    )


def _raw_text(value: Any) -> Any:
    # Verification reads SQLite text as bytes (invalid UTF-8 must not raise).
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _audit_row(event: AuditEvent, doc_bytes: bool = False) -> tuple[Any, ...]:
    """An audit event's column values, in the order of _Fast.AUDIT (``doc_bytes``: the
    document as bytes, for SQLite's ``CAST(? AS TEXT)``)."""
    data = canonical(event)
    return (
        event.ref,
        event.version,
        event.hash,
        # The bytes the hash covers: sha256(doc) = hash can be checked in SQL.
        data if doc_bytes else data.decode(),
        event.record_kind,
        event.event,
        event.from_state,
        event.to_state,
        _utc(event.at),
    )


def shown_url(url: str) -> str:
    """``url`` as messages show it: the password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(url)


def _sqlite_file(parsed: sa.engine.URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for a memory database or a ``file:`` URI."""
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("uri") == "true":
        return None
    return Path(database)


def make_engine(url: str, *, create: bool = True) -> Engine:
    """A SQLAlchemy engine for a store URL (SQLite with reqmgmt's pragmas, or PostgreSQL).

    ``create=False``: a SQLite file that does not exist raises
    :class:`NoDatabase` before anything connects, so no file is made.  An
    unknown dialect or a missing driver raises :class:`ConfigError`.
    """
    try:
        parsed = sa.engine.make_url(url)
        backend = parsed.get_backend_name()
        if backend == "postgresql":
            # Read committed plus versioned updates: no lost update, no long locks.
            return sa.create_engine(parsed, pool_pre_ping=True)
        if backend != "sqlite":
            raise ConfigError(
                f"store URL {shown_url(url)}",
                "supported: sqlite:///path.db and postgresql+psycopg://user@host/db",
            )
    except (sa.exc.ArgumentError, ImportError) as exc:
        # An unparsable URL, an unknown driver (postgresql+nosuch), psycopg not installed.
        hint = "; PostgreSQL needs the driver: pip install 'reqmgmt[postgres]'"
        raise ConfigError(
            f"store URL {shown_url(url)}", f"{exc}{hint if 'postgres' in url else ''}"
        ) from None
    path = _sqlite_file(parsed)
    if path is not None:
        if not create and not path.is_file():
            raise NoDatabase(shown_url(url), f"no file {path}")
        if not path.parent.is_dir():
            raise StoreUnavailable(shown_url(url), f"folder {path.parent} does not exist")
    elif not create and parsed.query.get("uri") != "true":
        raise NoDatabase(shown_url(url), "an in-memory SQLite database starts empty")
    return _sqlite_engine(url, parsed, wal=create)


@contextmanager
def connecting(url: str) -> Iterator[None]:
    """Errors of the driver while connecting become :class:`StoreUnavailable`.

    A server that does not answer, a database that does not exist, a login
    refused, a file SQLite cannot open: one line naming the URL (password
    hidden) and the driver's first line.
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        text = str(exc.orig).strip()
        problem = text.splitlines()[0] if text else type(exc.orig).__name__
        raise StoreUnavailable(shown_url(url), problem) from exc


def _sqlite_engine(url: str, parsed: sa.engine.URL, *, wal: bool = True) -> Engine:
    """An engine with the pragmas of the module docstring and BEGIN IMMEDIATE.

    ``wal`` false leaves the journal mode alone: switching writes to the
    file, and a database reqmgmt created is in WAL mode already (it stays
    so), so opening an existing one only never changes a file.
    """
    synchronous = parsed.query.get("synchronous", "FULL")
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigError(f"store URL {url!r}", "synchronous must be FULL, NORMAL or EXTRA")
    engine = sa.create_engine(
        parsed.difference_update_query(["synchronous"]),
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below issue the BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Take the write lock up front: no deadlock between a reader that
        # becomes a writer and another writer.  Already begun: a Core
        # statement inside SqlStore.transaction's own BEGIN (SQLAlchemy autobegins).
        raw = conn.connection.driver_connection
        if not raw.in_transaction:  # type: ignore[union-attr]
            raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]

    return engine


#: How long a thread waits for its turn at SQLite's write lock (as busy_timeout).
_BUSY_SECONDS = 30.0


class _WriterQueue:
    """First come, first served turns at SQLite's write lock, for one process's threads.

    Every SQLite transaction here is a write (``BEGIN IMMEDIATE``).  Left to
    SQLite's busy handler, threads poll with growing sleeps (up to 100 ms)
    and one that just committed takes the lock again at once, so a waiting
    thread could starve past the busy timeout (seen in CI: 30 s).  Here the
    waiters queue, and a release hands the turn to the oldest.  Other
    processes still meet at SQLite's lock and its busy timeout.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._busy = False

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this thread's turn (at most ``_BUSY_SECONDS``), hold it for the block."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        """Wait for this thread's turn (at most ``_BUSY_SECONDS``); :meth:`leave` gives it up."""
        with self._mutex:
            if not self._busy:
                self._busy = True
                mine = None
            else:
                mine = threading.Lock()
                mine.acquire()
                self._waiting.append(mine)
        if mine is not None and not mine.acquire(timeout=_BUSY_SECONDS):
            with self._mutex:
                if mine in self._waiting:  # not handed the turn after all: give up
                    self._waiting.remove(mine)
                    raise sqlite3.OperationalError(
                        f"database is locked: this process's other threads held the write "
                        f"lock for {_BUSY_SECONDS:.0f} s"
                    )

    def leave(self) -> None:
        """Give up the turn :meth:`enter` waited for: to the oldest waiter, if any."""
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # the turn passes on; still busy
            else:
                self._busy = False


def _due(outbox: sa.Table, now: datetime, limit: int | None, ref: str | None) -> sa.Select[Any]:
    """Pending outbox entries due at ``now``, oldest first (of ``ref`` only, if given)."""
    statement = (
        sa.select(outbox)
        .where(
            outbox.c.status == "pending",
            sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= _utc(now)),
        )
        .order_by(outbox.c.seq)
    )
    if ref is not None:
        statement = statement.where(outbox.c.ref == ref)
    if limit is not None:
        statement = statement.limit(limit)
    return statement


class SqlStore:
    """A Store on SQLite (``sqlite:///path.db``) or PostgreSQL (``postgresql+psycopg://``).

    Creates its tables on first use of an empty database, unless ``create``
    is false: then a missing SQLite file or an empty database raises
    :class:`NoDatabase` and nothing is created.  A database at another
    schema revision is refused with what to do; a server or file that cannot
    be opened raises :class:`StoreUnavailable`.

    ``engine``: the host's SQLAlchemy engine instead of a URL (its pool,
    credentials, schema and search_path; the host's pragmas on SQLite).  The
    store then never disposes of it.  ``table_prefix``: every table, index,
    constraint and Alembic's version table are named with it
    (:func:`check_prefix`), so reqmgmt's tables sit beside the host's.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        create: bool = True,
        engine: Engine | None = None,
        table_prefix: str = "",
    ) -> None:
        self.prefix = check_prefix(table_prefix)
        if (url is None) == (engine is None):
            raise ConfigError("SqlStore", "give a store URL or a SQLAlchemy engine (one of them)")
        #: False: the host's engine, which the store neither disposes nor keeps connections of.
        self.owns_engine = engine is None
        if engine is None:
            assert url is not None
            self.url = url
            self.engine: Engine = make_engine(url, create=create)
        else:
            if not isinstance(engine, Engine):
                raise ConfigError(
                    "engine", f"a SQLAlchemy Engine is needed, not {type(engine).__name__}"
                )
            if engine.dialect.name not in _FAST:
                raise ConfigError(
                    f"engine {engine.url.render_as_string(hide_password=True)}",
                    "supported: sqlite and postgresql (psycopg) engines",
                )
            # execution_options(isolation_level=...), or create_engine(isolation_level=...)
            level = engine.get_execution_options().get("isolation_level") or getattr(
                engine.dialect, "_on_connect_isolation_level", None
            )
            if level is not None and str(level).upper() not in _ISOLATION_LEVELS:
                # AUTOCOMMIT would make each statement of a command its own
                # transaction: a refused import would stay half written.
                raise ConfigError(
                    f"engine {engine.url.render_as_string(hide_password=True)}",
                    f"isolation_level {level!r}: reqmgmt's commands need transactions; "
                    "use READ COMMITTED (PostgreSQL's default) or SERIALIZABLE, or give "
                    "reqmgmt an engine of its own",
                )
            self.url = engine.url.render_as_string(hide_password=True)
            self.engine = engine
        self.backend = self.engine.dialect.name
        #: The tables, named with the prefix (build_metadata).
        self.metadata = build_metadata(self.prefix)
        self.sql = _FAST[self.backend] if not self.prefix else _fast(self.backend, self.prefix)
        self._classes = record_classes()
        self._local = threading.local()
        # ref -> (kind, document text, (the record it parses to, its columns)).
        self._cache: dict[str, tuple[str, str, tuple[Record, tuple[Any, ...]]]] = {}
        #: ref -> (record document, its newest audit hash): see _SqlTransaction.last_hash.
        self._heads: dict[str, tuple[str, str]] = {}
        #: The JSON-ready form of the records last written, by the record object itself
        #: (see _next_document).
        self._docs: ByIdentity[Record, dict[str, Any]] = ByIdentity(_CACHE_SIZE)
        #: Each thread's connection, given back by a finalizer when the thread ends
        #: (its thread-local keeper dies with it) or by close().
        self._held: list[weakref.finalize[Any, Any]] = []
        self._held_lock = threading.Lock()
        #: SQLite: this process's threads take turns at the write lock.
        self._writers = _WriterQueue()
        try:
            with connecting(self.url):
                self._prepare(create)
        except BaseException:
            if self.owns_engine:
                self.engine.dispose()
            raise

    def _prepare(self, create: bool) -> None:
        with self.engine.begin() as conn:
            if self.backend == "postgresql" and create:
                # Several workers starting on a new database at once: one
                # creates the schema, the others wait and then find it.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
            elif not self.owns_engine:
                _begin_sqlite(conn)
            # A database shared with the host (its engine, or a prefix) is
            # empty when none of reqmgmt's tables is there.
            shared = not self.owns_engine or bool(self.prefix)
            empty, current = migrate.schema_state(
                conn, self.prefix, ours=self.metadata.tables if shared else None
            )
            if empty:
                if not create:
                    raise NoDatabase(shown_url(self.url), "the database has no tables")
                migrate.upgrade(conn, prefix=self.prefix)  # create the current schema
                return
            head = migrate.HEAD_REVISION
            if current != head:
                raise ConfigError(
                    f"database {self.url!r}",
                    f"schema revision {current} but this reqmgmt needs {head}; it is not "
                    f"changed silently: back it up, then run: reqmgmt db upgrade '{self.url}'",
                )

    def transaction(self) -> AbstractContextManager[_SqlTransaction]:
        """One transaction (BEGIN IMMEDIATE): committed when the block ends normally.

        Inside :meth:`unit_of_work` (this thread): a SAVEPOINT on the host's
        connection instead, released when the block ends normally.
        """
        if self.owns_engine and self.backend == "sqlite" and not hostunit._OPEN.get():
            conn = self._thread_connection()
            if conn is not None and not self._local.raw.in_transaction:
                return _OwnTransaction(self, conn, self._local.raw)
        return self._transaction_block()

    @contextmanager
    def _transaction_block(self) -> Iterator[_SqlTransaction]:
        """:meth:`transaction` in a unit of work, on PostgreSQL or on the host's engine."""
        if hostunit._OPEN.get():
            unit = hostunit.current(self)
            if unit is not None:
                with self._in_unit(unit) as tx:
                    yield tx
                return
        conn = self._thread_connection() if self.backend == "sqlite" else None
        if conn is None or self._local.raw.in_transaction:
            # PostgreSQL, the host's engine, or a transaction opened inside another in this thread.
            with self.engine.begin() as pooled:
                if conn is None and not self.owns_engine:
                    _begin_sqlite(pooled)
                tx = self._transaction(pooled)
                yield tx
            if tx.new_heads:  # committed
                self._remember_heads(tx.new_heads)
            return
        with _OwnTransaction(self, conn, self._local.raw) as tx:
            yield tx

    def _transaction(self, conn: Connection, raw: Any = None) -> _SqlTransaction:
        return _SqlTransaction(
            conn,
            self._classes,
            self.backend,
            self._cache,
            self.sql,
            self.metadata,
            self._heads,
            self._docs,
            raw,
        )

    def _remember_heads(self, heads: list[tuple[str, str, str]]) -> None:
        known = self._heads
        for ref, doc, digest in heads:
            if len(known) >= _CACHE_SIZE:
                # Another thread may evict at the same time.
                with suppress(KeyError, RuntimeError, StopIteration):
                    del known[next(iter(known))]
            known[ref] = (doc, digest)

    @contextmanager
    def _in_unit(self, unit: hostunit.HostUnit) -> Iterator[_SqlTransaction]:
        if unit.state != "open":
            raise ConfigError(
                "unit_of_work",
                f"the host's transaction has {unit.state} already; a command after it "
                "needs a new transaction and a new unit",
            )
        conn = unit.connection
        if not conn.in_transaction():
            raise ConfigError("unit_of_work", "the host's connection has no transaction any more")
        # A command that fails rolls back to its savepoint: the unit is as before it.
        with conn.begin_nested():
            yield self._transaction(conn)

    @contextmanager
    def unit_of_work(self, connection: Connection) -> Iterator[hostunit.HostUnit]:
        """This store's transactions on the host's ``connection`` for the block (see hostunit)."""
        checked = hostunit.check_connection(connection, self.engine, self.backend)
        unit = hostunit.HostUnit(self, checked)
        token = hostunit.enter(unit)
        try:
            yield unit
        finally:
            hostunit.leave(unit, token)

    def _thread_connection(self) -> Connection | None:
        """SQLite: one connection kept per thread (``None`` on the host's engine).

        Checking a connection out of the pool and resetting it on return
        cost more than a whole command's SQL; SQLite connections are cheap
        to keep, and each thread keeps its own (sqlite3 connections are not
        shared between threads).  The host's engine's connections are the
        host's: taken from its pool for each transaction.
        """
        if not self.owns_engine:
            return None
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            self._local.conn = conn
            self._local.raw = conn.connection.driver_connection
            # A server that starts a thread per request must not use up the
            # pool: the keeper lives in this thread's locals, so when the
            # thread ends it is collected and the connection goes back.
            keeper = _Keeper()
            self._local.keeper = keeper
            given_back = weakref.finalize(keeper, conn.close)
            with self._held_lock:
                self._held = [f for f in self._held if f.alive]
                self._held.append(given_back)
        return conn

    def close(self) -> None:
        """Release the connections (the host's engine is left as it is)."""
        with self._held_lock:
            held, self._held = self._held, []
        for given_back in held:
            given_back()  # closes the connection once (a no-op if its thread gave it back)
        if self.owns_engine:
            self.engine.dispose()


class _OwnTransaction:
    """SQLite, this thread's own connection: BEGIN and COMMIT on the driver itself.

    SQLAlchemy's transaction bookkeeping cost 50k instructions a command,
    more than the statements of some; the writer queue's turn is taken and
    given up inline, and this is a class, not a generator under
    ``contextlib.contextmanager`` (whose enter and exit cost more than the
    ``BEGIN``).  The same steps, in the same order, as
    :meth:`SqlStore._transaction_block`.
    """

    __slots__ = ("conn", "raw", "store", "tx")

    def __init__(self, store: SqlStore, conn: Connection, raw: Any) -> None:
        self.store = store
        self.conn = conn
        self.raw = raw

    def __enter__(self) -> _SqlTransaction:
        store = self.store
        writers = store._writers
        writers.enter()
        try:
            self.raw.execute("BEGIN IMMEDIATE")
            tx = self.tx = store._transaction(self.conn, self.raw)
        except BaseException:
            writers.leave()
            raise
        return tx

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        writers = self.store._writers
        try:
            if kind is not None:
                self.raw.rollback()
                _end_autobegun(self.conn)
                return  # the exception goes on
            self.raw.commit()
            _end_autobegun(self.conn)
        finally:
            writers.leave()
        heads = self.tx.new_heads
        if heads:  # committed
            self.store._remember_heads(heads)


class _ImportRows:
    """An import batch's rows (``Desk.create_many``), made as each record is built.

    :meth:`add` turns a new record, its creating event and its notifications
    into the tuples of str, int and bytes their tables take, at once, so the
    objects can go: a batch's thousand records, events (each holding the
    record's JSON-ready document, a dict and a list per list field) and
    notifications alive until commit were objects every young collection
    scanned and promoted (the collector untracks a tuple of atomics at the
    first collection that sees it).  The event's canonical bytes are taken
    while :func:`reqmgmt.audit.canonical` still has them (its cache keeps the
    last 256 events: a batch of 1,000 encoded most events twice), and taken
    out of it: kept there, each event held its record's document alive for
    the next 255 rows, the most objects of all a young collection promoted.

    :meth:`write` writes them as ``insert_many`` then ``enqueue`` did: the
    same statements, rows and order, the same :class:`ConflictError` for a
    taken ref, and an error met while making a row raised where that one
    made it (all records, then the audit rows, then the outbox rows).
    """

    __slots__ = ("_errors", "_outbox", "_seen", "_taken", "audit", "records", "tx")

    def __init__(self, tx: _SqlTransaction) -> None:
        self.tx = tx
        self.records: list[tuple[Any, ...]] = []
        self.audit: list[tuple[Any, ...]] = []
        self._outbox: list[tuple[Any, ...]] = []
        self._seen: set[str] = set()
        #: The first ref given twice (insert_many refused it before writing anything).
        self._taken: str | None = None
        #: The first error making a record, an audit and an outbox row, raised by write().
        self._errors: list[Exception | None] = [None, None, None]

    def add(self, record: Record, event: AuditEvent, notes: Sequence[Notification]) -> None:
        """The rows of one new record, its creating event and its notifications."""
        ref = record.ref
        seen = self._seen
        if ref in seen and self._taken is None:
            self._taken = ref
        seen.add(ref)
        tx = self.tx
        try:
            self.records.append(tx._new_row(record))
        except Exception as exc:
            self._failed(0, exc)
        try:
            self.audit.append(_audit_row(event, tx.doc_bytes))
        except Exception as exc:
            self._failed(1, exc)
        # Its bytes are taken: the seal's cache need not keep the event (and its
        # record's document) for the next 255 events.
        release(event)
        if notes:
            encode = _json_bytes if tx.doc_bytes else _json
            try:
                self._outbox.extend([(n.key, n.ref, encode(_notification_data(n))) for n in notes])
            except Exception as exc:
                self._failed(2, exc)

    def _failed(self, step: int, exc: Exception) -> None:
        if self._errors[step] is None:
            self._errors[step] = exc

    def _raise(self, step: int) -> None:
        exc = self._errors[step]
        if exc is not None:
            raise exc

    def write(self) -> None:
        """Insert the records, the audit rows (:class:`ConflictError` naming a taken ref;
        see :meth:`_SqlTransaction.insert_many`), then queue the notifications."""
        tx = self.tx
        if self._taken is not None:
            raise ConflictError(self._taken, None, 1)
        self._raise(0)
        rows = self.records
        if tx._many("INSERT_MANY", rows) != len(rows):
            tx._check_inserted(rows)
        self._raise(1)
        audit_rows = self.audit
        if tx._many("AUDIT_MANY", audit_rows) != len(audit_rows):
            tx._check_appended(audit_rows)
        self._raise(2)
        if self._outbox:
            tx._many("ENQUEUE_MANY", self._outbox)


class _Keeper:
    """A thread-local token whose collection (the thread ended) gives its connection back."""

    __slots__ = ("__weakref__",)


def _end_autobegun(conn: Connection) -> None:
    """End the transaction SQLAlchemy began for a Core statement inside a driver transaction.

    The driver's transaction is over already (committed or rolled back), so
    this ROLLBACK does nothing in the database; SQLAlchemy's bookkeeping is
    back to "no transaction".
    """
    if conn.in_transaction():
        conn.rollback()


def _begin_sqlite(conn: Connection) -> None:
    """On the host's SQLite engine: take the write lock now, as reqmgmt's own engine does.

    pysqlite begins a transaction lazily at the first write; reads before
    it would run outside the transaction.
    """
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        if not raw.in_transaction:  # type: ignore[union-attr]
            raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


#: The host engine's isolation levels a store accepts (not AUTOCOMMIT).
_ISOLATION_LEVELS = frozenset(
    {"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", "READ UNCOMMITTED"}
)


class _SqlTransaction:
    #: Creating commands hand over the JSON form they made (serialize.hand_over).
    takes_documents = True
    #: See storage.base.Lenient: a worker's list of rows it could not read.
    unreadable: list[tuple[str, str]] | None = None

    def __init__(
        self,
        conn: Connection,
        classes: dict[str, type[Record]],
        backend: str,
        cache: dict[str, tuple[str, str, tuple[Record, tuple[Any, ...]]]],
        sql: dict[str, str],
        tables: sa.MetaData,
        heads: dict[str, tuple[str, str]],
        docs: ByIdentity[Record, dict[str, Any]] | None = None,
        raw: Any = None,
    ) -> None:
        self.conn = conn
        self.classes = classes
        self.backend = backend
        self.cache = cache
        # The driver's connection under this transaction, for the hot statements.
        driver: Any = conn.connection.driver_connection if raw is None else raw
        self.raw: Any = driver
        #: What runs them: SQLite's connection (a cursor per statement, reset when it
        #: goes, so no read stays open); on PostgreSQL one cursor for the transaction
        #: (psycopg's ``Connection.execute`` made a new one each time; its results are
        #: read at once, nothing stays open on the server).
        self.cur: Any = driver.cursor() if backend == "postgresql" else driver
        self.sql = sql
        self.tables = tables
        self.pg = backend == "postgresql"
        #: SQLite: audit and outbox documents bound as bytes (``CAST(? AS TEXT)``):
        #: decoding the encoder's UTF-8 only for the driver to encode it again cost
        #: more than the statement's binding.  Records stay text: a read compares them.
        self.doc_bytes = _DOC_BYTES and not self.pg
        #: ref -> (record document, hash of its newest audit event), of committed transactions.
        self.heads = heads
        #: This transaction's record documents read and written (ref -> text, (text, version)),
        #: and the heads it makes, for the store to remember once it has committed.
        self.read: dict[str, str] = {}
        self.written: dict[str, tuple[str, int]] = {}
        self.new_heads: list[tuple[str, str, str]] = []
        #: The records' JSON-ready forms by record (the store's), and the records this
        #: transaction read, by ref: an update writes the next version of one.
        self.docs = docs
        self.got: dict[str, Record] = {}

    def _table(self, name: str) -> sa.Table:
        """The table ``name`` as this store names it (with its prefix)."""
        return self.tables.tables[self.sql["PREFIX"] + name]

    def _many(self, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one of the ``*_MANY`` inserts for every row; how many rows were new?"""
        if self.pg:
            cursor = self.cur
            cursor.executemany(self.sql[name], rows)
            return int(cursor.rowcount)
        return int(self.raw.executemany(self.sql[name], rows).rowcount)

    def _inserted(self, name: str, params: Sequence[Any]) -> bool:
        """Run one of the ``ON CONFLICT DO NOTHING`` inserts; was the row new?"""
        cursor = self.cur.execute(self.sql[name], params)
        if self.pg:
            return cursor.fetchone() is not None  # RETURNING a row: inserted
        return bool(cursor.rowcount == 1)

    def _record(self, kind: str, doc: str, ref: str) -> Record:
        return self._known(kind, doc, ref)[0]

    def _known(self, kind: str, doc: str, ref: str) -> tuple[Record, tuple[Any, ...]]:
        # Parsing a document is the dearest part of a read; the records last
        # read or written are kept by the row's ref with their exact text
        # (and the columns they index), and reused only when the stored text
        # is the same, character for character.  Found by ref, compared by
        # text: hashing the document (2-3 KB) for a look-up by text cost
        # more than the comparison.
        cached = self.cache.get(ref)
        if cached is not None and cached[1] == doc and cached[0] == kind:
            return cached[2]
        record = self._parse(kind, doc)
        known = (record, _columns(record))
        self._remember(ref, kind, doc, known)
        return known

    def _remember(
        self, ref: str, kind: str, doc: str, known: tuple[Record, tuple[Any, ...]]
    ) -> None:
        cache = self.cache
        if len(cache) >= _CACHE_SIZE and ref not in cache:
            # Another thread may evict at the same time.  (try, not suppress():
            # a full cache evicts at every row of an import, and the context
            # manager cost more than the eviction.)
            try:  # noqa: SIM105
                del cache[next(iter(cache))]
            except (KeyError, RuntimeError, StopIteration):
                pass
        cache[ref] = (kind, doc, known)

    def _parse(self, kind: str, doc: str) -> Record:
        cls = self.classes.get(kind)
        if cls is None:
            raise ConfigError("records table", f"unknown record kind {kind!r} in the database")
        return structure(json.loads(doc), cls)

    def get(self, ref: str) -> Record | None:
        if not _storable(ref):
            return None  # no record has such a ref (and PostgreSQL refuses NUL in a query)
        found = self.cur.execute(self.sql["GET"], (ref,)).fetchone()
        if found is None:
            return None
        record = self._checked(ref, found)
        self.read[ref] = found[1]
        self.got[ref] = record
        return record

    def lock(self, ref: str) -> None:
        """Hold the row of ``ref`` until the transaction ends (storage.base.RowLock).

        SQLite: nothing to do, the transaction is the only writer.
        """
        if self.pg and _storable(ref):
            records = self._table("records")
            self.conn.execute(
                sa.select(records.c.ref).where(records.c.ref == ref).with_for_update()
            )

    def _checked(self, ref: str, found: tuple[Any, ...]) -> Record:
        """The record of a GET row, refused when its columns disagree with its document."""
        try:
            record, columns = self._known(found[0], found[1], ref)
        except Exception as exc:  # a damaged document, of any shape
            raise TamperedRecord(ref, (), f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if found[2:] != columns:  # both drivers give rows as tuples
            differ = [
                f"records.{name}"
                for name, stored, own in zip(_RECORD_COLUMNS, found[2:], columns, strict=True)
                if stored != own
            ]
            raise TamperedRecord(ref, differ)
        return record

    def _values(self, record: Record) -> dict[str, Any]:
        """The columns written for ``record`` but ref, by name (what _params gives)."""
        names = ("kind", "state", "customer", "due_at", "version", "created_at", "updated_at")
        return dict(zip((*names, "doc"), self._params(record), strict=True))

    def _params(self, record: Record, base: Record | None = None) -> tuple[Any, ...]:
        """kind, the indexed columns but ref, doc: the order of _Fast.INSERT after ref.

        ``base``: the record ``record`` was derived from (read in this transaction).
        """
        docs = self.docs
        data = None
        if docs is not None:
            if base is not None:
                data = _next_document(base, record, docs.get(base))
            if data is None:
                data = document(record)
            docs.put(record, data)
        else:
            data = document(record)
        doc = _json(data)
        columns = _columns(record)
        self._remember(record.ref, record.RECORD_KIND, doc, (record, columns))
        self.written[record.ref] = (doc, record.version)
        return (record.RECORD_KIND, *columns[1:], doc)

    def _version(self, ref: str) -> int | None:
        found = self.cur.execute(self.sql["VERSION"], (ref,)).fetchone()
        return None if found is None else int(found[0])

    def insert(self, record: Record) -> None:
        if not self._inserted("INSERT", (record.ref, *self._params(record))):
            raise ConflictError(record.ref, None, self._version(record.ref))

    def update(self, record: Record, *, expected_version: int) -> None:
        params = (*self._params(record, self.got.get(record.ref)), record.ref, expected_version)
        if self.cur.execute(self.sql["UPDATE"], params).rowcount != 1:
            raise ConflictError(record.ref, expected_version, self._version(record.ref))

    def append_audit(self, event: AuditEvent) -> None:
        if not self._inserted("AUDIT", _audit_row(event, self.doc_bytes)):
            # Another command wrote this version of the record first.
            raise ConflictError(event.ref, event.version - 1, self._version(event.ref))
        written = self.written.get(event.ref)
        if written is not None and written[1] == event.version:
            self.new_heads.append((event.ref, written[0], event.hash))

    def audit(self, ref: str) -> Sequence[AuditEvent]:
        if not _storable(ref):
            return []
        audit = self._table("audit")
        rows = self.conn.execute(
            sa.select(audit.c.doc, audit.c.hash).where(audit.c.ref == ref).order_by(audit.c.version)
        )
        return [from_canonical(doc, digest) for doc, digest in rows]

    # --- raw reads, for verification (storage.base.RawRead) ---------------------------

    @contextmanager
    def _raw_cursor(self) -> Iterator[Any]:
        if self.pg:
            with self.raw.cursor() as cursor:
                yield cursor
            return
        # SQLite text as bytes: a row with invalid UTF-8 is read, not raised on.
        factory = self.raw.text_factory
        self.raw.text_factory = bytes
        cursor = self.raw.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            self.raw.text_factory = factory

    def _raw(self, statement: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        statement = self.sql[statement]
        if self.pg:
            statement = statement.replace("?", "%s")
        with self._raw_cursor() as cursor:
            cursor.execute(statement, params)
            return [tuple(map(_raw_text, row)) for row in cursor.fetchall()]

    def raw_record(self, ref: str) -> RawRow | None:
        rows = self._raw("RAW_RECORD", (ref,))
        if not rows:
            return None
        row = rows[0]
        return RawRow(dict(zip(("kind", *_RECORD_COLUMNS), row[:-1], strict=True)), str(row[-1]))

    def raw_audit(self, ref: str) -> Sequence[RawRow]:
        return [
            RawRow(dict(zip(_AUDIT_COLUMNS, row[:-1], strict=True)), str(row[-1]))
            for row in self._raw("RAW_AUDIT", (ref,))
        ]

    def raw_refs(self, *, after: str | None = None, limit: int = 500) -> Sequence[str]:
        start = "" if after is None else after
        return [str(row[0]) for row in self._raw("RAW_REFS", (start, start, limit))]

    def raw_count(self) -> int:
        return int(self._raw("RAW_COUNT", ())[0][0])

    def record_columns(self, record: Record) -> Mapping[str, Any]:
        return {
            "kind": record.RECORD_KIND,
            **dict(zip(_RECORD_COLUMNS, _columns(record), strict=True)),
        }

    def event_columns(self, event: AuditEvent) -> Mapping[str, Any]:
        return {
            "ref": event.ref,
            "version": event.version,
            "hash": event.hash,
            "kind": event.record_kind,
            "event": event.event,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "at": _utc(event.at),
        }

    def last_hash(self, ref: str) -> str | None:
        head = self.heads.get(ref)
        if head is not None and head[0] == self.read.get(ref):
            # The record read is, to the character, the one written together
            # with that audit event, in a transaction of this store that
            # committed: its newest event (audit rows are append-only).
            return head[1]
        found = self.cur.execute(self.sql["LAST_HASH"], (ref,)).fetchone()
        return None if found is None else str(found[0])

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        if not notifications:
            return 0
        encode = _json_bytes if self.doc_bytes else _json
        rows = [(n.key, n.ref, encode(_notification_data(n))) for n in notifications]
        return self._many("ENQUEUE_MANY", rows)

    # --- the report's summary rows (storage.base.Summaries, issue 15.3) -------------------

    def stage_summary(self, rows: Sequence[Sequence[Any]]) -> None:
        # SQLite's connection and psycopg's cursor both have executemany.
        self.cur.executemany(_summary_sql(self.backend, self.sql["PREFIX"])["INSERT"], rows)

    def summary(
        self, *, since: str | None = None, until: str | None = None
    ) -> list[tuple[str, str, str, str, str, int, int]]:
        # The compacted rows and the delta rows not compacted yet (the report adds them up).
        rows = []
        for name in (summary_tables.NAME, summary_tables.DELTA):
            for query in summary_tables.select_sums(self._table(name), since, until):
                rows.extend(summary_tables.rows_of(self.conn.execute(query)))
        return rows

    def replace_summary(self, rows: Iterable[Sequence[Any]]) -> None:
        texts = _summary_sql(self.backend, self.sql["PREFIX"])
        summary_tables.replace(self.raw, self.pg, texts, rows)

    def compact_summary(self) -> int:
        return summary_tables.compact(
            self.raw, self.pg, _summary_sql(self.backend, self.sql["PREFIX"])
        )

    def insert_many(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> None:
        # One executemany per table instead of a statement per row (an
        # import).  A taken ref is rare: only then is each row looked at, to
        # name the first one.
        seen: set[str] = set()
        for r in records:
            if r.ref in seen:
                raise ConflictError(r.ref, None, 1)
            seen.add(r.ref)
        rows = [(r.ref, *self._params(r)) for r in records]
        if self._many("INSERT_MANY", rows) != len(rows):
            self._check_inserted(rows)
        audit_rows = [_audit_row(e, self.doc_bytes) for e in events]
        if self._many("AUDIT_MANY", audit_rows) != len(audit_rows):
            self._check_appended(audit_rows)

    def _check_inserted(self, rows: Sequence[Sequence[Any]]) -> None:
        """Some record rows were not new: :class:`ConflictError` for the first taken ref."""
        for row in rows:
            found = self.raw.execute(self.sql["GET"], (row[0],)).fetchone()
            if found is None or found[1] != row[-1]:  # not the document written here
                raise ConflictError(row[0], None, self._version(row[0]))

    def _check_appended(self, rows: Sequence[Sequence[Any]]) -> None:
        """Some audit rows were not new: :class:`ConflictError` for the first one."""
        for row in rows:
            found = self.raw.execute(self.sql["AUDIT_HASH"], (row[0], row[1])).fetchone()
            if found is None or found[0] != row[2]:
                raise ConflictError(row[0], row[1] - 1, self._version(row[0]))

    def import_rows(self) -> _ImportRows:
        """An import batch's rows, made record by record (see :class:`_ImportRows`)."""
        return _ImportRows(self)

    def _new_row(self, record: Record) -> tuple[Any, ...]:
        """A new record's row, in the order of _Fast.INSERT: what :meth:`_params` writes.

        The record is kept parsed (a read of it finds it), but not its
        JSON-ready document: nine containers a record (a dict, the customer's,
        a list per list field) kept past commit for the next version's
        document (:func:`_next_document`), which an import seldom makes soon.
        """
        doc = _json(document(record))
        columns = _columns(record)
        kind = record.RECORD_KIND
        self._remember(record.ref, kind, doc, (record, columns))
        return (columns[0], kind, *columns[1:], doc)

    def next_sequence(self, name: str, count: int = 1) -> int:
        # Create the row if needed (a racing creator is ignored), then bump it
        # in place: the UPDATE locks the row, so two transactions never read
        # the same number.
        self.cur.execute(self.sql["SEQUENCE_CREATE"], (name,))
        self.cur.execute(self.sql["SEQUENCE_BUMP"], (count, name))
        return int(self.cur.execute(self.sql["SEQUENCE_READ"], (name,)).fetchone()[0]) - count + 1

    def query(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        customer: str | None = None,
        due_before: datetime | None = None,
    ) -> Iterator[Record]:
        if not all(_storable(v) for v in (kind, state, customer) if v is not None):
            return  # matches no record, on every backend alike
        records = self._table("records")
        statement = sa.select(records.c.kind, records.c.doc, records.c.ref)
        if due_before is not None:
            # By deadline: the due-date index both filters and orders.
            statement = statement.order_by(records.c.due_at, records.c.ref)
        else:
            statement = statement.order_by(records.c.ref)
        if kind is not None:
            statement = statement.where(records.c.kind == kind)
        if state is not None:
            statement = statement.where(records.c.state == state)
        if customer is not None:
            statement = statement.where(records.c.customer == customer)
        if due_before is not None:
            statement = statement.where(records.c.due_at < _utc(due_before))
        for row in self.conn.execute(statement).all():
            if self.unreadable is None:
                yield self._record(row.kind, row.doc, row.ref)
                continue
            try:
                record = self._record(row.kind, row.doc, row.ref)
            except Exception as exc:  # a damaged row: the worker reports it and goes on
                self._skip(row.ref, "the stored record", exc)
                continue
            yield record

    def _skip(self, ref: str, what: str, exc: Exception) -> None:
        assert self.unreadable is not None
        self.unreadable.append((ref, f"{what} cannot be read: {type(exc).__name__}: {exc}"))

    def _entry(self, row: Any) -> OutboxEntry:
        return OutboxEntry(
            notification=structure(json.loads(row.doc), Notification),
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=_from_utc(row.next_attempt_at),
            delivered_at=_from_utc(row.delivered_at),
        )

    def pending(
        self, *, now: datetime, limit: int | None = None, ref: str | None = None
    ) -> Sequence[OutboxEntry]:
        due = _due(self._table("outbox"), now, limit, ref)
        return [self._entry(row) for row in self.conn.execute(due)]

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int | None = None,
        ref: str | None = None,
    ) -> Sequence[OutboxEntry]:
        outbox = self._table("outbox")
        due = _due(outbox, now, limit, ref)
        if self.backend == "postgresql":
            # Rows another worker is claiming right now are skipped, not waited for.
            due = due.with_for_update(skip_locked=True)
        rows = {row.seq: row for row in self.conn.execute(due)}
        read: dict[int, OutboxEntry] = {}
        if self.unreadable is not None:
            rows = self._readable_entries(rows, read)
        if not rows:
            return []
        # Per record, keep the run that starts at its oldest pending entry.
        waiting = self.conn.execute(
            sa.select(outbox.c.ref, outbox.c.seq)
            .where(
                outbox.c.status == "pending",
                outbox.c.ref.in_(sorted({row.ref for row in rows.values()})),
            )
            .order_by(outbox.c.seq)
        )
        kept: list[int] = []
        stopped: set[str] = set()
        for owner, seq in waiting:
            if owner in stopped:
                continue
            if seq in rows:
                kept.append(seq)
            else:
                stopped.add(owner)
        lease = _utc(lease_until)
        self.conn.execute(
            outbox.update().where(outbox.c.seq.in_(kept)).values(next_attempt_at=lease)
        )
        return [
            attrs.evolve(read.get(seq) or self._entry(rows[seq]), next_attempt_at=lease_until)
            for seq in kept
        ]

    def _readable_entries(
        self, rows: dict[int, Any], read: dict[int, OutboxEntry]
    ) -> dict[int, Any]:
        # An unreadable entry is left pending and not leased: it holds back
        # its record's later entries (order per record), and the next pass
        # reports it again until someone repairs or removes it.
        kept = {}
        for seq, row in rows.items():
            try:
                read[seq] = self._entry(row)
            except Exception as exc:
                self._skip(row.ref, f"outbox entry {row.key!r}", exc)
            else:
                kept[seq] = row
        return kept

    def entries(self, *, status: str, limit: int | None = None) -> Sequence[OutboxEntry]:
        outbox = self._table("outbox")
        statement = sa.select(outbox).where(outbox.c.status == status).order_by(outbox.c.seq)
        if limit is not None:
            statement = statement.limit(limit)
        return [self._entry(row) for row in self.conn.execute(statement)]

    def outbox(self, key: str) -> OutboxEntry | None:
        outbox = self._table("outbox")
        row = self.conn.execute(sa.select(outbox).where(outbox.c.key == key)).first()
        return None if row is None else self._entry(row)

    def save_outbox(self, entry: OutboxEntry) -> None:
        outbox = self._table("outbox")
        self.conn.execute(
            outbox.update()
            .where(outbox.c.key == entry.notification.key)
            .values(
                status=entry.status,
                attempts=entry.attempts,
                last_error=entry.last_error,
                next_attempt_at=_utc(entry.next_attempt_at),
                delivered_at=_utc(entry.delivered_at),
            )
        )
