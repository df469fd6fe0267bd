"""Which years the working calendar knows for certain; the company's own days; the warning.

2027 in China: the ``holidays`` release installed here has no State Council
notice for it (statutory days and "observed" days only, no make-up workdays),
so it is estimated; 2001-2026 are published.  Hand-worked times are Shanghai
time (08:30-12:00, 13:00-17:30).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from reqmgmt import ConfigError
from reqmgmt import calendar as calendar_module
from reqmgmt.calendar import CalendarEntry, CompanyCalendar, official_years
from reqmgmt.reminders import WorkCalendar

CST = ZoneInfo("Asia/Shanghai")
LOGGER = "reqmgmt.calendar"


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """Each test starts with no year warned about (the set is per process)."""
    calendar_module._WARNED.clear()
    yield
    calendar_module._WARNED.clear()


def _weekend_workdays(country: str, year: int) -> int:
    """How many Saturdays and Sundays of ``year`` the library makes working days."""
    known = holidays.country_holidays(country, years=year)
    day, count = date(year, 1, 1), 0
    while day.year == year:
        if day.weekday() >= 5 and known.is_working_day(day):
            count += 1
        day += timedelta(days=1)
    return count


# --- official years, from the library ------------------------------------------------------


def test_official_chinese_years_are_the_years_with_make_up_workdays() -> None:
    """A year counts as official exactly when the library has its make-up workdays (调休)."""
    official = official_years("CN")
    for year in range(1995, 2036):
        assert (year in official) == (_weekend_workdays("CN", year) > 0), year


def test_the_installed_holidays_has_china_2001_to_2026() -> None:
    """The years docs/deadlines.md names; an upgrade that adds 2027 fails here: update the docs."""
    assert official_years("CN") == frozenset(range(2001, 2027)), (
        f"holidays {holidays.__version__} changed China's published years: "
        "update docs/deadlines.md ('Which years are official') and this test"
    )


def test_a_country_without_decrees_is_official_every_year_the_library_covers() -> None:
    """Germany's holidays follow standing law: no year is estimated."""
    assert {1991, 2026, 2027, 2100} <= official_years("DE")
    assert 1990 not in official_years("DE")  # before the library's start year


def test_an_unknown_country_is_a_config_error() -> None:
    """The message names the country and what is allowed."""
    with pytest.raises(ConfigError, match=r"'XX'.*ISO 3166"):
        official_years("XX")


def test_coverage_says_how_a_year_is_known() -> None:
    """official, rule file (declared complete), estimated."""
    company = CompanyCalendar(complete=frozenset({2027}))
    assert WorkCalendar().coverage(2026) == "official"
    assert WorkCalendar().coverage(2027) == "estimated"
    assert WorkCalendar(company=company).coverage(2027) == "rule file"
    assert WorkCalendar(company=company).coverage(2028) == "estimated"


# --- the company's days ----------------------------------------------------------------------

SCHEDULE = CompanyCalendar(
    (
        CalendarEntry("holiday", date(2027, 2, 11), date(2027, 2, 12), "春节", "Spring Festival"),
        CalendarEntry("workday", date(2027, 2, 20), date(2027, 2, 20), "春节调休上班"),
        CalendarEntry("shutdown", date(2027, 7, 26), date(2027, 8, 6), en="summer shutdown"),
    ),
    frozenset({2027}),
)


def test_company_days_override_the_country() -> None:
    """Extra holidays and shutdowns are off, a make-up Saturday is worked."""
    plain, company = WorkCalendar(), WorkCalendar(company=SCHEDULE)
    assert plain.is_working_day(date(2027, 2, 11))
    assert not company.is_working_day(date(2027, 2, 11))
    assert not plain.is_working_day(date(2027, 2, 20))
    assert company.is_working_day(date(2027, 2, 20))
    assert not company.is_working_day(date(2027, 7, 26))  # Monday, shutdown
    assert not company.is_working_day(date(2027, 8, 6))  # Friday, last day of it
    assert company.is_working_day(date(2027, 8, 9))


def test_deadline_arithmetic_uses_the_company_days() -> None:
    """Friday 19 February 2027 15:00 + 8 h: to 17:30 (2.5 h), Saturday 20 is worked (5.5 h)."""
    calendar = WorkCalendar(company=SCHEDULE)
    assert calendar.add(cst(2027, 2, 19, 15, 0), timedelta(hours=8)) == cst(2027, 2, 20, 15, 0)
    # Without the company days the Saturday is off: Monday 22, 15:00.
    assert WorkCalendar().add(cst(2027, 2, 19, 15, 0), timedelta(hours=8)) == cst(
        2027, 2, 22, 15, 0
    )
    # Friday 23 July 17:00 + 1 h runs past the two-week shutdown: Monday 9 August 09:00.
    assert calendar.add(cst(2027, 7, 23, 17, 0), timedelta(hours=1)) == cst(2027, 8, 9, 9, 0)
    # Backwards over the make-up Saturday.
    assert calendar.add(cst(2027, 2, 22, 9, 0), -timedelta(hours=1)) == cst(2027, 2, 20, 17, 0)


def test_working_time_of_a_whole_year_counts_the_company_days() -> None:
    """A span over all of 2027: 2 holidays and 10 shutdown weekdays fewer, one Saturday more."""
    start, end = cst(2026, 12, 31, 12, 0), cst(2028, 1, 3, 8, 0)
    plain = WorkCalendar().working_time(start, end)
    company = WorkCalendar(company=SCHEDULE).working_time(start, end)
    assert plain - company == timedelta(hours=8 * (2 + 10 - 1))


def test_a_day_both_off_and_worked_is_refused() -> None:
    """The record itself refuses a contradiction (the loader names the entries)."""
    with pytest.raises(ConfigError, match="2027-02-20 is both a day off and a workday"):
        CompanyCalendar(
            (
                CalendarEntry("workday", date(2027, 2, 20), date(2027, 2, 20), "调休"),
                CalendarEntry("shutdown", date(2027, 2, 15), date(2027, 2, 21), "停产"),
            )
        )


def test_an_entry_kind_is_checked() -> None:
    """holiday, workday or shutdown."""
    with pytest.raises(ConfigError, match="'vacation'; allowed: holiday, workday, shutdown"):
        CalendarEntry("vacation", date(2027, 1, 1), date(2027, 1, 1))


# --- the warning -----------------------------------------------------------------------------


def test_an_estimated_year_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    """Deadlines in 2027 log one warning naming the year and the fix; 2026 logs none."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    WorkCalendar().add(cst(2026, 3, 2, 9, 0), timedelta(hours=40))
    assert caplog.records == []
    for _ in range(3):
        calendar = WorkCalendar()  # a Desk per request: still once
        calendar.add(cst(2027, 3, 1, 9, 0), timedelta(hours=40))
        calendar.working_time(cst(2027, 3, 1, 9, 0), cst(2027, 4, 1, 9, 0))
        calendar.is_working_day(date(2027, 5, 3))
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "working calendar CN: 2027 has no published schedule" in message
    assert "[calendar]" in message
    assert "calendar.complete" in message


def test_each_estimated_year_and_calendar_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A span over 2027-2029 warns for each year; Taiwan's 2027 separately."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    WorkCalendar().working_time(cst(2026, 12, 1, 9, 0), cst(2029, 3, 1, 9, 0))
    WorkCalendar(country="TW", timezone="Asia/Taipei").is_working_day(date(2027, 6, 1))
    warned = sorted(r.getMessage()[:40] for r in caplog.records if r.name == LOGGER)
    assert warned == [
        "working calendar CN: 2027 has no publish",
        "working calendar CN: 2028 has no publish",
        "working calendar CN: 2029 has no publish",
        "working calendar TW: 2027 has no publish",
    ]


def test_a_year_declared_complete_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """The rule file's complete years count as official."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    WorkCalendar(company=SCHEDULE).add(cst(2027, 3, 1, 9, 0), timedelta(hours=40))
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_an_entry_runs_forwards_over_dates() -> None:
    """A reversed range or a datetime is refused by the record too."""
    with pytest.raises(ConfigError, match="start 2027-02-12 is after end 2027-02-05"):
        CalendarEntry("holiday", date(2027, 2, 12), date(2027, 2, 5), "春节")
    with pytest.raises(ConfigError, match="allowed: a date"):
        CalendarEntry("holiday", datetime(2027, 2, 5, 8, 0), date(2027, 2, 5), "春节")
