"""A CAPA's due_on lies between the return's creation day and 5 years ahead.

A due date of 1900 (a typo for 2026) was accepted and every deadline computed
over it walked 126 years of the working calendar (1.6 s a page).  It is now
refused with a ValidationError that says what, where and what is allowed, in
both languages, and nothing is written.  The FakeClock starts on 2 March 2026.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from reqmgmt import Desk, Return, ValidationError
from reqmgmt.i18n import has_cjk
from reqmgmt.lifecycle.returns import CAPA_HORIZON_YEARS
from reqmgmt.testing import FakeClock

from .test_lifecycle_returns import QUALITY_MANAGER, judged_valid


def disposed(desk: Desk) -> Return:
    r = judged_valid(desk, safety_related=True)
    done = desk.returns.dispose(r.ref, "rework", actor=QUALITY_MANAGER)
    assert done.capa_required
    return done


def open_capa(desk: Desk, ref: str, due_on: object) -> Return:
    opened = desk.fire(
        ref, "open_capa", actor=QUALITY_MANAGER, owner="lin", due_on=due_on, actions="更换模具"
    )
    assert isinstance(opened, Return)
    return opened


@pytest.mark.parametrize(
    "due_on",
    [date(1900, 1, 1), date(2026, 3, 1), date(2031, 3, 3), date(2199, 12, 31)],
    ids=["1900", "day-before-creation", "5-years-and-a-day", "2199"],
)
def test_a_due_date_outside_the_window_is_refused_and_writes_nothing(due_on: date) -> None:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        r = disposed(desk)
        with pytest.raises(ValidationError) as info:
            open_capa(desk, r.ref, due_on)
        err = info.value
        assert err.field == "due_on"
        assert err.where == r.ref
        created = r.created_at.date()
        assert created == date(2026, 3, 2)
        assert f"{r.ref}.due_on: got {due_on!r}" in err.en
        assert f"a date from {created} (the day the return was reported)" in err.en
        assert "to 2031-03-0" in err.en
        assert f"({CAPA_HORIZON_YEARS} years ahead)" in err.en
        assert getattr(err.expected, "code", None) == "return.capa_due_on"
        assert "退货登记当日" in err.zh
        assert has_cjk(err.zh)
        assert desk.get(r.ref).version == r.version
        assert desk.get(r.ref).capa is None


def test_the_window_holds_its_ends() -> None:
    """The creation day itself and today + 5 years are allowed."""
    for due in ("first", "last"):
        clock = FakeClock()
        with Desk.open("memory://", clock=clock) as desk:
            r = disposed(desk)
            clock.advance(days=3)
            today = clock.now.date()
            due_on = (
                r.created_at.date()
                if due == "first"
                else today.replace(year=today.year + CAPA_HORIZON_YEARS)
            )
            assert open_capa(desk, r.ref, due_on).capa is not None


def test_the_horizon_counts_from_the_day_the_capa_is_opened() -> None:
    clock = FakeClock()
    with Desk.open("memory://", clock=clock) as desk:
        r = disposed(desk)
        clock.advance(days=400)
        late = r.created_at.date().replace(year=2031) + timedelta(days=200)
        assert open_capa(desk, r.ref, late).capa is not None


def test_a_due_on_that_is_no_date_is_still_refused() -> None:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        r = disposed(desk)
        with pytest.raises(ValidationError, match="due_on"):
            open_capa(desk, r.ref, "2026-04-01")
