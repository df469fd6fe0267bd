"""Deadlines on a working calendar, reminders and escalation.

Deadlines are working time: a requirement of normal priority is due 40
working hours after it was received, counted on :class:`WorkCalendar` (working
hours, weekends, statutory holidays and the Chinese make-up workdays 调休,
from the ``holidays`` library).  Two kinds of deadline live on every record:

- ``due_at``: the whole record (resolution), from the rule table
  ``requirement_deadline``;
- ``step_due_at``: the current step (``step``), from ``step_deadline``
  (a department's sign-off in a review, the first response to a complaint),
  set when the record enters the state and cleared when it leaves.

While a record waits on the customer (states declared ``waiting``:
clarifying, negotiating, awaiting confirmation) the clock stops: leaving the
pause pushes ``due_at`` later by the working time spent waiting, adds it to
``paused_seconds``, and the audit event of that command shows both changes.
``next_deadline`` (indexed in SQL stores) is the earliest running deadline,
``None`` while paused or in a final state; the reminder pass reads only
records whose ``next_deadline`` is near.

:func:`run_reminders` (``desk.run_reminders(now)``) puts reminders and
escalations in the outbox with idempotency keys made of the record, the
deadline, its due time and the stage, so a pass run twice, or by two workers
at once, queues each reminder once; delivery is the outbox's (at least once,
per record in order, retries, dead letters).  Nothing lives in a timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from attrs import evolve, field, frozen

from .calendar import CompanyCalendar, official_years, warn_estimated
from .errors import ConfigError
from .storage.base import Lenient

if TYPE_CHECKING:
    import pluggy

    from .lifecycle.base import Engine
    from .model import Notification, Record
    from .rules import Decision, RuleSet
    from .storage.base import Store

__all__ = [
    "Calendar",
    "Deadline",
    "Deadlines",
    "ReminderResult",
    "WorkCalendar",
    "check_no_step_deadline",
    "deadline_changes",
    "deadlines_of",
    "run_reminders",
    "with_company_days",
]

log = logging.getLogger("reqmgmt")
_DAY = timedelta(days=1)
_ZERO = timedelta(0)
#: A calendar that finds no working time within this many days is refused.
_HORIZON_DAYS = 3660


@runtime_checkable
class Calendar(Protocol):
    """What reqmgmt needs of a working calendar (``reqmgmt_calendar`` returns one)."""

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment ``amount`` of working time after ``start`` (before, if negative)."""
        ...

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """The working time between ``start`` and ``end`` (zero if ``end <= start``)."""
        ...


@lru_cache(maxsize=16)
def _holidays(country: str, subdiv: str | None) -> Any:
    import holidays

    try:
        return holidays.country_holidays(country, subdiv=subdiv)
    except NotImplementedError:
        raise ConfigError(
            f"calendar country {country!r}",
            "an ISO 3166 code the holidays library knows, e.g. 'CN', 'HK', 'TW', 'US', 'DE'",
        ) from None


@lru_cache(maxsize=4096)
def _working_day(country: str, subdiv: str | None, day: date) -> bool:
    return bool(_holidays(country, subdiv).is_working_day(day))


#: :func:`_zone`'s answers by name (a name it raised for is not kept), up to 64: a plain
#: dict :meth:`WorkCalendar.add` reads itself, without the call (~1k instructions).
_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = ZoneInfo(name)
        if len(_ZONES) >= 64:
            _ZONES.clear()
        _ZONES[name] = zone
    return zone


#: A stretch of local time where :meth:`WorkCalendar.add` of one amount answers alike
#: (:meth:`WorkCalendar._slot`): the zone, its bounds ``lo <= t < hi``, the shift from
#: the start (``None``: one wall time for every start), that wall time (with a shift:
#: the first start's), it in UTC, and (with a shift) the zone's offset at it.
_Slot = tuple[ZoneInfo, datetime, datetime, timedelta | None, datetime, datetime, timedelta | None]
#: The resolution of datetime: ``t <= x`` is ``t < x + _TICK``.
_TICK = timedelta(microseconds=1)
_MIDNIGHT = time(0)


def _periods(value: Sequence[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    periods = tuple((a, b) for a, b in value)
    if not periods:
        raise ConfigError("WorkCalendar.hours", "at least one (start, end) period of a day")
    previous = time.min
    for a, b in periods:
        if not (previous <= a < b):
            raise ConfigError(
                "WorkCalendar.hours",
                f"periods must be increasing and not overlap; got {a:%H:%M}-{b:%H:%M}",
            )
        previous = b
    return periods


@frozen
class WorkCalendar:
    """Working hours on working days of a country, in a time zone.

    Working days come from the ``holidays`` library: Monday to Friday except
    statutory holidays, plus the make-up workdays (调休) a government
    declares on weekends, for China included (2026: Saturday 14 and 28
    February around the Spring Festival).  Official make-up days are known
    once published (China: each November for the next year): keep the
    ``holidays`` package updated.  Default: China, Asia/Shanghai,
    08:30-12:00 and 13:00-17:30 (8 working hours a day).

    ``company``: the rule file's ``[calendar]`` (extra holidays, make-up
    workdays, shutdowns) over the country's days; the Desk sets it from its
    rule set.  A computation that touches a year neither published
    (:func:`reqmgmt.calendar.official_years`) nor declared complete by
    ``company`` logs one warning (logger ``reqmgmt.calendar``) per year.
    """

    country: str = "CN"
    timezone: str = "Asia/Shanghai"
    hours: tuple[tuple[time, time], ...] = field(
        default=((time(8, 30), time(12, 0)), (time(13, 0), time(17, 30))), converter=_periods
    )
    subdiv: str | None = None
    company: CompanyCalendar | None = None
    # day -> its working periods; a per-calendar cache, not part of its value.
    _days: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        factory=dict, init=False, eq=False, hash=False, repr=False
    )
    # day -> its working time (add skips whole days with it); a cache as _days.
    _totals: dict[date, timedelta] = field(
        factory=dict, init=False, eq=False, hash=False, repr=False
    )
    # (day, period, amount) -> where an add past that period ended (add); a cache.
    _ahead: dict[tuple[date, int, timedelta], tuple[timedelta, datetime, datetime]] = field(
        factory=dict, init=False, eq=False, hash=False, repr=False
    )
    # Years already checked for an official schedule (a set lookup per new day).
    _years: set[int] = field(factory=set, init=False, eq=False, hash=False, repr=False)
    # amount -> the stretch of local time the last add of that amount started in, where
    # add's answer is one wall time or the start moved by one shift (add, _slot); a cache.
    _slots: dict[timedelta, _Slot] = field(
        factory=dict, init=False, eq=False, hash=False, repr=False
    )

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def is_working_day(self, day: date) -> bool:
        """Is ``day`` a working day (weekday not a holiday, or a make-up workday)?"""
        if day.year not in self._years:
            self._touch(day.year)
        company = self.company
        if company is not None:
            if day in company.off:
                return False
            if day in company.on:
                return True
        return _working_day(self.country, self.subdiv, day)

    def coverage(self, year: int) -> str:
        """How ``year`` is known: ``"official"`` (published, in the ``holidays``
        library), ``"rule file"`` (declared complete in ``[calendar]``) or
        ``"estimated"`` (statutory days guessed, no make-up workdays)."""
        if year in official_years(self.country, self.subdiv):
            return "official"
        if self.company is not None and year in self.company.complete:
            return "rule file"
        return "estimated"

    def _touch(self, year: int) -> None:
        self._years.add(year)
        if self.coverage(year) == "estimated":
            warn_estimated(self.country, self.subdiv, year)

    def _spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working periods of ``day`` as aware datetimes (none on a day off)."""
        spans = self._days.get(day)
        if spans is None:
            if self.is_working_day(day):
                zone = _zone(self.timezone)
                spans = tuple(
                    (datetime.combine(day, a, zone), datetime.combine(day, b, zone))
                    for a, b in self.hours
                )
            else:
                spans = ()
            if len(self._days) > 20_000:
                self._days.clear()
            self._days[day] = spans
        return spans

    def _total(self, day: date) -> timedelta:
        """The working time of ``day`` (kept with its periods)."""
        total = timedelta(0)
        for a, b in self._spans(day):
            total += b - a
        if len(self._totals) > 20_000:
            self._totals.clear()
        self._totals[day] = total
        return total

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """``amount`` of working time after ``start`` (before it, if negative).

        With ``amount`` zero outside working hours, the next working moment.
        """
        if amount < _ZERO:
            return self._subtract(start, -amount)
        # The zone from _zone's own dict (the very object ``self.zone`` gives, without
        # the property's and _zone's calls: ~1k instructions).
        zone = _ZONES.get(self.timezone) or _zone(self.timezone)
        local = start.astimezone(zone)
        # The stretch of local time the last add of this amount started in (_slot): a
        # start in it ends at the same wall time, or moved as far as the start moved,
        # the same answer for 9k-12k instructions less a call.  Plain datetime and
        # timedelta only (a subclass may add or compare otherwise).
        slot = (
            self._slots.get(amount)
            if type(amount) is timedelta and type(start) is datetime
            else None
        )
        if slot is not None and slot[0] is zone and slot[1] <= local < slot[2]:
            if slot[3] is not None:
                wall = local + slot[3]
                # In UTC at the offset of the stretch's first answer: that answer moved
                # as far as the wall time did (``astimezone`` subtracts the offset).
                if start.tzinfo is UTC and zone.utcoffset(wall) == slot[6]:
                    return slot[5] + (wall - slot[4])
                return wall.astimezone(start.tzinfo)
            if start.tzinfo is UTC:
                return slot[5]
            return slot[4].astimezone(start.tzinfo)
        wall = self._wall(local, amount)
        if type(amount) is timedelta and type(start) is datetime:
            found = self._slot(local, amount, wall, zone)
            if found is not None:
                if len(self._slots) >= 1024:
                    self._slots.clear()
                self._slots[amount] = found
        return wall.astimezone(start.tzinfo)

    def _wall(self, local: datetime, amount: timedelta) -> datetime:
        """:meth:`add` from ``local`` (in the zone), as a wall time of the zone."""
        day = local.date()
        # The first day: from ``local`` in the first period that ends after it.
        k = 0
        rest = amount
        for a, b in self._spans(day):
            if b > local:
                a = max(a, local)
                if amount <= b - a:
                    return a + amount
                rest = amount - (b - a)
                break
            k += 1
        # Past that period the walk depends on ``rest`` alone: the working time
        # it passed whole (``used``) and the period it ended in are kept per
        # (day, period, amount), and fit any ``rest`` that ends in that period.
        key = (day, k, amount)
        hit = self._ahead.get(key)
        if hit is not None:
            used, a, b = hit
            left = rest - used
            if _ZERO < left <= b - a:
                return a + left
        a, b, left = self._onwards(day, k + 1, rest)
        if len(self._ahead) > 20_000:
            self._ahead.clear()
        self._ahead[key] = (rest - left, a, b)
        return a + left

    def _slot(
        self, local: datetime, amount: timedelta, wall: datetime, zone: ZoneInfo
    ) -> _Slot | None:
        """The stretch of local time around ``local`` where :meth:`_wall` of ``amount``
        gives ``wall`` again or ``wall`` moved as far as the start, or ``None``.

        Before a period (or after the day's last) every start waits for the same
        working moment: one wall time.  Within a period the answer is the start
        plus the amount while the period holds it; past that, the start plus what
        the period could not take, walked on from the next period, which depends
        on what is left alone (as ``_ahead`` says) as long as it still ends in the
        period ``wall`` ends in: the start moved by ``wall - local`` either way.
        Every bound is a time of the zone, compared with a start in it as
        :meth:`_wall` compares (the same tzinfo: wall clock, to the microsecond).
        """
        day = local.date()
        # The periods _wall has just read, from its cache (gone only if it was just
        # cleared: then no stretch is kept).
        spans = self._days.get(day)
        if spans is None or local.tzinfo is not zone or any(a.tzinfo is not zone for a, _ in spans):
            return None
        try:
            lo = datetime.combine(day, _MIDNIGHT, zone)
            for a, b in spans:
                if b > local:
                    if local > a:
                        shift = wall - local
                        if amount <= b - local:
                            lo, hi = a + _TICK, min(b, b - amount + _TICK)
                        else:
                            for a2, b2 in self._days.get(wall.date(), ()):
                                if a2 < wall <= b2:
                                    break
                            else:  # _wall ends within a period, unless its cache was cleared
                                return None
                            lo = max(a, b - amount, a2 - shift) + _TICK
                            hi = min(b, b2 - shift + _TICK)
                        at, offset = wall.astimezone(UTC), zone.utcoffset(wall)
                        return (zone, lo, hi, shift, wall, at, offset)
                    return (zone, lo, a + _TICK, None, wall, wall.astimezone(UTC), None)
                lo = b
            hi = datetime.combine(day + _DAY, _MIDNIGHT, zone)
        except OverflowError:  # a bound past datetime's range: no stretch kept
            return None
        return (zone, lo, hi, None, wall, wall.astimezone(UTC), None)

    def _onwards(
        self, day: date, first: int, remaining: timedelta
    ) -> tuple[datetime, datetime, timedelta]:
        """Where ``remaining`` working time from period ``first`` of ``day`` on ends:
        that period's start and end and the time left at its start."""
        for a, b in self._spans(day)[first:]:
            if remaining <= b - a:
                return a, b, remaining
            remaining -= b - a
        day += _DAY
        for _ in range(_HORIZON_DAYS - 1):
            # A later day whose working time the rest exceeds: taken whole
            # (the same sum as period by period, at one subtraction).
            total = self._totals.get(day)
            if total is None:
                total = self._total(day)
            if remaining > total:
                remaining -= total
                day += _DAY
                continue
            for a, b in self._spans(day):
                if remaining <= b - a:
                    return a, b, remaining
                remaining -= b - a
            day += _DAY
        raise ConfigError(
            f"calendar {self.country}", f"no working time within {_HORIZON_DAYS} days"
        )

    def _subtract(self, end: datetime, amount: timedelta) -> datetime:
        local = end.astimezone(self.zone)
        remaining = amount
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            for a, b in reversed(self._spans(day)):
                b = min(b, local)
                if b <= a:
                    continue
                if remaining <= b - a:
                    return (b - remaining).astimezone(end.tzinfo)
                remaining -= b - a
            day -= _DAY
        raise ConfigError(
            f"calendar {self.country}", f"no working time within {_HORIZON_DAYS} days"
        )

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """Working time between ``start`` and ``end``."""
        total = timedelta(0)
        if end <= start:
            return total
        zone = self.zone
        lo, hi = start.astimezone(zone), end.astimezone(zone)
        first, last = lo.date(), hi.date()
        day = first
        while day <= last:
            if day.month == 1 and day.day == 1 and day > first and day.year < last.year:
                # A whole calendar year inside the span: its total, counted once
                # per calendar (a span of centuries costs centuries, not days).
                if day.year not in self._years:
                    self._touch(day.year)
                total += _year_total(
                    self.country, self.subdiv, self.timezone, self.hours, day.year, self.company
                )
                day = date(day.year + 1, 1, 1)
                continue
            for a, b in self._spans(day):
                a, b = max(a, lo), min(b, hi)
                if b > a:
                    total += b - a
            day += _DAY
        return total


@lru_cache(maxsize=1024)
def _year_total(
    country: str,
    subdiv: str | None,
    timezone: str,
    hours: tuple[tuple[time, time], ...],
    year: int,
    company: CompanyCalendar | None = None,
) -> timedelta:
    """The working time of a whole calendar year (what :meth:`WorkCalendar.working_time` sums)."""
    zone = _zone(timezone)
    is_working = _holidays(country, subdiv).is_working_day
    off = company.off if company is not None else frozenset()
    on = company.on if company is not None else frozenset()
    total = timedelta(0)
    day = date(year, 1, 1)
    while day.year == year:
        if day not in off and (day in on or is_working(day)):
            for a, b in hours:
                total += datetime.combine(day, b, zone) - datetime.combine(day, a, zone)
        day += _DAY
    return total


def with_company_days(calendar: Calendar, rules: RuleSet) -> Calendar:
    """``calendar`` with the rule set's ``[calendar]`` days, when it is a :class:`WorkCalendar`.

    A host's own calendar object is its own authority: it is returned as
    given, and a warning says the rule file's days are not used
    (``reqmgmt doctor`` reports it too).
    """
    company = rules.calendar
    if not company:
        return calendar
    if isinstance(calendar, WorkCalendar):
        if calendar.company is not None and calendar.company != company:
            # The host set company days of its own; the rule file's come on top.
            merged = CompanyCalendar(
                calendar.company.entries + company.entries,
                calendar.company.complete | company.complete,
            )
            return evolve(calendar, company=merged)
        return evolve(calendar, company=company)
    log.warning(
        "the rule set's [calendar] is not used: the working calendar %s from reqmgmt_calendar "
        "is not a reqmgmt WorkCalendar (give it the company days yourself)",
        type(calendar).__name__,
    )
    return calendar


@frozen
class Deadlines:
    """What the deadline and reminder functions need: a Desk passes these, never itself.

    ``classify(table, facts, on=day)`` decides with the Desk's rule set (and
    converts money); ``engine(kind)`` is the engine of a record kind (an
    unknown kind raises :class:`ValidationError`); ``pm`` asks
    ``reqmgmt_escalation``.
    """

    rules: RuleSet
    calendar: Calendar
    classify: Callable[..., Decision]
    engine: Callable[[str], Engine]
    pm: pluggy.PluginManager


# --- deadlines on records --------------------------------------------------------------------


def _hours(value: Any) -> timedelta | None:
    if value is None or value == 0 or value == "":
        return None
    return timedelta(hours=float(value))


def deadline_changes(
    deadlines: Deadlines,
    engine: Engine,
    old: Record | None,
    new_state: str,
    now: datetime,
    *,
    created: Record | None = None,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The deadline fields of a command's new version (only those that change).

    ``old`` is ``None`` for a creating command, which passes the record it
    built as ``created``; ``changes`` are the command's other field changes
    (a step due on a field the command sets: a CAPA's ``due_on``).  Pauses,
    steps and the running deadline as the module docstring says.
    """
    old_state = None if old is None else old.state
    # Plain str on both sides: a subclass's own == or hash could disagree with ``in``.
    if (
        old is not None
        and type(new_state) is str
        and type(old_state) is str
        and new_state == old_state
    ):
        # The same state (a signature, an edit): no pause starts or ends and
        # the step stays, so only the running deadline can change, and only
        # for a record whose stored one disagrees.  The same answer as below
        # for ~2.5k instructions less (tests/unit/test_iso6.py compares).
        nxt = _earliest(old.due_at, old.step_due_at, old.paused_since, new_state, engine)
        return {"next_deadline": nxt} if nxt != old.next_deadline else {}
    waiting = engine.waiting
    calendar = deadlines.calendar
    out: dict[str, Any] = {}
    due = (created.due_at if created is not None else None) if old is None else old.due_at
    paused_since = None if old is None else old.paused_since
    # Leaving a pause: the clock runs again, the deadline moves by the wait.
    if old is not None and old_state in waiting and new_state not in waiting:
        waited = calendar.working_time(paused_since or now, now)
        if due is not None and waited > timedelta(0):
            due = calendar.add(due, waited)
            out["due_at"] = due
        out["paused_since"] = None
        out["paused_seconds"] = old.paused_seconds + int(waited.total_seconds())
        paused_since = None
    elif new_state in waiting and old_state not in waiting:
        out["paused_since"] = now
        paused_since = now
    # A new state: a new step deadline, or none.
    step, step_due = (None, None) if old is None else (old.step, old.step_due_at)
    if new_state != old_state:
        step, step_due = None, None
        rules = deadlines.rules  # _step_rule's memo, looked up here first
        found = (
            None
            if "step_deadline" not in rules.tables
            else _STEP_RULES.get((rules.version, engine.kind, new_state), _UNKNOWN)
            if _plain(rules.version, engine.kind, new_state)
            else _UNKNOWN
        )
        if found is _UNKNOWN:
            found = _step_rule(deadlines, engine.kind, new_state, now.date())
        if found is not None:
            step = found[0]
            if found[2] is not None:
                step_due = _until(deadlines, found[2], old, changes)
                step = step if step_due is not None else None
            elif found[1] is not None:
                step_due = calendar.add(now, found[1])
        if old is None or (step, step_due) != (old.step, old.step_due_at):
            out["step"] = step
            out["step_due_at"] = step_due
    # The earliest running deadline, for the reminder pass.
    nxt = _earliest(due, step_due, paused_since, new_state, engine)
    if old is None or nxt != old.next_deadline:
        out["next_deadline"] = nxt
    return out


def _earliest(
    due: datetime | None,
    step_due: datetime | None,
    paused_since: datetime | None,
    state: str,
    engine: Engine,
) -> datetime | None:
    """The running deadline: the earlier of ``due`` and ``step_due`` (``due`` when they
    are equal, as ``min`` keeps the first), none while paused or in a final state."""
    if paused_since is not None or state in engine.final:
        return None
    if due is None:
        return step_due
    if step_due is None:
        return due
    return step_due if step_due < due else due


_StepRule = tuple[str, timedelta | None, tuple[str, ...] | None]
_STEP_RULES: dict[tuple[str, str, str], _StepRule | None] = {}
#: Not in ``_STEP_RULES`` yet.
_UNKNOWN: Any = object()


def _plain(version: object, kind: object, state: object) -> bool:
    """May ``_STEP_RULES`` keep or answer this key?  Plain strings only: a ``str``
    subclass may equal (and hash as) a plain name whose rule its own ``==`` decides
    otherwise (in the table's match), and would take or give that name's answer."""
    return type(version) is str and type(kind) is str and type(state) is str


def step_rule_memo(version: str, kind: str, state: str) -> tuple[bool, _StepRule | None]:
    """Whether the step rule of ``state`` (rule ``step_deadline`` of rule set ``version``)
    is known yet, and what :func:`_step_rule` memoised for it (``None``: no step deadline):
    the step, its working hours and the record field it is due on (``until``).  Never
    known for a key of other than plain strings (:func:`_plain`)."""
    found = (
        _STEP_RULES.get((version, kind, state), _UNKNOWN)
        if _plain(version, kind, state)
        else _UNKNOWN
    )
    return (False, None) if found is _UNKNOWN else (True, found)


def _step_rule(deadlines: Deadlines, kind: str, state: str, on: date) -> _StepRule | None:
    """The step and its working hours, or the record field it is due on (``until``), for
    ``state`` (rule ``step_deadline``), memoised.

    The table's inputs are the kind and the state only, so its answer is a
    function of the rule-set version, kind and state.
    """
    if "step_deadline" not in deadlines.rules.tables:
        return None
    key = (deadlines.rules.version, kind, state)
    kept = _plain(*key)  # a str subclass's answer is worked out each time, never kept
    if kept and key in _STEP_RULES:
        return _STEP_RULES[key]
    outcome = deadlines.classify("step_deadline", {"kind": kind, "state": state}, on=on).outcome
    hours = _hours(outcome.get("hours"))
    until = _until_path(outcome.get("until"))
    rule = (
        None
        if hours is None and until is None
        else (str(outcome.get("step") or state), hours, until)
    )
    if kept:
        if len(_STEP_RULES) > 10_000:
            _STEP_RULES.clear()
        _STEP_RULES[key] = rule
    return rule


def _until_path(value: Any) -> tuple[str, ...] | None:
    """``until = "capa.due_on"``: the record field (dotted, identifiers only) a step is due on."""
    if value is None or value == "":
        return None
    parts = tuple(value.split(".")) if isinstance(value, str) else ()
    if not parts or not all(p.isidentifier() and not p.startswith("_") for p in parts):
        raise ConfigError(
            "rule table 'step_deadline'",
            f"until = {value!r}: a record field such as 'capa.due_on' (a date or a time)",
        )
    return parts


def _until(
    deadlines: Deadlines,
    path: tuple[str, ...],
    old: Record | None,
    changes: Mapping[str, Any] | None,
) -> datetime | None:
    """The step's due time from a record field: a date is due at the end of that day
    (midnight after it, in the calendar's zone); ``None`` when the field is not set."""
    head = path[0]
    value: Any = (
        changes[head] if changes is not None and head in changes else getattr(old, head, None)
    )
    for part in path[1:]:
        value = getattr(value, part, None)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        zone = getattr(deadlines.calendar, "zone", UTC)
        return datetime.combine(value + _DAY, time(0), tzinfo=zone).astimezone(UTC)
    return None


def check_no_step_deadline(rules: RuleSet, engines: Mapping[str, Engine]) -> None:
    """The rule set's ``[no_step_deadline]`` names states that exist and are not final.

    Kinds are those this Desk serves and the built-in ones (a rule set may
    serve desks with fewer lifecycles); anything else raises :class:`ConfigError`
    listing every mistake.
    """
    from .lifecycle import BUILTIN_LIFECYCLES  # lifecycle -> ... -> reminders

    known = dict(BUILTIN_LIFECYCLES)
    known.update((k, e.lifecycle) for k, e in engines.items())
    problems = []
    for kind, state in rules.no_step_deadline:
        lc = known.get(kind)
        where = f"no_step_deadline.{kind}.{state}"
        if lc is None:
            problems.append(f"{where}: no lifecycle {kind!r}; kinds: {', '.join(sorted(known))}")
            continue
        states = {s.name: s for s in lc.states}
        if state not in states:
            problems.append(
                f"{where}: {kind} has no state {state!r}; states: "
                + ", ".join(s.name for s in lc.states if not s.final)
            )
        elif states[state].final:
            problems.append(f"{where}: {state!r} is final; a final state has no deadlines")
    table = rules.tables.get("step_deadline")
    for row in table.rows if table is not None else ():
        try:
            _until_path(row.then.get("until"))
        except ConfigError as exc:
            problems.extend(f"step_deadline row {row.id!r}: {p}" for p in exc.problems)
    if problems:
        raise ConfigError(f"rule set {rules.version[:12]}", problems)


@frozen
class Deadline:
    """One running deadline of a record, as the reminder pass sees it."""

    ref: str
    name: str  # "due" (the whole record) or the step's name
    due_at: datetime
    step: bool


def deadlines_of(record: Record) -> list[Deadline]:
    """The record's running deadlines (none while paused or finished)."""
    if record.next_deadline is None:
        return []
    found = []
    if record.due_at is not None:
        found.append(Deadline(record.ref, "due", record.due_at, False))
    if record.step_due_at is not None and record.step is not None:
        found.append(Deadline(record.ref, record.step, record.step_due_at, True))
    return found


# --- the reminder pass ------------------------------------------------------------------------


@frozen
class ReminderResult:
    """What one reminder pass did."""

    checked: int = 0  #: records near or past a deadline
    queued: int = 0  #: reminders and escalations newly put in the outbox
    already: int = 0  #: found already queued (an earlier pass, another worker)
    #: records the pass could not handle, as (ref, reason); logged, and the pass went on
    failed: tuple[tuple[str, str], ...] = ()


@frozen
class _Stage:
    name: str  # "before-8h", "due", "escalate-1", ...
    at: datetime
    level: int  # 0: reminder to the handlers; n: n-th escalation


def _stages(
    calendar: Calendar, deadline: Deadline, before: Sequence[float], every: timedelta | None,
    levels: int, now: datetime,
) -> list[_Stage]:  # fmt: skip
    stages = [
        _Stage(f"before-{h:g}h", calendar.add(deadline.due_at, -timedelta(hours=h)), 0)
        for h in sorted(before, reverse=True)
        if h > 0
    ]
    stages.append(_Stage("due", deadline.due_at, 0))
    if every is not None:
        at = deadline.due_at
        for level in range(1, levels + 1):
            at = calendar.add(at, every)
            if at > now:
                break
            stages.append(_Stage(f"escalate-{level}", at, level))
    return stages


def _policy(deadlines: Deadlines, kind: str, on: date) -> Mapping[str, Any]:
    if "escalation" not in deadlines.rules.tables:
        return {}
    outcome: Mapping[str, Any] = deadlines.classify("escalation", {"kind": kind}, on=on).outcome
    return outcome


def _offsets(value: Any) -> list[float]:
    """``remind_before_hours`` as a list: one offset (24) or several ([24, 4])."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return [float(v) for v in values if v]


def _lead(deadlines: Deadlines) -> timedelta:
    """The longest 'remind before' of the rule set: how far ahead a pass looks."""
    hours = 0.0
    for name, column in (("requirement_deadline", "remind_before_hours"),
                         ("step_deadline", "remind_before_hours")):  # fmt: skip
        table = deadlines.rules.tables.get(name)
        if table is None:
            continue
        for row in table.rows:
            hours = max([hours, *_offsets(row.then.get(column))])
    return timedelta(hours=hours)


def _remind_before(
    deadlines: Deadlines, record: Record, deadline: Deadline, on: date
) -> list[float]:
    if deadline.step:
        facts = {"kind": record.RECORD_KIND, "state": record.state}
        outcome = deadlines.classify("step_deadline", facts, on=on).outcome
    elif "requirement_deadline" in deadlines.rules.tables and hasattr(record, "priority"):
        facts = {"priority": record.priority}
        outcome = deadlines.classify("requirement_deadline", facts, on=on).outcome
    else:
        return []
    return _offsets(outcome.get("remind_before_hours"))


def _recipients(
    deadlines: Deadlines,
    record: Record,
    deadline: Deadline,
    stage: _Stage,
    policy: Mapping[str, Any],
) -> list[str]:
    if stage.level == 0:
        engine = deadlines.engine(record.RECORD_KIND)
        step = engine.lifecycle.signoff_step(record.state) if deadline.step else None
        if step is not None:
            missing = step.missing(record)
            if missing:
                return [f"department:{d}" for d in missing]
        return list(policy.get("handlers") or ["role:sales"])
    from .hookcalls import ask_escalation  # hookcalls -> plugins -> reminders

    chosen = ask_escalation(deadlines.pm, record, deadline, stage.level)
    if chosen is not None:
        return list(chosen)
    contacts = list(policy.get("levels") or [])
    approver = getattr(record, "route_approver", None)
    if approver:
        contacts = [f"role:{approver}", *(c for c in contacts if c != f"role:{approver}")]
    if not contacts:
        return []
    return [contacts[min(stage.level, len(contacts)) - 1]]


def _step_labels(deadlines: Deadlines, step: str) -> tuple[str, str]:
    """The zh and en labels of a deadline step (``deadline_steps`` vocabulary)."""
    words = deadlines.rules.vocabularies.get("deadline_steps")
    labels = words.labels.get(step) if words is not None else None
    return labels if labels is not None else (step, step)


def _text(
    deadlines: Deadlines, record: Record, deadline: Deadline, stage: _Stage, now: datetime
) -> tuple[str, str]:
    lc = deadlines.engine(record.RECORD_KIND).lifecycle
    local = deadline.due_at.astimezone(getattr(deadlines.calendar, "zone", UTC))
    when = local.strftime("%Y-%m-%d %H:%M")
    what_zh, what_en = "处理期限", "deadline"
    if deadline.step:
        zh_step, en_step = _step_labels(deadlines, deadline.name)
        what_zh, what_en = f"{zh_step}步骤期限", f"{en_step} deadline"
    if stage.level:
        late = deadlines.calendar.working_time(deadline.due_at, now)
        hours = late.total_seconds() / 3600
        return (
            f"升级({stage.level}级):{lc.zh} {record.ref} 已超过{what_zh} {when},"
            f"超期 {hours:.1f} 工作小时",
            f"Escalation (level {stage.level}): {lc.en} {record.ref} is past its {what_en} "
            f"{when} by {hours:.1f} working hours",
        )
    if stage.name == "due":
        return (
            f"提醒:{lc.zh} {record.ref} 已到{what_zh} {when}",
            f"Reminder: {lc.en} {record.ref} reached its {what_en} {when}",
        )
    return (
        f"提醒:{lc.zh} {record.ref} 的{what_zh}为 {when}",
        f"Reminder: {lc.en} {record.ref} is due ({what_en}) at {when}",
    )


def reminder_notifications(
    deadlines: Deadlines, record: Record, now: datetime
) -> list[Notification]:
    """The reminders and escalations due for ``record`` at ``now`` (current stage only).

    A pass that ran late sends the stage reached now, not the ones it missed:
    a handler does not want three stale reminders at once.
    """
    from .model import Notification

    policy = _policy(deadlines, record.RECORD_KIND, now.date())
    every = _hours(policy.get("every_hours"))
    levels = len(policy.get("levels") or ()) or 0
    out: list[Notification] = []
    for deadline in deadlines_of(record):
        before = _remind_before(deadlines, record, deadline, now.date())
        reached = [
            s
            for s in _stages(deadlines.calendar, deadline, before, every, levels, now)
            if s.at <= now
        ]
        if not reached:
            continue
        stage = reached[-1]
        zh, en = _text(deadlines, record, deadline, stage, now)
        stamp = deadline.due_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        event = "escalate" if stage.level else "remind"
        for recipient in _recipients(deadlines, record, deadline, stage, policy):
            out.append(
                Notification(
                    key=f"{record.ref}:{deadline.name}@{stamp}:{stage.name}:{recipient}",
                    ref=record.ref,
                    record_kind=record.RECORD_KIND,
                    version=record.version,
                    event=event,
                    recipient=recipient,
                    topic=f"{record.RECORD_KIND}.{event}",
                    text_zh=zh,
                    text_en=en,
                    created_at=now,
                )
            )
    return out


def run_reminders(
    deadlines: Deadlines, store: Store, now: datetime, *, batch: int = 500
) -> ReminderResult:
    """One reminder pass over ``store`` at ``now``: see :meth:`reqmgmt.Desk.run_reminders`.

    A record that cannot be read or whose reminders cannot be worked out is
    logged, listed in ``failed`` and skipped; the pass goes on with the rest.
    """
    horizon = deadlines.calendar.add(now, _lead(deadlines)) + timedelta(microseconds=1)
    failed: list[tuple[str, str]] = []
    with store.transaction() as tx:
        if isinstance(tx, Lenient):
            tx.unreadable = failed
        due = list(tx.query(due_before=horizon))
    # The records are not read again to write: a reminder's key already names
    # the deadline and due time it is for, and queueing it twice does nothing.
    queued = already = 0
    for start in range(0, len(due), batch):
        with store.transaction() as tx:
            for record in due[start : start + batch]:
                try:
                    notes = reminder_notifications(deadlines, record, now)
                except Exception as exc:  # one odd record must not stop everyone's reminders
                    failed.append((record.ref, f"{type(exc).__name__}: {exc}"))
                    continue
                for n in notes:
                    added = tx.enqueue([n])
                    queued += added
                    already += 1 - added
    for ref, reason in failed:
        log.error("reminder pass: skipped %s: %s", ref, reason)
    return ReminderResult(len(due) + len(failed), queued, already, tuple(failed))
