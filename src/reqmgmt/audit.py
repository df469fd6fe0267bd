"""The audit trail: hash chaining, verification and replay.

Each event's ``hash`` is the SHA-256 of its canonical JSON (sorted keys, no
spaces, UTF-8, the hash itself left out) which includes ``prev_hash``, the
hash of the record's previous event.  Changing, removing or reordering any
stored event breaks the chain from that event on.

The canonical JSON is written by orjson (``OPT_SORT_KEYS``): the same bytes
as Python's ``json`` with ``sort_keys=True, separators=(",", ":"),
ensure_ascii=False`` for every value but floats, which orjson writes in their
shortest round-trip form without an exponent sign or padding (``1e-7`` where
``json`` writes ``1e-07``).  Events sealed by reqmgmt 0.1.0 used the standard
library's encoder; :func:`verify` accepts either form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
import orjson
from attrs import frozen

from .model import MAX_TEXT, AuditEvent, FieldChange, Record, check_note, maker
from .serialize import ISO_NOT_SEEN, iso, iso_seen, structure, unstructure

__all__ = [
    "HistoryCheck",
    "canonical",
    "event_hash",
    "from_canonical",
    "link_problem",
    "replay",
    "replay_document",
    "sealed_event",
    "snapshot",
    "verify",
]

R = TypeVar("R", bound=Record)


_HASHED = tuple(a.name for a in attrs.fields(AuditEvent) if a.name != "hash")
_HASHED_SET = frozenset(_HASHED)
_SORTED = orjson.OPT_SORT_KEYS
# The standard library's canonical JSON: for values orjson refuses (integers
# beyond 64 bits, keys that are not strings) and for events sealed by 0.1.0.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def _payload(values: dict[str, Any]) -> dict[str, Any]:
    # Built by hand rather than through cattrs: this runs once per command.
    payload = dict(values)
    payload.pop("hash", None)
    payload["at"] = iso(payload["at"])
    payload["changes"] = [[c.field, c.old, c.new, c.op] for c in payload["changes"]]
    return payload


def _encode(payload: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(payload, option=_SORTED)
    except TypeError:  # orjson.JSONEncodeError: a value orjson cannot write
        return _ENCODER.encode(payload).encode()


def _event_payload(event: AuditEvent) -> dict[str, Any]:
    return _payload({name: getattr(event, name) for name in _HASHED})


def event_hash(event: AuditEvent) -> str:
    """The SHA-256 (hex) of the event's canonical JSON, ``prev_hash`` included."""
    return hashlib.sha256(_encode(_event_payload(event))).hexdigest()


def _legacy_hash(event: AuditEvent) -> str:
    # reqmgmt 0.1.0 hashed the standard library's canonical JSON; it differs
    # from orjson's only where the event holds floats.
    return hashlib.sha256(_ENCODER.encode(_event_payload(event)).encode()).hexdigest()


# The canonical bytes of the events sealed last: a store that writes them
# (the memory store, the SQL stores) gets them without encoding again.  By
# the event's id, the event kept beside its bytes (its id cannot be reused
# while kept), up to _SEALED_SIZE events, then started over: ByIdentity's
# get and put written inline (their method calls cost ~2k a command).
_SEALED: dict[int, tuple[AuditEvent, bytes]] = {}
_SEALED_SIZE = 256
#: The event sealed last and its canonical bytes: what a store writing a command's
#: one event reads first (an identity test, where _SEALED costs ``id`` and a look-up).
#: A command's event is kept here only (:func:`seal` given its rows): the store writes it
#: before the next command seals, and 256 kept events, their changes and the
#: documents in them, cost the collector's passes more than the look-ups (~3k a
#: command); an event that left this slot unwritten is encoded again (the same bytes).
LAST_SEALED: tuple[AuditEvent | None, bytes] = (None, b"")


def sealed_event(**values: Any) -> AuditEvent:
    """A new :class:`AuditEvent` from ``values`` (``prev_hash`` included), its hash filled in."""
    unknown = values.keys() - _HASHED_SET
    if unknown:
        raise TypeError(f"sealed_event() got unexpected fields {sorted(unknown)}")
    return seal(
        values["ref"],
        values["record_kind"],
        values["version"],
        values["event"],
        values["from_state"],
        values["to_state"],
        values["actor_id"],
        values["actor_name"],
        values["at"],
        values.get("note"),
        values.get("meaning"),
        values.get("changes", ()),
        values.get("decisions", ()),
        values["prev_hash"],
    )


_make_event = maker(AuditEvent)
_sha256 = hashlib.sha256
_dumps = orjson.dumps
_iso_seen = iso_seen


def seal(
    ref: str,
    record_kind: str,
    version: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor_id: str,
    actor_name: str,
    at: datetime,
    note: str | None,
    meaning: str | None,
    changes: tuple[FieldChange, ...],
    decisions: tuple[dict[str, Any], ...],
    prev_hash: str,
    rows: Sequence[Sequence[Any]] | None = None,
) -> AuditEvent:
    """:func:`sealed_event` with every field given in order (the command path's form).

    ``rows``: ``changes`` as the canonical JSON writes them, ``[field, old,
    new, op]`` each, when the caller made them already (``command.field_diff``).
    The bytes are kept for :func:`canonical` as the last sealed (:data:`LAST_SEALED`)
    and, unless ``rows`` are given, among the last 256 events sealed (an import's
    batch): a caller handing its rows (the command path) has the store write the
    event before it seals another.
    """
    # The input policy, before anything is hashed: a str within every limit has
    # nothing to find (check_note's own first test), else check_note says what.
    if note is not None and not (
        type(note) is str and len(note) <= MAX_TEXT and note.isprintable()
    ):
        check_note(note, f"{record_kind} {ref}")
    # iso's hit path written out: a command's diff wrote its ``now`` already.
    seen = _iso_seen(id(at), ISO_NOT_SEEN)
    # The canonical JSON's keys in their sorted order already (orjson still
    # sorts the nested documents).
    payload = {
        "actor_id": actor_id,
        "actor_name": actor_name,
        "at": seen[1] if seen[0] is at else iso(at),
        "changes": [[c.field, c.old, c.new, c.op] for c in changes] if rows is None else rows,
        "decisions": decisions,
        "event": event,
        "from_state": from_state,
        "meaning": meaning,
        "note": note,
        "prev_hash": prev_hash,
        "record_kind": record_kind,
        "ref": ref,
        "to_state": to_state,
        "version": version,
    }
    try:  # _encode, written inline
        data = _dumps(payload, option=_SORTED)
    except TypeError:  # orjson.JSONEncodeError: a value orjson cannot write
        data = _ENCODER.encode(payload).encode()
    sealed: AuditEvent = _make_event(
        ref, record_kind, version, event, from_state, to_state, actor_id, actor_name, at,
        note, meaning, changes, decisions, prev_hash, _sha256(data).hexdigest(),
    )  # fmt: skip
    if rows is None:
        if len(_SEALED) >= _SEALED_SIZE:
            _SEALED.clear()
        _SEALED[id(sealed)] = (sealed, data)
    global LAST_SEALED
    LAST_SEALED = (sealed, data)
    return sealed


def canonical(event: AuditEvent) -> bytes:
    """The event's canonical JSON: what its ``hash`` is the SHA-256 of (the hash left out)."""
    last = LAST_SEALED
    if last[0] is event:
        return last[1]
    try:
        kept = _SEALED[id(event)]
    except KeyError:  # an event read from a store, or sealed long ago
        return _encode(_event_payload(event))
    if kept[0] is event:
        return kept[1]
    return _encode(_event_payload(event))


def release(event: AuditEvent) -> None:
    """Forget the bytes kept for ``event``: a store that has written them (an
    import batch) need not keep the event, and its record's document, alive."""
    global LAST_SEALED
    kept = _SEALED.get(id(event))
    if kept is not None and kept[0] is event:
        del _SEALED[id(event)]
    if LAST_SEALED[0] is event:
        LAST_SEALED = (None, b"")


def from_canonical(data: bytes | str, hash: str) -> AuditEvent:
    """The event whose canonical JSON is ``data`` (the inverse of :func:`canonical`).

    Also reads the documents SQL stores of reqmgmt 0.1.0 wrote (cattrs's
    form, the hash inside, changes as objects).
    """
    # The standard library parses: orjson reads integers beyond 64 bits as floats.
    values = json.loads(data)
    if "hash" in values:
        return structure(values, AuditEvent)
    values["at"] = datetime.fromisoformat(values["at"])
    values["changes"] = tuple(FieldChange(*c) for c in values["changes"])
    values["decisions"] = tuple(values["decisions"])
    return AuditEvent(hash=hash, **values)


@frozen
class HistoryCheck:
    """The result of verifying a record's history; truthy when intact.

    ``broken_at`` is the version of the first event that does not verify and
    ``problem`` says why.  ``column`` names the stored column or document
    that disagrees (``"audit.to_state"``, ``"records.version"``,
    ``"audit.doc"``...) when one does; ``head`` is the hash of the last
    event read (the chain's head when intact).
    """

    ref: str
    events: int
    broken_at: int | None = None
    problem: str = ""
    column: str | None = None
    head: str = ""

    def __bool__(self) -> bool:
        return self.broken_at is None

    @property
    def ok(self) -> bool:
        """True when every link verifies."""
        return self.broken_at is None


def link_problem(i: int, event: AuditEvent, prev: str) -> str | None:
    """Why event ``i`` (1-based) does not follow the event whose hash is ``prev``, or ``None``.

    Checks its version, its link and its own hash; never raises (a damaged
    event whose hash cannot even be computed is reported as such).
    """
    if event.version != i:
        return f"event {i} has version {event.version!r}, expected {i}"
    if event.prev_hash != prev:
        return f"event {i} links to {str(event.prev_hash)[:12]!r}, expected {prev[:12]!r}"
    try:
        intact = event_hash(event) == event.hash or _legacy_hash(event) == event.hash
    except Exception as exc:  # a damaged document: any shape, any error
        return f"event {i} is malformed ({type(exc).__name__}: {str(exc)[:200]})"
    if not intact:
        return f"event {i} was altered: its hash does not match"
    return None


def verify(ref: str, events: Sequence[AuditEvent]) -> HistoryCheck:
    """Check versions, links and hashes of ``events``; report the first broken link."""
    prev = ""
    for i, e in enumerate(events, start=1):
        problem = link_problem(i, e, prev)
        if problem is not None:
            return HistoryCheck(ref, len(events), i, problem)
        prev = e.hash
    if not events:
        return HistoryCheck(ref, 0, 0, "the record has no audit events")
    return HistoryCheck(ref, len(events), head=prev)


def replay(events: Sequence[AuditEvent], record_type: type[R], *, version: int | None = None) -> R:
    """Rebuild a record from its audit events (up to ``version``, by default all)."""
    return structure(replay_document(events, version=version), record_type)


def replay_document(events: Sequence[AuditEvent], *, version: int | None = None) -> dict[str, Any]:
    """The JSON form of the record the events rebuild (what :func:`replay` structures)."""
    doc: dict[str, Any] = {}
    for e in events:
        if version is not None and e.version > version:
            break
        for change in e.changes:
            if change.op == "create":
                doc = dict(change.new)
            elif change.op == "append":
                doc[change.field] = [*doc[change.field][: change.old], *change.new]
            else:
                doc[change.field] = change.new
    return doc


def snapshot(record: Record) -> dict[str, Any]:
    """The record's JSON-ready form (what replay rebuilds)."""
    data: dict[str, Any] = unstructure(record)
    return data
