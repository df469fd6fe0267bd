"""The ``reqmgmt`` command as a shell runs it: subprocesses on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pytest

from reqmgmt import Actor, Customer, Desk
from reqmgmt.testing import FakeClock

#: Environment fault messages must not look like this.
TRACEBACK = "Traceback (most recent call last)"


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m reqmgmt ARGS`` in ``cwd``; with ``check``, assert that exit code."""
    result = subprocess.run(
        [sys.executable, "-m", "reqmgmt", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if check is not None:
        assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
    return result


def _receive(url: str, count: int = 1) -> list[str]:
    """Requirements received on Monday 2026-03-02 09:00 Shanghai (overdue a day later)."""
    clock = FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    clerk = Actor("clerk", "张伟", roles={"sales"})
    with Desk.open(url, clock=clock, autodispatch=False) as desk:
        return [
            desk.requirements.receive(
                customer=Customer("C1", "华南五金"), description="冲压支架", actor=clerk
            ).ref
            for _ in range(count)
        ]


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A reqmgmt SQLite database with one requirement in it."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _receive(url)
    return url


# --- 1. version, python -m ---------------------------------------------------------------------


def test_version_through_python_m_and_the_script(tmp_path: Path) -> None:
    """`python -m reqmgmt --version` and `reqmgmt --version` print the installed version."""
    expected = f"reqmgmt {version('reqmgmt')}"
    assert cli("--version", cwd=tmp_path, check=0).stdout.strip() == expected
    script = Path(sys.executable).with_name("reqmgmt")
    if script.exists():
        out = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


# --- 2. reading commands open an existing database only ----------------------------------------

READING = [
    ["report", "--db"],
    ["outbox", "--db"],
    ["remind", "--db"],
    ["dispatch", "--db"],
    ["db", "current"],
]


@pytest.mark.parametrize("argv", READING, ids=lambda a: " ".join(a[:2]))
def test_a_reading_command_refuses_a_missing_database_and_creates_nothing(
    tmp_path: Path, argv: list[str]
) -> None:
    """A mistyped URL: no database there, how to create one, exit 1, no file made."""
    result = cli(*argv, "sqlite:///typo.db", cwd=tmp_path, check=1)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "there is no reqmgmt database at sqlite:///typo.db" in result.stderr
    assert "reqmgmt db upgrade 'sqlite:///typo.db'" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == ""


def test_a_reading_command_refuses_an_empty_database(tmp_path: Path) -> None:
    """An existing but empty file is not a reqmgmt database: refused, left empty."""
    (tmp_path / "empty.db").touch()
    result = cli("report", "--db", "sqlite:///empty.db", cwd=tmp_path, check=1)
    assert "no reqmgmt database" in result.stderr
    assert "has no tables" in result.stderr
    assert (tmp_path / "empty.db").stat().st_size == 0
    # The way out the message gives works: db upgrade, then the report.
    cli("db", "upgrade", "sqlite:///empty.db", cwd=tmp_path, check=0)
    report = cli("report", "--db", "sqlite:///empty.db", cwd=tmp_path, check=0)
    assert "记录数 records" in report.stdout


# --- 3. the environment's faults: one line, documented exit codes --------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo", "--db", "sqlite:///no/such/folder/x.db"], "folder no/such/folder does not exist"),
        (
            ["remind", "--db", "postgresql+psycopg://erp:s3cret@127.0.0.1:1/erp"],
            "cannot open the store postgresql+psycopg://erp:***@127.0.0.1:1/erp",
        ),
        (["report", "--db", "postgresql+nosuchdriver://x/y"], "store URL postgresql+nosuchdriver"),
        (["db", "current", "oracle://x/y"], "supported: sqlite:///path.db and postgresql"),
    ],
    ids=["missing folder", "unreachable postgres", "unknown driver", "unknown dialect"],
)
def test_environment_faults_are_one_line_not_a_traceback(
    tmp_path: Path, argv: list[str], expected: str
) -> None:
    """What and where on one line, exit 1, the password hidden."""
    result = cli(*argv, cwd=tmp_path, check=1)
    assert TRACEBACK not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"reqmgmt {argv[0]}")
    assert expected in result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["outbox", "--status", "pending"], ["outbox", "--status", "pending", "--json"], ["rules"]],
    ids=["outbox", "outbox --json", "rules show"],
)
def test_a_closed_pipe_ends_quietly(tmp_path: Path, db: str, argv: list[str]) -> None:
    """`reqmgmt outbox | head`: the reader went away; no traceback, exit 1."""
    args = ["rules", "show"] if argv == ["rules"] else [*argv, "--db", db]
    read, write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reqmgmt", *args], cwd=tmp_path, stdout=write, stderr=subprocess.PIPE
    )
    os.close(write)
    os.close(read)  # closed before the command writes a byte
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert err == ""


def test_usage_errors_exit_2(tmp_path: Path, db: str) -> None:
    """A wrong value on the command line is exit 2, argparse's and reqmgmt's alike."""
    assert "give the time zone" in cli("remind", "--db", db, "--now", "2026-03-03T15:00",
                                       cwd=tmp_path, check=2).stderr  # fmt: skip
    cli("report", "--db", db, "--format", "xlsx", cwd=tmp_path, check=2)
    assert "MODULE:ATTR" in cli("outbox", "--db", db, "--plugin", "nocolon",
                                cwd=tmp_path, check=2).stderr  # fmt: skip


# --- exit 3: done, but something needs attention ------------------------------------------------


def test_failed_deliveries_and_dead_letters_exit_3(tmp_path: Path, db: str) -> None:
    """dispatch with a failing notifier, then outbox listing the dead letters: exit 3."""
    from reqmgmt.testing import FailingNotifier

    failing = ["--plugin", "reqmgmt.testing:FailingNotifier"]
    result = cli("dispatch", "--db", db, *failing, cwd=tmp_path, check=3)
    assert "delivered 0, failed 1, dead 0" in result.stdout
    cli("outbox", "--db", db, cwd=tmp_path, check=0)  # no dead letter yet: nothing to see
    later = FakeClock(datetime(2027, 1, 1, tzinfo=UTC))  # past the retry's back-off
    with Desk.open(db, plugins=[FailingNotifier()], clock=later, autodispatch=False) as desk:
        desk.max_attempts = 1
        assert desk.dispatch().dead == 1
    assert ":1:role:sales" in cli("outbox", "--db", db, cwd=tmp_path, check=3).stdout
    cli("outbox", "--db", db, "--status", "delivered", cwd=tmp_path, check=0)


def test_db_current_needing_an_upgrade_exits_3(tmp_path: Path, db: str) -> None:
    """A schema behind this reqmgmt: printed, exit 3 (attention), and the readers refuse it."""
    import sqlalchemy as sa

    from reqmgmt.storage import migrate

    engine = sa.create_engine(db)
    with engine.begin() as conn:
        migrate.downgrade(conn, "0001")
    engine.dispose()
    assert "0001 (needs upgrade to" in cli("db", "current", db, cwd=tmp_path, check=3).stdout
    assert "reqmgmt db upgrade" in cli("outbox", "--db", db, cwd=tmp_path, check=1).stderr


# --- 4. --json on every command, logging -------------------------------------------------------


def _samples(db: str, facts: Path) -> dict[str, list[str]]:
    """A command line for each registered command, for the --json test."""
    return {
        "demo": ["demo", "--db", db.replace("erp.db", "demo.db")],
        "diagram": ["diagram", "requirement"],
        "rules check": ["rules", "check", str(facts.with_name("host.toml"))],
        "rules explain": ["rules", "explain", "--kind", "contract", "--facts", str(facts)],
        "rules show": ["rules", "show"],
        "rules import": [
            "rules",
            "import",
            str(
                Path(__file__).parents[1] / "data/dmn-tck/0004-simpletable-U/0004-simpletable-U.dmn"
            ),
        ],
        "db current": ["db", "current", db],
        "db upgrade": ["db", "upgrade", db],
        "remind": ["remind", "--db", db, "--now", "2026-03-03T15:00+08:00"],
        "dispatch": ["dispatch", "--db", db, "--plugin", "reqmgmt.testing:RecordingNotifier"],
        "outbox": ["outbox", "--db", db, "--status", "delivered"],
        "report": ["report", "--db", db],
        "report --rebuild": ["report", "--rebuild", "--db", db],
        "compact": ["compact", "--db", db],
        "verify": ["verify", "--db", db],
        "doctor": ["doctor", "--db", db, "--today", "2025-06-02"],
        "messages": ["messages"],
        "form": ["form", "REQ-2026-000001", "--db", db],
    }


def test_every_command_prints_one_json_document_with_json(tmp_path: Path, db: str) -> None:
    """`--json` on each registered command: stdout is one JSON document."""
    from reqmgmt import cli as cli_module
    from reqmgmt.commandline import _COMMANDS
    from reqmgmt.storage import migrate

    assert cli_module.main is not None  # the commands are registered by importing reqmgmt.cli
    facts = tmp_path / "facts.json"
    facts.write_text(
        '{"amount": {"amount": "250000", "currency": "CNY"}, "new_product": false, "oem": false,'
        ' "new_customer": false, "first_order": false, "foreign_trade": false}',
        encoding="utf-8",
    )
    (tmp_path / "host.toml").write_text('[tables.sample_order]\nzh = "样品单"\n', encoding="utf-8")
    samples = _samples(db, facts)
    missing = sorted(set(_COMMANDS) - set(samples))
    assert not missing, f"add a sample command line for {missing} to _samples()"
    data = {}
    for name, argv in samples.items():
        result = cli(*argv, "--json", cwd=tmp_path)
        assert result.returncode in (0, 3), (name, result.stderr)
        data[name] = json.loads(result.stdout)
    assert data["rules explain"]["outcome"] == {"class": "special"}
    assert data["rules import"]["tables"] == ["Approval Status"]
    assert data["remind"] == {"checked": 1, "queued": 1, "already": 0}
    assert data["dispatch"]["delivered"] == 2  # the receipt and the reminder
    assert data["outbox"][0]["status"] == "delivered"
    head = migrate.HEAD_REVISION
    assert data["db current"] == {"revision": head, "head": head, "current": True}
    assert data["report"]["counts"][0]["kind"] == "requirement"
    assert data["report --rebuild"] == data["report"]  # the summaries were right
    assert data["compact"]["rows_before"] > 0
    assert data["demo"]["audit_chains_intact"] is True
    assert data["diagram"]["requirement"].startswith("stateDiagram-v2")
    assert data["verify"]["broken"] == []
    assert data["doctor"]["ok"] is True
    assert (
        data["messages"]["signoff.incomplete"]["zh"]
        == "第 {round} 轮会签尚缺以下部门签字：{missing}"
    )
    assert data["form"]["forms"][0] == {"name": "production_notice", "zh": "生产通知表",
                                        "en": "production notice"}  # fmt: skip


def test_errors_are_json_too(tmp_path: Path) -> None:
    """With --json a failure prints {"error": ...} on stdout and its line on stderr."""
    result = cli("outbox", "--db", "sqlite:///typo.db", "--json", cwd=tmp_path, check=1)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "NoDatabase"
    assert error["exit"] == 1
    assert "there is no reqmgmt database" in result.stderr


def test_verbose_workers_log_on_stderr(tmp_path: Path, db: str) -> None:
    """-v logs what a cron worker did (stdlib logging, stderr); the default is quiet."""
    argv = ["remind", "--db", db, "--now", "2026-03-03T15:00+08:00"]
    quiet = cli(*argv, cwd=tmp_path, check=0)
    assert quiet.stderr == ""
    loud = cli(*argv, "-v", cwd=tmp_path, check=0)
    assert "INFO reqmgmt: remind: checked 1, queued 0, already queued 1" in loud.stderr
    assert "INFO reqmgmt: opened sqlite:///" in loud.stderr
    debug = cli(*argv, "--log-level", "debug", "--plugin", "reqmgmt.testing:RecordingNotifier",
                cwd=tmp_path, check=0)  # fmt: skip
    assert "DEBUG reqmgmt: plugin reqmgmt.testing:RecordingNotifier" in debug.stderr


# --- 5. plugins everywhere ---------------------------------------------------------------------

HOST_PLUGINS = textwrap.dedent(
    """
    import reqmgmt


    class WatchList:
        @reqmgmt.hookimpl
        def reqmgmt_rule_functions(self):
            return {"on_watch_list": lambda customer: customer in {"C-013"}}


    class FileNotifier:
        @reqmgmt.hookimpl
        def reqmgmt_notify(self, notification):
            with open("sent.txt", "a", encoding="utf-8") as fh:
                fh.write(notification.key + "\\n")


    notifier = FileNotifier()
    watch_list = WatchList()
    """
)

WATCH_RULES = textwrap.dedent(
    """
    [tables.credit_hold]
    inputs = { customer = "str" }
    outputs = ["hold"]
    default = { hold = false }
    rows = [{ id = "watched", when = "on_watch_list(customer)", then = { hold = true } }]
    """
)


def _host(tmp_path: Path) -> Path:
    (tmp_path / "erp_plugins.py").write_text(HOST_PLUGINS, encoding="utf-8")
    (tmp_path / "credit.toml").write_text(WATCH_RULES, encoding="utf-8")
    (tmp_path / "facts.json").write_text('{"customer": "C-013"}', encoding="utf-8")
    return tmp_path


def test_rules_commands_load_entry_point_plugins(tmp_path: Path) -> None:
    """A host's published rule functions serve `rules check/explain/show`."""
    host = _host(tmp_path)
    site = tmp_path / "site"
    dist = site / "erp_host-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: erp-host\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[reqmgmt]\nwatch = erp_plugins:watch_list\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(host), os.environ.get("PYTHONPATH", "")])}
    out = cli("rules", "check", "credit.toml", "--json", cwd=host, env=env, check=0).stdout
    assert "credit_hold" in json.loads(out)["tables"]
    explained = cli("rules", "explain", "credit.toml", "--kind", "credit_hold",
                    "--facts", "facts.json", cwd=host, env=env, check=0).stdout  # fmt: skip
    assert "{'hold': True}" in explained
    assert "on_watch_list(customer)" in cli("rules", "show", "credit.toml", cwd=host, env=env,
                                            check=0).stdout  # fmt: skip
    # Without the host's plugins the function is unknown: a listed mistake, exit 1.
    refused = cli("rules", "check", "credit.toml", "--no-entrypoints", cwd=host, env=env, check=1)
    assert "on_watch_list" in refused.stderr


def test_plugin_option_gives_rules_and_workers_the_hosts_objects(tmp_path: Path) -> None:
    """`--plugin module:attr` from the host's own code (the current directory), repeatable."""
    host = _host(tmp_path)
    url = f"sqlite:///{host / 'erp.db'}"
    refs = _receive(url, 2)
    plugin = ["--plugin", "erp_plugins:WatchList", "--plugin", "erp_plugins:notifier"]
    cli("rules", "check", "credit.toml", *plugin, cwd=host, check=0)
    cli("dispatch", "--db", url, cwd=host, check=1)  # no notifier without the option
    out = cli("dispatch", "--db", url, *plugin, cwd=host, check=0).stdout
    assert "delivered 2, failed 0, dead 0" in out
    assert sorted((host / "sent.txt").read_text(encoding="utf-8").split()) == sorted(
        f"{ref}:1:role:sales" for ref in refs
    )
    out = cli("remind", "--db", url, "--now", "2026-03-05T09:00+08:00", "--dispatch", *plugin,
              cwd=host, check=0).stdout  # fmt: skip
    assert "queued 2" in out
    assert "delivered 2" in out
    missing = cli("outbox", "--db", url, "--plugin", "erp_plugins:nothing", cwd=host, check=1)
    assert "--plugin 'erp_plugins:nothing': 'erp_plugins' has no attribute 'nothing'" in (
        missing.stderr
    )


# --- 6. CSV for Excel ----------------------------------------------------------------------------


def test_report_csv_has_a_bom_for_excel_unless_told_otherwise(tmp_path: Path, db: str) -> None:
    """UTF-8 with BOM by default (stdout and --out); --encoding changes it."""
    raw = subprocess.run(
        [sys.executable, "-m", "reqmgmt", "report", "--db", db, "--format", "csv"],
        cwd=tmp_path, capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert raw.startswith(b"\xef\xbb\xbfsection,kind")
    cli("report", "--db", db, "--format", "csv", "--out", "out", cwd=tmp_path, check=0)
    assert (tmp_path / "out" / "report.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    cli("report", "--db", db, "--format", "csv", "--encoding", "gb18030", "--out", "gb",
        cwd=tmp_path, check=0)  # fmt: skip
    text = (tmp_path / "gb" / "report.csv").read_bytes()
    assert text.startswith(b"section,kind")
    assert "华南五金" not in text.decode("utf-8", errors="replace")  # gb18030, not UTF-8
    plain = subprocess.run(
        [sys.executable, "-m", "reqmgmt", "report", "--db", db, "--format", "csv", "--encoding",
         "utf-8"], cwd=tmp_path, capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert plain.startswith(b"section,kind")
    cli("report", "--db", db, "--format", "csv", "--encoding", "klingon", cwd=tmp_path, check=2)


# --- 10. db upgrade --sql ------------------------------------------------------------------------


def _audit_columns(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT ref, version, kind, event, from_state, to_state, at FROM audit ORDER BY id"
        ).fetchall()


def test_db_upgrade_sql_prints_what_the_upgrade_does(tmp_path: Path, db: str) -> None:
    """The SQL a DBA reviews, run by hand, leaves the database as `db upgrade` does."""
    import shutil

    import sqlalchemy as sa

    from reqmgmt.storage import migrate

    path = Path(db.removeprefix("sqlite:///"))
    _receive(db, 2)
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        migrate.downgrade(conn, "0001")  # as 0.1.0 left it, with audit rows
    engine.dispose()
    by_hand = tmp_path / "by_hand.db"
    shutil.copy(path, by_hand)
    sql = cli("db", "upgrade", db, "--sql", cwd=tmp_path, check=0).stdout
    assert sql.startswith("-- Running upgrade 0001 -> 0002")
    # No table made again; 0004 adds the report's summary table (empty offline: docs/reports.md),
    # 0005 the commands' summary delta rows.
    assert sql.count("CREATE TABLE") == 2
    assert "CREATE TABLE summary " in sql.partition("-- Running upgrade 0003 -> 0004")[2]
    assert "CREATE TABLE summary_delta" in sql.partition("-- Running upgrade 0004 -> 0005")[2]
    with sqlite3.connect(by_hand) as conn:
        conn.executescript(sql)
    assert cli("db", "current", db, cwd=tmp_path, check=3)  # --sql changed nothing
    cli("db", "upgrade", db, cwd=tmp_path, check=0)
    assert _audit_columns(by_hand) == _audit_columns(path)
    assert len(_audit_columns(path)) == 3
    assert all(row[6] and len(str(row[6])) == 26 for row in _audit_columns(path))
    cli("db", "current", f"sqlite:///{by_hand}", cwd=tmp_path, check=0)


def test_db_upgrade_sql_of_a_new_database_creates_no_file(tmp_path: Path) -> None:
    """For a database still to create: the whole schema, and no file made."""
    sql = cli("db", "upgrade", "sqlite:///new.db", "--sql", cwd=tmp_path, check=0).stdout
    assert "CREATE TABLE records" in sql
    assert list(tmp_path.iterdir()) == []
    pg = cli("db", "upgrade", "postgresql+psycopg://dba@db.invalid/erp", "--sql", "--from", "none",
             cwd=tmp_path, check=0).stdout  # fmt: skip
    assert "CREATE OR REPLACE FUNCTION reqmgmt_audit_append_only()" in pg
    assert "doc::json->>'record_kind'" in pg


# --- workers take the host's rule files ----------------------------------------------------------


def test_remind_escalates_on_the_company_calendar_of_the_rule_files(
    db: str, tmp_path: Path
) -> None:
    """`remind --rules FILE`: the escalation stages count the company's working days.

    The requirement's first response was due on Tuesday 2026-03-03; on Friday the
    default calendar has passed two escalations (every 8 working hours), a factory
    shut down from Tuesday to the next week has passed none.
    """
    rules = tmp_path / "factory.toml"
    rules.write_text(
        '[[calendar.shutdowns]]\nfrom = 2026-03-03\nto = 2026-03-10\nzh = "停产检修"\n',
        encoding="utf-8",
    )
    now = "2026-03-06T04:00:00+00:00"
    plain = json.loads(cli("remind", "--db", db, "--now", now, "--json", cwd=tmp_path).stdout)
    factory = json.loads(
        cli(
            "remind", "--db", db, "--now", now, "--rules", str(rules), "--json", cwd=tmp_path
        ).stdout
    )
    assert plain["queued"] > factory["queued"] > 0, (plain, factory)


def test_a_worker_refuses_a_bad_rule_file_and_names_it(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[calendar]\nholidays = 3\n", encoding="utf-8")
    for command in ("remind", "dispatch", "report"):
        result = cli(command, "--db", db, "--rules", str(bad), cwd=tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        assert "bad.toml, calendar.holidays: must be an array of tables" in result.stderr, (
            command,
            result.stderr,
        )
        assert TRACEBACK not in result.stderr
