"""The sealed event: rows handed over by field_diff give the bytes and hash the
generic canonical encoding gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Desk, audit, command
from reqmgmt.audit import canonical, from_canonical, verify
from reqmgmt.model import AuditEvent, FieldChange
from reqmgmt.testing import FakeClock

from ..conftest import to_accepted

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
changes = st.lists(
    st.builds(FieldChange, st.text(min_size=1), json_values, json_values,
              st.sampled_from(["set", "append", "create"])),
    max_size=5,
).map(tuple)  # fmt: skip


def _generic(event: AuditEvent) -> bytes:
    """The canonical JSON by the generic way: the event's fields read back, then encoded."""
    return audit._encode(audit._event_payload(event))


@given(
    changes,
    st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=2),
    st.one_of(st.none(), st.text(min_size=1).filter(str.strip)),
    st.datetimes(timezones=st.sampled_from([UTC])),
    st.text(max_size=64),
)
def test_seal_with_rows_is_seal_without_and_the_generic_encoding(
    diff: tuple[FieldChange, ...],
    decisions: list[dict[str, Any]],
    note: str | None,
    at: datetime,
    prev: str,
) -> None:
    args: tuple[Any, ...] = ("REQ-1", "requirement", 2, "start", "a", "b", "pro", "名字", at,
                             note, None, diff, tuple(decisions), prev)  # fmt: skip
    try:
        plain = audit.seal(*args)
    except Exception as exc:  # the input policy refuses the note: with rows too
        with pytest.raises(type(exc)):
            audit.seal(*args, [[c.field, c.old, c.new, c.op] for c in diff])
        return
    fast = audit.seal(*args, [[c.field, c.old, c.new, c.op] for c in diff])
    assert fast == plain
    assert fast.hash == plain.hash == audit.event_hash(fast)
    assert canonical(fast) == canonical(plain) == _generic(fast)
    assert from_canonical(canonical(fast), fast.hash) == plain


def test_a_command_hands_its_diff_rows_to_seal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command of the path seals with field_diff's rows; the bytes stored are the
    generic encoding of the event, and the chain verifies."""
    handed: list[Any] = []
    seal_event = command.seal_event

    def spy(*args: Any) -> AuditEvent:
        handed.append(args[-1])
        return seal_event(*args)

    monkeypatch.setattr(command, "seal_event", spy)
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_accepted(desk)
        events = desk.history(ref)
        assert verify(ref, events)
        for event in events:
            assert canonical(event) == _generic(event)
    assert len(handed) == 5
    assert all(rows is not None for rows in handed)
    assert [[list(row) for row in rows] for rows in handed] == [
        [[c.field, c.old, c.new, c.op] for c in e.changes] for e in events[1:]
    ]
