"""A creation's fast paths (issue 15 point 2, round four) give what the slow ones give.

- ``building.first_version``: one fill per set of given names, each
  building or refusing as ``model.constructor`` (``cls(**values)``) does,
  whatever names come in whatever order, one after the other;
- ``model.fast_pass``: a value its inlined test passes, the validator passes;
- ``storage.sql._utc_text``: a UTC time's column text taken from the
  document's remembered ``iso`` equals the text formatted for the column.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Customer, Requirement
from reqmgmt import building as building_module
from reqmgmt import model as model_module
from reqmgmt.building import first_version
from reqmgmt.model import constructor, fast_pass, record_classes
from reqmgmt.storage import sql as sql_module

from .test_creation_cost import _BASE, _ODD_TEXT, _ODD_TIME, AT, _outcome
from .test_creation_cost import _OPTIONAL as _COST_OPTIONAL

# test_creation_cost's inputs, and the names it does not vary.
_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    **_COST_OPTIONAL,
    "ref": _ODD_TEXT,
    "state": _ODD_TEXT,
    "created_by": _ODD_TEXT,
    "signoffs": st.sampled_from([(), None, "x"]),
    "step": _ODD_TEXT,
    "next_deadline": _ODD_TIME,
    "created_at": _ODD_TIME,
}
_REQUIRED = ("ref", "customer", "description", "received_at", "created_by")


_ROWS = st.lists(
    st.tuples(
        st.fixed_dictionaries({}, optional=_OPTIONAL),
        st.sampled_from([None, *_REQUIRED]),
        st.randoms(use_true_random=False),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(rows=_ROWS)
def test_each_fill_builds_or_refuses_as_the_constructor(rows: list[Any]) -> None:
    """Rows of varying names (and orders) one after the other: each as ``cls(**values)``."""
    build = first_version(Requirement)
    for extra, drop, rnd in rows:
        values = {**_BASE, **extra}
        if drop is not None:
            del values[drop]
        items = list(values.items())
        rnd.shuffle(items)  # the same names in another order: another fill, the same record
        values = dict(items)
        assert _outcome(build, values) == _outcome(constructor(Requirement), values)
        assert _outcome(build, values) == _outcome(lambda v: Requirement(**v), values)


def test_a_fill_is_made_once_per_set_of_names_and_the_map_is_bounded(monkeypatch: Any) -> None:
    made: list[frozenset[Any]] = []
    real = building_module._filler

    def counting(cls: type, stand_in: type) -> Any:
        make = real(cls, stand_in)

        def counted(keys: frozenset[Any]) -> Any:
            made.append(keys)
            return make(keys)

        return counted

    monkeypatch.setattr(building_module, "_filler", counting)
    monkeypatch.setattr(building_module, "_BUILDERS", {})
    monkeypatch.setattr(building_module, "_FILLS", 3)
    build = first_version(Requirement)
    for _ in range(5):
        assert build(_BASE).ref == _BASE["ref"]
    assert made == [frozenset(_BASE)]
    extra = {"channel": "email", "remarks": ("r",), "priority": "urgent", "kind": "memo"}
    names = list(extra)
    for i in range(10):  # more sets of names than are kept: made again, each right
        values = {**_BASE, **{n: extra[n] for n in names[: i % 5]}}
        record = build(values)
        assert attrs.asdict(record, recurse=False) == attrs.asdict(
            Requirement(**values), recurse=False
        )
    assert len(made) == 10  # 5 sets, 3 kept: made again when it comes back


@settings(max_examples=500, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(2199, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(0))]),
    )
)
def test_utc_column_text_is_the_formatted_one(when: datetime) -> None:
    slow = when.astimezone(UTC).isoformat(timespec="microseconds")[:26]
    assert sql_module._utc_text(when) == slow
    assert sql_module._utc_text(when) == slow  # again, from the remembered document text


def test_utc_column_text_of_a_datetime_subclass_is_its_own() -> None:
    class Odd(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "odd" * 10

    odd = Odd(2026, 3, 2, 9, 30, 0, 5, tzinfo=UTC)
    assert sql_module._utc_text(odd) == odd.astimezone(UTC).isoformat(timespec="microseconds")[:26]


def test_a_full_record_cache_keeps_the_newest_rows(tmp_path: Any, monkeypatch: Any) -> None:
    """An import past the cache's size evicts the oldest refs; reads still give the rows."""
    from reqmgmt import Actor, Desk

    monkeypatch.setattr(sql_module, "_CACHE_SIZE", 5)
    with Desk.open(f"sqlite:///{tmp_path}/c.db", autodispatch=False) as desk:
        rows = [
            {"customer": Customer("C-1", "客户"), "description": f"row {i}", "received_at": AT}
            for i in range(12)
        ]
        refs = desk.create_many("requirement", rows, actor=Actor("clerk", roles={"sales"}))
        with desk.store.transaction() as tx:
            cache = tx.cache  # type: ignore[attr-defined]
            assert list(cache) == refs[-5:]
            for i, ref in enumerate(refs):
                found = tx.get(ref)
                assert isinstance(found, Requirement)
                assert found.description == f"row {i}"
            assert len(cache) == 5


class _Str(str):
    pass


class _Time(datetime):
    pass


_CHECKED = [
    (cls, a)
    for cls in sorted(record_classes().values(), key=lambda c: c.__name__)
    for a in attrs.fields(cls)
    if a.validator is not None and fast_pass(a.validator, a) is not None
]
_ANY_VALUE = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from(" a\t\n\x00\x7f\u00a0\u3000\ud800备"), max_size=70),
    st.integers(min_value=0, max_value=80).map(lambda n: "x" * n),
    st.sampled_from([_Str("abc"), _Str(""), "", " ", None, True, False, 0, -1, 2**31 - 1, 2**31]),
    st.integers(),
    st.datetimes(
        min_value=datetime(1800, 1, 1),
        max_value=datetime(2300, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(0))]),
    ),
    st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2300, 1, 1)),
    st.sampled_from(
        [
            model_module.EARLIEST,
            model_module.LATEST,
            model_module.LATEST - timedelta(microseconds=1),
            model_module.EARLIEST - timedelta(microseconds=1),
            _Time(2026, 3, 2, tzinfo=UTC),
        ]
    ),
)


def test_every_validator_with_a_fast_test_is_checked() -> None:
    kinds = {a.validator for _, a in _CHECKED}
    assert (
        kinds
        == {
            model_module._non_empty,
            model_module._text,
            model_module._optional_text,
            model_module._aware,
            model_module._count,
        }
        & kinds
    )
    assert len(kinds) >= 4  # the common ones of every record class


@settings(max_examples=1500, deadline=None)
@given(which=st.sampled_from(_CHECKED), value=_ANY_VALUE)
def test_a_value_the_fast_test_passes_the_validator_passes(which: Any, value: Any) -> None:
    """The inlined test is never more lenient than the validator (a stricter one only
    costs the call)."""
    cls, a = which
    test = fast_pass(a.validator, a)
    assert test is not None
    if eval(test, dict(model_module.FAST_NAMES), {"v": value}):
        a.validator(object.__new__(cls), a, value)  # does not raise


_SET = {
    "step": _ODD_TEXT,
    "step_due_at": _ODD_TIME,
    "next_deadline": _ODD_TIME,
    "due_at": _ODD_TIME,
    "remarks": st.sampled_from([(), ("a",), ["b"], ("",), 3]),
    "version": st.sampled_from([1, 2, -1, True]),
    "nonsense": st.just(1),
}


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.fixed_dictionaries({}, optional=_SET), st.randoms(use_true_random=False)),
        min_size=1,
        max_size=5,
    )
)
def test_set_fields_puts_or_refuses_as_derive(changes: list[Any]) -> None:
    """Names in any order, one set after the other: each as ``derive`` on a copy."""
    from reqmgmt.building import set_fields
    from reqmgmt.model import derive

    for given_changes, rnd in changes:
        items = list(given_changes.items())
        rnd.shuffle(items)
        values = dict(items)

        def derived(values: dict[str, Any] = values) -> Any:
            return derive(constructor(Requirement)(_BASE), values)

        def set_in(values: dict[str, Any] = values) -> Any:
            record = first_version(Requirement)(_BASE)
            set_fields(record, values)
            return record

        assert _outcome(set_in) == _outcome(derived)
