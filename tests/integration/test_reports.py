"""Reports: figures checked against a hand-computed fixture, the same on every store."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import Actor, Customer, Desk
from reqmgmt.reports import Count, Dwell, FirstResponse, Timeliness
from reqmgmt.testing import FakeClock

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
CLERK = Actor("clerk", roles={"sales"})
ENG = Actor("eng", departments={"engineering"})
MAT = Actor("mat", departments={"materials"}, roles={"materials"})
PRO = Actor("pro", departments={"production"}, roles={"production"})
QA = Actor("qa", roles={"quality"})
QM = Actor("qm", roles={"quality_manager"})


def populate(desk: Desk, clock: FakeClock) -> None:
    """The fixture; hours after T0 in the comments."""

    def at(hours: float) -> None:
        clock.now = T0 + timedelta(hours=hours)

    c1, c2 = Customer("C1", "Customer one"), Customer("C2", "Customer two", category="strategic")
    at(0)
    a = desk.requirements.receive(customer=c1, description="A", actor=CLERK).ref
    b = desk.requirements.receive(customer=c1, description="B", actor=CLERK).ref
    c = desk.requirements.receive(customer=c2, description="C", actor=CLERK, priority="urgent")
    at(0.5)
    desk.fire(c.ref, "remark", actor=CLERK, note="customer called")  # no response: same state
    at(1)
    desk.fire(b, "cancel", actor=CLERK, note="withdrawn")  # B: received 1 h, cancelled
    at(2)
    desk.fire(a, "clarify", actor=CLERK, note="finish?")  # A: received 2 h
    at(5)
    desk.fire(a, "clarified", actor=CLERK, note="zinc")  # clarifying 3 h
    at(6)
    desk.fire(a, "start_evaluation", actor=CLERK)  # received again 1 h
    for hours, (dept, who) in zip(
        (7, 8, 9), (("engineering", ENG), ("materials", MAT), ("production", PRO)), strict=True
    ):
        at(hours)
        desk.sign(a, department=dept, actor=who)
    at(10)
    desk.fire(a, "accept", actor=CLERK, delivery_plan="week 12")  # evaluating 4 h
    at(11)
    desk.fire(a, "start", actor=CLERK)  # accepted 1 h
    at(20)
    desk.fire(a, "complete", actor=CLERK, note="delivered")  # in progress 9 h
    at(24)
    desk.fire(a, "close", actor=CLERK)  # completed 4 h; cycle 24 h

    at(30)
    r1 = desk.returns.report(customer=c1, product="bracket", reason_code="quality",
                             reason_text="cracked", shipped_on=date(2026, 2, 20),
                             actor=CLERK).ref  # fmt: skip
    desk.fire(r1, "receive_goods", actor=MAT, receipt_no="WL-1", quantity=1)
    desk.fire(r1, "to_quality", actor=MAT)
    desk.fire(r1, "judge_valid", actor=QA, findings="f", defect_category="plating", cause="c",
              safety_related=True)  # fmt: skip
    desk.returns.dispose(r1, "rework", actor=QM)
    desk.fire(r1, "open_capa", actor=QM, owner="qm", due_on=date(2026, 4, 1), actions="fix")
    r2 = desk.returns.report(customer=c2, product="hinge", reason_code="quality",
                             reason_text="noisy", kind="complaint", actor=CLERK).ref  # fmt: skip
    desk.fire(r2, "to_quality", actor=CLERK)
    desk.fire(r2, "judge_invalid", actor=QA, findings="f", defect_category="burr", cause="c")
    desk.returns.report(customer=c1, product="bracket", reason_code="damaged",
                        reason_text="dented", actor=CLERK)  # fmt: skip


def make(url: str) -> Desk:
    clock = FakeClock(T0, tick=timedelta(0))
    desk = Desk.open(url, clock=clock, autodispatch=False)
    populate(desk, clock)
    return desk


def check_hand_computed(desk: Desk) -> None:
    report = desk.report()
    requirement_counts = [c for c in report.counts if c.kind == "requirement"]
    assert requirement_counts == [
        Count("category", "requirement", "general", 2),
        Count("category", "requirement", "strategic", 1),
        Count("channel", "requirement", "fax", 3),
        Count("state", "requirement", "cancelled", 1),
        Count("state", "requirement", "closed", 1),
        Count("state", "requirement", "received", 1),
    ]
    outcomes = [c for c in report.outcomes if c.kind == "requirement"]
    assert outcomes == [
        Count("state", "requirement", "cancelled", 1),
        Count("state", "requirement", "closed", 1),
    ]
    cycle = next(c for c in report.cycle_times if c.kind == "requirement")
    assert (cycle.finished, cycle.median_hours, cycle.p90_hours) == (2, 12.5, 24.0)
    dwell = {d.state: d for d in report.dwell if d.kind == "requirement"}
    # received: A 2 h + 1 h (two entries), B 1 h: 3 entries, 4 h; and C's half hour up to
    # its remark (time in a state is counted up to each event, as for sign-offs).
    assert dwell["received"] == Dwell("requirement", "received", 3, 4.5, 1.5)
    assert dwell["clarifying"] == Dwell("requirement", "clarifying", 1, 3.0, 3.0)
    # evaluating: 4 h across three sign-offs (not entries) and the accept.
    assert dwell["evaluating"] == Dwell("requirement", "evaluating", 1, 4.0, 4.0)
    assert dwell["in_progress"] == Dwell("requirement", "in_progress", 1, 9.0, 9.0)
    bottleneck = report.bottleneck("requirement")
    assert bottleneck is not None
    assert bottleneck.state == "in_progress"
    # Both finished long before their deadlines (next Monday, A's moved 2 h by its pause).
    assert Timeliness("requirement", 2, 2, 0) in report.timeliness
    # First response: A asked the customer after 2 h, B was cancelled after 1 h, C waits;
    # a sign-off or a remark is no response (it keeps the state).
    assert FirstResponse("requirement", 2, 1.5, 2.0) in report.first_response
    assert FirstResponse("return", 2, 0.0, 0.0) in report.first_response
    r = report.returns
    assert r.by_customer == (("C1", 2), ("C2", 1))
    assert r.by_product == (("bracket", 2), ("hinge", 1))
    assert r.by_defect == (("burr", 1), ("plating", 1))
    assert r.by_month == (("2026-03", 3),)
    assert (r.valid, r.invalid, r.capa, r.validity_rate) == (1, 1, 1, 0.5)


def test_report_on_memory_matches_the_hand_computed_figures() -> None:
    check_hand_computed(make("memory://"))


def test_report_on_sqlite_matches_the_hand_computed_figures(tmp_path: Path) -> None:
    with make(f"sqlite:///{tmp_path / 'r.db'}") as desk:
        check_hand_computed(desk)


def test_report_on_postgres_matches_the_hand_computed_figures(pg_url: str) -> None:
    with make(pg_url) as desk:
        check_hand_computed(desk)


def _rounded(data: Any) -> Any:
    if isinstance(data, float):
        return round(data, 3)
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_rounded(v) for v in data]
    return data


@pytest.mark.parametrize(
    ("since", "until"),
    [(None, None), (T0 + timedelta(hours=12), None), (None, T0 + timedelta(hours=12))],
)
def test_sql_and_python_give_the_same_report(
    since: datetime | None, until: datetime | None, tmp_path: Path
) -> None:
    memory = make("memory://").report(since=since, until=until)
    with make(f"sqlite:///{tmp_path / 'r.db'}") as desk:
        sqlite = desk.report(since=since, until=until)
    assert _rounded(sqlite.to_data()) == _rounded(memory.to_data())


def test_a_window_keeps_what_happened_inside_it() -> None:
    desk = make("memory://")
    late = desk.report(since=T0 + timedelta(hours=12))
    # Created before the window: no requirement counted; A closed inside it.
    assert [c for c in late.counts if c.kind == "requirement"] == []
    assert [c for c in late.outcomes if c.kind == "requirement"] == [
        Count("state", "requirement", "closed", 1)
    ]
    early = desk.report(until=T0 + timedelta(hours=12))
    assert [c.value for c in early.outcomes if c.kind == "requirement"] == ["cancelled"]


def test_exports_carry_the_same_figures() -> None:
    report = make("memory://").report()
    data = report.to_data()
    assert data["returns"]["validity_rate"] == 0.5
    assert math.isclose(
        next(d for d in data["dwell"] if d["state"] == "in_progress")["total_hours"], 9.0
    )
    text = report.to_csv()
    assert "dwell,requirement,in_progress,9.0,9.0,entries=1" in text
    table = report.table()
    assert "停留 dwell per state" in table
    assert "validity 50%" in table


def test_a_naive_window_is_refused() -> None:
    from reqmgmt import ValidationError

    with pytest.raises(ValidationError, match="timezone-aware"):
        Desk.open().report(since=datetime(2026, 3, 1))
