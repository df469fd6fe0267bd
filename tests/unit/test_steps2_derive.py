"""``derive``'s generated per-shape function gives what the slow path gives (issue 15.2).

- ``model.derive_pass``: a value its inlined test passes, the validator passes
  (``fast_pass``'s cases, a collection of plain texts, the empty tuple of an
  "every item is a ``cls``" check);
- ``_Keyed.derive`` (a dict of changes, the command path) derives what the
  planning path and the mapping path derive, or raises the same error, for
  changes of any names, values and order; converters skipped where they
  would return the value as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Contract, Requirement, Signoff, model
from reqmgmt.model import (
    FAST_NAMES,
    ContractLine,
    IdentifiedRequirement,
    Money,
    PlanReceipt,
    derive,
    derive_pass,
    record_classes,
)
from reqmgmt.testing import strategies
from reqmgmt.testing.contract import make_requirement

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class _Str(str):
    def isprintable(self) -> bool:  # a hostile subclass: never the fast path's business
        return True


_ODD_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(" a\t\n\x00\x7f\u00a0备\ud800"), max_size=8),
    st.sampled_from(["", "x" * 64, "x" * 65, "x" * 300, "x" * 70_000, "备注", _Str("a\x00")]),
)
_ODD_ITEM = st.one_of(_ODD_TEXT, st.sampled_from([7, None, b"x", ("a", "b"), ("a", 1)]))
_COLLECTIONS = st.one_of(
    st.lists(_ODD_ITEM, max_size=5).map(tuple),
    st.lists(_ODD_ITEM, max_size=5),
    st.frozensets(_ODD_TEXT, max_size=4),
    st.sampled_from(["abc", None, 3, (), frozenset(), ("x" * 64,) * 3]),
)
_ODD_TIME = st.sampled_from(
    [
        None,
        AT,
        datetime(2026, 3, 2),
        AT.astimezone(timezone(timedelta(hours=8))),
        model.EARLIEST,
        model.LATEST,
        model.LATEST - timedelta(microseconds=1),
        model.EARLIEST - timedelta(microseconds=1),
        "2026-03-02",
    ]
)
_ANY = st.one_of(
    _ODD_TEXT,
    _COLLECTIONS,
    _ODD_TIME,
    st.sampled_from([True, False, 0, -1, 2**31 - 1, 2**31, 1.5]),
)


def _fast(validator: Any, attribute: attrs.Attribute[Any], value: Any) -> bool:
    test = derive_pass(validator, attribute)
    assert test is not None
    return bool(eval(test, {**FAST_NAMES, "_STR_": frozenset((str,)), "v": value}))


_CHECKED = [
    (cls, a)
    for cls in sorted(record_classes().values(), key=lambda c: c.__name__)
    for a in attrs.fields(cls)
    if a.validator is not None and derive_pass(a.validator, a) is not None
]


def test_derive_pass_covers_the_collections() -> None:
    """Beyond fast_pass: every _each_text field and the nested-record tuples."""
    names = {(cls.__name__, a.name) for cls, a in _CHECKED}
    assert {("Requirement", "remarks"), ("Requirement", "plan_departments")} <= names
    assert {("Requirement", "plan_receipts"), ("Requirement", "identified")} <= names
    assert ("Contract", "flags") in names
    assert ("Requirement", "priority") not in names  # one_of: the validator is called


@settings(max_examples=1500, deadline=None)
@given(pair=st.sampled_from(_CHECKED), value=_ANY)
def test_a_value_the_test_passes_the_validator_passes(pair: Any, value: Any) -> None:
    cls, a = pair
    if _fast(a.validator, a, value):
        a.validator(object.__new__(cls), a, value)  # raises if the test lied


def test_the_collection_tests_pass_what_the_command_path_meets() -> None:
    a = attrs.fields(Requirement).plan_departments
    departments = ("engineering", "finance", "materials", "production", "quality")
    assert _fast(a.validator, a, departments)
    assert _fast(a.validator, a, ())
    assert not _fast(a.validator, a, ("ok", _Str("x")))  # a subclass: the validator decides
    assert not _fast(a.validator, a, ("line\nbreak",))
    assert not _fast(a.validator, a, ("x" * 65,))
    receipts = attrs.fields(Requirement).plan_receipts
    assert _fast(receipts.validator, receipts, ())
    one = (PlanReceipt(department="d", actor_id="a", at=AT),)
    assert not _fast(receipts.validator, receipts, one)


_RECEIPT = PlanReceipt(department="sales", actor_id="clerk", at=AT)
_REQUIREMENT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "remarks": _COLLECTIONS,
    "plan_departments": _COLLECTIONS,
    "plan_receipts": st.sampled_from(
        [(), [], (_RECEIPT,), ("x",), None, [_RECEIPT], (_RECEIPT, 1)]
    ),
    "identified": st.sampled_from(
        [(), (IdentifiedRequirement(kind="explicit", text="t", identified_by="e", at=AT),), (1,)]
    ),
    "signoffs": st.sampled_from(
        [(), [], (Signoff("eng", "a", True, "", "review", 1, AT),), ["x"], "ab"]
    ),
    "updated_at": _ODD_TIME,
    "step_due_at": _ODD_TIME,
    "next_deadline": _ODD_TIME,
    "review_round": st.sampled_from([0, 3, -1, True, "1", 2**31]),
    "version": st.sampled_from([2, 0, -1, True]),
    "state": _ODD_TEXT,
    "submitted_by": st.one_of(st.none(), _ODD_TEXT),
    "delivery_plan": st.one_of(st.none(), _ODD_TEXT),
    "priority": st.sampled_from(["normal", "urgent", "whenever", 3]),
    "customer": st.sampled_from([model.Customer("C-1", "客户"), "C-1"]),
    "step": st.one_of(st.none(), _ODD_TEXT),
}
_CHECKED_NAMES = st.sampled_from(["", "state", frozenset(("state", "version"))])


def _outcome(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        made = fn(*args, **kw)
    except Exception as exc:  # the errors themselves are compared
        return ("raised", type(exc), str(exc))
    return ("made", type(made), attrs.asdict(made, recurse=False))


def _identical(new: Any, old: Any, changes: dict[str, Any]) -> None:
    """Every field unchanged is the very object it was; a changed one the converted value."""
    for a in attrs.fields(type(old)):
        if a.name not in changes:
            assert getattr(new, a.name) is getattr(old, a.name)


@st.composite
def _shapes(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(_REQUIREMENT_VALUES)), unique=True, max_size=7))
    return {name: draw(_REQUIREMENT_VALUES[name]) for name in names}


@settings(max_examples=600, deadline=None)
@given(strategies.requirements(), st.lists(_shapes(), min_size=1, max_size=4), _CHECKED_NAMES)
def test_the_generated_derive_agrees_with_the_slow_paths(
    record: Requirement, shapes: list[dict[str, Any]], checked: Any
) -> None:
    """Shapes one after the other (each planned, then generated): the same record or error."""
    model._KEYED.clear()
    for changes in shapes:
        planning = _outcome(model._derive_planning, record, changes, checked)
        mapping = _outcome(derive, record, MappingProxyType(changes), checked=checked)
        generated = _outcome(derive, record, changes, checked=checked)
        assert generated == planning == mapping
        if generated[0] == "made":
            _identical(derive(record, changes, checked=checked), record, changes)


def test_a_converted_value_that_is_already_its_class_is_kept() -> None:
    record = make_requirement()
    remarks = ("a", "b")
    changes = {"remarks": remarks, "updated_at": AT}
    derive(record, changes)  # planned
    new = derive(record, changes)  # generated
    assert new.remarks is remarks
    listed = derive(record, {"remarks": ["a"], "updated_at": AT})
    assert listed.remarks == ("a",)
    assert type(listed.remarks) is tuple


@settings(max_examples=200, deadline=None)
@given(flags=_COLLECTIONS, lines=st.sampled_from([(), []]), at=_ODD_TIME)
def test_a_contract_derives_as_before(flags: Any, lines: Any, at: Any) -> None:
    """Another class, a frozenset converter and a cross-field check (``__attrs_post_init__``)."""
    line = ContractLine(line_no=1, product="bracket", quantity=10, unit_price=Money(3, "CNY"))
    record = Contract(
        ref="CON-1", state="draft", created_at=AT, updated_at=AT, created_by="x",
        customer=model.Customer("C-1", "客户"), currency="CNY", lines=(line,),
        amount=Money(30, "CNY"),
    )  # fmt: skip
    changes = {"flags": flags, "updated_at": at}
    model._KEYED.clear()
    derive(record, {"flags": frozenset(), "updated_at": AT})  # planned: the next are generated
    planning = _outcome(model._derive_planning, record, changes, "")
    assert _outcome(derive, record, changes) == planning
    assert _outcome(derive, record, MappingProxyType(changes)) == planning
    with_lines = {"lines": lines, "updated_at": AT}  # no lines: the sum is refused
    planning = _outcome(model._derive_planning, record, with_lines, "")
    assert _outcome(derive, record, with_lines) == planning
