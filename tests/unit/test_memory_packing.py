"""The memory store's packers (issue 15.2, round 3): generated per class, cheap, exact.

Records are packed by functions generated once per attrs class and read back
through :func:`reqmgmt.model.maker`; a command's notifications become an outbox
segment without rows in between; queries filter packed records on a small index
and unpack only what they yield.  The costs are checked by counting executed
bytecodes and unpacks (deterministic), never by wall time.
"""

from __future__ import annotations

import enum
import gc
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, MemoryStore, Notification
from reqmgmt.model import (
    CreditRecord,
    Customer,
    CustomerConfirmation,
    IdentifiedRequirement,
    Money,
    PlanReceipt,
    Signoff,
    maker,
    record_classes,
)
from reqmgmt.storage import memory
from reqmgmt.storage.memory import _append, _append_new, _Outbox, _pack_record, _row
from reqmgmt.testing import FakeClock

from ..conftest import receive, to_accepted


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


def _bytecodes(fn: Callable[[], Any]) -> int:
    """How many bytecodes ``fn()`` executes in Python frames (deterministic)."""
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    old = sys.gettrace()
    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


# --- round trips -----------------------------------------------------------------------------

_zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3))])
_datetimes = st.builds(
    lambda d, fold: d.replace(fold=fold),
    st.datetimes(timezones=st.one_of(st.none(), _zones)),
    st.integers(0, 1),
)
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200),
    st.floats(allow_nan=False),
    _text,
    st.text(alphabet="\x00\x01aR:", max_size=6),
    st.binary(max_size=8),
    st.decimals(allow_nan=False),
    st.dates(),
    _datetimes,
    st.sampled_from(list(Colour)),
)
_NESTED = [Signoff, Customer, Money, CreditRecord, CustomerConfirmation, PlanReceipt]
_NESTED += [IdentifiedRequirement]


def _made(cls: type, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A ``cls`` with every field drawn from ``values`` (past validators, as packing sees it)."""
    names = [a.name for a in attrs.fields(cls)]
    return st.lists(values, min_size=len(names), max_size=len(names)).map(
        lambda drawn: maker(cls)(*drawn)
    )


_values = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.one_of(_text, st.integers()), max_size=3),
        st.sampled_from(_NESTED).flatmap(lambda cls: _made(cls, inner)),
        st.lists(inner, max_size=2),  # a list: the record is pickled
        st.dictionaries(_text, st.integers(), max_size=2),
    ),
    max_leaves=5,
)


def _same(a: Any, b: Any) -> None:
    """``a`` and ``b`` are equal and of the same types all the way down (zones and fold too)."""
    assert type(a) is type(b), (a, b)
    if attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            _same(getattr(a, field.name), getattr(b, field.name))
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, datetime):
        assert (a, a.tzinfo, a.fold) == (b, b.tzinfo, b.fold)
    elif isinstance(a, Decimal):
        assert (str(a), a.is_signed()) == (str(b), b.is_signed())
    else:
        assert a == b


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(sorted(record_classes().values(), key=lambda c: c.RECORD_KIND)).flatmap(
        lambda cls: _made(cls, _values)
    )
)
def test_every_record_class_reads_back_what_was_packed(record: Any) -> None:
    """Any values in any record class: read back equal, the same types, zones, folds."""
    _same(memory._unpack_record(_pack_record(record)), record)


def test_a_usual_record_takes_the_generated_packer_and_odd_ones_pickle() -> None:
    """marshal form (``g``) for plain values, UTC datetimes, Decimals, dates; pickle otherwise."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        record = desk.get(to_accepted(desk))
    packed = _pack_record(record)
    assert packed[:1] == b"j"  # declared types, as JSON (test_pack6)
    assert len(packed) < 900
    _same(memory._unpack_record(packed), record)
    money = attrs.evolve(record, description="x")
    object.__setattr__(money, "remarks", ("a\x00b",))
    object.__setattr__(money, "clarifications", (Money(Decimal("-0.10"), "CNY"), date(2026, 1, 2)))
    assert _pack_record(money)[:1] == b"g"
    _same(memory._unpack_record(_pack_record(money)), money)
    for odd in ([1], Colour.RED, datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))):
        other = attrs.evolve(record)
        object.__setattr__(other, "remarks", (odd,))
        assert _pack_record(other)[:1] == b"p"
        _same(memory._unpack_record(_pack_record(other)), other)


# --- costs, counted ----------------------------------------------------------------------------


def test_packing_and_unpacking_a_requirement_run_few_bytecodes() -> None:
    """Generated straight-line code, no generic walk per value.

    The generic walk before (``_flat``/``_unflat``) ran 1,665 bytecodes to pack
    a requirement with three sign-offs and 2,556 to unpack it (now ~1,315 and ~1,270).
    """
    with Desk.open("memory://", clock=FakeClock()) as desk:
        record = desk.get(to_accepted(desk))
    packed = _pack_record(record)
    memory._unpack_record(packed)  # generated once
    pack = _bytecodes(lambda: _pack_record(record))
    unpack = _bytecodes(lambda: memory._unpack_record(packed))
    assert pack < 1450, pack
    assert unpack < 1600, unpack


def _notes(ref: str, n: int, **changed: Any) -> list[Notification]:
    at = datetime(2026, 3, 2, 1, 0, 0, 5, tzinfo=UTC)
    return [
        Notification(
            key=f"{ref}:2:department:d{i}",
            ref=ref,
            record_kind="requirement",
            version=2,
            event="start_evaluation",
            recipient=f"department:d{i}",
            topic="requirement.start_evaluation",
            text_zh=f"客户需求 {ref}:待处理 → 评估中",
            text_en=f"customer requirement {ref}: received → evaluating",
            created_at=at,
            **changed,
        )
        for i in range(n)
    ]


def test_a_commands_notifications_become_a_segment_without_rows() -> None:
    """No row tuple per notification: the segment is made from the notifications.

    Keeping 11 notifications through rows (``_row`` then ``_append``) ran 1,776
    bytecodes (now ~340).
    """
    store = MemoryStore()
    _append_new(store, _notes("REQ-1", 11))  # the strings are numbered once
    notes = _notes("REQ-2", 11)
    cost = _bytecodes(lambda: _append_new(store, notes))
    assert cost < 600, cost
    with store.transaction() as tx:
        assert [e.notification for e in tx.entries(status="pending")] == _notes("REQ-1", 11) + notes


_odd_text = st.one_of(_text, st.text(alphabet="\x00\x01aR:", max_size=6))


@settings(max_examples=150, deadline=None)
@given(
    ref=st.one_of(st.text(alphabet="aR:\x01-", min_size=1, max_size=4), _text),
    runs=st.lists(
        st.tuples(
            st.integers(1, 3),
            _odd_text,
            st.one_of(st.none(), _odd_text),
            _datetimes.filter(lambda d: d.tzinfo is not None),
            st.lists(st.tuples(_odd_text, _odd_text).map(tuple), max_size=2).map(tuple),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_segments_made_from_notifications_read_back_as_rows_do(ref: str, runs: list[Any]) -> None:
    """The same rows whichever way a segment was made (long form for NUL, \\x01, odd zones)."""
    notes: list[Notification] = []
    for count, text, note, at, details in runs:
        for n in _notes(ref, count, note=note, details=details):
            notes.append(attrs.evolve(n, key=f"{n.key}{len(notes)}", text_en=text, created_at=at))
    direct, through_rows = MemoryStore(), MemoryStore()
    _append_new(direct, notes)
    _append(through_rows, [_row(n) for n in notes])
    assert _Outbox(direct, ref).rows(direct._outbox[ref]) == _Outbox(through_rows, ref).rows(
        through_rows._outbox[ref]
    )
    assert [row for _, row in _Outbox(direct, ref).rows(direct._outbox[ref])] == [
        _row(n) for n in notes
    ]
    assert direct._outbox_keys == through_rows._outbox_keys


# --- queries and commits on packed records ---------------------------------------------------


@pytest.fixture
def unpacks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every packed record unpacked while the test runs."""
    seen: list[bytes] = []
    real = memory._unpack_record

    def counting(data: bytes) -> Any:
        seen.append(data)
        return real(data)

    monkeypatch.setattr(memory, "_unpack_record", counting)
    return seen


def test_a_query_unpacks_only_the_records_it_yields(unpacks: list[bytes]) -> None:
    """Packed records are filtered on their index: 40 cold records, 3 match, 3 unpacked.

    The packed store of 0.6 unpacked every record for every query (1,500
    records: 55 ms against 0.4 ms unpacked).
    """
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        store._hot = 0
        accepted = [to_accepted(desk) for _ in range(3)]
        others = [receive(desk) for _ in range(37)]
        assert len(store._cold) == 40
        unpacks.clear()
        found = [r.ref for r in desk.query(state="accepted")]
        assert found == accepted
        assert len(unpacks) == 3
        unpacks.clear()
        due = [r.ref for r in desk.query(due_before=datetime(2100, 1, 1, tzinfo=UTC))]
        assert sorted(due) == sorted(accepted + others)
        assert [r.ref for r in desk.query(kind="contract")] == []
        assert [r.ref for r in desk.query(customer="nobody")] == []
        assert len(unpacks) == 40  # only the due query yields records
        gc.collect()
        assert not any(gc.is_tracked(facts) for facts in store._index.values())


def test_a_commit_checks_a_packed_records_version_without_unpacking_it(
    unpacks: list[bytes],
) -> None:
    """The version a commit checks comes from the index (0.6 unpacked the record again)."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        store._hot = 0
        ref = receive(desk)
        with store.transaction() as tx:
            record = tx.get(ref)
            assert record is not None
            tx.update(attrs.evolve(record, version=2), expected_version=1)
            unpacks.clear()
        assert unpacks == []
        assert store._index[ref][2] == 2
        assert desk.get(ref).version == 2
