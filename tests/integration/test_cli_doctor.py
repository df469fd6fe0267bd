"""``reqmgmt doctor`` as a shell runs it: subprocesses on real SQLite files.

``--today`` fixes the years the calendar check looks at: 2026 and 2027 from a
day in 2026 (2027 has no official schedule in the installed ``holidays``).
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .test_cli_commands import TRACEBACK, _receive, cli

FACTORY = """
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
"""


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A reqmgmt SQLite database with one requirement in it."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _receive(url)
    return url


def doctor(tmp_path: Path, *args: str, check: int) -> dict[str, Any]:
    """Run doctor with --json (no entry points: this environment's own are not the test's)."""
    result = cli("doctor", "--no-entrypoints", "--json", *args, cwd=tmp_path, check=check)
    assert TRACEBACK not in result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["exit"] == check
    return data


def by_area(data: dict[str, Any], area: str) -> list[dict[str, str]]:
    return [f for f in data["findings"] if f["area"] == area]


def test_all_well_exits_0(tmp_path: Path, db: str) -> None:
    """A database at head, the default rules, 2026 and 2027 entered: every finding ok."""
    (tmp_path / "factory.toml").write_text(FACTORY, encoding="utf-8")
    data = doctor(tmp_path, "--db", db, "--rules", "factory.toml", "--today", "2026-12-01",
                  check=0)  # fmt: skip
    assert data["ok"] is True
    assert {f["status"] for f in data["findings"]} == {"ok"}
    assert {f["area"] for f in data["findings"]} == {
        "install", "database", "rules", "plugins", "calendar"
    }  # fmt: skip
    assert "schema at head" in by_area(data, "database")[0]["what"]
    calendar = [f["what"] for f in by_area(data, "calendar")]
    assert calendar == [
        "CN 2026: official schedule (holidays " + calendar[0].split("holidays ")[1],
        "CN 2027: declared complete in the rule file's [calendar]",
    ]
    assert "[calendar]: 2 entries, complete years 2027" in by_area(data, "rules")[0]["what"]
    assert any("time zone Asia/Shanghai" in f["what"] for f in by_area(data, "install"))


def test_an_estimated_next_year_is_a_warning_with_the_fix(tmp_path: Path, db: str) -> None:
    """Without the rule file, 2027 is estimated: exit 3, and the text says what to do."""
    data = doctor(tmp_path, "--db", db, "--today", "2026-12-01", check=3)
    warned = [f for f in data["findings"] if f["status"] == "warn"]
    assert len(warned) == 1
    assert warned[0]["area"] == "calendar"
    assert warned[0]["what"].startswith("CN 2027: no official schedule")
    assert "calendar.complete" in warned[0]["fix"]
    text = cli("doctor", "--no-entrypoints", "--db", db, "--today", "2026-12-01", cwd=tmp_path,
               check=3).stdout  # fmt: skip
    assert "warn  calendar CN 2027: no official schedule" in text
    assert "fix: enter 2027's schedule in the rule file's [calendar]" in text
    assert text.rstrip().endswith("0 error(s), 1 warning(s), 11 ok")


def test_a_missing_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    """A typo in the URL: exit 1, and no file appears."""
    data = doctor(tmp_path, "--db", "sqlite:///typo.db", "--today", "2026-01-05", check=1)
    (error,) = [f for f in data["findings"] if f["status"] == "error"]
    assert error["area"] == "database"
    assert "there is no reqmgmt database" in error["what"]
    assert not (tmp_path / "typo.db").exists()


def test_another_applications_database_is_an_error(tmp_path: Path) -> None:
    """Tables but no reqmgmt revision; an empty file: both exit 1, neither is touched."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table invoices (id integer primary key)")
    before = other.read_bytes()
    data = doctor(tmp_path, "--db", f"sqlite:///{other}", "--today", "2026-01-05", check=1)
    assert "has tables but no reqmgmt revision" in by_area(data, "database")[0]["what"]
    assert other.read_bytes() == before
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    data = doctor(tmp_path, "--db", f"sqlite:///{empty}", "--today", "2026-01-05", check=1)
    assert "has no tables" in by_area(data, "database")[0]["what"]
    assert "db upgrade" in by_area(data, "database")[0]["fix"]


def test_a_schema_behind_head_is_a_warning(tmp_path: Path, db: str) -> None:
    """An older revision: exit 3 and the upgrade command."""
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("update alembic_version set version_num = '0001_older'")
    data = doctor(tmp_path, "--db", db, "--today", "2026-01-05", check=3)
    (finding,) = by_area(data, "database")
    assert finding["status"] == "warn"
    assert "schema at 0001_older" in finding["what"]
    assert finding["fix"].startswith("reqmgmt db upgrade sqlite:///")


def test_rule_file_mistakes_are_errors_naming_file_and_key(tmp_path: Path) -> None:
    """A reversed shutdown: exit 1, the problem as `rules check` words it."""
    (tmp_path / "bad.toml").write_text(
        '[[calendar.shutdowns]]\nfrom = 2027-08-06\nto = 2027-07-26\nzh = "停产"\n',
        encoding="utf-8",
    )
    data = doctor(tmp_path, "--rules", "bad.toml", "--today", "2026-01-05", check=1)
    (error,) = by_area(data, "rules")
    assert error["status"] == "error"
    assert (
        "bad.toml, calendar.shutdowns[1]: from 2027-08-06 is after to 2027-07-26" in (error["what"])
    )
    assert "rules check" in error["fix"]


PLUGINS = textwrap.dedent(
    """
    import reqmgmt


    class Broken:
        def add(self, start, amount):
            raise RuntimeError("factory calendar service down")

        def working_time(self, start, end):
            return end - start


    class BrokenCalendar:
        @reqmgmt.hookimpl
        def reqmgmt_calendar(self):
            return Broken()


    class NotACalendar:
        @reqmgmt.hookimpl
        def reqmgmt_calendar(self):
            return "calendar"
    """
)


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        ("host_cal:BrokenCalendar", "calendar Broken: raised RuntimeError: factory calendar "
         "service down"),
        ("host_cal:NotACalendar", "reqmgmt_calendar"),
        ("host_cal:Missing", "has no attribute 'Missing'"),
    ],
)  # fmt: skip
def test_plugin_faults_are_errors(tmp_path: Path, plugin: str, expected: str) -> None:
    """A calendar that raises or is no calendar: exit 1 naming it."""
    (tmp_path / "host_cal.py").write_text(PLUGINS, encoding="utf-8")
    result = cli("doctor", "--no-entrypoints", "--json", "--plugin", plugin, "--today",
                 "2026-01-05", cwd=tmp_path, check=1)  # fmt: skip
    assert TRACEBACK not in result.stderr
    if plugin.endswith("Missing"):  # --plugin itself fails, as for every command
        assert expected in result.stderr
        return
    data = json.loads(result.stdout)
    errors = [f for f in data["findings"] if f["status"] == "error"]
    assert [f["area"] for f in errors] == ["plugins"]
    assert expected in errors[0]["what"]


def test_a_bad_entry_point_is_reported(tmp_path: Path) -> None:
    """An installed plugin that fails to import: one error, the rest not checked."""
    pkg = tmp_path / "site"
    dist = pkg / "badplugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[reqmgmt]\nbad = no_such_module_here:Plugin\n")
    result = cli("doctor", "--json", "--today", "2026-01-05", cwd=tmp_path,
                 env={"PYTHONPATH": str(pkg)}, check=1)  # fmt: skip
    data = json.loads(result.stdout)
    (error,) = [f for f in data["findings"] if f["status"] == "error"]
    assert error["area"] == "plugins"
    assert "no_such_module_here" in error["what"]
    assert "--no-entrypoints" in error["fix"]
