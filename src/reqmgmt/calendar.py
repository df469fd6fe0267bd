"""Which years a working calendar knows for certain, and the company's own days.

China's working days change every year by decree: each November the State
Council publishes next year's holidays and the weekend days worked instead
(调休).  The ``holidays`` library keeps these decrees as "special" holidays
by year (``special_public_holidays``, each moved day with the weekend day it
was taken from); a year it has no decree for is *estimated*: statutory days
and "observed" days only, none of the make-up workdays.  :func:`official_years`
reads that from the installed library, so an upgrade that adds 2027 is seen
the day it is installed.

:class:`CompanyCalendar` is the ``[calendar]`` section of a rule file: extra
holidays, make-up workdays, factory shutdowns, and the years the company
declares complete (entered in full), so a factory can enter 2027's schedule
the day it is published (docs/deadlines.md).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from attrs import field, frozen

from .errors import ConfigError

__all__ = [
    "ENTRY_KINDS",
    "MAX_YEAR",
    "MIN_YEAR",
    "CalendarEntry",
    "CompanyCalendar",
    "library_version",
    "official_years",
    "warn_estimated",
]

log = logging.getLogger("reqmgmt.calendar")

#: The years a rule file's calendar may name.
MIN_YEAR, MAX_YEAR = 1900, 2199
#: What an entry of ``[calendar]`` makes of its days.
ENTRY_KINDS = ("holiday", "workday", "shutdown")


@lru_cache(maxsize=64)
def official_years(country: str, subdiv: str | None = None) -> frozenset[int]:
    """The years whose working days the installed ``holidays`` has as published.

    For a country whose government moves days each year (China, Taiwan,
    Vietnam, Russia...: the library has make-up workdays for it), the years
    from its first to its last decree; any other year is estimated.  For a
    country whose holidays follow standing law only (Germany, the US, Hong
    Kong), every year the library covers.  Raises :class:`ConfigError` for a
    country the library does not know.
    """
    import holidays

    try:
        known = holidays.country_holidays(country, subdiv=subdiv)
    except NotImplementedError:
        raise ConfigError(
            f"calendar country {country!r}",
            "an ISO 3166 code the holidays library knows, e.g. 'CN', 'HK', 'TW', 'US', 'DE'",
        ) from None
    start, end = int(known.start_year), int(known.end_year)
    if not getattr(known, "has_substituted_holidays", False):
        return frozenset(range(start, end + 1))
    decreed = [int(y) for y in getattr(known, "special_public_holidays", {})]
    if not decreed:
        return frozenset()
    return frozenset(range(max(min(decreed), start), min(max(decreed), end) + 1))


def library_version() -> str:
    """The installed ``holidays`` version (what a warning tells to upgrade)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("holidays")
    except PackageNotFoundError:  # pragma: no cover - a dependency of reqmgmt
        return "unknown"


#: (country, subdiv, year) already warned about, once per process.
_WARNED: set[tuple[str, str | None, int]] = set()


def warn_estimated(country: str, subdiv: str | None, year: int) -> None:
    """Log, once per process, that ``year`` of this calendar is an estimate."""
    key = (country, subdiv, year)
    if key in _WARNED:
        return
    _WARNED.add(key)
    where = country if subdiv is None else f"{country}-{subdiv}"
    log.warning(
        "working calendar %s: %d has no published schedule in holidays %s (statutory days "
        "estimated, no make-up workdays 调休), so deadlines in %d may be off by days; "
        "enter its schedule in the rule file's [calendar] section and list %d in "
        "calendar.complete, or upgrade holidays (docs/deadlines.md)",
        where,
        year,
        library_version(),
        year,
        year,
    )


def _entry_kind(instance: Any, attribute: Any, value: str) -> None:
    if value not in ENTRY_KINDS:
        raise ConfigError(
            f"calendar entry {attribute.name}", f"{value!r}; allowed: {', '.join(ENTRY_KINDS)}"
        )


@frozen
class CalendarEntry:
    """Days of a company calendar: ``start`` to ``end`` (inclusive), one kind, a name."""

    kind: str = field(validator=_entry_kind)
    start: date
    end: date
    zh: str = ""
    en: str = ""

    def __attrs_post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise ConfigError(f"calendar entry {name}", f"{value!r}; allowed: a date")
        if self.end < self.start:
            raise ConfigError(
                "calendar entry",
                f"start {self.start} is after end {self.end}; allowed: start <= end",
            )

    def days(self) -> list[date]:
        """Every day from ``start`` to ``end``."""
        return [
            date.fromordinal(n) for n in range(self.start.toordinal(), self.end.toordinal() + 1)
        ]


def _day_sets(entries: tuple[CalendarEntry, ...]) -> tuple[frozenset[date], frozenset[date]]:
    off: set[date] = set()
    on: set[date] = set()
    for entry in entries:
        (on if entry.kind == "workday" else off).update(entry.days())
    both = off & on
    if both:
        first = min(both)
        raise ConfigError(
            "calendar", f"{first.isoformat()} is both a day off and a workday; give it one kind"
        )
    return frozenset(off), frozenset(on)


@frozen
class CompanyCalendar:
    """A rule file's ``[calendar]``: the company's days over the country's.

    ``off`` (holidays and shutdowns) and ``on`` (make-up workdays) override
    the library's answer for those days; ``complete`` are the years the
    company has entered in full, which count as official.
    """

    entries: tuple[CalendarEntry, ...] = ()
    complete: frozenset[int] = frozenset()
    off: frozenset[date] = field(init=False, eq=False, repr=False)
    on: frozenset[date] = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        off, on = _day_sets(self.entries)
        object.__setattr__(self, "off", off)
        object.__setattr__(self, "on", on)

    def __bool__(self) -> bool:
        return bool(self.entries or self.complete)

    def canonical(self) -> list[Any]:
        """The calendar as JSON-ready data, in a fixed order (for the rule-set version)."""
        return [
            sorted(self.complete),
            sorted(
                [e.kind, e.start.isoformat(), e.end.isoformat(), e.zh, e.en] for e in self.entries
            ),
        ]
