"""cattrs round trips of records."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from reqmgmt import Money, Requirement, ValidationError
from reqmgmt.serialize import field_unstructurer, structure, unstructure
from reqmgmt.testing import make_requirement, strategies


@given(strategies.requirements())
def test_requirement_round_trips_through_json(rec: Requirement) -> None:
    """unstructure → JSON → structure gives an equal record."""
    data = json.loads(json.dumps(unstructure(rec)))
    assert structure(data, Requirement) == rec


def test_sets_are_written_sorted() -> None:
    """Equal records give equal JSON: flags are sorted lists."""
    rec = make_requirement()
    data = unstructure(rec)
    assert data["customer"]["flags"] == []
    assert isinstance(data["created_at"], str)


def test_money_round_trips_as_strings() -> None:
    """Decimal amounts are written as strings, never floats."""
    data = unstructure(Money("12.30", "CNY"))
    assert data == {"amount": "12.30", "currency": "CNY"}
    assert structure(data, Money) == Money("12.30", "CNY")


def test_structure_errors_name_the_field() -> None:
    """Bad data raises ValidationError naming what did not fit."""
    data = unstructure(make_requirement())
    data["version"] = "many"
    with pytest.raises(ValidationError, match="version"):
        structure(data, Requirement)


def test_field_unstructurer_skips_plain_fields() -> None:
    """Plain str/int fields need no conversion; datetimes do."""
    hooks = field_unstructurer(Requirement)
    assert hooks["state"] is None
    assert hooks["version"] is None
    assert hooks["updated_at"] is not None


def test_remembered_answers_like_the_function_and_calls_it_once_per_object() -> None:
    from datetime import UTC, datetime, timedelta

    from reqmgmt.serialize import iso, remembered

    calls: list[datetime] = []

    def text(value: datetime) -> str:
        calls.append(value)
        return value.isoformat()

    cached = remembered(text, size=3)
    a = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    b = a + timedelta(hours=1)
    equal_but_not_a = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert equal_but_not_a == a
    assert equal_but_not_a is not a
    assert [cached(a), cached(a), cached(b)] == [a.isoformat(), a.isoformat(), b.isoformat()]
    assert calls == [a, b]
    cached(equal_but_not_a)  # keyed by identity: another object is computed
    assert len(calls) == 3  # keyed by identity: an equal datetime is another entry
    moments = [a + timedelta(days=i) for i in range(1, 6)]
    for moment in moments:  # more than size: the cache starts over, answers stay right
        assert cached(moment) == moment.isoformat()
    assert calls[3:] == moments
    assert iso(a) == a.isoformat()


def test_a_handed_over_document_is_taken_once_then_made_anew() -> None:
    from reqmgmt.serialize import document, hand_over, unstructure
    from reqmgmt.testing import make_requirement

    rec = make_requirement()
    made = unstructure(rec)
    hand_over(rec, made)
    assert document(make_requirement()) is not made  # another record: its own form
    assert document(rec) is made  # the form the command made, not made again
    again = document(rec)
    assert again == made
    assert again is not made  # taken once: a later write makes its own


def test_by_identity_keeps_values_per_object_and_starts_over_when_full() -> None:
    from reqmgmt.serialize import ByIdentity

    kept: ByIdentity[list[int], str] = ByIdentity(2)
    a, b, c = [1, 2], [3, 4], [5, 6]
    equal_to_a = [1, 2]
    assert equal_to_a == a
    assert equal_to_a is not a
    kept.put(a, "a")
    kept.put(b, "b")
    assert (kept.get(a), kept.get(equal_to_a), len(kept)) == ("a", None, 2)
    assert kept.pop(b) == "b"
    assert kept.pop(b) is None  # taken once
    kept.put(b, "b")
    kept.put(c, "c")  # the third: the map starts over
    assert (kept.get(a), kept.get(b), kept.get(c), len(kept)) == (None, None, "c", 1)
