"""The in-memory store (``memory://``): for tests, scripts and benchmarks.

Thread-safe with optimistic concurrency: a transaction stages its writes and
checks, at each write and again at commit under one lock, that every record it
updates still has the version it read.  A failed transaction leaves nothing
behind.

The layout is chosen for the garbage collector (issue 15): a full collection
walks every tracked container and touches everything it refers to, so millions
of small objects made it pause for a second at 100,000 requirements.  Here
every dictionary that grows with the data maps a string to ``bytes`` (or to a
string or number), and such a dictionary is not tracked at all:

- records: the last :data:`_HOT` records written are kept as the frozen
  objects themselves (a command reads them again at once); older ones are
  packed into bytes (``_cold``, :func:`_pack_record`: JSON where every value
  is exactly its field's declared type, else marshal or pickle) and
  unpacked on read;
- audit events: one bytes blob per record, each event its canonical JSON (the
  bytes its hash covers, which sealing made already) and its hash
  (:func:`_audit_piece`), decoded back into equal :class:`AuditEvent` objects;
- outbox: one bytes blob per record, a segment per enqueue (the fields the
  notifications of one command share, kept once, then each entry's key and
  recipient; where every key is the command's head plus the recipient, the
  keys are not kept but made again on reading); repeated strings (events,
  topics, recipients, texts with the ref taken out) are numbers in a bounded
  table of the store.  Entry objects are made when someone reads the outbox.
  Delivered and dead entries stay, as compact as pending ones: they answer
  ``outbox(key)``, ``entries(status=...)`` and a repeated ``enqueue`` as the
  SQL stores do.
"""

from __future__ import annotations

import marshal
import operator
import pickle
import threading
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import repeat
from typing import Any

import attrs
import orjson

from .. import audit as _sealing
from .. import notices
from ..audit import canonical, from_canonical
from ..errors import ConflictError, StoreUnavailable
from ..model import AuditEvent, Notification, Record, maker
from ..serialize import unstructure
from .base import OutboxEntry, RawRow, add_summary_rows

__all__ = ["MemoryStore"]

#: How many records are kept as objects (the ones written last); the rest are packed.
_HOT = 256
#: At most this many distinct strings are numbered by the outbox's table (then inline).
_MAX_STRINGS = 16_384
#: Longer strings are never numbered.
_MAX_NUMBERED = 1024


class MemoryStore:
    """Records, audit trail, outbox and sequences in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hot = _HOT  # tests set 0 to pack every record at once
        # ref -> record, the last _HOT written (oldest first), as objects
        self._records: dict[str, Record] = {}
        # ref -> record packed (_pack_record): every other record
        self._cold: dict[str, bytes] = {}
        # ref -> what queries filter on and commit checks (_facts) of each packed record:
        # tuples of strings, numbers and datetimes, which the collector stops tracking
        self._index: dict[str, _Facts] = {}
        # ref -> the trail, oldest first, as one blob of _audit_piece()s
        self._audit: dict[str, bytes] = {}
        # ref -> the record's outbox entries, as one blob of segments (_Outbox)
        self._outbox: dict[str, bytes] = {}
        # ref -> two bytes of the hash of each kept key's head (_mark): a command's
        # keys share one; most "is this key there?" end here
        self._outbox_keys: dict[str, bytes] = {}
        # key -> ref, for a key that does not start with "ref:" (none of reqmgmt's own)
        self._odd_keys: dict[str, str] = {}
        # whether a ref holding ":" has outbox entries (keys are then matched on every prefix)
        self._colon_refs = False
        # the numbered strings of the outbox (both ways); the next enqueue number
        self._string_ids: dict[str, int] = {}
        self._strings: dict[int, str] = {}
        self._enqueued = 0
        self._sequences: dict[str, int] = {}
        # RowLock: a fixed set of locks, one per stripe of refs, so locking leaves
        # nothing behind (a refused command writes nothing, the table never grows).
        self._row_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        # The report's summary rows (issue 15.3): (metric, day, kind, a, b) -> [n, amount],
        # read as _summary: these and the moves' commands below added up
        self._sums: dict[tuple[str, str, str, str, str], list[int]] = {}
        # A command's move (summaries.move_rows' key) -> [commands, time, microseconds] of
        # the commands that made it since its first, whose rows went to _sums (keys and
        # all): their dwell times added up as a timedelta, microseconds past its range
        self._summary_moves: dict[tuple[str, str, str, str, str], list[Any]] = {}

    @property
    def _summary(self) -> dict[tuple[str, str, str, str, str], list[int]]:
        """The sums of every row staged, as ``add_summary_rows`` keeps them (a copy)."""
        with self._lock:
            return _summed(self)

    def transaction(self) -> _MemoryTransaction:
        """A unit of work: committed when the block ends normally, discarded otherwise."""
        # _MemoryTransaction(self) written out: every command opens one, and the class
        # call running __init__ costs ~0.4k instructions more.  The same slots, the same
        # values (tests/unit/test_path7.py compares with __init__).
        tx = _new_transaction(_MemoryTransaction)
        tx._store = self
        tx._writes = {}
        tx._audit = []
        tx._outbox = {}
        tx._saved = False
        tx._drawn = None
        tx._held = []
        tx._summary = None
        tx._checked = -1
        tx._mark = None
        return tx

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._records) + len(self._cold)

    def _record(self, ref: str) -> Record | None:
        """The committed record ``ref``, unpacked if it is not hot."""
        # A single dict lookup is atomic in CPython and records are immutable:
        # no lock needed for a hot one (commit still checks the version).
        record = self._records.get(ref)
        if record is not None:
            return record
        with self._lock:  # it may be moving between the two dictionaries
            record = self._records.get(ref)
            if record is not None:
                return record
            packed = self._cold.get(ref)
        return None if packed is None else _unpack_record(packed)


_new_transaction = object.__new__

#: Seconds a transaction waits for a record another one holds (RowLock).
_LOCK_WAIT = 30.0
#: How many locks the refs share (two refs on one stripe wait for each other).
_LOCK_STRIPES = 64


# --- packed values -----------------------------------------------------------------------
# marshal is the fastest and smallest packer of plain values (str, int, None,
# tuples); what it refuses (a datetime outside UTC, a host's own value in a
# record) goes through pickle.  The first byte says which.

#: A datetime's state in pickle's form (protocol 4 keeps ``fold``): ten bytes
#: that ``datetime(state, UTC)`` reads back, several times cheaper than arithmetic.
_STATE = 4
#: ``datetime(state, tzinfo)`` (the form pickle uses; typeshed knows only the other).
_from_state: Any = datetime


def _pack(value: Any) -> bytes:
    try:
        return b"m" + marshal.dumps(value)
    except ValueError:
        return b"p" + pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> Any:
    if data[:1] == b"m":
        return marshal.loads(data[1:])
    return pickle.loads(data[1:])


def _stamp(at: datetime | None) -> Any:
    """A UTC datetime as its 10-byte pickle state (marshal packs that); others as they are."""
    if at is None or at.tzinfo is not UTC:
        return at
    return at.__reduce_ex__(_STATE)[1][0]


def _at(value: Any) -> Any:
    return _from_state(value, UTC) if value.__class__ is bytes else value


# --- records -------------------------------------------------------------------------------
# A record whose values are all of their fields' declared types is packed as JSON
# (below, :func:`_json_coder`); any other takes this general path.
# A record is packed by functions generated once per class (:func:`_packer`,
# :func:`_unpacker`): an attrs object becomes the list ``[class number, field
# values...]`` (no field names), each value as it is when marshal gives it back
# unchanged (str, int, float, bool, None, bytes), else made into a list
# (:func:`_enc`): a UTC datetime as ``[its 10-byte pickle state]``, a tuple of
# such values as ``["t", values...]`` (a tuple of plain values stays a tuple),
# a Decimal as ``["n", its text]``, a date as ``["a", its ordinal]``, a nested
# object as its own list.  Lists mark what was converted, so a record holding
# a list (or anything else :func:`_enc` refuses: a datetime in another zone, a
# host's own value) is pickled whole instead.  About 750 bytes for a
# requirement with three sign-offs; unpacking fills the objects through
# :func:`reqmgmt.model.maker` (no converters or validators run again: the
# values were checked when the record was made).

_CLASS_IDS: dict[type, int] = {}
_PACKERS: dict[type, Any] = {}
_UNPACKERS: list[Any] = []
#: Values marshal gives back as they were, kept as they are.
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


class _Unflat(Exception):
    """A value :func:`_enc` does not convert: the record is pickled."""


def _enc(value: Any) -> Any:
    """A value that is not plain, as a list (see above); :class:`_Unflat` if it cannot be."""
    cls = value.__class__
    if cls is datetime:
        if value.tzinfo is not UTC:
            raise _Unflat
        return [value.__reduce_ex__(_STATE)[1][0]]
    if cls is tuple:
        for v in value:
            if v.__class__ not in _PLAIN:
                return ["t", *[v if v.__class__ in _PLAIN else _enc(v) for v in value]]
        return value
    packer = _PACKERS.get(cls)
    if packer is not None:
        return packer(value)
    if cls is frozenset:
        for v in value:
            if v.__class__ not in _PLAIN:
                raise _Unflat
        return value
    if cls is Decimal:
        return ["n", str(value)]
    if cls is date:
        return ["a", value.toordinal()]
    return _packer(cls)(value)


def _dec(value: list[Any]) -> Any:
    """The value :func:`_enc` made ``value`` from."""
    head = value[0]
    cls = head.__class__
    if cls is bytes:
        return _from_state(head, UTC)
    if cls is int:
        return _UNPACKERS[head](value)
    if head == "t":
        return tuple([v if v.__class__ is not list else _dec(v) for v in value[1:]])
    if head == "n":
        return Decimal(value[1])
    return date.fromordinal(value[1])


def _packer(cls: type) -> Any:
    """The generated packer of the attrs class ``cls`` (:class:`_Unflat` if it has none)."""
    found = _PACKERS.get(cls)
    if found is not None:
        return found
    if not attrs.has(cls) or cls.__dictoffset__:
        raise _Unflat  # not a slotted one: pickled
    names = [a.name for a in attrs.fields(cls)]
    class_id = len(_UNPACKERS)
    values = "".join(
        f"\n        v{i} if v{i}.__class__ in _plain_ else _enc_(v{i})," for i in range(len(names))
    )
    gets = "".join(f"\n    v{i} = r.{name}" for i, name in enumerate(names))
    fields = "".join(f"v{i}, " for i in range(len(names)))
    made = "".join(
        f"\n        v{i} if v{i}.__class__ is not list else _dec_(v{i})," for i in range(len(names))
    )
    source = (
        f"def pack(r):{gets}\n    return [{class_id},{values}\n    ]\n"
        f"def unpack(t):\n    _, {fields}= t\n    return _make_({made}\n    )\n"
    )
    namespace: dict[str, Any] = {
        "_plain_": _PLAIN,
        "_enc_": _enc,
        "_dec_": _dec,
        "_make_": maker(cls),
    }
    exec(source, namespace)
    _UNPACKERS.append(namespace["unpack"])
    _CLASS_IDS[cls] = class_id
    found = _PACKERS[cls] = namespace["pack"]
    return found


def _pack_record(record: Any) -> bytes:
    cls = record.__class__
    packer = _JSON_PACKERS[cls] if cls in _JSON_PACKERS else _json_coder(cls)
    if packer is not None:
        try:
            return b"j" + orjson.dumps([_JSON_CLASS_IDS[cls], packer(record)], option=_JSON_OPTIONS)
        except Exception:  # a value not of its declared type: the general path decides
            pass
    try:
        return b"g" + marshal.dumps(_packer(cls)(record))
    except (_Unflat, ValueError):
        return b"p" + pickle.dumps(record, pickle.HIGHEST_PROTOCOL)


def _unpack_record(data: bytes) -> Any:
    kind = data[:1]
    if kind == b"j":
        kept = orjson.loads(data[1:])
        return _JSON_UNPACKERS[kept[0]](kept[1])
    if kind == b"g":
        kept = marshal.loads(data[1:])
        return _UNPACKERS[kept[0]](kept)
    return pickle.loads(data[1:])


# --- records, by their declared field types -------------------------------------------------
# The usual record is packed as JSON by orjson (three times cheaper than marshal
# for the same values, and it writes UTC datetimes itself) through functions
# generated once per class from its fields' declared types (:func:`_json_coder`):
# ``[class number, [field values...]]``, a nested object as its own array, a
# tuple or frozenset as an array, a datetime or date as orjson's ISO text, a
# Decimal as its text.  The JSON does not say which array was a tuple or which
# text a datetime: the class's declared types do, so every value is checked to be
# exactly its declared type first (``type()``, not ``__class__``, which an object
# can fake), UTC datetimes with ``fold`` 0 only (the ISO text has no fold).
# orjson itself refuses str and int subclasses (``OPT_PASSTHROUGH_SUBCLASS``
# without a default), ints beyond 64 bits and lone surrogates.  Anything else
# (a value of another type, a class whose fields' types are not all of the
# kinds below, a host's own record class) takes the general path above.

#: orjson refuses subclasses of str, int, dict and list (our values are exact).
_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
#: class -> its generated JSON packer, or ``None`` if it has none (general path).
_JSON_PACKERS: dict[type, Any] = {}
#: class -> its number in the JSON (the index of its unpacker).
_JSON_CLASS_IDS: dict[type, int] = {}
#: class number -> the generated function making the object from its JSON array.
_JSON_UNPACKERS: list[Any] = []
#: Held while packers are made (re-entered for the nested classes).
_JSON_MAKING = threading.RLock()
#: Declared types whose values go into the JSON as they are (checked to be exactly this type).
_AS_IS = {str: "s", int: "i", bool: "b"}


def _str_pairs(value: Any) -> Any:
    """``tuple[tuple[str, ...], ...]`` checked (``join`` refuses any item not a str)."""
    for item in value:
        if type(item) is not tuple:
            raise _Unflat
        "".join(item)
    return value


def _kind(hint: Any) -> tuple[str, Any] | None:
    """How a field of declared type ``hint`` is packed (``None``: not by JSON)."""
    optional = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        if len(args) != 2 or args[1] is not type(None):
            return None
        hint, optional = args[0], True
        args = typing.get_args(hint)
    found: tuple[str, Any] | None = None
    origin = typing.get_origin(hint)
    if hint in _AS_IS:
        found = (_AS_IS[hint], None)
    elif hint is datetime:
        found = ("dt", None)
    elif hint is date:
        found = ("d", None)
    elif hint is Decimal:
        found = ("n", None)
    elif origin is frozenset and args == (str,):
        found = ("fs", None)
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = args[0]
        if item is str:
            found = ("ts", None)
        elif typing.get_origin(item) is tuple and set(typing.get_args(item)) == {str}:
            found = ("tss", None)
        elif isinstance(item, type) and _json_coder(item) is not None:
            found = ("to", item)
    elif isinstance(hint, type) and _json_coder(hint) is not None:
        found = ("o", hint)
    if found is None or not optional:
        return found
    return (found[0] + "?", found[1])


#: Per kind: lines checking and converting ``{v}`` (they raise on any other value),
#: and the expression reading it back from ``{x}`` (``{c}``: the nested class's names).
_PACK_LINES = {
    "s": "if type({v}) is not _str: raise _unflat_",
    "i": "if type({v}) is not _int: raise _unflat_",
    "b": "if type({v}) is not _bool: raise _unflat_",
    "dt": "if type({v}) is not _datetime or {v}.tzinfo is not _UTC or {v}.fold: raise _unflat_",
    "d": "if type({v}) is not _date: raise _unflat_",
    "n": "if type({v}) is not _Decimal: raise _unflat_\n{i}{v} = _str({v})",
    "ts": "if type({v}) is not _tuple: raise _unflat_\n{i}if {v}: _join({v})",
    "tss": "if type({v}) is not _tuple: raise _unflat_\n{i}_str_pairs_({v})",
    "fs": "if type({v}) is not _frozenset: raise _unflat_\n{i}{v} = _tuple({v})\n{i}_join({v})",
    "o": "{v} = _pack{c}({v})",
    "to": "if type({v}) is not _tuple: raise _unflat_\n{i}{v} = _list(_map(_pack{c}, {v}))",
}
_UNPACK_EXPRESSIONS = {
    "s": "{x}",
    "i": "{x}",
    "b": "{x}",
    "dt": "_from_iso({x})",
    "d": "_date_from_iso({x})",
    "n": "_Decimal({x})",
    "ts": "_tuple({x})",
    "tss": "_tuple(_map(_tuple, {x}))",
    "fs": "_frozenset({x})",
    "o": "_unpack{c}({x})",
    "to": "_tuple(_map(_unpack{c}, {x}))",
}


def _json_coder(cls: type) -> Any:
    """The generated JSON packer of the attrs class ``cls``, or ``None`` (general path).

    It checks its argument is exactly a ``cls`` (a nested object is packed by
    its declared class's packer) and returns the array of its field values.
    """
    # One thread makes them: another would read a class being made as having none.
    with _JSON_MAKING:
        if cls in _JSON_PACKERS:
            return _JSON_PACKERS[cls]
        return _make_json_coder(cls)


def _make_json_coder(cls: type) -> Any:
    _JSON_PACKERS[cls] = None  # a class nesting itself, and the answer if any field has no kind
    if not attrs.has(cls) or cls.__dictoffset__:
        return None
    try:
        hints = typing.get_type_hints(cls)
        kinds = [_kind(hints[a.name]) for a in attrs.fields(cls)]
    except Exception:  # a host's class whose annotations do not resolve
        return None
    known = [kind for kind in kinds if kind is not None]
    if len(known) != len(kinds):
        return None
    namespace: dict[str, Any] = {
        "_unflat_": _Unflat,
        "_cls_": cls,
        "_make_": maker(cls),
        "_str": str,
        "_int": int,
        "_bool": bool,
        "_datetime": datetime,
        "_date": date,
        "_Decimal": Decimal,
        "_tuple": tuple,
        "_frozenset": frozenset,
        "_list": list,
        "_map": map,
        "_join": "".join,
        "_str_pairs_": _str_pairs,
        "_UTC": UTC,
        "_from_iso": datetime.fromisoformat,
        "_date_from_iso": date.fromisoformat,
    }
    lines = ["def pack(r):", "    if type(r) is not _cls_: raise _unflat_"]
    made = []
    for n, (a, (name, nested)) in enumerate(zip(attrs.fields(cls), known, strict=True)):
        optional = name.endswith("?")
        name = name.rstrip("?")
        if nested is not None:
            namespace[f"_pack{n}"] = _JSON_PACKERS[nested]
            namespace[f"_unpack{n}"] = _JSON_UNPACKERS[_JSON_CLASS_IDS[nested]]
        v, x, indent = f"v{n}", f"t[{n}]", "        " if optional else "    "
        lines.append(f"    {v} = r.{a.name}")
        if optional:
            lines.append(f"    if {v} is not None:")
        lines.append(indent + _PACK_LINES[name].format(v=v, i=indent, c=n))
        read = _UNPACK_EXPRESSIONS[name].format(x=x, c=n)
        made.append(f"None if {x} is None else {read}" if optional and read != x else read)
    lines.append(f"    return [{', '.join(f'v{n}' for n in range(len(known)))}]")
    lines.append("def unpack(t):")
    lines.append(f"    return _make_({', '.join(made)})")
    exec("\n".join(lines), namespace)
    _JSON_CLASS_IDS[cls] = len(_JSON_UNPACKERS)
    _JSON_UNPACKERS.append(namespace["unpack"])
    found = _JSON_PACKERS[cls] = namespace["pack"]
    return found


#: A packed record's kind, state, version, customer id and next deadline.
_Facts = tuple[Any, Any, Any, Any, Any]


def _facts(record: Any) -> _Facts:
    """What :meth:`_MemoryTransaction.query` filters on (read as it reads a record) and
    the version a commit checks: kept beside a packed record so neither unpacks it."""
    return (
        record.RECORD_KIND,
        record.state,
        record.version,
        getattr(getattr(record, "customer", None), "id", None),
        record.next_deadline,
    )


def _facts_read(
    record: Any, kind: str | None, state: str | None, customer: str | None, due: bool = False
) -> _Facts:
    """The facts of a record object that the given filters look at (the others ``None``)."""
    return (
        None if kind is None else record.RECORD_KIND,
        None if state is None else record.state,
        None,
        None if customer is None else getattr(getattr(record, "customer", None), "id", None),
        record.next_deadline if due else None,
    )


def _matches(
    facts: _Facts, kind: str | None, state: str | None, customer: str | None, due: Any
) -> bool:
    """Whether a record with ``facts`` passes :meth:`_MemoryTransaction.query`'s filters."""
    return not (
        (kind is not None and kind != facts[0])
        or (state is not None and facts[1] != state)
        or (customer is not None and facts[3] != customer)
        or (due is not None and (facts[4] is None or facts[4] >= due))
    )


# --- audit trails --------------------------------------------------------------------------
# A trail is one blob: per event its canonical JSON, its hash as UTF-8 text,
# then six bytes: the hash's length (two) and the JSON's (four), little-endian.
# Read from the end.


#: The trail blob a commit wrote last and its newest event's hash (what :meth:`last_hash`
#: would read from its end): a command asks for the hash its commit just wrote.  Bytes
#: are immutable and the blob is held here, so the same object has the same end.
_LAST_TRAIL: tuple[bytes | None, str] = (None, "")


def _audit_piece(data: bytes, digest: str, trail: bytes = b"") -> bytes:
    """One event's piece of a trail blob (``trail``: the blob it is joined to, in
    one copy): its canonical JSON, its hash, then both lengths."""
    text = digest.encode("utf-8", "surrogatepass")
    if len(text) > 0xFFFF:
        raise StoreUnavailable("memory://", "an audit hash longer than 65,535 bytes")
    return b"".join((trail, data, text, (len(data) << 16 | len(text)).to_bytes(6, "little")))


def _trail(blob: bytes) -> list[tuple[bytes, str]]:
    """The (canonical JSON, hash) pairs of a trail blob, oldest first."""
    out: list[tuple[bytes, str]] = []
    end = len(blob)
    view = memoryview(blob)
    while end > 0:
        lengths = int.from_bytes(view[end - 6 : end], "little")
        start = end - 6 - (lengths & 0xFFFF)
        digest = bytes(view[start : end - 6]).decode("utf-8", "surrogatepass")
        out.append((bytes(view[start - (lengths >> 16) : start]), digest))
        end = start - (lengths >> 16)
    out.reverse()
    return out


def _pack_trail(pairs: Iterable[tuple[bytes, str]]) -> bytes:
    """The blob of (canonical JSON, hash) pairs (the inverse of :func:`_trail`)."""
    return b"".join(_audit_piece(data, digest) for data, digest in pairs)


# --- the outbox ----------------------------------------------------------------------------
#: An outbox entry as the readers see it: the notification's fields in their
#: declared order; an entry saved back (delivered, failed, leased) has its
#: bookkeeping after them: status, attempts, last error, next attempt, delivered at.
#: A new notification has none (pending, no attempt yet).
_Row = tuple[Any, ...]
_NOTIFICATION_FIELDS = tuple(a.name for a in attrs.fields(Notification))
_REF, _STATUS = 1, len(_NOTIFICATION_FIELDS)
_NEW: tuple[Any, ...] = ("pending", 0, None, None, None)
# In a kept segment, the fields one command's notifications share come once:
# record kind, version, event, topic, texts, created at, note, details.
_SHARED = (2, 3, 4, 6, 7, 8, 9, 10, 11)


def _row(item: Notification | OutboxEntry) -> _Row:
    """The row of a new notification (pending) or of an entry saved back."""
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
    """The entry a row stands for (built only when someone reads it)."""
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


class _Outbox:
    """Packs and unpacks one record's outbox blob with the store's string table.

    A blob is a run of segments, each four bytes of length then a packed
    tuple whose first item, ``number``, orders segments across records
    (enqueue order).  Three forms, told apart by their length: a command's new
    notifications (:func:`_new_segment`, six items), rows that share their
    fields (:meth:`segment`, seven) and the long form ``(number, shared,
    entries)``: ``shared`` the fields the entries share, each entry its key
    and recipient and, once saved back, its bookkeeping.  A string is kept
    with the record's ref cut out (``\\x00`` in its place), as a number when
    the table has it (or room for it), else as itself; a string holding
    ``\\x00`` or a value that is no string is kept as a 1-tuple.
    """

    __slots__ = ("ids", "ref", "strings")

    def __init__(self, store: MemoryStore, ref: str) -> None:
        self.ref = ref
        self.ids = store._string_ids
        self.strings = store._strings

    def enc(self, value: Any) -> Any:
        if value.__class__ is not str or "\x00" in value:
            return (value,)
        text = value.replace(self.ref, "\x00") if self.ref else value
        return self.number(text)

    def dec(self, value: Any) -> Any:
        cls = value.__class__
        if cls is tuple:
            return value[0]
        text = self.strings[value] if cls is int else value
        return text.replace("\x00", self.ref) if "\x00" in text else text

    def number(self, text: str) -> Any:
        """``text`` as its number in the table (numbered now if there is room), else itself."""
        found = self.ids.get(text)
        if found is not None:
            return found
        if len(text) > _MAX_NUMBERED or len(self.ids) >= _MAX_STRINGS:
            return text
        found = self.ids[text] = len(self.ids)
        self.strings[found] = text
        return found

    def segment(self, number: int, rows: Sequence[_Row]) -> bytes:
        """One segment of rows that share their _SHARED fields.

        Usually ``(number, version, created, note, details, strings, books)``:
        the strings (kind, event, topic, texts, then each entry's key and
        recipient) joined by ``\x01`` with the ref cut out, one number for
        all of them (they repeat from record to record); ``books`` each
        entry's bookkeeping or ``None``, ``()`` when none has any.  A string
        holding ``\x00`` or ``\x01``, or a value that is no string, makes
        the long form ``(number, shared, entries)``, each string on its own.
        """
        first = rows[0]
        ref = self.ref
        strings = [first[2], first[4], first[6], first[7], first[8]]
        books: list[Any] = []
        for row in rows:
            strings += (row[0], row[5])
            if len(row) > _STATUS:
                status, attempts, last_error, next_at, delivered_at = row[_STATUS:]
                books.append((status, attempts, last_error, _stamp(next_at), _stamp(delivered_at)))
            else:
                books.append(None)
        try:
            joined = "\x01".join(strings)
        except TypeError:
            joined = None
        if (
            joined is not None
            and "\x01" not in ref
            and "\x00" not in joined
            and joined.count("\x01") == len(strings) - 1
        ):
            kept: tuple[Any, ...] = (
                number, first[3], _stamp(first[9]), first[10], first[11],
                self.number(joined.replace(ref, "\x00") if ref else joined),
                tuple(books) if any(books) else (),
            )  # fmt: skip
        else:
            kept = self._long_segment(number, rows)
        data = _pack(kept)
        return len(data).to_bytes(4, "little") + data

    def _long_segment(self, number: int, rows: Sequence[_Row]) -> tuple[Any, ...]:
        first = rows[0]
        enc = self.enc
        kind, version, event, _, topic, zh, en, created, note, details = first[2:_STATUS]
        shared = (
            enc(kind), version, enc(event), enc(topic), enc(zh), enc(en),
            _stamp(created), note, details,
        )  # fmt: skip
        entries = []
        for row in rows:
            kept: tuple[Any, ...] = (enc(row[0]), enc(row[5]))
            if len(row) > _STATUS:
                status, attempts, last_error, next_at, delivered_at = row[_STATUS:]
                kept += (status, attempts, last_error, _stamp(next_at), _stamp(delivered_at))
            entries.append(kept)
        return (number, shared, tuple(entries))

    def rows(self, blob: bytes) -> list[tuple[int, _Row]]:
        """Every entry of the blob as (segment number, row), oldest first."""
        out: list[tuple[int, _Row]] = []
        view = memoryview(blob)
        pos, end, dec, ref = 0, len(blob), self.dec, self.ref
        while pos < end:
            size = int.from_bytes(view[pos : pos + 4], "little")
            kept = _unpack(bytes(view[pos + 4 : pos + 4 + size]))
            pos += 4 + size
            if len(kept) == 6:  # new notifications (_new_segment): keys are head + recipient
                number, version, created, note, details, code = kept
                text = self.strings[code] if code.__class__ is int else code
                if "\x00" in text:
                    text = text.replace("\x00", ref)
                kind, event, topic, zh, en, head, *recipients = text.split("\x01")
                created = _at(created)
                for to in recipients:
                    row: _Row = (
                        head + to, ref, kind, version, event, to, topic, zh, en, created, note,
                        details,
                    )  # fmt: skip
                    out.append((number, row))
                continue
            if len(kept) == 7:
                number, version, created, note, details, code, books = kept
                text = self.strings[code] if code.__class__ is int else code
                if "\x00" in text:
                    text = text.replace("\x00", ref)
                kind, event, topic, zh, en, *pairs = text.split("\x01")
                created = _at(created)
                for i in range(0, len(pairs), 2):
                    row = (
                        pairs[i], ref, kind, version, event, pairs[i + 1], topic, zh, en,
                        created, note, details,
                    )  # fmt: skip
                    book = books[i // 2] if books else None
                    if book is not None:
                        status, attempts, last_error, next_at, delivered_at = book
                        row += (status, attempts, last_error, _at(next_at), _at(delivered_at))
                    out.append((number, row))
                continue
            number, shared, entries = kept
            kind, version, event, topic, zh, en, created, note, details = shared
            kind, event, topic, zh, en = dec(kind), dec(event), dec(topic), dec(zh), dec(en)
            created = _at(created)
            for entry in entries:
                row = (
                    dec(entry[0]), ref, kind, version, event, dec(entry[1]), topic, zh, en,
                    created, note, details,
                )  # fmt: skip
                if len(entry) > 2:
                    status, attempts, last_error, next_at, delivered_at = entry[2:]
                    row += (status, attempts, last_error, _at(next_at), _at(delivered_at))
                out.append((number, row))
        return out


def _shared(row: _Row) -> tuple[Any, ...]:
    return tuple(row[i] for i in _SHARED)


def _owners(store: MemoryStore, key: str) -> list[str]:
    """The refs whose blob may hold ``key`` (its ref is a prefix ending before a colon)."""
    mark = _mark(key)
    marks = store._outbox_keys
    odd = store._odd_keys.get(key) if store._odd_keys else None
    found = [] if odd is None else [odd]
    colon = key.find(":")
    while colon != -1:
        ref = key[:colon]
        if mark in marks.get(ref, b""):
            found.append(ref)
        if not store._colon_refs:  # no kept ref holds a colon: the first prefix is the only one
            break
        colon = key.find(":", colon + 1)
    return found


def _find(store: MemoryStore, key: str) -> tuple[str, list[tuple[int, _Row]], int] | None:
    """The ref, its rows and the index of ``key``'s row, if the store has it."""
    for ref in _owners(store, key):
        blob = store._outbox.get(ref)
        if blob is None:
            continue
        rows = _Outbox(store, ref).rows(blob)
        for i, (_, row) in enumerate(rows):
            if row[0] == key:
                return ref, rows, i
    return None


def _all_rows(store: MemoryStore, blobs: Iterable[tuple[str, bytes]]) -> list[_Row]:
    """Every row of the given blobs, in enqueue order across records."""
    numbered: list[tuple[int, int, _Row]] = []
    for ref, blob in blobs:
        for number, row in _Outbox(store, ref).rows(blob):
            numbered.append((number, len(numbered), row))
    numbered.sort(key=lambda t: (t[0], t[1]))
    return [row for _, _, row in numbered]


def _rewrite(store: MemoryStore, ref: str, rows: list[tuple[int, _Row]]) -> None:
    """Keep ``rows`` (numbered) as ``ref``'s blob, segments as they were numbered."""
    packer = _Outbox(store, ref)
    parts = []
    start = 0
    while start < len(rows):
        number = rows[start][0]
        stop = start + 1
        while (
            stop < len(rows)
            and rows[stop][0] == number
            and _shared(rows[stop][1]) == _shared(rows[start][1])
        ):
            stop += 1
        parts.append(packer.segment(number, [row for _, row in rows[start:stop]]))
        start = stop
    store._outbox[ref] = b"".join(parts)


#: The fields one command's notifications share (a segment keeps them once), the ref first.
_SHARED_OF = operator.attrgetter(
    "ref", "record_kind", "version", "event", "topic", "text_zh", "text_en", "created_at",
    "note", "details",
)  # fmt: skip


def _append_new(
    store: MemoryStore,
    notes: Sequence[Notification],
    mark: bytes | None = None,
    all_keys: list[str] | None = None,
) -> None:
    """:func:`_append` of new notifications, their segments made straight from them.

    No row is built: each run of notifications sharing :data:`_SHARED_OF` is one
    segment with no bookkeeping, in :func:`_new_segment`'s form when its keys are
    one head and each recipient, else in :meth:`_Outbox.segment`'s usual form; a
    run neither form can hold goes through :func:`_append` (the long form).  The
    per-notification work is done by C loops (``map``, slices).
    ``mark`` and ``all_keys``: what :meth:`_MemoryTransaction._enqueue_new` found
    of ``notes`` (their keys, which share one head ``ref:version:`` of a ref
    without a colon, and its mark), used when one segment holds them all.
    """
    outbox, marks = store._outbox, store._outbox_keys
    shared = list(map(_SHARED_OF, notes))
    start, count = 0, len(notes)
    while start < count:
        first = shared[start]
        stop = count if shared.count(first) == count else start + 1
        while stop < count and shared[stop] == first:
            stop += 1
        whole = mark is not None and all_keys is not None and start == 0 and stop == count
        run = notes[start:stop]
        ref, kind, version, event, topic, zh, en, created, note, details = first
        keys = all_keys if whole and all_keys is not None else list(map(_KEY_OF, run))
        recipients = list(map(_RECIPIENT_OF, run))
        number = store._enqueued
        data = _new_segment(
            store, number, ref, kind, version, event, topic, zh, en, created, note, details, keys,
            recipients,
        )  # fmt: skip
        if data is None:
            strings = [kind, event, topic, zh, en, *keys, *keys]
            strings[5::2] = keys
            strings[6::2] = recipients
            try:
                joined = "\x01".join(strings)
            except TypeError:
                joined = None
            if (
                joined is None
                or ref.__class__ is not str
                or "\x01" in ref
                or "\x00" in joined
                or joined.count("\x01") != len(strings) - 1
            ):
                _append(store, [_row(n) for n in run])
                start = stop
                continue
            text = joined.replace(ref, "\x00") if ref else joined
            code = store._string_ids.get(text)
            kept = (
                number, version, _stamp(created), note, details,
                _Outbox(store, ref).number(text) if code is None else code, (),
            )  # fmt: skip
            data = _pack(kept)
        outbox[ref] = b"".join((outbox.get(ref, b""), len(data).to_bytes(4, "little"), data))
        if whole and mark is not None:  # checked by _enqueue_new: one mark, none odd, no colon
            marks[ref] = marks.get(ref, b"") + mark
            store._enqueued = number + 1
            return
        head = _head(keys[0])
        if (
            head is not keys[0]
            and head.startswith(f"{ref}:")
            and all(map(str.startswith, keys, repeat(head)))
        ):  # the usual keys "ref:version:recipient": one mark (as _marks makes it), none odd
            marks[ref] = marks.get(ref, b"") + _head_mark(head)
        else:
            marks[ref] = marks.get(ref, b"") + _marks(keys)
            for key in keys:
                if not key.startswith(f"{ref}:"):
                    store._odd_keys[key] = ref
        if ":" in ref:
            store._colon_refs = True
        store._enqueued = number + 1
        start = stop


def _new_segment(
    store: MemoryStore,
    number: int,
    ref: Any,
    kind: Any,
    version: Any,
    event: Any,
    topic: Any,
    zh: Any,
    en: Any,
    created: Any,
    note: Any,
    details: Any,
    keys: list[Any],
    recipients: Sequence[Any],
) -> bytes | None:
    """The packed segment ``number`` of new notifications that share their
    :data:`_SHARED_OF` fields (given one by one) and whose keys are one head and
    each recipient (a command's ``ref:version:`` and ``recipient``); ``None`` if
    they are not, or a string holds ``\\x00`` or ``\\x01``, or one is no string.

    ``(number, version, created, note, details, code)``: ``code`` the strings kind,
    event, topic, texts and head (the ref cut out), then each recipient, joined by
    ``\\x01``, numbered as one (a command's recur from record to record).  The keys
    are not kept (:meth:`_Outbox.rows` makes them again), and the recipients are
    checked and joined apart from the texts (ASCII, where a command's Chinese text
    makes the whole two bytes a character): a third of the text to cut and scan.
    Packed by marshal's version 2, which builds no table of shared references
    (~1,500 instructions a segment less; a few bytes more).
    """
    key = keys[0]
    if (
        ref.__class__ is not str
        or key.__class__ is not str
        or recipients[0].__class__ is not str
        or "\x01" in ref
    ):
        return None
    try:
        head = key[: len(key) - len(recipients[0])]
        text = "\x01".join((kind, event, topic, zh, en, head, *recipients))
        # One \x01 between pieces only (counted below): then the keys, joined, are the
        # head and each recipient only if each key is (each side holds one per key).
        if "\x01".join(keys) != head + f"\x01{head}".join(recipients):
            return None
    except TypeError:  # a key or string that is no string
        return None
    if "\x00" in text or text.count("\x01") != len(keys) + 5:
        return None
    stamp = _stamp(created)
    if ref:
        text = text.replace(ref, "\x00")
    code = store._string_ids.get(text)
    if code is None:
        code = _Outbox(store, ref).number(text)
    kept = (number, version, stamp, note, details, code)
    try:
        return b"m" + marshal.dumps(kept, 2)
    except ValueError:
        return b"p" + pickle.dumps(kept, pickle.HIGHEST_PROTOCOL)


def _append_command(
    store: MemoryStore, notes: Sequence[Notification], keys: list[str], mark: bytes
) -> bool:
    """Keep a command's new notifications as :meth:`_MemoryTransaction._enqueue_new`
    staged them (distinct keys sharing one head of a ref without a colon, ``mark``
    its mark, no odd key): one segment of :func:`_new_segment`.  ``False``, with
    nothing kept, unless they share their :data:`_SHARED_OF` fields as the same
    objects (as a command makes them) and :func:`_new_segment` can hold them;
    :func:`_append_new` then keeps them.

    The fields are read by a loop here, not by ``attrgetter`` in ``map``: a
    specialised read of a slot costs ~90 instructions, ``attrgetter``'s ~240.
    """
    first = notes[0]
    ref, kind, version, event = first.ref, first.record_kind, first.version, first.event
    topic, zh, en, created = first.topic, first.text_zh, first.text_en, first.created_at
    note, details = first.note, first.details
    recipients: list[Any] = []
    add = recipients.append
    for n in notes:
        if (
            n.ref is not ref
            or n.record_kind is not kind
            or n.version is not version
            or n.event is not event
            or n.topic is not topic
            or n.text_zh is not zh
            or n.text_en is not en
            or n.created_at is not created
            or n.note is not note
            or n.details is not details
        ):
            return False
        add(n.recipient)
    return _keep_segment(
        store, mark, ref, kind, version, event, topic, zh, en, created, note, details, keys,
        recipients,
    )  # fmt: skip


def _append_made(store: MemoryStore, made: tuple[Any, ...], mark: bytes) -> bool:
    """:func:`_append_command` of a command's notifications staged as what they are
    made of (``notices.made``, which :meth:`_MemoryTransaction._enqueue_made` staged
    where the keys are the prefix and each distinct recipient, str itself): the same
    segment, from those values, no notification read (nor made: a command whose text
    the table did not number yet, a note of its own say, is packed here).  ``False``,
    with nothing kept, where :func:`_new_segment` cannot hold them."""
    (
        _, recipients, prefix, ref, kind, version, event, topic, zh, en, created, note,
        details,
    ) = made  # fmt: skip
    return _keep_segment(
        store, mark, ref, kind, version, event, topic, zh, en, created, note, details,
        [prefix + to for to in recipients], recipients,
    )  # fmt: skip


def _keep_segment(store: MemoryStore, mark: bytes, ref: str, *values: Any) -> bool:
    """Keep one segment of :func:`_new_segment` (``values``: its fields after the
    number) after ``ref``'s, its head's ``mark`` after ``ref``'s marks, numbered with
    the store's next count; ``False``, with nothing kept, where it cannot hold them."""
    number = store._enqueued
    data = _new_segment(store, number, ref, *values)
    if data is None:
        return False
    outbox, marks = store._outbox, store._outbox_keys
    outbox[ref] = b"".join((outbox.get(ref, b""), len(data).to_bytes(4, "little"), data))
    marks[ref] = marks.get(ref, b"") + mark
    store._enqueued = number + 1
    return True


_KEY_OF = operator.attrgetter("key")

#: Tuples of distinct recipients, all str itself without ``\x00`` or ``\x01``, by id
#: (each kept, so an id never stands for another): a plan's recipients, the same
#: tuple for every command of its transition (:meth:`_MemoryTransaction._enqueue_made`).
_STR_TUPLES: dict[int, tuple[Any, ...]] = {}


def _str_tuple(values: Any) -> bool:
    """Whether ``values`` is a tuple of distinct str itself holding no ``\x00`` or
    ``\x01`` (then kept in :data:`_STR_TUPLES`)."""
    # type(), not __class__, which an object (or a str subclass with its own + and
    # __radd__) can fake: only str itself makes prefix + recipient the key.
    if type(values) is not tuple or any(type(value) is not str for value in values):
        return False
    joined = "".join(values)
    if "\x00" in joined or "\x01" in joined or len(set(values)) != len(values):
        return False
    if len(_STR_TUPLES) >= 1024:
        _STR_TUPLES.clear()
    _STR_TUPLES[id(values)] = values
    return True


_RECIPIENT_OF = operator.attrgetter("recipient")


def _head(key: str) -> str:
    """``key`` up to its second colon (all of it if it has fewer): ``ref:version:``
    of a command's key ``ref:version:recipient``, shared by all of that command's keys."""
    end = key.find(":", key.find(":") + 1) + 1
    return key[:end] if end else key


def _mark(key: str) -> bytes:
    """The mark of ``key``: :func:`_head_mark` of its head (what :func:`_owners` and
    ``enqueue`` look for in ``_outbox_keys``; a filter: a hit is checked on the rows)."""
    return _head_mark(_head(key))


def _head_mark(head: str) -> bytes:
    """Two bytes of the hash of a key's head, little-endian: the one place the mark's
    form is written (every writer and reader of ``_outbox_keys`` comes here)."""
    return (hash(head) & 0xFFFF).to_bytes(2, "little")


def _marks(keys: Sequence[str]) -> bytes:
    """The distinct :func:`_mark` of ``keys`` (not empty), in order: one when they share
    a two-colon head (a command's keys, checked in one C loop), else one per head."""
    head = _head(keys[0])
    if head is not keys[0] and all(map(str.startswith, keys, repeat(head))):
        # A key starting with a head (two colons, the second last) has that head.
        return _head_mark(head)
    return b"".join(dict.fromkeys(map(_mark, keys)))


def _append(store: MemoryStore, rows: Sequence[_Row]) -> None:
    """Keep new rows (no key of theirs kept yet), each run of one command in one segment."""
    outbox, marks, odd = store._outbox, store._outbox_keys, store._odd_keys
    start, count = 0, len(rows)
    while start < count:
        first = rows[start]
        ref = first[1]
        head, tail = first[2:5], first[6:_STATUS]  # the _SHARED fields
        stop = start + 1
        while stop < count:
            row = rows[stop]
            if row[1] != ref or row[2:5] != head or row[6:_STATUS] != tail:
                break
            stop += 1
        run = rows[start:stop]
        number = store._enqueued
        outbox[ref] = outbox.get(ref, b"") + _Outbox(store, ref).segment(number, run)
        marks[ref] = marks.get(ref, b"") + _marks([row[0] for row in run])
        prefix = f"{ref}:"
        for row in run:
            if not row[0].startswith(prefix):
                odd[row[0]] = ref
        if ":" in ref:
            store._colon_refs = True
        # Counted once the keys can be found: a transaction that read the count
        # before checking its keys and sees it unchanged at commit need not check again.
        store._enqueued = number + 1
        start = stop


#: Marks a transaction's staged summary as a command's move: (_MOVE, key, elapsed, rows).
_MOVE = object()
#: At most this many moves are counted apart (then added to the sums and counted anew).
_MAX_MOVES = 4096
_NO_TIME = timedelta()


def _micros(elapsed: timedelta) -> int:
    return (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds


def _add_move(store: MemoryStore, key: tuple[str, str, str, str, str], elapsed: timedelta) -> None:
    """A move's first command: its rows (``summaries.move_rows``) added to the sums as
    ``stage_summary``'s are (their keys in the order they come); the move's next
    commands are counted in ``_summary_moves``."""
    from ..summaries import move_rows

    add_summary_rows(store._sums, move_rows(key, _micros(elapsed)))
    moves = store._summary_moves
    if len(moves) >= _MAX_MOVES:
        _add_moves(store._sums, moves)
        moves.clear()
    moves[key] = [0, _NO_TIME, 0]


def _add_moves(
    sums: dict[tuple[str, str, str, str, str], list[int]],
    moves: Mapping[tuple[str, str, str, str, str], list[Any]],
) -> None:
    """Add the commands counted per move to ``sums``: the rows ``move_rows`` gives,
    times the commands (their keys are in ``sums``: each move's first put them there)."""
    for (day, kind, state, dest, created), (commands, elapsed, micros) in moves.items():
        dwell = sums[("dwell", day, kind, state, "")]
        dwell[1] += micros + _micros(elapsed)
        if created:  # the state changed: dwell's n 1 a command, the count moved
            dwell[0] += commands
            sums[("count", created, kind, "state", state)][0] -= commands
            sums[("count", created, kind, "state", dest)][0] += commands


def _summed(store: MemoryStore) -> dict[tuple[str, str, str, str, str], list[int]]:
    """The store's sums with its moves' commands added (a copy; under the store's lock)."""
    sums = {key: [n, amount] for key, (n, amount) in store._sums.items()}
    _add_moves(sums, store._summary_moves)
    return sums


class _MemoryTransaction:
    __slots__ = (
        "_audit", "_checked", "_drawn", "_held", "_mark", "_outbox", "_saved", "_store",
        "_summary", "_writes",
    )  # fmt: skip

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        # ref -> (record, expected version or None for an insert)
        self._writes: dict[str, tuple[Record, int | None]] = {}
        self._audit: list[AuditEvent] = []
        # key -> a new notification, or an entry saved back (kept at commit); or a
        # command's notices.made, its notifications unread (_enqueue_made, _staged)
        self._outbox: dict[str, Notification | OutboxEntry] | tuple[Any, ...] = {}
        # whether save_outbox staged an entry (else _outbox holds notifications only)
        self._saved = False
        # name -> (value before this transaction drew, last value it drew)
        self._drawn: dict[str, tuple[int, int]] | None = None
        self._held: list[threading.Lock] = []
        # the staged summary rows: a tuple staged alone is kept as it came; a command's
        # move alone as (_MOVE, key, elapsed, the other rows)
        self._summary: list[Sequence[Any]] | tuple[Any, ...] | None = None
        # the store's enqueue count before this transaction's first key check
        self._checked = -1
        # the head mark of the keys _outbox holds, when _enqueue_new staged them all;
        # after it, the segment _enqueue_made packed already (the commit appends both)
        self._mark: bytes | None = None

    def __enter__(self) -> _MemoryTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        # Staged writes are simply dropped when the block failed.  The three arguments
        # named, not ``*rest``: a call packing a tuple costs ~0.3k instructions more.
        try:
            if exc_type is None:
                self._commit()
            elif self._drawn:
                self._return_numbers(self._drawn)
        finally:
            held = self._held
            if held:  # most commands lock nothing
                for row_lock in held:
                    row_lock.release()
                held.clear()

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
        # A command reads before it writes: nothing staged to look up yet (no call).
        writes = self._writes
        if writes:
            staged = writes.get(ref)
            if staged is not None:
                return staged[0]
        store = self._store
        hot = store._records.get(ref)  # what MemoryStore._record looks at first, without a call
        return hot if hot is not None else store._record(ref)

    def insert(self, record: Record) -> None:
        current = self.get(record.ref)
        if current is not None:
            raise ConflictError(record.ref, None, current.version)
        self._writes[record.ref] = (record, None)

    def update(self, record: Record, *, expected_version: int) -> None:
        # self.get(ref) written out: the staged write is looked up once.
        ref = record.ref
        writes = self._writes
        staged = writes.get(ref) if writes else None  # a command's first write: no call
        current: Record | None
        if staged is not None:
            current = staged[0]
        else:
            store = self._store
            current = store._records.get(ref)
            if current is None:
                current = store._record(ref)
        if current is None or current.version != expected_version:
            raise ConflictError(ref, expected_version, None if current is None else current.version)
        # An insert then update in one transaction stays an insert.
        writes[ref] = (record, staged[1] if staged is not None else expected_version)

    def append_audit(self, event: AuditEvent) -> None:
        self._audit.append(event)

    # --- the report's summary rows (storage.base.Summaries, issue 15.3) ---------------

    def stage_summary(self, rows: Sequence[Sequence[Any]]) -> None:
        staged: Any = self._summary
        if staged is None:
            # A tuple (what summaries.stage gives) is kept as it is: nothing can change it.
            self._summary = rows if type(rows) is tuple else list(rows)
        elif type(staged) is list:
            staged.extend(rows)
        elif staged and staged[0] is _MOVE:  # a command's move first: its rows, then these
            from ..summaries import move_rows

            self._summary = [*move_rows(staged[1], _micros(staged[2])), *staged[3], *rows]
        else:
            self._summary = [*staged, *rows]

    def stage_summary_move(
        self, key: tuple[str, str, str, str, str], elapsed: timedelta, rows: tuple[Any, ...]
    ) -> None:
        """``stage_summary(summaries.move_rows(key, micros) + rows)``, ``micros`` the
        microseconds of ``elapsed``: a command's rows, its move kept as the key the commit
        adds with one look-up (``_summary_moves``) and ``elapsed`` as it is."""
        if self._summary is None:
            self._summary = (_MOVE, key, elapsed, rows)
        else:
            from ..summaries import move_rows

            self.stage_summary(move_rows(key, _micros(elapsed)) + rows)

    def summary(
        self, *, since: str | None = None, until: str | None = None
    ) -> list[tuple[str, str, str, str, str, int, int]]:
        with self._store._lock:
            items = list(_summed(self._store).items())
        return [
            (metric, day[:7], kind, a, b, n, amount)
            for (metric, day, kind, a, b), (n, amount) in items
            if (since is None or day >= since) and (until is None or day < until)
        ]

    def replace_summary(self, rows: Iterable[Sequence[Any]]) -> None:
        kept: dict[tuple[str, str, str, str, str], list[int]] = {}
        add_summary_rows(kept, rows)
        with self._store._lock:
            self._store._sums = kept
            self._store._summary_moves = {}
        self._summary = None

    def compact_summary(self) -> int:
        return 0  # kept summed already

    def insert_many(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> None:
        for record in records:
            self.insert(record)
        self._audit.extend(events)

    def _committed_trail(self, ref: str) -> list[tuple[bytes, str]]:
        blob = self._store._audit.get(ref)  # replaced whole under the lock, never changed
        return [] if blob is None else _trail(blob)

    def audit(self, ref: str) -> Sequence[AuditEvent]:
        return [from_canonical(*kept) for kept in self._committed_trail(ref)] + [
            e for e in self._audit if e.ref == ref
        ]

    # --- raw reads, for verification (storage.base.RawRead) ---------------------------
    # A record "row" is the record's document (and the key it is kept under);
    # audit rows are the stored bytes as they are.

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
        rows = [
            RawRow({"hash": digest}, data.decode("utf-8", "replace"))
            for data, digest in self._committed_trail(ref)
        ]
        rows.extend(
            RawRow({"hash": e.hash}, canonical(e).decode()) for e in self._audit if e.ref == ref
        )
        return rows

    def raw_refs(self, *, after: str | None = None, limit: int = 500) -> Sequence[str]:
        store = self._store
        with store._lock:
            refs = set(store._records) | set(store._cold) | set(store._audit)
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
        if self._audit:  # a command asks before it appends its event
            for e in reversed(self._audit):
                if e.ref == ref:
                    return e.hash
        blob = self._store._audit.get(ref)  # replaced whole under the lock only
        last = _LAST_TRAIL
        if last[0] is blob and blob is not None:
            return last[1]
        if not blob:
            return None
        # The newest hash: the last piece's text, whose length the two bytes before
        # the last four give (indexing reads them without a slice's copy).
        size = blob[-6] | blob[-5] << 8
        return blob[-6 - size : -6].decode("utf-8", "surrogatepass")

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        store = self._store
        if self._checked < 0:
            self._checked = store._enqueued
        marks = store._outbox_keys
        # No odd key and no ref with a colon kept: a key "ref:..." of a ref
        # without a colon can only be in that ref's blob (most keys end here).
        plain = not store._odd_keys and not store._colon_refs
        if plain and not self._outbox:
            made = notices.made  # what a command made them of, if they are what it made
            # (a tuple, or a LazyNotifications that made none yet: read nothing of it
            # here; len(made) > 1 where made[0] is the () of no command)
            if made[0] is notifications and len(made) > 1:
                added = self._enqueue_made(made)
            elif notifications.__class__ in (tuple, list) and notifications:
                added = self._enqueue_new(notifications)
            else:
                added = 0
            if added:
                return added
        staged = self._staged()  # (notices.made staged: its notifications, read now)
        added = 0
        for n in notifications:
            key = n.key
            if key in staged:
                continue
            ref = n.ref
            if plain and ":" not in ref and key[: len(ref) + 1] == f"{ref}:":
                kept = marks.get(ref)
                if kept is not None and _mark(key) in kept and _find(store, key) is not None:
                    continue
            elif _find(store, key) is not None:
                continue
            staged[key] = n
            self._mark = None  # not (only) one _enqueue_new batch any more
            added += 1
        return added

    def _staged(self) -> dict[str, Notification | OutboxEntry]:
        """What this transaction staged, key -> new notification or entry saved back.

        Where :meth:`_enqueue_made` staged a command's ``notices.made`` alone, the dict
        is made now from its notifications (a LazyNotifications makes them now) and
        replaces it: every reader but the commit of a command comes here.
        """
        staged = self._outbox
        if isinstance(staged, dict):
            return staged
        notes = staged[0]
        batch: dict[str, Notification | OutboxEntry] = {n.key: n for n in notes}
        self._outbox = batch
        return batch

    def _enqueue_new(self, notifications: Sequence[Notification]) -> int:
        """A command's notifications, all new: staged at once, or 0 to check one by one.

        Only with nothing staged yet and no odd key or colon ref kept (then a key
        ``ref:...`` can only be in that ref's blob), when the keys are distinct and
        share one head ``ref:version:`` whose mark the ref's blob lacks: then no
        key is kept, which is what the loop in :meth:`enqueue` would find key by key.
        The head's mark is kept for the commit (:func:`_append_new` need not find
        it again).  Keys holding ``\x01`` go the loop's way (the check below joins
        the keys with it: then each ``\x01`` starts a key, and the keys all start
        with the head when as many ``\x01`` as keys are followed by it).
        """
        keys = list(map(_KEY_OF, notifications))
        ref = notifications[0].ref
        head = keys[0]
        if ref.__class__ is not str or head.__class__ is not str or ":" in ref:
            return 0
        end = head.find(":", len(ref) + 1) + 1
        head = head[:end]
        if not end or head[len(ref)] != ":" or head[: len(ref)] != ref:
            return 0
        try:
            joined = "\x01".join(keys)
        except TypeError:  # a key that is no string
            return 0
        others = len(keys) - 1
        if joined.count("\x01") != others or joined.count(f"\x01{head}") != others:
            return 0
        mark = _head_mark(head)
        kept = self._store._outbox_keys.get(ref)
        # count(), not "in": bytes "in" tries the mark as an int first and formats
        # the error it catches (~1,000 instructions more).
        if kept is not None and kept.count(mark):
            return 0
        # No strict=: keys were read off notifications, one each (a keyword: ~700 a command).
        batch: dict[str, Notification | OutboxEntry] = dict(zip(keys, notifications))  # noqa: B905
        if len(batch) != len(keys):  # a key twice: the first one stays, as in the loop
            return 0
        self._outbox = batch
        self._mark = mark
        return len(keys)

    def _enqueue_made(self, made: tuple[Any, ...]) -> int:
        """:meth:`_enqueue_new` of the notifications a command made (:data:`notices.made`):
        the same answer, what the notifications were made of taken from ``made``.

        Their shared fields are the same objects (the command's), so the commit need
        not compare them (:func:`_append_command`'s loop), and the keys are the prefix
        and each recipient when the keys joined are the prefix and the recipients
        joined.  Where :func:`_new_segment` can hold them (its checks, made once
        here), the segment is packed now, numbered ``self._checked`` (the count the
        commit finds unchanged before it appends without looking again) and kept
        after the mark in ``self._mark``: the commit appends both.  It is packed at
        the commit instead when its strings are not numbered yet (the table grows
        under the store's lock only) or marshal refuses a value.  Anything else
        goes :meth:`_enqueue_new`'s way.

        Where the recipients are a tuple of distinct str itself (a plan's), the keys
        are not read either: ``made`` itself is staged, and no notification is read
        (nor made, if they are a command's LazyNotifications) unless something reads
        what this transaction staged (:meth:`_staged`).
        """
        (
            notes, recipients, prefix, ref, kind, version, event, topic, zh, en, created, note,
            details,
        ) = made  # fmt: skip
        if type(ref) is not str or type(prefix) is not str:
            return self._enqueue_new(notes)
        # The head _enqueue_new finds (the first key to its colon after the ref's) is
        # the prefix; and _new_segment's checks of the ref and the first recipient.
        end = prefix.find(":", len(ref) + 1) + 1
        if (
            end != len(prefix)
            or not end
            or prefix[len(ref)] != ":"
            or not prefix.startswith(ref)
            or ":" in ref
            or "\x01" in ref
            or type(recipients[0]) is not str
        ):
            return self._enqueue_new(notes)
        count = len(recipients)
        keys: list[str] | None = None
        try:
            text = "\x01".join((kind, event, topic, zh, en, prefix, *recipients))
            if _STR_TUPLES.get(id(recipients)) is recipients or _str_tuple(recipients):
                # Distinct recipients of str itself without \x00 or \x01: each key is
                # the prefix and its recipient (str's own +), none twice, and the other
                # pieces are all the text may have them in (each found by memchr where
                # the text, wide for the Chinese, is read char by char).
                texts = "".join((kind, event, topic, zh, en, prefix))
                bad = "\x00" in texts or "\x01" in texts
            else:  # (a subclass's __radd__ may make other keys): the keys joined
                keys = list(map(_KEY_OF, notes))
                bad = (
                    len(keys) != count
                    or "\x01".join(keys) != prefix + f"\x01{prefix}".join(recipients)
                    or "\x00" in text
                    or text.count("\x01") != count + 5  # no \x01 in any piece
                )
        except TypeError:  # a value that is no string
            return self._enqueue_new(notes)
        if bad:
            return self._enqueue_new(notes)
        store = self._store
        mark = _head_mark(prefix)
        kept = store._outbox_keys.get(ref)
        if kept is not None and kept.count(mark):  # count(): see _enqueue_new
            return 0
        if keys is None:
            # Keys known distinct and new: ``made`` itself is staged, the notifications
            # unread (a command's LazyNotifications makes none) until someone asks
            # (:meth:`_staged`); the commit needs only their ref and this segment.
            self._outbox = made
        else:
            # No strict=: keys were read off notifications, one each.
            batch: dict[str, Notification | OutboxEntry] = dict(zip(keys, notes))  # noqa: B905
            if len(batch) != count:  # a key twice: the first one stays, as in the loop
                return 0
            self._outbox = batch
        self._mark = mark
        if ref:
            text = text.replace(ref, "\x00")
        ids = store._string_ids
        code: Any = ids.get(text)
        if code is None:
            if len(text) <= _MAX_NUMBERED and len(ids) < _MAX_STRINGS:
                return count  # numbered at the commit, under the lock
            code = text  # never numbered (Outbox.number), now or at the commit
        try:
            data = marshal.dumps((self._checked, version, _stamp(created), note, details, code), 2)
        except ValueError:  # pickled at the commit
            return count
        self._mark = b"".join((mark, (len(data) + 1).to_bytes(4, "little"), b"m", data))
        return count

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
        # Packed records are filtered on their facts (_facts) and only the
        # matching ones unpacked; objects are read as they are.
        store = self._store
        with store._lock:
            index = dict(store._index)
            packed = dict(store._cold)
            records: dict[str, Any] = dict(store._records)
        records.update({ref: rec for ref, (rec, _) in self._writes.items()})
        found: dict[str, Any] = {}
        due: dict[str, Any] = {}
        for ref, facts in index.items():
            if ref not in records and _matches(facts, kind, state, customer, due_before):
                found[ref] = packed[ref]
                due[ref] = facts[4]
        for ref, r in records.items():
            if due_before is None:
                if _matches(_facts_read(r, kind, state, customer), kind, state, customer, None):
                    found[ref] = r
            elif r.next_deadline is not None and _matches(
                _facts_read(r, kind, state, customer, due=True), kind, state, customer, due_before
            ):
                found[ref] = r
                due[ref] = r.next_deadline
        if due_before is None:
            order = sorted(found)
        else:
            order = sorted(found, key=lambda ref: (due[ref], ref))
        for ref in order:
            kept = found[ref]
            yield _unpack_record(kept) if kept.__class__ is bytes else kept

    def _rows(self, ref: str | None) -> list[_Row]:
        """The committed outbox rows (of ``ref`` only, if given) then this transaction's."""
        store = self._store
        if ref is None:
            with store._lock:
                blobs = list(store._outbox.items())
            rows = _all_rows(store, blobs)
        else:
            blob = store._outbox.get(ref)
            rows = [] if blob is None else [row for _, row in _Outbox(store, ref).rows(blob)]
        rows.extend(_row(e) for e in self._staged().values())
        return rows

    def pending(
        self, *, now: datetime, limit: int | None = None, ref: str | None = None
    ) -> Sequence[OutboxEntry]:
        out = []
        for row in self._rows(ref):
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
        leased_keys: dict[str, _Row] = {}
        with store._lock:
            if ref is None:
                rows = _all_rows(store, store._outbox.items())
            else:
                blob = store._outbox.get(ref)
                rows = [] if blob is None else [r for _, r in _Outbox(store, ref).rows(blob)]
            for row in rows:
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
                leased_keys[row[0]] = leased
                claimed.append(_entry(leased))
            self._save_rows(leased_keys)
        return claimed

    def _save_rows(self, saved: Mapping[str, _Row]) -> None:
        """Write rows back in place (the store's lock held); a key not kept yet is added."""
        store = self._store
        by_ref: dict[str, dict[str, _Row]] = {}
        for key, row in saved.items():
            by_ref.setdefault(row[_REF], {})[key] = row
        new: list[_Row] = []
        for ref, changed in by_ref.items():
            blob = store._outbox.get(ref)
            rows = [] if blob is None else _Outbox(store, ref).rows(blob)
            for i, (number, row) in enumerate(rows):
                replaced = changed.pop(row[0], None)
                if replaced is not None:
                    rows[i] = (number, replaced)
            if blob is not None:
                _rewrite(store, ref, rows)
            new.extend(changed.values())
        if new:
            _append(store, new)

    def entries(self, *, status: str, limit: int | None = None) -> Sequence[OutboxEntry]:
        store = self._store
        with store._lock:
            blobs = list(store._outbox.items())
        found = [_entry(row) for row in _all_rows(store, blobs) if _book(row)[0] == status]
        return found if limit is None else found[:limit]

    def outbox(self, key: str) -> OutboxEntry | None:
        staged = self._staged().get(key)
        if staged is not None:
            return _entry(_row(staged))
        kept = _find(self._store, key)
        return None if kept is None else _entry(kept[1][kept[2]][1])

    def save_outbox(self, entry: OutboxEntry) -> None:
        self._staged()[entry.notification.key] = entry
        self._saved = True
        self._mark = None

    def _commit(self) -> None:
        store = self._store
        with store._lock:
            records, cold = store._records, store._cold
            # Check every write again: another transaction may have committed
            # since this one read.  Nothing is applied unless all still hold.
            index = store._index
            for ref, (_, expected) in self._writes.items():
                current = records.get(ref)
                version: int | None
                if current is not None:
                    version = current.version
                else:
                    facts = index.get(ref)
                    version = None if facts is None else facts[2]
                if expected is None:
                    if version is not None:
                        raise ConflictError(ref, None, version)
                elif version is None or version != expected:
                    raise ConflictError(ref, expected, version)
            for ref, (record, _) in self._writes.items():
                # The newest written last: the oldest hot record is packed away.
                if records.pop(ref, None) is None and cold.pop(ref, None) is not None:
                    del index[ref]
                records[ref] = record
            while len(records) > store._hot:
                oldest = next(iter(records))
                record = records.pop(oldest)
                try:
                    facts = _facts(record)
                    cold[oldest] = _pack_record(record)
                except Exception:  # a host's value pickle refuses: it stays an object
                    records[oldest] = record
                    break
                index[oldest] = facts
            events = self._audit
            if len(events) == 1:  # a command's one event: appended as sealing encoded it
                event = events[0]
                # canonical's first test and _audit_piece, written out (two calls less).
                kept = _sealing.LAST_SEALED
                data = kept[1] if kept[0] is event else canonical(event)
                digest = event.hash
                text = digest.encode("utf-8", "surrogatepass")
                if len(text) > 0xFFFF:
                    raise StoreUnavailable("memory://", "an audit hash longer than 65,535 bytes")
                audit = store._audit
                ref = event.ref
                audit[ref] = blob = b"".join(
                    (
                        audit.get(ref, b""),
                        data,
                        text,
                        (len(data) << 16 | len(text)).to_bytes(6, "little"),
                    )
                )
                if type(digest) is str:  # what decoding the blob's end gives
                    global _LAST_TRAIL
                    _LAST_TRAIL = (blob, digest)
            elif events:
                self._commit_audit(store._audit)
            staged: Any = self._summary
            if staged and staged[0] is _MOVE:  # a command's move (counted), then its other rows
                _, key, elapsed, staged = staged
                try:
                    made = store._summary_moves[key]
                except KeyError:  # its first command (of the day, or since a rebuild)
                    _add_move(store, key, elapsed)
                else:
                    made[0] += 1
                    try:
                        made[1] += elapsed
                    except OverflowError:  # past 999,999,999 days: on in microseconds
                        made[2] += _micros(made[1]) + _micros(elapsed)
                        made[1] = _NO_TIME
            if staged:
                sums = store._sums
                for metric, day, kind, a, b, n, amount in staged:  # add_summary_rows inline
                    key = (metric, day, kind, a, b)
                    try:
                        slot = sums[key]
                    except KeyError:  # the first row of its key: once a day or so
                        sums[key] = [n, amount]
                        continue
                    slot[0] += n
                    slot[1] += amount
            if self._outbox:
                self._commit_outbox()

    def _commit_audit(self, audit: dict[str, bytes]) -> None:
        """The events of a transaction that appended several (an import batch)."""
        pieces: dict[str, list[bytes]] = {}
        for event in self._audit:
            piece = _audit_piece(canonical(event), event.hash)
            found = pieces.get(event.ref)
            if found is None:
                pieces[event.ref] = [audit.get(event.ref, b""), piece]
            else:
                found.append(piece)
        for ref, parts in pieces.items():
            audit[ref] = b"".join(parts)

    def _commit_outbox(self) -> None:
        store = self._store
        # Checked at enqueue; again if another transaction kept entries since.
        again = self._checked != store._enqueued
        if not again and not self._saved:  # a command's new notifications
            staged = self._outbox
            mark = self._mark
            if mark is not None and len(mark) > 2:  # and their segment, which enqueue packed
                ref = (
                    staged[3]  # notices.made's (staged unread), else the first notification's
                    if type(staged) is tuple
                    else next(iter(staged.values())).ref  # type: ignore[union-attr]
                )
                blobs, marks = store._outbox, store._outbox_keys
                blobs[ref] = blobs.get(ref, b"") + mark[2:]
                marks[ref] = marks.get(ref, b"") + mark[:2]
                store._enqueued = self._checked + 1
                return
            if type(staged) is tuple and mark is not None and _append_made(store, staged, mark):
                return  # its text not numbered yet (or marshal refused a value): packed now
            outbox = self._staged()
            notes: Any = list(outbox.values())
            if mark is None or not _append_command(store, notes, list(outbox), mark):
                _append_new(store, notes, mark, list(outbox))
            return
        new: list[Notification] = []
        saved: dict[str, _Row] = {}
        for key, item in self._staged().items():
            if isinstance(item, OutboxEntry):
                saved[key] = _row(item)
            elif not again or _find(store, key) is None:  # else enqueued meanwhile: theirs
                new.append(item)
        if new:
            _append_new(store, new)
        if saved:
            self._save_rows(saved)
