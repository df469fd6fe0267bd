"""Deadlines on the working calendar, pauses, reminders and escalation.

Expected times are worked out by hand in the comments (Shanghai time, CST =
UTC+8; working hours 08:30-12:00 and 13:00-17:30, 8 a day), not by the code
under test.  2026: the Spring Festival holiday runs Sunday 15 to Monday 23
February; Saturday 14 and Saturday 28 February are make-up workdays (调休).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Actor, ConfigError, Customer, Desk
from reqmgmt.reminders import WorkCalendar
from reqmgmt.testing import FakeClock, RecordingNotifier

CST = ZoneInfo("Asia/Shanghai")
CLERK = Actor("clerk", roles={"sales"})
CAL = WorkCalendar()


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


# --- the calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 13), True),  # Friday before the holiday
        (date(2026, 2, 14), True),  # Saturday, make-up workday
        (date(2026, 2, 15), False),  # Sunday, holiday
        (date(2026, 2, 17), False),  # 初一
        (date(2026, 2, 23), False),  # Monday, last day off
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),  # Saturday, make-up workday
        (date(2026, 3, 7), False),  # an ordinary Saturday
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 10), True),  # Saturday, make-up workday
    ],
)
def test_the_chinese_calendar_knows_2026(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


def test_adding_working_hours_skips_lunch_and_the_weekend() -> None:
    # Friday 6 March 15:00: 2.5 h to 17:30; Monday: 3.5 h to 12:00, 2 h from 13:00.
    assert CAL.add(cst(2026, 3, 6, 15, 0), timedelta(hours=8)) == cst(2026, 3, 9, 15, 0)
    # Outside working hours, zero means the next working moment.
    assert CAL.add(cst(2026, 3, 7, 10, 0), timedelta(0)) == cst(2026, 3, 9, 8, 30)
    # Backwards: 1 h before Monday 09:00 is Friday 17:00.
    assert CAL.add(cst(2026, 3, 9, 9, 0), -timedelta(hours=1)) == cst(2026, 3, 6, 17, 0)


def test_adding_working_hours_across_the_spring_festival() -> None:
    # Friday 13 Feb 16:00 + 16 h: Friday 1.5 h, make-up Saturday 14th 8 h (9.5),
    # 15th-23rd off, Tuesday 24th 08:30-12:00 3.5 h (13) and 13:00-16:00 3 h.
    assert CAL.add(cst(2026, 2, 13, 16, 0), timedelta(hours=16)) == cst(2026, 2, 24, 16, 0)
    assert CAL.working_time(cst(2026, 2, 13, 16, 0), cst(2026, 2, 24, 16, 0)) == timedelta(hours=16)


def test_a_calendar_without_working_time_is_refused() -> None:
    with pytest.raises(ConfigError, match="periods must be increasing"):
        WorkCalendar(hours=((time(13, 0), time(12, 0)),))
    with pytest.raises(ConfigError, match="ISO 3166"):
        WorkCalendar(country="XX").is_working_day(date(2026, 1, 5))


# --- deadlines on a requirement ------------------------------------------------------------------


def test_a_requirement_walks_across_the_holiday_and_its_pause_is_audited() -> None:
    """Received before the Spring Festival; waiting on the customer stops the clock."""
    clock = FakeClock(cst(2026, 2, 13, 16, 0).astimezone(UTC), tick=timedelta(0))
    desk = Desk.open(clock=clock)
    req = desk.requirements.receive(
        customer=Customer("C1", "Customer"), description="brackets", actor=CLERK
    )
    # Normal priority, 40 working hours: Fri 1.5, Sat 14th 8 (9.5), Tue 24th 8
    # (17.5), Wed 8 (25.5), Thu 8 (33.5), Fri 27th 08:30-12:00 3.5 (37),
    # 13:00-16:00 3: Friday 27 February 16:00.
    assert req.due_at == cst(2026, 2, 27, 16, 0)
    # First response, 4 working hours: Fri 16:00-17:30 1.5, Sat 14th 08:30-11:00.
    assert (req.step, req.step_due_at) == ("first_response", cst(2026, 2, 14, 11, 0))
    assert req.next_deadline == cst(2026, 2, 14, 11, 0)

    clock.now = cst(2026, 2, 24, 10, 0).astimezone(UTC)
    asked = desk.fire(req.ref, "clarify", actor=CLERK, note="which finish?")
    assert asked.paused_since == clock.now
    assert asked.next_deadline is None  # no reminders while the customer has the ball
    assert asked.step is None

    clock.now = cst(2026, 2, 25, 10, 0).astimezone(UTC)
    answered = desk.fire(req.ref, "clarified", actor=CLERK, note="zinc")
    # Paused Tue 10:00-12:00 2 h, 13:00-17:30 4.5 h, Wed 08:30-10:00 1.5 h = 8 h.
    assert answered.paused_seconds == 8 * 3600
    # Due moves 8 working hours: Fri 27th 16:00-17:30 1.5 h, then the make-up
    # Saturday 28th: 08:30-12:00 3.5 h (5), 13:00-16:00 3 h.
    assert answered.due_at == cst(2026, 2, 28, 16, 0)
    event = desk.history(req.ref)[-1]
    changed = {c.field: (c.old, c.new) for c in event.changes}
    assert changed["due_at"] == (
        cst(2026, 2, 27, 16, 0).astimezone(UTC).isoformat(),
        cst(2026, 2, 28, 16, 0).astimezone(UTC).isoformat(),
    )
    assert changed["paused_seconds"] == (0, 28800)
    assert desk.verify_history(req.ref)


def test_final_states_have_no_running_deadline() -> None:
    desk = Desk.open(clock=FakeClock())
    req = desk.requirements.receive(
        customer=Customer("C1", "Customer"), description="brackets", actor=CLERK
    )
    done = desk.fire(req.ref, "cancel", actor=CLERK, note="withdrawn")
    assert done.next_deadline is None
    assert done.due_at == req.due_at  # kept for reports


# --- reminders -----------------------------------------------------------------------------------


def test_each_reminder_and_escalation_is_sent_exactly_once() -> None:
    """A requirement nobody touches, reminders run every 30 minutes for two weeks."""
    start = cst(2026, 3, 2, 9, 0)  # Monday
    clock = FakeClock(start.astimezone(UTC), tick=timedelta(0))
    notifier = RecordingNotifier()
    desk = Desk.open(clock=clock, plugins=[notifier])
    req = desk.requirements.receive(
        customer=Customer("C1", "Customer"), description="brackets", actor=CLERK
    )
    notifier.sent.clear()
    for _ in range(14 * 48):
        clock.now += timedelta(minutes=30)
        desk.run_reminders()
        desk.dispatch()
    keys = [n.key for n in notifier.sent]
    assert [k for k, c in Counter(keys).items() if c > 1] == []
    stages = {(k.split(":")[1].split("@")[0], k.split(":")[2], k.split(":", 3)[3]) for k in keys}
    # First response due Monday 13:00 (4 h: 09:00-12:00, 13:00-14:00 = 14:00).
    assert stages >= {
        ("first_response", "before-1h", "role:sales"),
        ("first_response", "due", "role:sales"),
        ("first_response", "escalate-1", "role:sales_manager"),
        ("first_response", "escalate-2", "role:general_manager"),
        ("due", "before-8h", "role:sales"),
        ("due", "due", "role:sales"),
        ("due", "escalate-1", "role:sales_manager"),
        ("due", "escalate-2", "role:general_manager"),
    }, stages
    assert len(keys) == 8
    # The first-response reminder came at 13:00 on Monday (1 h before 14:00).
    first = next(n for n in notifier.sent if ":before-1h:" in n.key)
    assert first.created_at == cst(2026, 3, 2, 13, 0)
    assert "提醒" in first.text_zh
    assert "Reminder" in first.text_en
    # The zh text is Chinese throughout: the step by its label, not its name.
    assert "首次响应步骤期限" in first.text_zh
    assert "first response deadline" in first.text_en
    for n in notifier.sent:
        rest = n.text_zh.replace(req.ref, "")
        assert not re.search(r"[A-Za-z]", rest), f"English in the zh text: {n.text_zh!r}"
    assert req.step_due_at == cst(2026, 3, 2, 14, 0)


def test_a_second_pass_at_the_same_time_queues_nothing() -> None:
    clock = FakeClock(cst(2026, 3, 2, 9, 0).astimezone(UTC), tick=timedelta(0))
    desk = Desk.open(clock=clock, autodispatch=False)
    desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
    clock.now = cst(2026, 3, 3, 16, 0).astimezone(UTC)
    first = desk.run_reminders()
    second = desk.run_reminders()
    # First response due Monday 14:00, first escalation Tuesday 14:00 (8 h later);
    # the whole requirement is due next Monday 09:00, its reminder Friday 09:00.
    assert (first.checked, first.queued, first.already) == (1, 1, 0)
    assert (second.queued, second.already) == (0, 1)


def test_sign_off_reminders_go_to_the_departments_still_missing() -> None:
    clock = FakeClock(cst(2026, 3, 2, 9, 0).astimezone(UTC), tick=timedelta(0))
    desk = Desk.open(clock=clock, autodispatch=False)
    req = desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
    desk.fire(req.ref, "start_evaluation", actor=CLERK)
    desk.sign(req.ref, department="engineering", actor=Actor("eng", departments={"engineering"}))
    # Evaluation: 16 working hours from Monday 09:00: Monday 7.5 h, Tuesday 8 h,
    # Wednesday 08:30-09:00.  Its reminder 4 h before: Wednesday 0.5 h, then
    # back from Tuesday 17:30 by 3.5 h: Tuesday 14:00.
    clock.now = cst(2026, 3, 3, 13, 59).astimezone(UTC)
    assert desk.run_reminders().queued == 0
    clock.now = cst(2026, 3, 3, 14, 0).astimezone(UTC)
    desk.run_reminders()
    recipients = sorted(
        e.notification.recipient for e in desk.outbox() if e.notification.event == "remind"
    )
    assert recipients == ["department:materials", "department:production"]
    assert "department:materials" in recipients
    assert "department:production" in recipients
    assert "department:engineering" not in recipients


# --- property: pauses never bring the deadline forward ------------------------------------------

SLOT = timedelta(minutes=30)


def _working_slot(at: datetime) -> bool:
    """Brute force, independent of WorkCalendar's arithmetic: is this half hour worked?"""
    local = at.astimezone(CST)
    t = local.time()
    return CAL.is_working_day(local.date()) and (
        time(8, 30) <= t < time(12, 0) or time(13, 0) <= t < time(17, 30)
    )


@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.integers(0, 60)),  # half hours before, during a pause
        min_size=1,
        max_size=5,
    )
)
def test_pauses_only_move_the_deadline_later_by_the_working_time_paused(
    plan: list[tuple[int, int]],
) -> None:
    start = cst(2026, 2, 9, 9, 0)  # Monday, a week before the holiday
    clock = FakeClock(start.astimezone(UTC), tick=timedelta(0))
    desk = Desk.open(clock=clock, autodispatch=False)
    req = desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
    due = req.due_at
    assert due is not None
    paused_slots = 0
    for before, during in plan:
        clock.now += before * SLOT
        desk.fire(req.ref, "clarify", actor=CLERK, note="?")
        for i in range(during):
            paused_slots += _working_slot(clock.now + i * SLOT)
        clock.now += during * SLOT
        record = desk.fire(req.ref, "clarified", actor=CLERK, note="!")
        assert record.due_at is not None
        assert record.due_at >= due, "the deadline moved earlier"
        due = record.due_at
    assert record.paused_seconds == paused_slots * 1800
    # The original deadline plus the paused working slots, counted slot by slot.
    expected, left = req.due_at, paused_slots
    assert expected is not None
    while left:
        left -= _working_slot(expected)
        expected += SLOT
    assert record.due_at == expected


def test_several_reminder_offsets_from_the_rules() -> None:
    """remind_before_hours = [16, 4]: two reminders before the deadline, then the due one."""
    rules = {
        "tables": {
            "requirement_deadline": {
                "examples": [],
                "rows": [
                    {
                        "id": "normal",
                        "when": "priority == 'normal'",
                        "then": {"hours": 40, "remind_before_hours": [16, 4]},
                    }
                ],
            },
            "step_deadline": {"remove": ["requirement-first-response"]},
        }
    }
    clock = FakeClock(cst(2026, 3, 2, 9, 0).astimezone(UTC), tick=timedelta(0))
    notifier = RecordingNotifier()
    desk = Desk.open(clock=clock, plugins=[notifier], rules=rules)
    desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
    notifier.sent.clear()
    # Due next Monday 09:00 (40 h from Monday 09:00).  16 h before: Thursday
    # 09:00; 4 h before: Monday 08:30-09:00, then Friday back from 17:30 by 3.5 h: 14:00.
    seen = []
    while clock.now < cst(2026, 3, 9, 10, 0):
        clock.now += timedelta(minutes=30)
        desk.run_reminders()
        desk.dispatch()
        seen += [(n.key.split(":")[2], clock.now) for n in notifier.sent[len(seen) :]]
    assert seen == [
        ("before-16h", cst(2026, 3, 5, 9, 0)),
        ("before-4h", cst(2026, 3, 6, 14, 0)),
        ("due", cst(2026, 3, 9, 9, 0)),
    ]


def test_an_escalation_hook_returning_nobody_sends_nothing() -> None:
    """reqmgmt_escalation_contacts may silence an escalation with an empty list."""
    from reqmgmt import hookimpl

    class Quiet:
        @hookimpl
        def reqmgmt_escalation_contacts(
            self, record: object, deadline: object, level: int
        ) -> list[str]:
            return []

    clock = FakeClock(cst(2026, 3, 2, 9, 0).astimezone(UTC), tick=timedelta(0))
    desk = Desk.open(clock=clock, autodispatch=False, plugins=[Quiet()])
    desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
    clock.now = cst(2026, 3, 3, 16, 0).astimezone(UTC)  # first response escalated at 14:00
    assert desk.run_reminders().queued == 0
    loud = Desk.open(clock=clock, autodispatch=False)
    loud.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
    assert loud.run_reminders().queued == 0  # created now: nothing due yet


def _day_by_day(cal: WorkCalendar, start: datetime, end: datetime) -> timedelta:
    """The working time summed one day at a time: the reference for the year totals."""
    total = timedelta(0)
    lo, hi = start.astimezone(cal.zone), end.astimezone(cal.zone)
    day = lo.date()
    while day <= hi.date():
        for a, b in cal._spans(day):
            a, b = max(a, lo), min(b, hi)
            if b > a:
                total += b - a
        day += timedelta(days=1)
    return total


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2025, 12, 31, 5, tzinfo=UTC), datetime(2028, 1, 1, 3, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2025, 12, 31, 20, tzinfo=UTC), datetime(2029, 12, 31, 20, tzinfo=UTC)),
        (datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),
    ],
)
def test_working_time_over_whole_years_equals_the_day_by_day_sum(
    start: datetime, end: datetime
) -> None:
    """Whole calendar years are counted from their totals, with the same result."""
    cal = WorkCalendar()
    assert cal.working_time(start, end) == _day_by_day(cal, start, end)


def test_working_time_across_centuries_reads_only_the_partial_years(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A span of 300 years (a received_at of 1900) walks at most its two partial years."""
    cal = WorkCalendar()
    seen: list[object] = []
    spans = WorkCalendar._spans

    def counting(self: WorkCalendar, day: object) -> object:
        seen.append(day)
        return spans(self, day)  # type: ignore[arg-type]

    monkeypatch.setattr(WorkCalendar, "_spans", counting)
    hours = cal.working_time(datetime(1900, 1, 2, tzinfo=UTC), datetime(2199, 12, 30, tzinfo=UTC))
    assert hours > timedelta(days=20_000)
    assert len(seen) <= 2 * 366
