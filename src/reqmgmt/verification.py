"""Verification of stored histories: every column, every document, every link.

:func:`check_history` reads one record's rows as they are stored (the
optional :class:`~reqmgmt.storage.base.RawRead` of a transaction) and
compares, in order:

1. each audit row: its document reads as an event, follows the one before
   (version, ``prev_hash``, own hash) and agrees with every column the store
   keeps beside it (version, event, from/to state, time, hash...);
2. the record row: present, its document reads as a record of the trail's
   kind, every indexed column (state, version, due date...) agrees with it,
   its version is the trail's last and replaying the trail gives it.

The first thing that fails is reported as a :class:`~reqmgmt.HistoryCheck`
naming the event and the column.  Damage of any shape (malformed JSON,
missing keys, wrong types, rows removed, reordered or duplicated) is
reported, never raised.

:func:`verify_all` runs it over a whole store in batches; anchors (the head
of every chain, kept outside the database) reveal what a consistent rewrite
cannot hide: a chain cut short, rolled back, re-hashed or removed.
:func:`main` is ``reqmgmt verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from .audit import HistoryCheck, from_canonical, link_problem, replay_document, snapshot
from .errors import ConfigError
from .model import AuditEvent, Record, record_classes
from .serialize import structure
from .storage.base import RawRead, RawRow, Store, Transaction

__all__ = [
    "ANCHOR_FORMAT",
    "Checked",
    "VerifyReport",
    "anchor_writer",
    "check_history",
    "place_anchor",
    "read_anchors",
    "verify_all",
]

#: The first line of an anchor file says what it is.
ANCHOR_FORMAT = "reqmgmt-anchors/1"

Progress = Callable[[int, int | None], None]
Head = Callable[[str, int, str], None]


@frozen
class Checked:
    """One record's check and the stored hash of each audit row (for anchors)."""

    check: HistoryCheck
    hashes: tuple[str, ...]


@frozen
class VerifyReport:
    """What :meth:`reqmgmt.Desk.verify_all` found; truthy when everything is intact.

    ``checked``: records (chains) verified; ``intact``: how many of them
    verified; ``broken``: the first break of each broken one (anchored
    records missing from the store included), in ref order; ``anchored``:
    chains compared with an anchor.
    """

    checked: int
    intact: int
    broken: tuple[HistoryCheck, ...] = ()
    anchored: int = 0

    def __bool__(self) -> bool:
        return not self.broken

    @property
    def ok(self) -> bool:
        """True when nothing is broken."""
        return not self.broken


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _same(stored: Any, own: Any) -> bool:
    # Types too: SQLite keeps whatever it is given ('2' is not version 2).
    return type(stored) is type(own) and bool(stored == own)


class _Broken(Exception):
    """Internal: the first break found (carried out of the nested checks)."""

    def __init__(self, at: int, problem: str, column: str | None) -> None:
        self.at, self.problem, self.column = at, problem, column


def _columns(
    table: str, what: str, stored: Mapping[str, Any], own: Mapping[str, Any], at: int
) -> None:
    for name, value in stored.items():
        if name in own and not _same(value, own[name]):
            raise _Broken(
                at,
                f"{what}: column {table}.{name} holds {value!r} but the document says "
                f"{own[name]!r}",
                f"{table}.{name}",
            )


def _events(ref: str, rows: Sequence[RawRow], tx: RawRead) -> list[AuditEvent]:
    """The audit rows as events, each checked against its link and its columns."""
    events: list[AuditEvent] = []
    prev = ""
    for i, row in enumerate(rows, start=1):
        try:
            event = from_canonical(row.doc, row.columns.get("hash", ""))
        except Exception as exc:  # damage of any shape
            raise _Broken(
                i, f"event {i}: its document does not read as an audit event ({_reason(exc)})",
                "audit.doc",
            ) from None  # fmt: skip
        problem = link_problem(i, event, prev)
        if problem is not None:
            raise _Broken(i, problem, "audit.doc" if "altered" in problem else None)
        if not _canonical(row):
            raise _Broken(
                i, f"event {i}'s document is not the exact text its hash was made of (edited)",
                "audit.doc",
            )  # fmt: skip
        if event.ref != ref:
            raise _Broken(i, f"event {i} is an event of {event.ref!r}", "audit.doc")
        try:
            own = tx.event_columns(event)
        except Exception as exc:
            raise _Broken(i, f"event {i} is malformed ({_reason(exc)})", "audit.doc") from None
        _columns("audit", f"event {i}", row.columns, own, i)
        events.append(event)
        prev = event.hash
    return events


def _canonical(row: RawRow) -> bool:
    """Is the row's document exactly the bytes its hash covers?

    True for documents in reqmgmt 0.1.0's form (the hash inside), which
    were not stored canonically; the hash check covers their content.
    """
    try:
        if '"hash"' in row.doc and "hash" in json.loads(row.doc):
            return True
        return hashlib.sha256(row.doc.encode()).hexdigest() == row.columns.get("hash")
    except Exception:
        return False


def _record(ref: str, raw: RawRow, events: Sequence[AuditEvent]) -> Record:
    """The record row's document as a record of the trail's kind."""
    classes = record_classes()
    # The kind the hashed trail says first: a changed kind column is a column break.
    kind = events[0].record_kind if events[0].record_kind in classes else raw.columns.get("kind")
    cls = classes.get(kind) if isinstance(kind, str) else None
    at = len(events)
    if cls is None:
        raise _Broken(at, f"the record's kind {kind!r} is not a known kind", "records.kind")
    try:
        record = structure(json.loads(raw.doc), cls)
    except Exception as exc:
        raise _Broken(
            at, f"the record's document does not read as a {cls.__name__} ({_reason(exc)})",
            "records.doc",
        ) from None  # fmt: skip
    return record


def _agrees(ref: str, record: Record, events: Sequence[AuditEvent], doc: str | None = None) -> None:
    """The record is the trail's last version, exactly what replaying the trail gives.

    With ``doc`` (the stored text), also field by field as JSON: no field the
    record type lacks, none the trail set dropped, none of another JSON type.
    """
    version = record.version
    if record.ref != ref:
        raise _Broken(
            version, f"the record row holds the document of {record.ref!r}", "records.doc"
        )
    if events[-1].version != version:
        raise _Broken(
            version,
            f"the record is at version {version} but its trail ends at {events[-1].version}",
            "records.version",
        )
    try:
        replayed = replay_document(events)
        rebuilt = snapshot(structure(replayed, type(record)))
    except Exception as exc:
        raise _Broken(
            version, f"replaying the audit trail fails ({_reason(exc)})", "audit.doc"
        ) from None
    stored = snapshot(record)
    if rebuilt != stored:
        fields = sorted(k for k in stored if stored.get(k) != rebuilt.get(k))
        raise _Broken(
            version,
            "replaying the audit trail does not give the stored record; differing "
            "fields: " + ", ".join(fields),
            "records.doc",
        )
    if doc is not None:
        _same_document(version, type(record), json.loads(doc), replayed)


def _same_document(
    version: int, cls: type[Record], data: dict[str, Any], replayed: dict[str, Any]
) -> None:
    names = {a.name for a in attrs.fields(cls)}
    for key in data:
        if key not in names:
            raise _Broken(
                version, f"the record's document has an unknown field {key!r}", "records.doc"
            )
    for key, value in replayed.items():
        if key not in data:
            raise _Broken(version, f"the record's document lacks the field {key!r}", "records.doc")
        if _json(data[key]) != _json(value):
            raise _Broken(
                version,
                f"the record's document field {key!r} holds {data[key]!r} where the trail "
                f"has {value!r}",
                "records.doc",
            )


def _json(value: Any) -> str:
    # Typed comparison of JSON values: true is not 1, "3" is not 3.
    return json.dumps(value, sort_keys=True)


def check_history(tx: Transaction, ref: str) -> Checked | None:
    """Verify record ``ref`` inside ``tx``; ``None`` when the store has nothing of it.

    Never raises for damage: the first break is in the returned check.
    """
    if not isinstance(tx, RawRead):
        return _check_documents(tx, ref)
    raw = tx.raw_record(ref)
    rows = tx.raw_audit(ref)
    if raw is None and not rows:
        return None
    hashes = tuple(str(row.columns.get("hash", "")) for row in rows)
    events: list[AuditEvent] = []
    try:
        events = _events(ref, rows, tx)
        if not events:
            raise _Broken(0, "the record has no audit events", "audit")
        if raw is None:
            raise _Broken(
                len(events),
                f"the record row is missing: its trail of {len(events)} events has no record",
                "records",
            )
        record = _record(ref, raw, events)
        try:
            own = tx.record_columns(record)
        except Exception as exc:
            raise _Broken(
                len(events), f"the record is malformed ({_reason(exc)})", "records.doc"
            ) from None
        _columns("records", "the record", raw.columns, own, record.version)
        _agrees(ref, record, events, raw.doc)
    except _Broken as brk:
        head = events[-1].hash if events else ""
        return Checked(HistoryCheck(ref, len(rows), brk.at, brk.problem, brk.column, head), hashes)
    return Checked(HistoryCheck(ref, len(rows), head=events[-1].hash), hashes)


def _check_documents(tx: Transaction, ref: str) -> Checked | None:
    """A store without raw reads: its records and events as it parses them."""
    try:
        record = tx.get(ref)
        events = list(tx.audit(ref))
    except Exception as exc:  # the store cannot even read them
        return Checked(HistoryCheck(ref, 0, 0, f"the record cannot be read ({_reason(exc)})"), ())
    if record is None and not events:
        return None
    hashes = tuple(e.hash for e in events)
    try:
        prev = ""
        for i, event in enumerate(events, start=1):
            problem = link_problem(i, event, prev)
            if problem is not None:
                raise _Broken(i, problem, None)
            prev = event.hash
        if not events:
            raise _Broken(0, "the record has no audit events", "audit")
        if record is None:
            raise _Broken(len(events), "the record is missing", "records")
        _agrees(ref, record, events)
    except _Broken as brk:
        return Checked(HistoryCheck(ref, len(events), brk.at, brk.problem, brk.column), hashes)
    return Checked(HistoryCheck(ref, len(events), head=events[-1].hash), hashes)


def _anchor_problem(checked: Checked, version: int, digest: str) -> HistoryCheck | None:
    check, hashes = checked.check, checked.hashes
    if len(hashes) < version:
        return HistoryCheck(
            check.ref,
            check.events,
            len(hashes) + 1,
            f"the chain has {len(hashes)} events but the anchor holds version {version}: "
            "events were removed (truncated) or the database was rolled back",
            "audit",
            check.head,
        )
    if hashes[version - 1] != digest:
        return HistoryCheck(
            check.ref,
            check.events,
            version,
            f"event {version}'s hash is not the anchored one: the chain was rewritten "
            "(re-hashed) up to it",
            "audit.hash",
            check.head,
        )
    return None


def _refs(tx: Transaction, after: str | None, limit: int) -> Sequence[str]:
    if isinstance(tx, RawRead):
        return tx.raw_refs(after=after, limit=limit)
    # A store without raw reads: the refs of its records (orphan trails unseen).
    refs = sorted(r.ref for r in tx.query())
    return [r for r in refs if after is None or r > after][:limit]


def verify_all(
    store: Store,
    *,
    progress: Progress | None = None,
    batch_size: int = 200,
    anchors: Mapping[str, tuple[int, str]] | None = None,
    on_head: Head | None = None,
) -> VerifyReport:
    """Verify every record of ``store``, ``batch_size`` records per transaction.

    ``progress(done, total)`` is called after each batch; ``anchors`` maps
    refs to their anchored ``(version, hash)``: a chain shorter than its
    anchor, whose event at that version has another hash, or that is gone,
    is broken.  ``on_head(ref, version, hash)`` receives the head of every
    intact chain (to write new anchors).  Memory holds one batch and the
    breaks found.
    """
    if batch_size < 1:
        raise ConfigError("verify_all", f"batch_size must be at least 1, got {batch_size}")
    waiting = dict(anchors or {})
    with store.transaction() as tx:
        total = tx.raw_count() if isinstance(tx, RawRead) else None
    broken: list[HistoryCheck] = []
    checked = anchored = 0
    after: str | None = None
    while True:
        with store.transaction() as tx:
            refs = _refs(tx, after, batch_size)
            results = [(ref, check_history(tx, ref)) for ref in refs]
        if not refs:
            break
        for ref, found in results:
            if found is None:  # gone since the refs were listed
                continue
            checked += 1
            check = found.check
            anchor = waiting.pop(ref, None)
            if anchor is not None:
                anchored += 1
                problem = _anchor_problem(found, *anchor) if check else None
                if problem is not None:  # (a broken check is falsy: no `or` here)
                    check = problem
            if not check:
                broken.append(check)
            elif on_head is not None:
                on_head(ref, check.events, check.head)
        after = refs[-1]
        if progress is not None:
            progress(checked, total)
    for ref, (version, _) in sorted(waiting.items()):
        anchored += 1
        broken.append(
            HistoryCheck(
                ref,
                0,
                1,
                f"the record and its whole trail are missing; the anchor holds version {version}",
                "records",
            )
        )
    intact = checked - (len(broken) - len(waiting))
    broken.sort(key=lambda c: c.ref)
    return VerifyReport(checked, intact, tuple(broken), anchored)


# --- anchor files -----------------------------------------------------------------------


def read_anchors(path: str | Path) -> dict[str, tuple[int, str]]:
    """The chain heads kept in an anchor file; :class:`ConfigError` naming the line if malformed."""
    anchors: dict[str, tuple[int, str]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"anchor file {str(path)!r} line {n}", str(exc)) from None
                if n == 1:
                    if not isinstance(item, dict) or item.get("format") != ANCHOR_FORMAT:
                        raise ConfigError(
                            f"anchor file {str(path)!r} line 1",
                            f'expected the header {{"format": "{ANCHOR_FORMAT}", ...}}',
                        )
                    continue
                if not (
                    isinstance(item, dict)
                    and isinstance(item.get("ref"), str)
                    and type(item.get("version")) is int
                    and item["version"] >= 1
                    and isinstance(item.get("hash"), str)
                ):
                    raise ConfigError(
                        f"anchor file {str(path)!r} line {n}",
                        'expected {"ref": text, "version": a number from 1, "hash": text}',
                    )
                anchors[item["ref"]] = (item["version"], item["hash"])
    except OSError as exc:
        raise ConfigError(f"anchor file {str(path)!r}", str(exc)) from None
    return anchors


@contextmanager
def anchor_writer(path: Path) -> Iterator[Callable[[str, int, str], None]]:
    """Write heads to ``path.partial``; the caller renames it into place (never overwriting)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "x", encoding="utf-8") as f:
        try:
            header = {"format": ANCHOR_FORMAT, "written_at": datetime.now(UTC).isoformat()}
            f.write(json.dumps(header) + "\n")

            def head(ref: str, version: int, digest: str) -> None:
                f.write(json.dumps({"ref": ref, "version": version, "hash": digest}) + "\n")

            yield head
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            partial.unlink()  # a run that failed leaves no half-written anchor behind
            raise


def place_anchor(path: Path, keep: bool) -> None:
    partial = path.with_name(path.name + ".partial")
    if keep:
        os.link(partial, path)  # fails if the file exists: anchors are never overwritten
    partial.unlink()
