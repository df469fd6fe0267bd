"""The reqmgmt command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reqmgmt.cli import _width, main, render_table


def test_demo_walks_a_requirement_to_closed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo (on sqlite:///reqmgmt.db by default) prints history with zh and en labels."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert (tmp_path / "reqmgmt.db").exists()
    out = capsys.readouterr().out
    assert re.search(r"REQ-\d{4}-\d{6}: order taken in by fax", out)
    for label in (
        "待处理 received",
        "待澄清 clarifying",
        "评估中 evaluating",
        "已接受 accepted",
        "处理中 in progress",
        "已完成 completed",
        "已关闭 closed",
    ):
        assert label in out
    assert "audit chains: all intact" in out
    # Every procedure of the seeds ran: two requirements, two contracts, two returns.
    for line in (
        r"REQ-\d{4}-000002: capacity short, negotiated, rejected",
        r"CON-\d{4}-000001: general contract amended to 300,000 CNY \(special\)",
        r"CON-\d{4}-000002: special contract declined once by production, approved in review r",
        r"RMA-\d{4}-000001: valid return, replacement through CON-\d{4}-000001, CAPA verified",
        r"RMA-\d{4}-000002: complaint judged invalid",
    ):
        assert re.search(line, out), line
    assert "管理报告 management report" in out
    assert (tmp_path / "reqmgmt-notifications.log").read_text(encoding="utf-8").count("\n") > 20


def test_diagram_prints_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    """reqmgmt diagram requirement prints Mermaid."""
    assert main(["diagram", "requirement"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2")


def test_diagram_writes_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--write DIR writes one page per lifecycle."""
    assert main(["diagram", "--write", str(tmp_path)]) == 0
    assert (tmp_path / "requirement.md").read_text(encoding="utf-8").startswith("# 客户需求")


def test_diagram_of_an_unknown_kind_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown kind exits 2 naming the known ones."""
    assert main(["diagram", "widget"]) == 2
    assert "known: contract, requirement" in capsys.readouterr().err


def test_tables_line_up_chinese_text() -> None:
    """Wide characters count as two columns."""
    table = render_table(["a", "b"], [["评估中", "x"], ["ok", "y"]])
    lines = table.splitlines()
    assert _width(lines[2][: lines[2].index("x")]) == _width(lines[3][: lines[3].index("y")]) == 8


def test_rules_check_lists_mistakes_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reqmgmt rules check` exits 1 listing each mistake with its location."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[tables.x]\nhit = "sometimes"\n', encoding="utf-8")
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "4 problem(s)" in err
    assert f"{bad}, table 'x', field 'hit'" in err


def test_rules_check_of_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A good file merged over the defaults passes."""
    good = tmp_path / "good.toml"
    good.write_text('[tables.sample_order]\nzh = "样品单"\n', encoding="utf-8")
    assert main(["rules", "check", str(good)]) == 0
    assert "ok: 10 tables" in capsys.readouterr().out


def test_rules_explain_prints_the_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reqmgmt rules explain --kind contract --facts F` explains in the chosen language."""
    facts = tmp_path / "facts.json"
    facts.write_text(
        '{"amount": {"amount": "250000", "currency": "CNY"}, "new_product": false, "oem": false,'
        ' "new_customer": false, "first_order": false, "foreign_trade": false}',
        encoding="utf-8",
    )
    assert (
        main(["rules", "explain", "--kind", "contract", "--facts", str(facts), "--lang", "zh"]) == 0
    )
    out = capsys.readouterr().out
    assert "[命中] special-amount" in out
    assert "结果: {'class': 'special'}" in out
    facts.write_text('{"amount": 5}', encoding="utf-8")
    assert main(["rules", "explain", "--kind", "contract", "--facts", str(facts)]) == 1
    assert "new_product" in capsys.readouterr().err


def test_rules_show_prints_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`reqmgmt rules show` prints the default tables with their rows."""
    assert main(["rules", "show"]) == 0
    out = capsys.readouterr().out
    for name in ("contract_class", "review_route", "sample_order", "capa_trigger"):
        assert f"{name}:" in out
    assert "special-amount" in out
    assert "amount >= 200000" in out


TCK = Path(__file__).parents[1] / "data" / "dmn-tck"


def test_rules_import_writes_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`reqmgmt rules import F.dmn` prints TOML; --out writes a rule file that checks."""
    dmn = TCK / "0108-first-hitpolicy" / "0108-first-hitpolicy.dmn"
    assert main(["rules", "import", str(dmn)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Imported from the DMN file 0108-first-hitpolicy.dmn")
    assert 'hit = "first"' in out
    target = tmp_path / "approval.toml"
    assert main(["rules", "import", str(dmn), "--out", str(target)]) == 0
    assert "wrote 1 table(s)" in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == out
    assert main(["rules", "check", "--no-defaults", str(target)]) == 0
    assert "ok: 1 tables" in capsys.readouterr().out
    # An existing file is not overwritten.
    assert main(["rules", "import", str(dmn), "--out", str(target)]) == 1
    assert "cannot write it" in capsys.readouterr().err


def test_rules_import_refuses_what_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DMN file outside the subset exits 1 naming the element; nothing is written."""
    dmn = TCK / "0009-invocation-arithmetic" / "0009-invocation-arithmetic.dmn"
    target = tmp_path / "out.toml"
    assert main(["rules", "import", str(dmn), "--out", str(target)]) == 1
    err = capsys.readouterr().err
    assert "decision 'MonthlyPayment' (id d_MonthlyPayment): invokes a business knowledge" in err
    assert not target.exists()


def test_demo_runs_twice_on_the_same_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A second run continues the numbering in the same file."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--db", url]) == 0
    assert main(["demo", "--db", url]) == 0
    out = capsys.readouterr().out
    assert re.search(r"REQ-\d{4}-000001: order taken in", out)
    # three requirements a run: the second run's first is the fourth
    assert re.search(r"REQ-\d{4}-000004: order taken in", out)
    assert re.search(r"RMA-\d{4}-000005: complaint judged invalid", out)


# --- workers: remind, dispatch, outbox -------------------------------------------------------


def _overdue_requirement(url: str) -> str:
    from datetime import UTC, datetime

    from reqmgmt import Actor, Customer, Desk
    from reqmgmt.testing import FakeClock

    clock = FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    with Desk.open(url, clock=clock, autodispatch=False) as desk:
        return desk.requirements.receive(
            customer=Customer("C1", "C"), description="x", actor=Actor("clerk", roles={"sales"})
        ).ref


def test_remind_queues_once_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _overdue_requirement(url)
    argv = ["remind", "--db", url, "--now", "2026-03-03T15:00+08:00", "--no-entrypoints"]
    assert main(argv) == 0
    assert "queued 1, already queued 0" in capsys.readouterr().out
    assert main(argv) == 0
    assert "queued 0, already queued 1" in capsys.readouterr().out


def test_remind_refuses_a_time_without_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["remind", "--db", url, "--now", "2026-03-03T15:00"]) == 2
    assert "give the time zone" in capsys.readouterr().err


def test_dispatch_without_a_notifier_says_nothing_can_be_delivered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _overdue_requirement(url)
    assert main(["dispatch", "--db", url, "--no-entrypoints"]) == 1
    assert "no reqmgmt_notify plugin" in capsys.readouterr().err


def test_outbox_lists_and_retries_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reqmgmt import Desk
    from reqmgmt.testing import FailingNotifier

    url = f"sqlite:///{tmp_path / 'r.db'}"
    ref = _overdue_requirement(url)
    with Desk.open(url, plugins=[FailingNotifier()]) as desk:
        desk.max_attempts = 1
        assert desk.dispatch().dead == 1
    assert main(["outbox", "--db", url, "--no-entrypoints"]) == 3  # dead letters listed
    out = capsys.readouterr().out
    assert f"{ref}:1:role:sales" in out
    assert "dead" in out
    assert main(["outbox", "--db", url, "--retry", "nope", "--no-entrypoints"]) == 1
    assert "no such key" in capsys.readouterr().err
    assert main(["outbox", "--db", url, "--retry-dead", "--no-entrypoints"]) == 0
    assert "1 dead letter(s) queued again" in capsys.readouterr().out
    assert main(["outbox", "--db", url, "--status", "pending", "--no-entrypoints"]) == 0
    assert f"{ref}:1:role:sales" in capsys.readouterr().out


def test_db_commands_accept_the_store_url_with_its_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The URL a Desk opens (with ?synchronous=NORMAL) works for `reqmgmt db` too."""
    url = f"sqlite:///{tmp_path / 'x.db'}?synchronous=NORMAL"
    assert main(["db", "upgrade", url]) == 0
    assert main(["db", "current", url]) == 0
    assert "(current)" in capsys.readouterr().out


def test_report_prints_a_table_and_writes_csv_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["demo", "--db", url]) == 0
    assert "管理报告 management report" in capsys.readouterr().out
    assert main(["report", "--db", url, "--no-entrypoints"]) == 0
    assert "停留 dwell per state" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["report", "--db", url, "--format", "json", "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {"kind": "requirement", "dimension": "state", "value": "closed", "count": 1} in data[
        "counts"
    ]
    assert main(["report", "--db", url, "--format", "csv", "--out", str(out)]) == 0
    assert (out / "report.csv").read_text(encoding="utf-8-sig").startswith("section,kind")
    assert main(["report", "--db", url, "--since", "2026-03-01"]) == 2
    assert "with its zone" in capsys.readouterr().err


def test_report_charts_and_rich_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PNG charts (matplotlib) and rich tables, from the optional report extra."""
    from rich.console import Console

    from reqmgmt import Desk
    from reqmgmt.reports import rich_tables

    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["demo", "--db", url]) == 0
    capsys.readouterr()
    assert main(["report", "--db", url, "--format", "png"]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["report", "--db", url, "--format", "png", "--out", str(tmp_path / "c")]) == 0
    for name in ("dwell.png", "complaints_by_month.png"):
        data = (tmp_path / "c" / name).read_bytes()
        assert data.startswith(b"\x89PNG")
        assert len(data) > 5000
    with Desk.open(url) as desk:
        report = desk.report()
    console = Console(record=True, width=120)
    console.print(*rich_tables(report))
    text = console.export_text()
    assert "停留 dwell per state" in text
    assert "in_fulfilment" in text


def test_a_command_name_is_registered_once() -> None:
    """Two different functions under one command name (a bad merge) are refused."""
    from reqmgmt.commandline import Outcome, command
    from reqmgmt.errors import ConfigError

    def _report(ctx: object) -> Outcome:  # pragma: no cover - never run
        return Outcome()

    with pytest.raises(ConfigError, match=r"command 'report': registered by _report already"):
        command("report", help="again")(_report)


def test_diagram_recipients_refreshes_only_between_the_markers(tmp_path: Path) -> None:
    """`reqmgmt diagram --recipients FILE` rewrites the marked table and keeps the rest."""
    from reqmgmt import diagram

    page = tmp_path / "hooks.md"
    page.write_text(
        f"before\n{diagram.RECIPIENTS_BEGIN}\nSTALE-TABLE\n{diagram.RECIPIENTS_END}\nafter\n",
        encoding="utf-8",
    )
    assert main(["diagram", "--recipients", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("before\n")
    assert text.endswith("\nafter\n")
    assert "| `customer` |" in text
    assert "STALE-TABLE" not in text
    (tmp_path / "plain.md").write_text("no markers\n", encoding="utf-8")
    assert main(["diagram", "--recipients", str(tmp_path / "plain.md")]) == 2
