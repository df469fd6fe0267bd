"""Step 4's round seven (issue 15): the field diff, the sealed event and the memory
store's audit piece against their general ways, on hostile values.

- the generated diff and ``audit.seal`` write iso's hit path inline
  (``serialize.iso_seen``): the text is iso's for any time (other zones,
  ``fold=1``, naive, a subclass, not a datetime), a planted memory entry of
  another object is never taken, and iso is called only for what it has not seen;
- ``audit.seal`` skips ``check_note`` for a plain printable str within
  ``MAX_TEXT``: it accepts and refuses exactly the notes ``check_note`` does,
  with the same error;
- a command's event (sealed with its rows) is kept as ``audit.LAST_SEALED``
  only: ``canonical`` answers its bytes, or encodes the same bytes again once
  another event was sealed; the memory store commits the generic bytes for one
  event or several (a verb's commands in one transaction);
- the memory store's ``_LAST_TRAIL``: ``last_hash`` answers the parsed trail
  after tampering, a restore, a multi-event commit and a hash of a str subclass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import MemoryStore, audit, command, serialize
from reqmgmt.audit import canonical
from reqmgmt.errors import ValidationError
from reqmgmt.model import MAX_TEXT, AuditEvent, FieldChange, Requirement, check_note
from reqmgmt.storage import memory
from reqmgmt.testing.contract import make_event, make_requirement

AT = datetime(2026, 12, 2, 15, 53, 10, 939872, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))


class _Moment(datetime):
    """A datetime subclass: iso's slow way."""


class _Text(str):
    """A str subclass (its own ``isprintable``: check_note asks it)."""

    def isprintable(self) -> bool:
        return True


def _generic(event: AuditEvent) -> bytes:
    return audit._encode(audit._event_payload(event))


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    try:
        return ("made", fn(*args))
    except Exception as exc:  # any error: the same type and words on both ways
        return ("error", type(exc), str(exc))


_ZONES = st.sampled_from([UTC, SHANGHAI, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/London")])
_TIMES = st.one_of(
    st.datetimes(timezones=_ZONES),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(fold=1)),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.just(UTC)).map(
        lambda d: _Moment(d.year, d.month, d.day, d.hour, d.minute, tzinfo=UTC)
    ),
    st.sampled_from([AT, AT.astimezone(SHANGHAI), "2026-12-02T15:53:10+00:00", 0]),
)


# --- iso's hit path, inline -----------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(_TIMES, _TIMES, st.one_of(st.none(), _TIMES), st.one_of(st.none(), _TIMES), st.booleans())
def test_the_diff_writes_iso_of_any_time(
    old: Any, new: Any, old_due: Any, new_due: Any, plant: bool
) -> None:
    """The generated diff's time fields (updated_at, next_deadline: optional) are the
    general way's, or its error; a memory entry planted for another object is not taken."""
    record = make_requirement()
    object.__setattr__(record, "updated_at", old)
    object.__setattr__(record, "next_deadline", old_due)
    changes = {"state": "evaluating", "updated_at": new, "next_deadline": new_due}
    if plant:  # the ids of these values answer another object's (wrong) text
        for value in (old, new, old_due, new_due):
            serialize._ISO_SEEN[id(value)] = (object(), "planted")  # type: ignore[assignment]
    general = _outcome(command.general_diff, record, changes)
    if plant:
        for value in (old, new, old_due, new_due):
            serialize._ISO_SEEN[id(value)] = (object(), "planted")  # type: ignore[assignment]
    fast = _outcome(command.field_diff, record, changes)
    assert fast == general
    if fast[0] == "made":
        assert "planted" not in repr(fast[1])
        assert all(type(c.old) in (str, type(None)) for c in fast[1] if c.field != "state")
        rows = command._LAST_ROWS[1]
        assert [list(r) for r in rows] == [[c.field, c.old, c.new, c.op] for c in fast[1]]


def test_the_diff_calls_iso_only_for_times_it_has_not_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The work saved: a time iso wrote before is looked up, not written again (nor iso called)."""
    calls: list[Any] = []

    def counted(value: datetime) -> str:
        calls.append(value)
        return serialize.iso(value)

    monkeypatch.setattr(command, "iso", counted)
    monkeypatch.setattr(command, "_SHAPES", {})  # the shape generated again, with counted
    seen, fresh = AT + timedelta(microseconds=1), AT + timedelta(microseconds=2)
    serialize.iso(seen)
    record = make_requirement(updated_at=seen)
    diff = command.field_diff(record, {"updated_at": fresh, "next_deadline": seen})
    assert calls == [fresh]
    assert [(c.old, c.new) for c in diff] == [
        (serialize.iso(seen), serialize.iso(fresh)),
        (None, serialize.iso(seen)),
    ]


def _seal_args(at: Any, note: Any = None, version: int = 2) -> tuple[Any, ...]:
    return ("REQ-1", "requirement", version, "start", "a", "b", "pro", "Pro", at, note, None,
            (FieldChange("version", version - 1, version),), (), "0" * 64)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_TIMES, st.booleans())
def test_seal_writes_iso_of_any_at(at: Any, plant: bool) -> None:
    """The event's bytes are the generic encoding of the event (``at`` by iso), or the
    seal raises what the generic encoding raises."""
    if plant:
        serialize._ISO_SEEN[id(at)] = (object(), "planted")  # type: ignore[assignment]
    made = _outcome(audit.seal, *_seal_args(at))
    if made[0] == "error":
        event = attrs.evolve(audit.seal(*_seal_args(AT)), at=at)
        assert _outcome(_generic, event)[:2] == made[:2]
        return
    event = made[1]
    assert b"planted" not in canonical(event)
    assert canonical(event) == _generic(event)
    assert event.hash == audit.event_hash(event)


# --- the note's policy ----------------------------------------------------------------------

_NOTES = st.one_of(
    st.text(),  # control characters, lone surrogates, any code point
    st.text(alphabet="ab\n\t\x00\x7f\ud800", max_size=8),
    st.sampled_from(
        [
            "", " ", "x" * MAX_TEXT, "x" * (MAX_TEXT + 1), "中" * MAX_TEXT, "a\u2028b",
            _Text("ok"), _Text("bad\x00"), _Text("x" * (MAX_TEXT + 1)), 1, b"x", ["x"],
        ]
    ),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(_NOTES)
def test_seal_refuses_the_notes_check_note_refuses(note: Any) -> None:
    expected = _outcome(check_note, note, "requirement REQ-1")
    made = _outcome(audit.seal, *_seal_args(AT, note))
    if expected[0] == "error":
        assert expected[1] is ValidationError
        assert made == expected
    else:
        assert made[0] == "made"
        assert made[1].note is note


# --- the last sealed event ------------------------------------------------------------------


def _command_event(version: int, note: str | None = None) -> AuditEvent:
    """An event sealed as the command path seals it (its rows given)."""
    args = _seal_args(AT, note, version)
    return audit.seal(*args, [[c.field, c.old, c.new, c.op] for c in args[11]])


def test_a_command_event_is_kept_as_the_last_sealed_only() -> None:
    audit._SEALED.clear()
    first = _command_event(2)
    assert audit.LAST_SEALED[0] is first
    assert canonical(first) is audit.LAST_SEALED[1]
    assert id(first) not in audit._SEALED
    second = _command_event(3, note="second")
    assert canonical(first) == _generic(first)  # encoded again: the same bytes
    assert canonical(second) is audit.LAST_SEALED[1] == _generic(second)
    kept = audit.seal(*_seal_args(AT, None, 4))  # no rows: an import's form, kept by id too
    assert audit._SEALED[id(kept)][0] is kept
    audit.release(kept)
    assert audit.LAST_SEALED[0] is None
    assert canonical(kept) == _generic(kept)


@pytest.mark.parametrize("how", ["one", "several", "one sealed earlier"])
def test_the_memory_store_commits_the_generic_bytes(how: str) -> None:
    store = MemoryStore()
    ref = "REQ-1"
    with store.transaction() as tx:
        tx.insert(make_requirement(ref))
    events = [_command_event(2), _command_event(3, note="x"), _command_event(4)]
    with store.transaction() as tx:
        if how == "one":
            tx.append_audit(events[2])  # the last sealed
        elif how == "several":  # a verb's commands in one transaction
            for event in events:
                tx.append_audit(event)
        else:
            tx.append_audit(events[0])  # not the last sealed any more
    committed = {"one": events[2:], "several": events, "one sealed earlier": events[:1]}[how]
    assert store._audit[ref] == memory._pack_trail((_generic(e), e.hash) for e in committed)
    with store.transaction() as tx:
        assert tx.audit(ref) == committed
        assert tx.last_hash(ref) == committed[-1].hash


# --- the memory store's last trail ----------------------------------------------------------


def _slow_last_hash(store: MemoryStore, ref: str) -> str | None:
    blob = store._audit.get(ref)
    return memory._trail(blob)[-1][1] if blob else None


def test_last_hash_follows_the_trail_not_the_last_commit() -> None:
    store = MemoryStore()
    a, b = "REQ-2026-000001", "REQ-2026-000002"
    with store.transaction() as tx:
        tx.insert(make_requirement(a))
        tx.insert(make_requirement(b))
    for version, ref in enumerate([a, b, a], 1):
        with store.transaction() as tx:
            tx.append_audit(attrs.evolve(make_event(ref, version), hash=f"h{version}"))
    with store.transaction() as tx:
        assert (tx.last_hash(a), tx.last_hash(b)) == ("h3", "h2")
    kept = copy.deepcopy(store._audit)  # bytes: the very objects come back
    # Tampered: an equal trail ending in another hash, as another object.
    trail = memory._trail(store._audit[a])
    trail[-1] = (trail[-1][0], "tampered")
    store._audit[a] = memory._pack_trail(trail)
    with store.transaction() as tx:
        assert tx.last_hash(a) == "tampered" == _slow_last_hash(store, a)
    store._audit.update(kept)  # restored
    with store.transaction() as tx:
        assert tx.last_hash(a) == "h3" == _slow_last_hash(store, a)
    del store._audit[a]
    with store.transaction() as tx:
        assert tx.last_hash(a) is None
    # A commit of several events, then one whose hash is a str subclass.
    with store.transaction() as tx:
        tx.append_audit(attrs.evolve(make_event(a, 1), hash="s1"))
        tx.append_audit(attrs.evolve(make_event(b, 4), hash="s4"))
    with store.transaction() as tx:
        assert (tx.last_hash(a), tx.last_hash(b)) == ("s1", "s4")
    with store.transaction() as tx:
        tx.append_audit(attrs.evolve(make_event(b, 5), hash=_Text("sub\ud800")))
    with store.transaction() as tx:
        found = tx.last_hash(b)
    assert found == "sub\ud800" == _slow_last_hash(store, b)
    assert type(found) is str


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B"]), st.text(min_size=1, max_size=70), st.booleans()),
        max_size=8,
    )
)
def test_last_hash_is_the_parsed_trail_after_any_commits(
    commits: list[tuple[str, str, bool]],
) -> None:
    """Single and paired commits, any hash text: last_hash is the trail's parsed end."""
    store = MemoryStore()
    with store.transaction() as tx:
        tx.insert(make_requirement("A"))
        tx.insert(make_requirement("B"))
    for version, (ref, digest, paired) in enumerate(commits, 1):
        with store.transaction() as tx:
            tx.append_audit(attrs.evolve(make_event(ref, version), hash=digest))
            if paired:
                other = "B" if ref == "A" else "A"
                tx.append_audit(attrs.evolve(make_event(other, version), hash=digest + "'"))
        with store.transaction() as tx:
            for r in ("A", "B", "C"):
                assert tx.last_hash(r) == _slow_last_hash(store, r)


def test_requirement_is_the_record_of_these_tests() -> None:
    """The diff tests above change fields a Requirement has, with the ways they assume."""
    ways = command.diff_ways(Requirement)
    assert ways["updated_at"][0] == command._TIME
    assert ways["next_deadline"][0] == command._OPTIONAL_TIME
    assert ways["state"][0] == command._AS_IS
