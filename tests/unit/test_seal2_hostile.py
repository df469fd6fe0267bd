"""seal's inline encoding (the payload dict, orjson, the standard library's encoder
when orjson refuses a value) gives the generic encoding's bytes and hash for
hostile values in every field: unicode, control characters, big integers,
floats, nested documents, None, empty strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import audit
from reqmgmt.audit import canonical
from reqmgmt.model import AuditEvent, FieldChange

texts = st.text() | st.sampled_from(["", "\x00", "\x1f\x7f", '"\\', "\u2028", "名字", "😀"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits: orjson refuses, the standard library writes them
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)
changes = st.lists(
    st.builds(FieldChange, texts, documents, documents, st.sampled_from(["set", "append"])),
    max_size=4,
).map(tuple)
times = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]))


def _generic(event: AuditEvent) -> bytes:
    return audit._encode(audit._event_payload(event))


@settings(max_examples=300, deadline=None)
@given(
    ref=texts, kind=texts, version=st.integers(), event=texts,
    from_state=st.none() | texts, to_state=texts, actor_id=texts, actor_name=texts,
    at=times, meaning=st.none() | texts, diff=changes,
    decisions=st.lists(st.dictionaries(texts, documents, max_size=3), max_size=2).map(tuple),
    prev=texts, with_rows=st.booleans(),
)  # fmt: skip
def test_seal_bytes_are_the_generic_encoding(
    ref: str, kind: str, version: int, event: str, from_state: str | None, to_state: str,
    actor_id: str, actor_name: str, at: datetime, meaning: str | None,
    diff: tuple[FieldChange, ...], decisions: tuple[dict[str, Any], ...], prev: str,
    with_rows: bool,
) -> None:  # fmt: skip
    rows = [[c.field, c.old, c.new, c.op] for c in diff] if with_rows else None
    args = (ref, kind, version, event, from_state, to_state, actor_id, actor_name, at, None,
            meaning, diff, decisions, prev)  # fmt: skip
    try:
        generic = audit._encode(audit._payload({**_fields(args), "hash": ""}))
    except Exception as exc:  # lone surrogates: neither encoder writes them as UTF-8
        with pytest.raises(type(exc)):
            audit.seal(*args, rows)
        return
    sealed = audit.seal(*args, rows)
    assert canonical(sealed) == generic == _generic(sealed)
    assert sealed.hash == audit.event_hash(sealed)


def _fields(args: tuple[Any, ...]) -> dict[str, Any]:
    names = [a.name for a in attrs.fields(AuditEvent)][:-1]  # all but the hash, in order
    return dict(zip(names, args, strict=True))


def test_a_big_integer_anywhere_takes_the_standard_library_for_all() -> None:
    """orjson refuses integers beyond 64 bits: the whole payload is the standard
    library's (floats in its form too), as the generic encoding writes it."""
    at = datetime(2026, 12, 2, tzinfo=UTC)
    sealed = audit.seal("R", "k", 2**70, "e", None, "s", "a", "A", at, None, None,
                        (FieldChange("x", 1e-7, 0.5),), (), "")  # fmt: skip
    assert canonical(sealed) == _generic(sealed)
    assert b'"version":1180591620717411303424' in canonical(sealed)
    assert b"1e-07" in canonical(sealed)
