"""The audit trail's canonical form, its creating events, and trails written by 0.1.0."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import AuditEvent, Desk, FieldChange, Requirement
from reqmgmt.audit import event_hash, replay, sealed_event, snapshot, verify
from reqmgmt.serialize import unstructure

from ..conftest import CLERK, receive

STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# JSON values as the engine writes them, floats aside: strings (any text,
# Chinese included), 64-bit integers, booleans, null, lists and objects.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",))), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_the_canonical_bytes_are_the_standard_librarys_but_for_floats(value: Any) -> None:
    """orjson with sorted keys writes what json(sort_keys, compact, ensure_ascii=False) writes."""
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == STDLIB.encode(value).encode()


def _event(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ref": "REQ-2026-000001",
        "record_kind": "requirement",
        "version": 1,
        "event": "receive",
        "from_state": None,
        "to_state": "received",
        "actor_id": "clerk",
        "actor_name": "张伟",
        "at": AT,
        "prev_hash": "",
    }
    values.update(changes)
    return values


def _stdlib_sealed(**values: Any) -> AuditEvent:
    """An event as reqmgmt 0.1.0 sealed it: the standard library's canonical JSON."""
    payload = {a.name: values.get(a.name, a.default) for a in attrs.fields(AuditEvent)}
    del payload["hash"]
    payload["at"] = payload["at"].isoformat()
    payload["changes"] = [[c.field, c.old, c.new, c.op] for c in payload["changes"]]
    digest = hashlib.sha256(STDLIB.encode(payload).encode()).hexdigest()
    return AuditEvent(**values, hash=digest)


def test_floats_are_hashed_as_orjson_writes_them_and_0_1_0_trails_still_verify() -> None:
    decisions = ({"table": "t", "outcome": {"hours": 1e-7, "ratio": 0.5}},)
    new = sealed_event(**_event(decisions=decisions))
    old = _stdlib_sealed(**_event(decisions=decisions))
    assert new.hash != old.hash  # 1e-7 against 1e-07
    assert event_hash(new) == new.hash
    assert verify(new.ref, [new])
    assert verify(old.ref, [old])
    altered = attrs.evolve(old, actor_name="someone else")
    check = verify(old.ref, [altered])
    assert not check
    assert check.broken_at == 1
    assert "altered" in check.problem


def test_values_orjson_cannot_write_are_hashed_with_the_standard_library() -> None:
    """An integer beyond 64 bits in a decision's facts: sealed and verified all the same."""
    event = sealed_event(**_event(decisions=({"facts": {"quantity": 2**80}},)))
    assert verify(event.ref, [event])
    assert event.hash == _stdlib_sealed(**_event(decisions=({"facts": {"quantity": 2**80}},))).hash


def test_a_creating_event_holds_the_first_version_in_one_change(desk: Desk) -> None:
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    first, second = desk.history(ref)
    (change,) = first.changes
    assert (change.field, change.old, change.op) == ("*", None, "create")
    v1 = desk.get(ref, version=1)
    assert change.new == snapshot(v1)
    assert v1.state == "received"
    assert v1.version == 1
    assert replay([first, second], Requirement) == desk.get(ref)
    assert desk.verify_history(ref)


def test_a_trail_whose_creating_event_lists_every_field_still_replays(desk: Desk) -> None:
    """reqmgmt 0.1.0 wrote one "set" change per field on creation; replay reads both forms."""
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    first, second = desk.history(ref)
    doc = unstructure(desk.get(ref, version=1))
    fields = {a.name: getattr(first, a.name) for a in attrs.fields(AuditEvent)}
    del fields["hash"]
    fields["changes"] = tuple(FieldChange(k, None, v) for k, v in doc.items())
    legacy_first = _stdlib_sealed(**fields)
    legacy_second = sealed_event(
        **{
            a.name: getattr(second, a.name)
            for a in attrs.fields(AuditEvent)
            if a.name not in ("hash", "prev_hash")
        },
        prev_hash=legacy_first.hash,
    )
    trail = [legacy_first, legacy_second]
    assert verify(ref, trail)
    assert replay(trail, Requirement) == desk.get(ref)
    assert replay(trail, Requirement, version=1) == desk.get(ref, version=1)
