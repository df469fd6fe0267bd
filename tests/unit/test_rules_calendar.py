"""The rule file's ``[calendar]``: checked like the rest, part of the version, used by the Desk."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reqmgmt import ConfigError, Desk, hookimpl
from reqmgmt.calendar import CalendarEntry
from reqmgmt.reminders import WorkCalendar
from reqmgmt.rules import default_rules, load_rules
from reqmgmt.rules.loader import _default_path

CST = ZoneInfo("Asia/Shanghai")

SCHEDULE = """
[calendar]
complete = [2027]

[[calendar.holidays]]
from = 2027-02-05
to = 2027-02-12
zh = "春节"
en = "Spring Festival"

[[calendar.workdays]]
on = 2027-02-20
zh = "春节调休上班"

[[calendar.shutdowns]]
from = 2027-07-26
to = 2027-08-06
en = "summer shutdown"
"""


def _file(tmp_path: Path, text: str, name: str = "factory.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(source: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rules(source, with_defaults=True)
    return list(caught.value.problems)


def test_a_calendar_section_loads(tmp_path: Path) -> None:
    """Holidays, workdays, shutdowns and complete years, with their names."""
    rules = load_rules(_file(tmp_path, SCHEDULE), with_defaults=True)
    calendar = rules.calendar
    assert calendar is not None
    assert calendar.complete == frozenset({2027})
    assert calendar.entries == (
        CalendarEntry("holiday", date(2027, 2, 5), date(2027, 2, 12), "春节", "Spring Festival"),
        CalendarEntry("workday", date(2027, 2, 20), date(2027, 2, 20), "春节调休上班", ""),
        CalendarEntry("shutdown", date(2027, 7, 26), date(2027, 8, 6), "", "summer shutdown"),
    )
    assert date(2027, 8, 2) in calendar.off
    assert date(2027, 2, 20) in calendar.on


def test_the_calendar_changes_the_version(tmp_path: Path) -> None:
    """No calendar: the version of the tables alone; any change to it: another version."""
    plain = load_rules(_file(tmp_path, "", "empty.toml"), with_defaults=True)
    assert plain.version == default_rules().version
    assert plain.calendar is None
    one = load_rules(_file(tmp_path, SCHEDULE), with_defaults=True)
    other = load_rules(
        _file(tmp_path, SCHEDULE.replace("2027-02-20", "2027-02-21"), "b.toml"), with_defaults=True
    )
    renamed = load_rules(
        _file(tmp_path, SCHEDULE.replace("summer shutdown", "summer", 1), "c.toml"),
        with_defaults=True,
    )
    same = load_rules(_file(tmp_path, SCHEDULE, "d.toml"), with_defaults=True)
    assert len({plain.version, one.version, other.version, renamed.version}) == 4
    assert same.version == one.version


def test_calendars_of_several_sources_are_merged(tmp_path: Path) -> None:
    """A later file adds entries and complete years."""
    first = _file(tmp_path, SCHEDULE)
    second = _file(
        tmp_path,
        '[calendar]\ncomplete = [2028]\n[[calendar.holidays]]\non = 2028-01-03\nzh = "厂庆"\n',
        "more.toml",
    )
    rules = load_rules([first, second], with_defaults=True)
    assert rules.calendar is not None
    assert rules.calendar.complete == frozenset({2027, 2028})
    assert date(2028, 1, 3) in rules.calendar.off
    assert len(rules.calendar.entries) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[calendar]\nbogus = 1\n", r"calendar\.bogus: unknown key; allowed: complete, holidays"),
        ("calendar = 3\n", r"calendar: must be a table"),
        ("[calendar]\ncomplete = 2027\n", r"calendar\.complete: must be a list of years"),
        ("[calendar]\ncomplete = [2200]\n", r"2200: allowed: a year from 1900 to 2199"),
        ("[calendar]\ncomplete = [true]\n", r"True: allowed: a year from 1900 to 2199"),
        ("[calendar]\nholidays = 1\n", r"calendar\.holidays: must be an array of tables"),
        (
            '[[calendar.holidays]]\non = 1899-12-31\nzh = "x"\n',
            r"holidays\[1\]\.on: 1899-12-31: allowed years are 1900-2199",
        ),
        (
            '[[calendar.holidays]]\non = "2027-02-30"\nzh = "x"\n',
            r"holidays\[1\]\.on: '2027-02-30' is not a date; allowed: a TOML date",
        ),
        (
            '[[calendar.holidays]]\non = 2027-02-05T08:00:00\nzh = "x"\n',
            r"holidays\[1\]\.on: datetime\.datetime\(2027, 2, 5, 8, 0\) is not a date",
        ),
        (
            '[[calendar.shutdowns]]\nfrom = 2027-08-06\nto = 2027-07-26\nzh = "x"\n',
            r"shutdowns\[1\]: from 2027-08-06 is after to 2027-07-26",
        ),
        (
            '[[calendar.shutdowns]]\nfrom = 2027-01-01\nto = 2028-01-02\nzh = "x"\n',
            r"shutdowns\[1\]: 2027-01-01 to 2028-01-02: at most 366 days",
        ),
        (
            '[[calendar.shutdowns]]\non = 2027-08-06\nzh = "x"\n',
            r"shutdowns\[1\]\.on: unknown key; allowed: en, from, to, zh",
        ),
        (
            '[[calendar.shutdowns]]\nfrom = 2027-08-06\nzh = "x"\n',
            r"shutdowns\[1\]: the days are missing; allowed: from and to",
        ),
        (
            '[[calendar.workdays]]\non = 2027-02-20\nfrom = 2027-02-20\nto = 2027-02-21\nzh = "x"\n',
            r"workdays\[1\]: give either on \(one day\) or from and to",
        ),
        ("[[calendar.workdays]]\non = 2027-02-20\n", r"workdays\[1\]: needs a name: zh and/or en"),
        (
            "[[calendar.workdays]]\non = 2027-02-20\nzh = 5\n",
            r"workdays\[1\]\.zh: must be a string",
        ),
        (
            '[[calendar.workdays]]\non = 2027-02-20\nzh = "x"\nnote = "y"\n',
            r"workdays\[1\]\.note: unknown key; allowed: en, from, on, to, zh",
        ),
        (
            '[[calendar.holidays]]\nfrom = 2027-02-15\nto = 2027-02-21\nzh = "x"\n'
            '[[calendar.workdays]]\non = 2027-02-20\nzh = "y"\n',
            r"calendar\.holidays\[1\]: 2027-02-20 is also a workday in .*calendar\.workdays\[1\]; "
            r"allowed: a day is either off or worked",
        ),
    ],
)
def test_mistakes_name_the_file_the_key_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each mistake is a ConfigError problem starting with the file's name."""
    path = _file(tmp_path, text)
    problems = _problems(path)
    assert all(p.startswith(f"{path}, calendar") for p in problems), problems
    assert any(re.search(expected, p) for p in problems), problems


def test_every_mistake_is_listed_at_once(tmp_path: Path) -> None:
    """Like the tables: all problems of a file in one error."""
    text = (
        "[calendar]\ncomplete = [1800, 2027]\nextra = 1\n"
        '[[calendar.holidays]]\non = "2027-13-01"\nzh = "x"\n'
    )
    assert len(_problems(_file(tmp_path, text))) == 3


def test_a_dict_source_takes_dates_and_iso_strings() -> None:
    """A dict (e.g. from JSON) may give "YYYY-MM-DD"; anything else is refused."""
    rules = load_rules(
        {"calendar": {"workdays": [{"on": "2027-02-20", "zh": "调休"}], "complete": [2027]}},
        with_defaults=True,
    )
    assert rules.calendar is not None
    assert date(2027, 2, 20) in rules.calendar.on
    problems = _problems({"calendar": {"holidays": [{"on": 20270220, "zh": "x"}]}})
    assert problems == [
        "<dict #2>, calendar.holidays[1].on: 20270220 is not a date; "
        "allowed: a TOML date such as 2027-02-06"
    ]


def test_the_documented_example_in_the_default_rules_loads() -> None:
    """The commented [calendar] of default_rules.toml, uncommented, is a valid section."""
    text = _default_path().read_text(encoding="utf-8")
    start = text.index("# [calendar]")
    block = "\n".join(
        line.removeprefix("#").removeprefix(" ") for line in text[start:].splitlines()
    )
    rules = load_rules({"calendar": tomllib.loads(block)["calendar"]}, with_defaults=True)
    assert rules.calendar is not None
    assert rules.calendar.complete == frozenset({2027})


# --- the Desk ---------------------------------------------------------------------------------


def test_the_desk_counts_deadlines_on_the_rule_files_days(tmp_path: Path) -> None:
    """Desk.open(rules=...) gives the default WorkCalendar the company days."""
    with Desk.open(rules=[_file(tmp_path, SCHEDULE)]) as desk:
        assert isinstance(desk.calendar, WorkCalendar)
        # Thursday 4 February 2027 16:30 + 8 h: 1 h that day, then the holiday to the 12th,
        # the weekend, Monday 15 February from 08:30: 3.5 h to 12:00, 3.5 h to 16:30.
        start = datetime(2027, 2, 4, 16, 30, tzinfo=CST)
        assert desk.calendar.add(start, timedelta(hours=8)) == datetime(
            2027, 2, 15, 16, 30, tzinfo=CST
        )
        assert desk.calendar.coverage(2027) == "rule file"
    with Desk.open() as desk:
        assert isinstance(desk.calendar, WorkCalendar)
        assert desk.calendar.company is None


def test_a_received_requirement_is_due_on_the_rule_files_workday(tmp_path: Path) -> None:
    """The deadline a command writes follows the make-up Saturday of the rule file."""
    from reqmgmt import Actor, Customer
    from reqmgmt.testing import FakeClock

    clerk = Actor("clerk", roles={"sales"})
    # Friday 19 February 2027 16:00 Shanghai.
    clock = FakeClock(datetime(2027, 2, 19, 8, 0, tzinfo=UTC), tick=timedelta(0))
    dues = []
    for rules in ([_file(tmp_path, SCHEDULE)], None):
        with Desk.open(rules=rules, clock=clock) as desk:
            req = desk.requirements.receive(
                customer=Customer("C1", "华南五金"), description="冲压支架", actor=clerk
            )
            dues.append(desk.get(req.ref).step_due_at)
    # first_response within 4 working hours: 1.5 h on Friday to 17:30, then 2.5 h from
    # 08:30 on the make-up Saturday: 11:00; without the rule file, Monday 22 at 11:00.
    assert dues == [
        datetime(2027, 2, 20, 11, 0, tzinfo=CST),
        datetime(2027, 2, 22, 11, 0, tzinfo=CST),
    ]


class _OwnCalendar:
    @hookimpl
    def reqmgmt_calendar(self) -> object:
        return _Plain()


class _Plain:
    def add(self, start: datetime, amount: timedelta) -> datetime:
        return start + amount

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, timedelta(0))


def test_a_host_calendar_is_left_as_it_is_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A calendar that is not a WorkCalendar keeps its own days; one warning says why."""
    with Desk.open(rules=[_file(tmp_path, SCHEDULE)], plugins=[_OwnCalendar()]) as desk:
        assert isinstance(desk.calendar, _Plain)
    assert "the rule set's [calendar] is not used" in caplog.text
