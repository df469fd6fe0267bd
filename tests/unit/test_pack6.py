"""The memory store's JSON packer (issue 15, round six): records packed by their declared types.

A record whose every value is exactly its field's declared type is packed as
JSON by a function generated per class (``j``); anything else takes the
general path of round three (``g``: marshal, or ``p``: pickle).  These tests
compare the two on hostile values and fail if any record comes back different
(types, zones, folds, Decimal digits, tuples against lists included).
"""

from __future__ import annotations

import enum
import sys
import types
import typing
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk, MemoryStore
from reqmgmt.model import (
    Contract,
    ContractLine,
    Money,
    Requirement,
    Return,
    Signoff,
    Survey,
    maker,
    record_classes,
)
from reqmgmt.storage import memory
from reqmgmt.storage.memory import _pack_record, _unpack_record
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, CUSTOMER, to_closed
from .test_memory_packing import _bytecodes
from .test_memory_packing import _same as _same_values


class Colour(enum.Enum):
    RED = "red"


class Text(str):
    """A str subclass: must come back a Text (pickled), never a plain str."""


class Number(int):
    pass


class FakeStr:
    """An object claiming to be a str through ``__class__`` (``type()`` is not fooled)."""

    __class__ = str  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeStr)

    def __hash__(self) -> int:
        return 1

    def __reduce__(self) -> Any:
        return (FakeStr, ())


def _same(a: Any, b: Any) -> None:
    """test_memory_packing's ``_same``, and every datetime's zone the same object kind and
    name (``timezone(timedelta(0), "UTC")`` equals ``UTC`` but is not it)."""
    _same_values(a, b)
    if isinstance(a, datetime):
        assert (a.tzinfo is UTC, repr(a.tzinfo)) == (b.tzinfo is UTC, repr(b.tzinfo))
    elif attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            _same(getattr(a, field.name), getattr(b, field.name))
    elif type(a) in (tuple, list):
        for x, y in zip(a, b, strict=True):
            _same(x, y)


def _general(record: Any) -> bytes:
    """``record`` packed the way round three did (the general path), for comparison."""
    try:
        return b"g" + memory.marshal.dumps(memory._packer(record.__class__)(record))
    except (memory._Unflat, ValueError):
        return b"p" + memory.pickle.dumps(record, memory.pickle.HIGHEST_PROTOCOL)


# --- values of a declared type, usual and hostile ----------------------------------------

_zones = st.sampled_from([timezone(timedelta(hours=8)), timezone(timedelta(hours=-3)), None])
_text = st.one_of(
    st.text(max_size=8),  # surrogates included: orjson refuses them, the general path packs
    st.text(alphabet='\x00\x01\x1f"\\aR:é客', max_size=6),
    st.sampled_from(["", "closed", "客户需求", "a" * 300]),
)
_utc = st.builds(
    lambda d, fold: d.replace(tzinfo=UTC, fold=fold),
    st.datetimes(),
    st.sampled_from([0, 0, 0, 1]),
)
_any_datetime = st.one_of(
    _utc,
    st.builds(lambda d, z: d.replace(tzinfo=z), st.datetimes(), _zones),
    st.just(datetime(2026, 3, 1, 0, 0, 0, 0, tzinfo=UTC)),
    st.just(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
    st.just(datetime(1, 1, 1, tzinfo=UTC)),
)
_ints = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.integers(min_value=2**64, max_value=2**200),
    st.integers(max_value=-(2**63) - 1, min_value=-(2**200)),
    st.sampled_from([0, 1, 2**63 - 1, 2**64 - 1, -(2**63)]),
)
_decimals = st.one_of(
    st.decimals(places=2, allow_nan=False),
    st.decimals(),  # NaN, sNaN, infinities, any exponent
    st.sampled_from([Decimal("-0"), Decimal("-0.10"), Decimal("1E+5"), Decimal("1" * 60 + ".5")]),
)
#: Values of the wrong type for any field (each must take the general path and come back).
_odd = st.one_of(
    st.builds(Text, st.text(max_size=3)),
    st.builds(Number, st.integers()),
    st.sampled_from([Colour.RED, uuid.UUID(int=5), 1.5, -0.0, b"x", bytearray(b"y")]),
    st.just(FakeStr()),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.just(()),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.none(),
    st.booleans(),
    st.dates(),
    _any_datetime,
    st.datetimes(),  # naive
)


def _of(hint: Any) -> st.SearchStrategy[Any]:
    """Values of the declared type ``hint`` (hostile within it: str and zone edge cases)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return st.one_of(*(_of(a) for a in args))
    if hint is type(None):
        return st.none()
    if hint is str:
        return _text
    if hint is bool:
        return st.booleans()
    if hint is int:
        return _ints
    if hint is datetime:
        return _any_datetime
    if hint is date:
        return st.dates()
    if hint is Decimal:
        return _decimals
    origin = typing.get_origin(hint)
    if origin is frozenset:
        return st.frozensets(_of(args[0]), max_size=3)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_of(args[0]), max_size=3).map(tuple)
        return st.tuples(*(_of(a) for a in args))
    if attrs.has(hint):
        return _record(hint)
    raise AssertionError(f"no strategy for {hint!r}")


def _field_values(cls: type, hints: dict[str, Any], field: Any) -> st.SearchStrategy[Any]:
    declared = st.deferred(lambda: _of(hints[field.name]))
    return st.one_of(declared, declared, declared, declared, _odd)


def _record(cls: type) -> st.SearchStrategy[Any]:
    """A ``cls`` whose fields hold mostly values of their declared types, sometimes odd ones."""
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    return st.tuples(*(_field_values(cls, hints, f) for f in fields)).map(
        lambda values: maker(cls)(*values)
    )


def _well_typed(cls: type) -> st.SearchStrategy[Any]:
    """A ``cls`` with values of the declared types only (the nested objects too)."""
    hints = typing.get_type_hints(cls)

    def of(hint: Any) -> st.SearchStrategy[Any]:
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (types.UnionType, typing.Union):
            return st.one_of(*(of(a) for a in args))
        if attrs.has(hint):
            return _well_typed(hint)
        if typing.get_origin(hint) is tuple and args[1:] == (Ellipsis,) and attrs.has(args[0]):
            return st.lists(_well_typed(args[0]), max_size=2).map(tuple)
        return _of(hint)

    return st.tuples(*(st.deferred(lambda h=hints[f.name]: of(h)) for f in attrs.fields(cls))).map(
        lambda values: maker(cls)(*values)
    )


_CLASSES = sorted(record_classes().values(), key=lambda c: c.RECORD_KIND)


def _json_exact(record: Any) -> bool:
    """Whether every value is one the JSON form keeps exactly (else: the general path)."""
    if attrs.has(type(record)):
        return all(_json_exact(getattr(record, f.name)) for f in attrs.fields(type(record)))
    if type(record) in (tuple, frozenset):
        return all(_json_exact(v) for v in record)
    if type(record) is str:
        try:
            record.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if type(record) is int:
        return -(2**63) <= record < 2**64
    if type(record) is datetime:
        return record.tzinfo is UTC and record.fold == 0
    return type(record) in (bool, type(None), date, Decimal)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_CLASSES).flatmap(_record))
def test_any_record_reads_back_exactly_and_as_the_general_path_reads_it(record: Any) -> None:
    """Hostile values in every field: the same record back, as round three's packing gave."""
    packed = _pack_record(record)
    _same(_unpack_record(packed), record)
    _same(_unpack_record(packed), _unpack_record(_general(record)))
    if packed[:1] == b"j":
        assert _json_exact(record)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_CLASSES).flatmap(_well_typed))
def test_a_record_of_its_declared_types_is_json_unless_json_cannot_keep_a_value(
    record: Any,
) -> None:
    """Zones, fold=1, huge ints, surrogates: those take the general path; the rest is JSON."""
    packed = _pack_record(record)
    _same(_unpack_record(packed), record)
    assert (packed[:1] == b"j") == _json_exact(record), packed[:60]


@pytest.mark.parametrize(
    "odd",
    [
        Text("x"),
        FakeStr(),
        Colour.RED,
        uuid.UUID(int=1),
        bytearray(b"buffer"),
        ["a", "list"],
        ("a", Text("b")),
        ("a", 1),
        datetime(2026, 1, 1, tzinfo=UTC).replace(fold=1),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(0), "UTC")),  # UTC, another object
        datetime(2026, 1, 1),  # naive
        "\ud800",
        2**64,
    ],
    ids=lambda odd: type(odd).__name__,  # FakeStr passes isinstance(str): pytest would read it
)
def test_an_odd_value_anywhere_takes_the_general_path(odd: Any) -> None:
    """In a str field, a tuple field, a datetime field and nested in a sign-off."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        record = desk.get(to_closed(desk))
    for name in ("description", "reason", "remarks", "created_at", "review_round"):
        changed = attrs.evolve(record)
        object.__setattr__(changed, name, odd)
        packed = _pack_record(changed)
        assert packed[:1] in (b"g", b"p")
        _same(_unpack_record(packed), changed)
    signoff = attrs.evolve(record.signoffs[0])
    object.__setattr__(signoff, "opinion", odd)
    changed = attrs.evolve(record, signoffs=(*record.signoffs, signoff))
    packed = _pack_record(changed)
    assert packed[:1] in (b"g", b"p")
    _same(_unpack_record(packed), changed)


# --- the records a desk makes ---------------------------------------------------------------


def _desk_records(desk: Desk) -> list[Any]:
    closed = to_closed(desk)
    line = ContractLine(
        line_no=1,
        product="支架",
        quantity=3,
        unit_price=Money("12.50", "CNY"),
        delivery_date=date(2026, 5, 1),
    )
    contract = desk.contracts.draft(
        customer=CUSTOMER, lines=[line], currency="CNY", flags=("first_order",), actor=CLERK
    )
    returned = desk.returns.report(
        customer=CUSTOMER,
        product="bracket",
        reason_code="quality",
        reason_text="cracked",
        shipped_on=date(2026, 2, 1),
        actor=CLERK,
    )
    survey = desk.create(
        "survey",
        actor=CLERK,
        customer=CUSTOMER,
        answers={"quality": 4, "delivery": 5},
        comment="好 good",
    )
    return [desk.get(closed), desk.get(contract.ref), desk.get(returned.ref), survey]


def test_the_records_a_desk_makes_are_json_and_read_back_the_same() -> None:
    """A requirement with sign-offs, a contract with lines and Money, a return, a survey."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        records = _desk_records(desk)
    assert [type(r) for r in records] == [Requirement, Contract, Return, Survey]
    for record in records:
        packed = _pack_record(record)
        assert packed[:1] == b"j", type(record)
        back = _unpack_record(packed)
        _same(back, record)
        _same(back, _unpack_record(_general(record)))
    requirement = records[0]
    assert len(requirement.signoffs) == 3
    assert all(type(s) is Signoff and s.at.tzinfo is UTC for s in requirement.signoffs)
    assert type(records[1].amount.amount) is Decimal


def test_a_record_that_would_come_back_different_is_caught() -> None:
    """The comparison the tests above make fails on a changed type, zone, fold or digit."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        record = desk.get(to_closed(desk))
    at = record.created_at
    for name, value in (
        ("remarks", list(record.remarks)),
        ("created_at", at.replace(fold=1)),
        ("created_at", at.astimezone(timezone(timedelta(0), "UTC"))),
        ("description", Text(record.description)),
    ):
        changed = attrs.evolve(record)
        object.__setattr__(changed, name, value)  # past converters
        with pytest.raises(AssertionError):
            _same(changed, record)
    money = Money(Decimal("1.10"), "CNY")
    with pytest.raises(AssertionError):
        _same(Money(Decimal("1.1"), "CNY"), money)


def test_a_store_keeps_packed_records_that_read_back_the_same() -> None:
    """Through the store: every record packed at once (``_hot = 0``), read back equal."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, MemoryStore)
        store._hot = 0
        records = _desk_records(desk)
        assert {blob[:1] for blob in store._cold.values()} == {b"j"}
        for record in records:
            _same(desk.get(record.ref), record)


def test_packing_a_requirement_runs_fewer_bytecodes_than_the_general_path() -> None:
    """The general path runs ~1,340 bytecodes for a closed requirement with three sign-offs
    (and marshal and ``__reduce_ex__`` in C, most of its cost); the JSON one ~870."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        record = desk.get(to_closed(desk))
    _pack_record(record)
    general = _bytecodes(lambda: _general(record))
    fast = _bytecodes(lambda: _pack_record(record))
    assert fast < 1000 < general, (fast, general)
    assert sys.getsizeof(_pack_record(record)) < 1000


@attrs.frozen
class _Inner:
    at: datetime
    name: str


@attrs.frozen
class _OuterA:
    inner: _Inner
    items: tuple[_Inner, ...]


@attrs.frozen
class _OuterB:
    inner: _Inner | None
    count: int


def test_a_class_made_by_one_thread_is_not_read_as_packerless_by_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thread A makes _OuterA's packer and, nested, _Inner's; thread B packs an _OuterB
    (which nests _Inner too) meanwhile: B waits for A, and both classes get packers.
    Unlocked, B read _Inner's mark "being made" as "none" and kept _OuterB from JSON."""
    import threading

    for cls in (_Inner, _OuterA, _OuterB):
        memory._JSON_PACKERS.pop(cls, None)
    inside, b_done = threading.Event(), threading.Event()
    real = memory.maker

    def slow_maker(cls: type) -> Any:
        if cls is _Inner:
            inside.set()
            b_done.wait(0.5)  # B runs now (it finishes at once unless it waits for A)
        return real(cls)

    monkeypatch.setattr(memory, "maker", slow_maker)
    inner = _Inner(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "客")
    a_value, b_value = _OuterA(inner, (inner, inner)), _OuterB(inner, 3)
    packed: dict[str, bytes] = {}

    def run_b() -> None:
        packed["b"] = _pack_record(b_value)
        b_done.set()

    a = threading.Thread(target=lambda: packed.setdefault("a", _pack_record(a_value)))
    a.start()
    assert inside.wait(5)
    b = threading.Thread(target=run_b)
    b.start()
    a.join()
    b.join()
    assert packed["a"][:1] == packed["b"][:1] == b"j"
    assert all(memory._JSON_PACKERS[c] is not None for c in (_Inner, _OuterA, _OuterB))
    _same(_unpack_record(packed["a"]), a_value)
    _same(_unpack_record(packed["b"]), b_value)
