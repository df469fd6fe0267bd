"""Issue 14 point 13: the complaint rate (投诉率) and satisfaction surveys (满意度调查).

On memory and SQLite: figures from the summary rows, checked by hand and
against the full computation from the audit trail; hostile survey input is
refused with nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import (
    Actor,
    ContractLine,
    Customer,
    Desk,
    Money,
    NotAuthorized,
    NotFound,
    Survey,
    ValidationError,
)
from reqmgmt.reports import ComplaintRate, SurveyAverage, recompute
from reqmgmt.testing import FakeClock

T0 = datetime(2026, 3, 30, 1, 0, tzinfo=UTC)
CLERK = Actor("s1", roles={"sales"})
SALES = Actor("s3", roles={"sales"})
ACME = Customer("C1", "ACME")
BETA = Customer("C2", "Beta")


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'r.db'}"
    clock = FakeClock(T0, tick=timedelta(0))
    with Desk.open(url, clock=clock, autodispatch=False) as d:
        d.test_clock = clock  # type: ignore[attr-defined]
        yield d


def _contract(desk: Desk, customer: Customer, lines: list[tuple[str, int]]) -> str:
    c = desk.contracts.draft(
        customer=customer,
        currency="CNY",
        actor=CLERK,
        lines=[
            ContractLine(line_no=i, product=p, quantity=q, unit_price=Money("10", "CNY"))
            for i, (p, q) in enumerate(lines, start=1)
        ],
    )
    desk.fire(c.ref, "submit", actor=CLERK)
    desk.sign(c.ref, department="sales", actor=Actor("s2", departments={"sales"}))
    desk.sign(c.ref, department="production", actor=Actor("p", departments={"production"}))
    for event, kw in (("approve", {}), ("send", {}), ("confirm", {"confirmation": "signed"}),
                      ("start_fulfilment", {})):  # fmt: skip
        desk.fire(c.ref, event, actor=SALES, **kw)
    return c.ref


def _complain(desk: Desk, customer: Customer, product: str, kind: str = "complaint") -> None:
    desk.returns.report(customer=customer, product=product, reason_code="quality",
                        reason_text="blisters", kind=kind, actor=CLERK)  # fmt: skip


def test_the_complaint_rate_by_month_customer_and_product(desk: Desk) -> None:
    clock = desk.test_clock  # type: ignore[attr-defined]
    one = _contract(desk, ACME, [("bracket", 1000), ("hinge", 500)])
    two = _contract(desk, BETA, [("bracket", 2000)])
    desk.fire(one, "ship", actor=SALES, shipment={1: 400})  # March: ACME's first shipment
    _complain(desk, ACME, "bracket")
    clock.now = T0 + timedelta(days=3)  # April
    desk.fire(one, "ship", actor=SALES, shipment={1: 600, 2: 500})  # hinge first shipped
    desk.fire(two, "ship", actor=SALES, shipment={1: 2000})
    _complain(desk, ACME, "hinge")
    _complain(desk, BETA, "bracket")
    _complain(desk, BETA, "bracket")
    report = desk.report()
    rates = {(r.by, r.value): r for r in report.complaint_rates}
    assert rates[("month", "2026-03")] == ComplaintRate("month", "2026-03", 1, 1, 400)
    assert rates[("month", "2026-04")] == ComplaintRate("month", "2026-04", 3, 1, 3100)
    assert rates[("customer", "C1")] == ComplaintRate("customer", "C1", 2, 1, 1500)
    assert rates[("customer", "C2")] == ComplaintRate("customer", "C2", 2, 1, 2000)
    # Each contract shipping brackets counts once, in the month of its first bracket.
    assert rates[("product", "bracket")] == ComplaintRate("product", "bracket", 3, 2, 3000)
    assert rates[("product", "hinge")] == ComplaintRate("product", "hinge", 1, 1, 500)
    assert rates[("product", "bracket")].per_contract == 1.5
    assert rates[("product", "bracket")].per_thousand == 1.0
    # A window of whole UTC days: April only.
    april = desk.report(since=datetime(2026, 4, 1, tzinfo=UTC))
    assert {(r.by, r.value): r for r in april.complaint_rates}[("customer", "C1")] == (
        ComplaintRate("customer", "C1", 1, 0, 1100)
    )
    for since in (None, datetime(2026, 4, 1, tzinfo=UTC)):
        assert (
            desk.report(since=since).complaint_rates
            == recompute(desk.store, desk.engines, since).complaint_rates
        )
    text = report.table()
    assert "投诉率 complaint rate" in text
    assert "per 1000" in text
    assert "complaint_rate,customer,C1,2,1500,contracts=1" in report.to_csv()
    data = report.to_data()["complaint_rates"]
    assert {"by": "month", "value": "2026-03", "complaints": 1, "contracts": 1, "quantity": 400,
            "per_contract": 1.0, "per_thousand": 2.5} in data  # fmt: skip


def _closed_return(desk: Desk, customer: Customer) -> str:
    r = desk.returns.report(customer=customer, product="hinge", reason_code="quality",
                            reason_text="noisy", kind="complaint", actor=CLERK)  # fmt: skip
    desk.fire(r.ref, "to_quality", actor=CLERK)
    qa = Actor("qa", roles={"quality"})
    desk.fire(r.ref, "judge_invalid", actor=qa, findings="f", defect_category="burr", cause="c")
    desk.fire(r.ref, "settle", actor=CLERK, outcome="customer_accepts", note="ok")
    assert desk.get(r.ref).state == "closed"
    return r.ref


def test_a_survey_is_an_audited_record(desk: Desk) -> None:
    closed = _closed_return(desk, ACME)
    s = desk.create("survey", actor=CLERK, customer=ACME, about=closed,
                    answers={"quality": 4, "delivery": 5}, comment="好 good")  # fmt: skip
    assert isinstance(s, Survey)
    assert s.ref.startswith("SVY-2026-")
    assert s.state == "recorded"
    assert [(a.question, a.score) for a in s.answers] == [("delivery", 5), ("quality", 4)]
    (event,) = desk.history(s.ref)
    assert event.event == "record"
    assert event.actor_id == "s1"
    assert desk.verify_history(s.ref)


class _Sly(int):
    """An int that says it equals any score (an adversary's value)."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


def _count(desk: Desk) -> int:
    return len(desk.query(kind="survey"))


@pytest.mark.parametrize(
    ("fields", "error", "says"),
    [
        ({"answers": {"qualty": 3}}, ValidationError, "did you mean 'quality'"),
        ({"answers": {"quality": 0}}, ValidationError, "from 1 to 5"),
        ({"answers": {"quality": 6}}, ValidationError, "from 1 to 5"),
        ({"answers": {"quality": True}}, ValidationError, "from 1 to 5"),
        ({"answers": {"quality": "5"}}, ValidationError, "from 1 to 5"),
        ({"answers": {"quality": 4.5}}, ValidationError, "from 1 to 5"),
        ({"answers": {"quality": _Sly(99)}}, ValidationError, "from 1 to 5"),
        ({"answers": {}}, ValidationError, "1 to 50 answers"),
        ({"answers": [("quality", 3)]}, ValidationError, "survey_questions"),
        ({"answers": {"quality": 3}, "score": 5}, ValidationError, "no 'score'"),
        ({"answers": {"quality": 3}, "about": "RMA-2026-999999"}, NotFound, "RMA-2026-999999"),
        ({"answers": {"quality": 3}, "comment": 5}, ValidationError, "comment"),
        ({"answers": {"quality": 3}, "comment": "a\x00b"}, ValidationError, "comment"),
    ],
)
def test_hostile_survey_input_is_refused_and_nothing_written(
    desk: Desk, fields: dict[str, Any], error: type[Exception], says: str
) -> None:
    before = desk.report()
    with pytest.raises(error, match=says):
        desk.create("survey", actor=CLERK, customer=ACME, **fields)
    assert _count(desk) == 0
    assert desk.report() == before


def test_a_survey_about_a_record_must_be_about_a_closed_record_of_the_customer(
    desk: Desk,
) -> None:
    open_one = desk.returns.report(customer=ACME, product="hinge", reason_code="quality",
                                   reason_text="noisy", kind="complaint",
                                   actor=CLERK).ref  # fmt: skip
    with pytest.raises(ValidationError, match="a closed record"):
        desk.create("survey", actor=CLERK, customer=ACME, about=open_one, answers={"quality": 3})
    closed = _closed_return(desk, ACME)
    with pytest.raises(ValidationError, match="a record of customer C2"):
        desk.create("survey", actor=CLERK, customer=BETA, about=closed, answers={"quality": 3})
    s = desk.create("survey", actor=CLERK, customer=ACME, about=closed, answers={"quality": 3})
    with pytest.raises(ValidationError, match="requirement, contract or return"):
        desk.create("survey", actor=CLERK, customer=ACME, about=s.ref, answers={"quality": 3})
    with pytest.raises(NotAuthorized):
        desk.create("survey", actor=Actor("qa", roles={"quality"}), customer=ACME,
                    answers={"quality": 3})  # fmt: skip
    assert _count(desk) == 1


def test_survey_averages_by_month_and_customer(desk: Desk) -> None:
    clock = desk.test_clock  # type: ignore[attr-defined]
    desk.create("survey", actor=CLERK, customer=ACME, answers={"quality": 4, "delivery": 5})
    desk.create("survey", actor=CLERK, customer=BETA, answers={"quality": 2})
    clock.now = T0 + timedelta(days=3)  # April
    desk.create_many("survey", [{"customer": ACME, "answers": {"quality": 3}}], actor=CLERK)
    report = desk.report()
    got = {(s.by, s.value, s.question): s for s in report.surveys}
    assert got[("month", "2026-03", "quality")] == SurveyAverage("month", "2026-03", "quality",
                                                                 2, 3.0)  # fmt: skip
    assert got[("month", "2026-03", "*")] == SurveyAverage("month", "2026-03", "*", 3, 3.6667)
    assert got[("month", "2026-04", "*")] == SurveyAverage("month", "2026-04", "*", 1, 3.0)
    assert got[("customer", "C1", "quality")] == SurveyAverage("customer", "C1", "quality", 2,
                                                               3.5)  # fmt: skip
    assert got[("customer", "C1", "*")] == SurveyAverage("customer", "C1", "*", 3, 4.0)
    assert got[("customer", "C2", "*")] == SurveyAverage("customer", "C2", "*", 1, 2.0)
    # Surveys are counted as records, not as finished work.
    assert not [c for c in report.cycle_times if c.kind == "survey"]
    assert report.surveys == recompute(desk.store, desk.engines).surveys
    april = desk.report(since=datetime(2026, 4, 1, tzinfo=UTC))
    assert [(s.by, s.value, s.question) for s in april.surveys] == [
        ("month", "2026-04", "*"), ("month", "2026-04", "quality"),
        ("customer", "C1", "*"), ("customer", "C1", "quality"),
    ]  # fmt: skip
    assert "满意度 satisfaction (1-5)" in report.table()
    assert "survey,customer,C1,4.0,3,question=*" in report.to_csv()
