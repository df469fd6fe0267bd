"""The command path's cheap constructors (issue 15): the same values, the same classes.

``reqmgmt.model.maker`` and the copies ``derive`` makes fill a stand-in of the
record class and then make it a real instance of that class; these tests
show the result cannot be told from an attrs-built one, and that classes the
trick does not fit still work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs
import pytest
from attrs import field, frozen

from reqmgmt import Customer, Requirement, ValidationError
from reqmgmt.audit import canonical, event_hash, seal, sealed_event
from reqmgmt.model import (
    AuditEvent,
    FieldChange,
    Notification,
    _stand_in,
    derive,
    maker,
    record_classes,
)
from reqmgmt.testing import make_requirement

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _values(cls: type) -> dict[str, Any]:
    samples: dict[type, dict[str, Any]] = {
        FieldChange: {"field": "state", "old": "a", "new": "b", "op": "set"},
        AuditEvent: {
            "ref": "REQ-1",
            "record_kind": "requirement",
            "version": 2,
            "event": "go",
            "from_state": "a",
            "to_state": "b",
            "actor_id": "u",
            "actor_name": "U",
            "at": AT,
            "note": "n",
            "meaning": None,
            "changes": (),
            "decisions": (),
            "prev_hash": "p",
            "hash": "h",
        },
        Notification: {
            "key": "REQ-1:2:sales",
            "ref": "REQ-1",
            "record_kind": "requirement",
            "version": 2,
            "event": "go",
            "recipient": "sales",
            "topic": "requirement.go",
            "text_zh": "z",
            "text_en": "e",
            "created_at": AT,
            "note": None,
            "details": (("k", "v"),),
        },
    }
    return samples[cls]


@pytest.mark.parametrize("cls", [FieldChange, AuditEvent, Notification])
def test_maker_builds_what_attrs_builds(cls: type) -> None:
    """Positional values in field order give an equal, frozen instance of the class itself."""
    values = _values(cls)
    made = maker(cls)(*values.values())
    assert type(made) is cls
    assert made == cls(**values)
    assert attrs.asdict(made, recurse=False) == values
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.ref = "x"  # type: ignore[attr-defined]
    assert _stand_in(cls) is not None  # the cheap path, not the fallback


def test_derive_validators_see_the_whole_new_version() -> None:
    """A field's validator sees the other fields the same change sets (not half a record)."""
    seen: list[str] = []

    def plan_after_state(instance: Any, attribute: Any, value: object) -> None:
        seen.append(instance.state)

    @frozen(kw_only=True)
    class Checked(Requirement):
        RECORD_KIND: ClassVar[str] = ""
        memo: str = field(default="", validator=plan_after_state)

    base = make_requirement()
    rec = Checked(**{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)})
    seen.clear()
    new = derive(rec, {"memo": "m", "state": "evaluating"})
    assert type(new) is Checked
    assert (new.memo, new.state, new.customer) == ("m", "evaluating", rec.customer)
    assert seen == ["evaluating"]
    with pytest.raises(ValidationError, match="a field of Checked"):
        derive(rec, {"colour": "red"})


def test_stand_ins_are_never_record_classes() -> None:
    """A host's record class keeps its kind; its stand-in is not listed with it."""

    @frozen(kw_only=True)
    class Fitting(Requirement):
        RECORD_KIND: ClassVar[str] = "fitting_lean_test"
        size: int = 1

    base = make_requirement()
    rec = Fitting(**{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)})
    assert type(derive(rec, {"size": 2})) is Fitting
    assert _stand_in(Fitting) is not None
    assert record_classes()["fitting_lean_test"] is Fitting
    assert all(not c.__name__.startswith("_StandIn") for c in record_classes().values())


def test_classes_the_stand_in_does_not_fit_still_copy() -> None:
    """A record class with a ``__dict__`` (no slots) is copied attribute by attribute."""

    @attrs.define(frozen=True, kw_only=True, slots=False)
    class Loose(Requirement):
        RECORD_KIND: ClassVar[str] = ""
        extra: str = ""

    assert _stand_in(Loose) is None
    rec = Loose(**{a.name: getattr(make_requirement(), a.name) for a in attrs.fields(Requirement)})
    new = derive(rec, {"extra": "x", "version": 2})
    assert type(new) is Loose
    assert (new.extra, new.version, new.ref) == ("x", 2, rec.ref)
    assert maker(Customer)("C-1", "Name", "general", frozenset()) == Customer("C-1", "Name")


def test_seal_and_sealed_event_hash_the_same_bytes() -> None:
    """The positional ``seal`` and ``sealed_event`` make the same event; its bytes are the
    canonical JSON the verifier recomputes."""
    changes = (
        FieldChange("state", "a", "b"),
        FieldChange("signoffs", 1, [{"z": 1, "a": AT.isoformat()}], "append"),
    )
    values = {
        "ref": "REQ-1", "record_kind": "requirement", "version": 2, "event": "go",
        "from_state": "a", "to_state": "b", "actor_id": "u", "actor_name": "U", "at": AT,
        "note": "说明", "meaning": "review", "changes": changes, "decisions": ({"t": 1},),
        "prev_hash": "p" * 64,
    }  # fmt: skip
    one = sealed_event(**values)
    two = seal(*values.values())
    assert one == two
    assert event_hash(one) == one.hash
    assert canonical(one) == canonical(two)
    assert b'"changes":[["state","a","b","set"],["signoffs",1,[{"a":' in canonical(one)
    with pytest.raises(TypeError, match="colour"):
        sealed_event(**values, colour="red")
    with pytest.raises(ValidationError, match="note"):
        seal(*{**values, "note": "bad\x00note"}.values())
