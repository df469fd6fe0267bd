"""The generated diff per shape (command.field_diff) against the general way and cattrs,
and the rows it hands to seal against the rows seal would make itself."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Requirement, command, model
from reqmgmt.model import PlanReceipt
from reqmgmt.testing import strategies

from .test_command_steps import _signoffs, _slow_diff, times

SORTED = orjson.OPT_SORT_KEYS


@st.composite
def record_and_changes(draw: st.DrawFn) -> tuple[Requirement, dict[str, Any]]:
    """A requirement and changes of a few of its fields (every way of writing one),
    in any order, some equal to the old values (left out of the diff)."""
    base = draw(strategies.requirements())
    now = draw(times)
    before, more = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    record = attrs.evolve(
        base,
        signoffs=_signoffs(before, now),
        step_due_at=draw(st.one_of(st.none(), times)),
        review_round=draw(st.integers(0, 2)),
    )
    signoffs = _signoffs(before + more, now)
    pool: dict[str, Any] = {
        "signoffs": signoffs[1:] if draw(st.booleans()) else signoffs,
        "plan_receipts": draw(
            st.sampled_from([(), (PlanReceipt(department="sales", actor_id="clerk", at=now),)])
        ),
        "state": draw(st.sampled_from(["received", "evaluating"])),
        "version": record.version + draw(st.integers(0, 1)),
        "updated_at": draw(st.sampled_from([record.updated_at, now])),
        "step_due_at": draw(st.one_of(st.none(), times, st.just(record.step_due_at))),
        "next_deadline": draw(st.one_of(st.none(), times)),
        "customer": record.customer,
        "remarks": draw(st.sampled_from([record.remarks, (*record.remarks, "one more"), ("x",)])),
        "review_round": draw(st.integers(0, 2)),
        "priority": draw(st.sampled_from(["normal", "urgent"])),
        "delivery_plan": draw(st.sampled_from([None, "2 lots", 'a "quoted", 中文 plan'])),
        "submitted_by": draw(st.sampled_from([None, "clerk"])),
    }
    names = draw(st.lists(st.sampled_from(sorted(pool)), unique=True))
    return record, {name: pool[name] for name in names}


def _rows(diff: tuple[model.FieldChange, ...]) -> list[list[Any]]:
    return [[c.field, c.old, c.new, c.op] for c in diff]


@given(record_and_changes())
def test_the_generated_diff_is_the_general_diff_and_cattrs(
    case: tuple[Requirement, dict[str, Any]],
) -> None:
    """First call generates the shape, the second runs it: both equal the general way
    and cattrs' hooks, in the same JSON (1 and True are equal, their JSON is not)."""
    record, changes = case
    general = command.general_diff(record, changes)
    slow = _slow_diff(record, changes)
    assert general == slow
    for _ in range(2):
        diff = command.field_diff(record, changes)
        assert diff == general
        assert orjson.dumps(_rows(diff), option=SORTED) == orjson.dumps(_rows(slow), option=SORTED)
        assert [type(x) for c in diff for x in (c.old, c.new)] == [
            type(x) for c in general for x in (c.old, c.new)
        ]
        # The rows handed to seal are those of this very diff.
        last, rows = command._LAST_ROWS
        assert last is diff
        assert [list(row) for row in rows] == _rows(diff)
        assert orjson.dumps(rows, option=SORTED) == orjson.dumps(_rows(diff), option=SORTED)
    assert (type(record), tuple(changes)) in command._SHAPES


@given(strategies.requirements())
def test_other_mappings_and_unknown_names_go_the_general_way(record: Requirement) -> None:
    later = record.updated_at + timedelta(seconds=1)
    proxy: Mapping[str, Any] = MappingProxyType({"updated_at": later})
    before = command._LAST_ROWS
    assert command.field_diff(record, proxy) == command.general_diff(record, proxy)
    assert command._LAST_ROWS is before  # no rows offered for a diff made the general way
    assert command.diff_of_shape(Requirement, ("updated_at", "no_such_field")) is None
    with pytest.raises(AttributeError):
        command.field_diff(record, {"updated_at": later, "no_such_field": 1})
    # An attribute that is no field, unchanged, is skipped, as it always was.
    assert command.field_diff(record, {"ref": record.ref}) == ()
    assert command.field_diff(record, {}) == ()


@given(strategies.requirements())
def test_shapes_are_bounded(record: Requirement) -> None:
    command._SHAPES.clear()
    names = sorted(a.name for a in attrs.fields(Requirement))
    for i in range(len(names)):
        command.field_diff(record, {names[i]: getattr(record, names[i])})
    assert 0 < len(command._SHAPES) <= 4096


@given(strategies.requirements())
def test_remembered_plain_changes_keep_their_types(record: Requirement) -> None:
    """1 and True are equal and hash alike: remembered by type too, their JSON kept."""

    class Name(str):
        pass

    record = attrs.evolve(record, review_round=0, delivery_plan=None)
    for new, text in [(1, b"1"), (True, b"true"), (1, b"1"), (True, b"true")]:
        (change,) = command.field_diff(record, {"review_round": new})
        assert type(change.new) is type(new)
        assert orjson.dumps(command._LAST_ROWS[1][0]) == b'["review_round",0,' + text + b',"set"]'
    odd = Name("2 lots")
    (change,) = command.field_diff(record, {"delivery_plan": odd})
    assert change.new is odd  # not a scalar of the plain kinds: made, not remembered
    (again,) = command.field_diff(record, {"delivery_plan": "2 lots"})
    assert type(again.new) is str
    assert command.field_diff(record, {"delivery_plan": "2 lots"})[0] is again


@given(strategies.requirements())
def test_long_texts_are_not_remembered(record: Requirement) -> None:
    """Only short texts recur (a state, a step): a long one is made each time, so
    4,096 remembered changes never hold 4,096 long descriptions or notes."""
    command._PLAIN_CHANGES.clear()
    record = attrs.evolve(record, delivery_plan=None)
    long = "x" * (model.MAX_ID + 1)
    (change,) = command.field_diff(record, {"delivery_plan": long})
    assert change.new == long
    assert not any(long in key for key in command._PLAIN_CHANGES)
    short = "x" * model.MAX_ID
    (kept,) = command.field_diff(record, {"delivery_plan": short})
    assert command.field_diff(record, {"delivery_plan": short})[0] is kept
