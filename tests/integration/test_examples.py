"""Every program under examples/ runs to completion as a script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def run_example(name: str) -> str:
    """The output of examples/<name>, which must exit 0."""
    script = next(p for p in EXAMPLES if p.name == name)
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    ).stdout


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path) -> None:
    """The example exits 0 and prints its result."""
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_order_intake_reaches_closed() -> None:
    """The order intake example walks through outsourcing to closed."""
    out = run_example("order_intake.py")
    assert "refused as expected" in out
    assert "no self-approval" in out
    assert "is closed, version 14" in out
    assert "audit chain intact over 14 events" in out


def test_the_cli_demo_runs_as_installed(tmp_path: Path) -> None:
    """`reqmgmt demo` runs through the console script's module, on its SQLite default."""
    out = subprocess.run(
        [sys.executable, "-m", "reqmgmt.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert (tmp_path / "reqmgmt.db").exists()
    assert "已关闭 closed" in out


def test_contract_review_example_covers_the_routes() -> None:
    """General, reworked special and foreign-trade contracts all reach their ends."""
    out = run_example("contract_review.py")
    assert re.search(r"CON-\d{4}-000001: general contract", out)
    assert re.search(r"CON-\d{4}-000001: closed", out)
    assert "declined, back to draft" in out
    assert "approved in review round 2" in out
    assert "route central_review: foreign_trade" in out
    assert "→ general_manager" in out
    assert "amendment in review by sales, production, engineering, quality, materials" in out
    assert "amended to 300,000 CNY, now special" in out
    assert "version 1 still reads 50,000 CNY" in out
    assert "audit chains intact" in out


def test_customer_return_example_covers_the_three_cases() -> None:
    """Valid with CAPA and replacement, invalid with goodwill, complaint without goods."""
    out = run_example("customer_return.py")
    assert "receipt copies to department:finance, department:sales, department:store" in out
    assert re.search(r"CAPA required: True; CON-\d{4}-000001 is in_fulfilment again", out)
    assert "close refused: the rules require a CAPA" in out
    assert re.search(r"RMA-\d{4}-000001: closed after CAPA verification", out)
    assert re.search(r"RMA-\d{4}-000002: invalid, closed with a goodwill credit", out)
    assert re.search(r"RMA-\d{4}-000003: complaint, closed", out)
    assert "audit chains intact" in out


def test_erp_plugin_blocks_on_credit_numbers_and_mails() -> None:
    """The host plugin: credit veto, ERP numbers, org-chart signers, one mail per key."""
    out = run_example("erp_plugin.py")
    assert re.search(r"SO-\d{4}-4712: submit blocked: credit limit of C-900", out)
    assert "an intern may sign for production? False" in out
    assert re.search(r"SO-\d{4}-4713: approved", out)
    assert "messages in the ERP mailbox" in out


def test_reminders_worker_escalates_and_leaves_the_waiting_one_alone() -> None:
    """A week of cron runs: reminders, two escalation levels, none while paused."""
    out = run_example("reminders_worker.py")
    assert "Escalation (level 1)" in out
    assert "Escalation (level 2)" in out
    sent = [line for line in out.splitlines() if "→" in line]
    assert sent
    assert not [line for line in sent if "-000002 " in line], "reminded while paused"
    assert "no reminders while the customer has it" in out
