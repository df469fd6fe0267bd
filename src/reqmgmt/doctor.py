"""``reqmgmt doctor``: check the install, the database, the rules, the plugins and the calendar.

Each check returns :class:`Finding` records: ``ok``, ``warn`` or ``error``,
what was found, and what to do about it.  Nothing is created or changed: the
database is opened read-only the way ``reqmgmt db current`` opens it, and no
Desk is opened.  The command (in :mod:`reqmgmt.cli`) exits 0 when every
finding is ok, 3 with warnings, 1 with errors.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from attrs import frozen

from .calendar import library_version, official_years
from .errors import ConfigError, NoDatabase, ReqMgmtError, StoreUnavailable

if TYPE_CHECKING:
    import pluggy

    from .reminders import Calendar
    from .rules import RuleSet

__all__ = ["AREAS", "STATUSES", "Finding", "diagnose"]

#: The statuses of a finding, mildest first.
STATUSES = ("ok", "warn", "error")
#: What the doctor checks, in the order it reports.
AREAS = ("install", "database", "rules", "plugins", "calendar")
#: Optional extras: (extra, the module it brings, what it is for).
_EXTRAS = (
    ("postgres", "psycopg", "PostgreSQL stores"),
    ("tables", "rich", "rich tables on a terminal"),
    ("charts", "matplotlib", "reqmgmt report --format png"),
)


@frozen
class Finding:
    """One result of ``reqmgmt doctor``: how it stands, what was found, what to do."""

    area: str  #: one of :data:`AREAS`
    status: str  #: one of :data:`STATUSES`
    what: str
    fix: str = ""


def _version_of(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


# --- install ---------------------------------------------------------------------------------


def check_install(zones: Iterable[str]) -> list[Finding]:
    """Python, reqmgmt, holidays, zoneinfo data for ``zones``, the optional extras."""
    found = []
    py = ".".join(str(n) for n in sys.version_info[:3])
    found.append(Finding("install", "ok", f"Python {py}, reqmgmt {_version_of('reqmgmt')}"))
    found.append(Finding("install", "ok", f"holidays {library_version()}"))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tzdata = _version_of("tzdata")
    for zone in sorted(set(zones)):
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            found.append(
                Finding(
                    "install",
                    "error",
                    f"time zone {zone!r} cannot be loaded: {exc}",
                    "pip install tzdata (this system has no zoneinfo data for it), "
                    "or correct the calendar's timezone",
                )
            )
        else:
            source = f"tzdata {tzdata}" if tzdata else "the system's zoneinfo"
            found.append(Finding("install", "ok", f"time zone {zone} ({source})"))
    for extra, module, purpose in _EXTRAS:
        present = importlib.util.find_spec(module) is not None
        found.append(
            Finding(
                "install",
                "ok",
                f"extra {extra!r} ({purpose}): "
                + ("installed" if present else f"not installed (pip install 'reqmgmt[{extra}]')"),
            )
        )
    return found


# --- database --------------------------------------------------------------------------------


def check_database(url: str | None, pm: pluggy.PluginManager) -> list[Finding]:
    """Reachable, a reqmgmt database, schema at head; creates nothing."""
    if url is None:
        return [Finding("database", "ok", "not checked: give --db URL to check a database")]
    if url.startswith("memory://"):
        return [Finding("database", "ok", "memory:// keeps nothing: nothing to check")]
    if not url.startswith(("sqlite", "postgresql")):
        return _host_store(url, pm)
    from .storage import migrate
    from .storage.sql import connecting, make_engine, shown_url

    shown = shown_url(url)
    try:
        engine = make_engine(url, create=False)
        try:
            with connecting(url), engine.connect() as conn:
                empty, current = migrate.schema_state(conn)
        finally:
            engine.dispose()
    except NoDatabase as exc:
        return [
            Finding(
                "database",
                "error",
                str(exc),
                "check the URL; `reqmgmt db upgrade URL` creates a new database",
            )
        ]
    except (StoreUnavailable, ConfigError) as exc:
        return [Finding("database", "error", str(exc), "check the URL, the server and the driver")]
    except Exception as exc:  # SQLAlchemy and driver errors: the doctor reports, not crashes
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [
            Finding(
                "database",
                "error",
                f"{shown}: cannot be read: {line}",
                "check that the server runs and the URL, user and password are right",
            )
        ]
    if empty:
        return [
            Finding(
                "database",
                "error",
                f"{shown}: has no tables (not a reqmgmt database)",
                f"check the URL; `reqmgmt db upgrade {shown}` creates the schema",
            )
        ]
    if current is None:
        return [
            Finding(
                "database",
                "error",
                f"{shown}: has tables but no reqmgmt revision",
                "this is another application's database: check the URL",
            )
        ]
    if current != migrate.HEAD_REVISION:
        return [
            Finding(
                "database",
                "warn",
                f"{shown}: schema at {current}, this reqmgmt needs {migrate.HEAD_REVISION}",
                f"reqmgmt db upgrade {shown} (or --sql for a DBA)",
            )
        ]
    return [Finding("database", "ok", f"{shown}: reqmgmt database, schema at head ({current})")]


def _host_store(url: str, pm: pluggy.PluginManager) -> list[Finding]:
    from .hookcalls import ask_open_store

    try:
        store = ask_open_store(pm, url, False)
    except ReqMgmtError as exc:
        return [Finding("database", "error", str(exc), "check the URL and the store plugin")]
    if store is None:
        return [
            Finding(
                "database",
                "error",
                f"{url!r}: no plugin opens this URL",
                "use sqlite:///path.db or postgresql+psycopg://..., or add the host's store "
                "plugin (--plugin MODULE:ATTR or its entry point)",
            )
        ]
    store.close()
    return [Finding("database", "ok", f"{url}: opened by a host plugin")]


# --- rules -----------------------------------------------------------------------------------


def check_rules(
    files: Sequence[str], pm: pluggy.PluginManager
) -> tuple[RuleSet | None, list[Finding]]:
    """Load the rule files over the defaults (or the defaults): the rule set and its findings."""
    from .plugins import rule_functions
    from .rules import default_rules, load_rules

    try:
        functions = rule_functions(pm)
        rules = (
            load_rules(files, functions=functions, with_defaults=True)
            if files
            else default_rules(functions)
        )
    except ConfigError as exc:
        fix = "correct the rule file(s); `reqmgmt rules check FILE` lists the same problems"
        return None, [Finding("rules", "error", f"{exc.location}: {p}", fix) for p in exc.problems]
    except ReqMgmtError as exc:
        return None, [Finding("rules", "error", str(exc), "correct the plugin named")]
    where = ", ".join(files) if files else "the default rules"
    calendar = rules.calendar
    extra = (
        f"; [calendar]: {len(calendar.entries)} entries, complete years "
        f"{', '.join(map(str, sorted(calendar.complete))) or 'none'}"
        if calendar
        else ""
    )
    return rules, [
        Finding(
            "rules",
            "ok",
            f"{where}: {len(rules.tables)} tables, version {rules.version[:12]}{extra}",
        )
    ]


# --- plugins ---------------------------------------------------------------------------------


def load_plugins(
    plugins: Sequence[object], load_entrypoints: bool
) -> tuple[pluggy.PluginManager | None, list[Finding]]:
    """The plugin manager of ``plugins`` and (optionally) the entry points, and its findings."""
    from .plugins import make_plugin_manager

    try:
        pm = make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
    except Exception as exc:  # an entry point that fails to import, a misspelt hook
        return None, [
            Finding(
                "plugins",
                "error",
                f"the plugins cannot be loaded: {type(exc).__name__}: {exc}",
                "correct or uninstall the plugin named (--no-entrypoints runs without "
                "the installed ones)",
            )
        ]
    names = [n for n, _ in pm.list_name_plugin() if n is not None]
    return pm, [Finding("plugins", "ok", f"{len(names)} registered: {', '.join(names)}")]


def check_calendar_hook(pm: pluggy.PluginManager, today: date) -> tuple[Any, list[Finding]]:
    """Ask ``reqmgmt_calendar`` and try it once: the calendar (or ``None``) and findings."""
    from .hookcalls import ask_calendar

    try:
        calendar = ask_calendar(pm)
    except ReqMgmtError as exc:
        return None, [Finding("plugins", "error", str(exc), "correct the plugin's answer")]
    if calendar is None:
        return None, [
            Finding(
                "plugins",
                "error",
                "no plugin gave a working calendar",
                "return a calendar from reqmgmt_calendar (docs/hooks.md)",
            )
        ]
    try:
        zone = getattr(calendar, "zone", None)
    except Exception:  # a WorkCalendar with an unknown zone: the install check says so
        zone = None
    start = datetime.combine(today, time(9, 0), zone if isinstance(zone, tzinfo) else UTC)
    problem = None
    try:
        later = calendar.add(start, timedelta(hours=1))
        spent = calendar.working_time(start, start + timedelta(days=14))
        if not isinstance(later, datetime) or later.tzinfo is None or later <= start:
            problem = f"add(start, 1 hour) gave {later!r}, not an aware time after start"
        elif not isinstance(spent, timedelta) or spent < timedelta(0):
            problem = f"working_time over two weeks gave {spent!r}, not a timedelta >= 0"
        elif spent == timedelta(0):
            problem = "working_time over two weeks is zero: no working day in 14 days"
    except Exception as exc:
        problem = f"raised {type(exc).__name__}: {exc}"
    name = type(calendar).__name__
    if problem is not None:
        return calendar, [
            Finding(
                "plugins",
                "error",
                f"calendar {name}: {problem}",
                "correct the reqmgmt_calendar plugin",
            )
        ]
    return calendar, [Finding("plugins", "ok", f"reqmgmt_calendar gives {name}; it counts time")]


# --- calendar --------------------------------------------------------------------------------


def check_calendar(calendar: Calendar, rules: RuleSet | None, today: date) -> list[Finding]:
    """This year and next: published, or declared complete in the rule file's ``[calendar]``."""
    from .reminders import WorkCalendar, with_company_days

    if not isinstance(calendar, WorkCalendar):
        found = [
            Finding(
                "calendar",
                "ok",
                f"the host's calendar {type(calendar).__name__}: which years it knows is "
                "the host's to check",
            )
        ]
        if rules is not None and rules.calendar:
            found.append(
                Finding(
                    "calendar",
                    "warn",
                    "the rule file's [calendar] is not used: the host's calendar is not a "
                    "reqmgmt WorkCalendar",
                    "enter the company days in the host's calendar, or return a WorkCalendar",
                )
            )
        return found
    if rules is not None:
        calendar = with_company_days(calendar, rules)
        assert isinstance(calendar, WorkCalendar)
    where = calendar.country if calendar.subdiv is None else f"{calendar.country}-{calendar.subdiv}"
    try:
        published = official_years(calendar.country, calendar.subdiv)
    except ConfigError as exc:
        return [Finding("calendar", "error", str(exc), "correct the calendar's country")]
    years = f"{min(published)}-{max(published)}" if published else "none"
    found = []
    for year in (today.year, today.year + 1):
        coverage = calendar.coverage(year)
        if coverage == "official":
            found.append(
                Finding(
                    "calendar",
                    "ok",
                    f"{where} {year}: official schedule (holidays {library_version()} has {years})",
                )
            )
        elif coverage == "rule file":
            found.append(
                Finding(
                    "calendar",
                    "ok",
                    f"{where} {year}: declared complete in the rule file's [calendar]",
                )
            )
        else:
            found.append(
                Finding(
                    "calendar",
                    "warn",
                    f"{where} {year}: no official schedule (holidays {library_version()} has "
                    f"{years}); statutory days are estimated, make-up workdays (调休) missing",
                    f"enter {year}'s schedule in the rule file's [calendar] and add {year} to "
                    "calendar.complete (docs/deadlines.md), or upgrade holidays once it "
                    f"has {year}",
                )
            )
    return found


# --- all of it -------------------------------------------------------------------------------


def diagnose(
    *,
    url: str | None = None,
    rule_files: Sequence[str] = (),
    plugins: Sequence[object] = (),
    load_entrypoints: bool = True,
    today: date | None = None,
) -> list[Finding]:
    """Every check, in the order of :data:`AREAS`; creates and changes nothing."""
    today = today or date.today()
    pm, plugin_findings = load_plugins(plugins, load_entrypoints)
    calendar: Any = None
    rules = None
    rule_findings: list[Finding] = []
    db_findings: list[Finding] = []
    calendar_findings: list[Finding] = []
    if pm is not None:
        calendar, hook_findings = check_calendar_hook(pm, today)
        plugin_findings += hook_findings
        rules, rule_findings = check_rules(rule_files, pm)
        db_findings = check_database(url, pm)
        if calendar is not None:
            calendar_findings = check_calendar(calendar, rules, today)
    else:
        skipped = Finding(
            "rules", "warn", "not checked: the plugins did not load", "correct the plugins first"
        )
        rule_findings = [skipped]
        db_findings = [Finding("database", "warn", skipped.what, skipped.fix)]
        calendar_findings = [Finding("calendar", "warn", skipped.what, skipped.fix)]
    zone = getattr(calendar, "timezone", None)
    zones = [zone] if isinstance(zone, str) else ["Asia/Shanghai"]
    return check_install(zones) + db_findings + rule_findings + plugin_findings + calendar_findings
