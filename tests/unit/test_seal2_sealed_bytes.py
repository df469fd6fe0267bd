"""audit's memory of sealed bytes (a plain dict by id, written inline in seal and
canonical): the bytes handed to stores are the generic encoding of the very event
sealed, never another event's, and the memory stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import audit
from reqmgmt.audit import canonical
from reqmgmt.model import AuditEvent, FieldChange

AT = datetime(2026, 12, 2, 15, 53, 10, 939872, tzinfo=UTC)


def _args(version: int, note: str | None = None) -> tuple[Any, ...]:
    return ("REQ-1", "requirement", version, "start", "a", "b", "pro", "Pro", AT, note, None,
            (FieldChange("version", version - 1, version),), (), "0" * 64)  # fmt: skip


def _generic(event: AuditEvent) -> bytes:
    return audit._encode(audit._event_payload(event))


def test_canonical_gives_the_sealed_bytes_of_that_event() -> None:
    event = audit.seal(*_args(2))
    kept = audit._SEALED[id(event)]
    assert kept[0] is event
    assert canonical(event) is kept[1]
    assert canonical(event) == _generic(event)


def test_an_equal_event_not_sealed_here_is_encoded() -> None:
    """An equal event read back (another object) is encoded, not looked up by equality."""
    event = audit.seal(*_args(3))
    copy = audit.from_canonical(canonical(event), event.hash)
    assert copy == event
    assert copy is not event
    assert id(copy) not in audit._SEALED  # the kept events hold their ids
    assert canonical(copy) == canonical(event)


def test_a_reused_id_is_not_taken_for_the_sealed_event() -> None:
    """An entry whose event is another object (its id reused after the event died:
    planted here) is ignored: the event's own bytes come back."""
    event = audit.seal(*_args(4))
    other = audit.seal(*_args(5, note="other"))
    audit._SEALED[id(event)] = (other, canonical(other))
    assert canonical(event) == _generic(event)
    assert canonical(event) != canonical(other)


def test_the_memory_is_bounded() -> None:
    for version in range(2, 2 + 3 * audit._SEALED_SIZE):
        audit.seal(*_args(version))
        assert len(audit._SEALED) <= audit._SEALED_SIZE


@given(st.integers(2, 10_000), st.one_of(st.none(), st.text(min_size=1).filter(str.strip)))
def test_seal_keeps_what_it_hashed(version: int, note: str | None) -> None:
    try:
        event = audit.seal(*_args(version, note))
    except Exception:  # the input policy refuses the note: nothing kept for it
        return
    assert canonical(event) == _generic(event)
    assert event.hash == audit.event_hash(event)
