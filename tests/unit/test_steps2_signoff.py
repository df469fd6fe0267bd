"""A sign-off command's ``Signoff`` is made by a generated function that builds or
refuses exactly as ``Signoff(...)`` does (issue 15.2): the same object, or the
same error, for any values, with attrs' validators on or off."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Signoff
from reqmgmt.lifecycle import base
from reqmgmt.model import EARLIEST, LATEST, SIGNATURE_MEANINGS

from .test_creation_cost import _outcome

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class _Str(str):
    pass


_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(" a\t\n\x00\x7f\u00a0备\ud800"), max_size=6),
    st.sampled_from(["eng", "", " ", "x" * 64, "x" * 65, "x" * 5000, _Str("eng"), 7, None]),
)
_VALUES = st.tuples(
    _TEXT,
    _TEXT,
    st.sampled_from([True, False, 1, 0, None, "yes"]),
    _TEXT,
    st.sampled_from([*SIGNATURE_MEANINGS, "Review", "", _Str("review"), None, 3]),
    st.sampled_from([0, 1, 7, -1, True, 2**31 - 1, 2**31, 1.0, "1"]),
    st.sampled_from(
        [
            AT,
            datetime(2026, 3, 2),
            AT.astimezone(timezone(timedelta(hours=8))),
            EARLIEST,
            LATEST,
            LATEST - timedelta(microseconds=1),
            EARLIEST - timedelta(microseconds=1),
            None,
            "2026-03-02",
        ]
    ),
)


@settings(max_examples=1500, deadline=None)
@given(values=_VALUES, disabled=st.booleans())
def test_the_generated_signoff_is_attrs_own(values: tuple[Any, ...], disabled: bool) -> None:
    with attrs.validators.disabled() if disabled else nullcontext():
        made = _outcome(base._make_signoff, *values)
        assert made == _outcome(Signoff, *values)
        if made[0] == "made":
            new = base._make_signoff(*values)
            assert type(new) is Signoff
            assert new == Signoff(*values)
            assert hash(new) == hash(Signoff(*values))


def test_its_extra_tests_stand_for_the_validators_they_name() -> None:
    """``approve`` and ``meaning`` are what _SIGNOFF_PASSES assumes (else it must change)."""
    fields = attrs.fields(Signoff)
    assert set(base._SIGNOFF_PASSES) == {"approve", "meaning"}
    instance = object.__new__(Signoff)
    for meaning in SIGNATURE_MEANINGS:
        fields.meaning.validator(instance, fields.meaning, meaning)
    fields.approve.validator(instance, fields.approve, False)


def test_a_sign_off_command_makes_no_signoff_through_attrs(monkeypatch: Any) -> None:
    """The sign command's sign-off comes from the generated maker (not attrs' __init__)."""
    from reqmgmt import Desk
    from reqmgmt.testing import FakeClock

    from ..conftest import CLERK, ENG, receive

    made: list[Any] = []
    real = base._make_signoff
    monkeypatch.setattr(base, "_make_signoff", lambda *v: made.append(v) or real(*v))
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        signed = desk.sign(ref, department="engineering", actor=ENG, opinion="can do")
    assert len(made) == 1
    assert signed.signoffs[-1] == Signoff(*made[0])
