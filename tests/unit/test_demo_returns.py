"""Issue 14 acceptance: the demo shows points 10, 11 and 12 on a SQLite database."""

from __future__ import annotations

import io
import re
from pathlib import Path

from reqmgmt.demo import run_demo


def test_the_demo_shows_the_contract_check_a_second_replacement_and_the_reminders(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    assert run_demo(f"sqlite:///{tmp_path / 'reqmgmt.db'}", out) == 0
    text = out.getvalue()
    assert "materials (资材部) told when it was reported" in text  # 12
    assert "expected at most 29800 on CON-2026-000001 line 1: 30000 shipped minus 200" in text  # 10
    assert "second replacement on CON-2026-000001 while in_fulfilment: lines 1, 2, 3" in text  # 11
    assert "waiting for the quality manager's disposition (step disposition" in text  # 12
    assert re.search(r"disposition, due [^)]*\): [1-9]\d* reminder\(s\) queued", text)
    log = (tmp_path / "reqmgmt-notifications.log").read_text(encoding="utf-8")
    assert ":disposition@" in log
    assert ":capa@" in log  # the CAPA past its due_on


def test_the_demo_shows_the_design_hold_and_the_import_flow(tmp_path: Path) -> None:
    """Issue 14 points 2 and 5 in the demo: a new product held for design, then 需求导入."""
    out = io.StringIO()
    assert run_demo(f"sqlite:///{tmp_path / 'reqmgmt.db'}", out) == 0
    text = out.getvalue()
    held = re.search(
        r"(REQ-\d+-\d+): new product held for design \(DP-\1\), back with '([^']+)'", text
    )
    assert held
    assert "samples approved" in held.group(2)
    assert f"{held.group(1)}: 需求导入 the customer disagreed once (another round)" in text


def test_the_demo_shows_the_complaint_rate_and_the_surveys(tmp_path: Path) -> None:
    """Issue 14 point 13 in the demo's printed report: 投诉率 and 满意度 on its SQLite file."""
    out = io.StringIO()
    assert run_demo(f"sqlite:///{tmp_path / 'reqmgmt.db'}", out) == 0
    text = out.getvalue()
    rate = text[text.index("投诉率 complaint rate") :]
    # three complaints on the one contract shipped (30,000 pcs) in the demo's month
    assert re.search(r"customer\s+C-100\s+3\s+1\s+30000\s+3\.00\s+0\.10", rate), rate[:600]
    assert re.search(r"product\s+冲压支架 ZJ-12 stamped bracket\s+2\s+1\s+30000", rate)
    surveys = text[text.index("满意度 satisfaction") :]
    assert re.search(r"customer\s+HK-001\s+\*\s+3\s+4\.67", surveys), surveys[:600]
