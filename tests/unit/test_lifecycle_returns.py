"""Complaints and returns (客户投诉和退货, DOMAIN §3): one test per step of the procedure."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from reqmgmt import (
    Actor,
    Contract,
    ContractLine,
    Customer,
    Desk,
    InvalidTransition,
    Money,
    NotAuthorized,
    Return,
    TransitionBlocked,
    ValidationError,
)
from reqmgmt.testing import FakeClock, RecordingNotifier

SALES = Actor("sales", "市场部", departments={"sales"}, roles={"sales"})
SALES_MANAGER = Actor("sm", "营业经理", roles={"sales_manager"})
MATERIALS = Actor("mat", "资材部", departments={"materials"}, roles={"materials"})
INSPECTOR = Actor("qc", "品质部检验员", departments={"quality"}, roles={"quality"})
QUALITY_MANAGER = Actor("qm", "品质经理", departments={"quality"}, roles={"quality_manager"})
CUSTOMER = Customer("C-100", "华南五金")


def report(desk: Desk, **kw: Any) -> Return:
    values: dict[str, Any] = {
        "customer": CUSTOMER,
        "product": "冲压支架 ZJ-12",
        "reason_code": "quality",
        "reason_text": "镀层起泡 plating blisters",
        "quantity": 200,
        "actor": SALES,
    }
    values.update(kw)
    return desk.returns.report(**values)


def inspected(desk: Desk, **kw: Any) -> Return:
    r = report(desk, **kw)
    if r.kind == "return":
        desk.fire(r.ref, "receive_goods", actor=MATERIALS, receipt_no="WL-0001", quantity=200)
        desk.fire(r.ref, "to_quality", actor=MATERIALS)
    else:
        desk.fire(r.ref, "to_quality", actor=SALES)
    return r


FINDINGS = {"findings": "镀层附着力不足", "defect_category": "plating", "cause": "前处理不良"}


def judged_valid(desk: Desk, **kw: Any) -> Return:
    safety = kw.pop("safety_related", False)
    r = inspected(desk, **kw)
    out = desk.fire(r.ref, "judge_valid", actor=INSPECTOR, safety_related=safety, **FINDINGS)
    assert isinstance(out, Return)
    return out


def test_materials_receives_the_goods_with_a_receipt_copied_to_finance_sales_store(
    desk: Desk, notifier: RecordingNotifier
) -> None:
    """物料入库单: materials receives the goods; copies go to finance, sales and the store."""
    r = report(desk)
    assert r.ref == "RMA-2026-000001"
    assert r.state == "reported"
    got = desk.fire(r.ref, "receive_goods", actor=MATERIALS, receipt_no="WL-0001", quantity=200)
    assert isinstance(got, Return)
    assert got.receipt is not None
    assert (got.receipt.number, got.receipt.quantity, got.receipt.received_by) == (
        "WL-0001",
        200,
        "mat",
    )
    copies = [n.recipient for n in notifier.sent if n.event == "receive_goods"]
    assert copies == ["department:finance", "department:sales", "department:store"]


def test_the_goods_go_to_quality_for_inspection(desk: Desk) -> None:
    """Materials sends the received goods to quality."""
    r = inspected(desk)
    assert desk.get(r.ref).state == "inspecting"


def test_quality_writes_the_anomaly_report(desk: Desk) -> None:
    """品质异常处理报告: findings, defect category, cause and inspector on the record."""
    r = judged_valid(desk)
    assert r.report is not None
    assert (r.report.findings, r.report.defect_category, r.report.cause, r.report.inspector) == (
        "镀层附着力不足",
        "plating",
        "前处理不良",
        "qc",
    )
    assert r.judgement == "valid"
    assert r.state == "dispositioning"


def test_a_complaint_without_goods_skips_the_receipt(desk: Desk) -> None:
    """A complaint goes straight to quality; receiving goods is refused for it."""
    c = report(desk, kind="complaint")
    with pytest.raises(TransitionBlocked, match="nothing to receive"):
        desk.fire(c.ref, "receive_goods", actor=MATERIALS, receipt_no="x", quantity=1)
    assert desk.fire(c.ref, "to_quality", actor=SALES).state == "inspecting"
    r = report(desk)
    with pytest.raises(TransitionBlocked, match="after materials received them"):
        desk.fire(r.ref, "to_quality", actor=SALES)


def test_return_not_valid_sales_negotiates_with_the_customer(desk: Desk) -> None:
    """不成立: sales negotiates; the case closes with the customer's outcome."""
    r = inspected(desk)
    invalid = desk.fire(r.ref, "judge_invalid", actor=INSPECTOR, **FINDINGS)
    assert isinstance(invalid, Return)
    assert (invalid.state, invalid.judgement) == ("negotiating", "invalid")
    with pytest.raises(ValidationError, match="goodwill credit is granted by the sales manager"):
        desk.fire(r.ref, "settle", actor=SALES, outcome="goodwill_credit", note="x")
    closed = desk.fire(r.ref, "settle", actor=SALES, outcome="goods_sent_back", note="退回客户")
    assert isinstance(closed, Return)
    assert (closed.state, closed.outcome, closed.disposition) == ("closed", "goods_sent_back", None)


def test_goodwill_credit_needs_the_sales_manager(desk: Desk) -> None:
    """A goodwill credit on an invalid return is approved by the sales manager."""
    r = inspected(desk)
    desk.fire(r.ref, "judge_invalid", actor=INSPECTOR, **FINDINGS)
    with pytest.raises(NotAuthorized, match="sales_manager"):
        desk.fire(r.ref, "grant_goodwill", actor=SALES, credit=Money(500, "CNY"), note="老客户")
    done = desk.fire(
        r.ref,
        "grant_goodwill",
        actor=SALES_MANAGER,
        credit=Money(500, "CNY"),
        note="老客户 long-standing customer",
    )
    assert isinstance(done, Return)
    assert (done.outcome, done.goodwill) == ("goodwill_credit", Money(500, "CNY"))


def test_invalid_returns_never_get_a_disposition(desk: Desk) -> None:
    """No path leads from an invalid judgement to a disposition."""
    r = inspected(desk)
    desk.fire(r.ref, "judge_invalid", actor=INSPECTOR, **FINDINGS)
    with pytest.raises(InvalidTransition, match="not allowed in state 'negotiating'"):
        desk.returns.dispose(r.ref, "refund", actor=QUALITY_MANAGER)


def test_return_valid_disposition_approved_by_the_quality_manager(desk: Desk) -> None:
    """成立: the quality manager disposes per the nonconforming-product procedure."""
    r = judged_valid(desk)
    with pytest.raises(NotAuthorized, match="quality_manager"):
        desk.returns.dispose(r.ref, "rework", actor=INSPECTOR)
    with pytest.raises(ValidationError, match="one of rework, replace, refund, scrap"):
        desk.returns.dispose(r.ref, "sell cheaply", actor=QUALITY_MANAGER)
    done = desk.returns.dispose(r.ref, "rework", actor=QUALITY_MANAGER)
    assert (done.state, done.disposition, done.capa_required) == ("dispositioned", "rework", False)
    assert desk.history(r.ref)[-1].decisions[0]["table"] == "capa_trigger"
    assert desk.fire(r.ref, "close", actor=SALES).state == "closed"


def test_dispose_is_not_fired_directly(desk: Desk) -> None:
    """The disposition goes through desk.returns.dispose (which keeps the contract link)."""
    r = judged_valid(desk)
    with pytest.raises(ValidationError, match=r"desk\.returns\.dispose"):
        desk.fire(r.ref, "dispose", actor=QUALITY_MANAGER, disposition="scrap")


def test_a_safety_related_defect_triggers_capa(desk: Desk) -> None:
    """纠正预防措施: any safety-related defect requires a CAPA before closing."""
    r = judged_valid(desk, safety_related=True)
    done = desk.returns.dispose(r.ref, "scrap", actor=QUALITY_MANAGER)
    assert done.capa_required
    with pytest.raises(TransitionBlocked, match="the rules require a CAPA"):
        desk.fire(r.ref, "close", actor=SALES)


def test_capa_closes_only_when_verified_by_someone_else(desk: Desk) -> None:
    """A return with a CAPA closes only when the CAPA is verified, not by its owner."""
    r = judged_valid(desk, safety_related=True)
    desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)
    opened = desk.fire(
        r.ref,
        "open_capa",
        actor=INSPECTOR,
        owner="qm",
        due_on=date(2026, 4, 1),
        actions="改善前处理线 improve pre-treatment",
    )
    assert opened.state == "capa_open"
    with pytest.raises(NotAuthorized, match="qm owns the CAPA and may not approve it"):
        desk.fire(r.ref, "verify_capa", actor=QUALITY_MANAGER, note="ok")
    # The owner's id as the host typed it is still the owner.
    with pytest.raises(NotAuthorized, match="owns the CAPA"):
        desk.fire(r.ref, "verify_capa", actor=Actor(" QM", roles={"quality_manager"}), note="ok")
    other_manager = Actor("qm2", roles={"quality_manager"})
    closed = desk.fire(r.ref, "verify_capa", actor=other_manager, note="连续3批无不良")
    assert isinstance(closed, Return)
    assert closed.capa is not None
    assert (closed.state, closed.capa.verified_by, closed.capa.verification) == (
        "closed",
        "qm2",
        "连续3批无不良",
    )


def test_capa_trigger_boundary_two_vs_three_same_defects(desk: Desk) -> None:
    """The same defect on the same product: the 2nd in 90 days needs no CAPA, the 3rd does."""
    first = judged_valid(desk)
    desk.returns.dispose(first.ref, "rework", actor=QUALITY_MANAGER)
    second = judged_valid(desk)
    assert not desk.returns.dispose(second.ref, "rework", actor=QUALITY_MANAGER).capa_required
    other_product = judged_valid(desk, product="另一产品")
    assert not desk.returns.dispose(
        other_product.ref, "rework", actor=QUALITY_MANAGER
    ).capa_required
    third = judged_valid(desk)
    assert desk.returns.dispose(third.ref, "rework", actor=QUALITY_MANAGER).capa_required
    assert desk.history(third.ref)[-1].decisions[0]["facts"]["same_defect_90_days"] == 3


def test_capa_window_boundary_90_vs_91_days(desk: Desk, clock: FakeClock) -> None:
    """Defects judged 90 days before count; 91 days before do not."""
    old = judged_valid(desk)  # judged on day 0
    desk.returns.dispose(old.ref, "rework", actor=QUALITY_MANAGER)
    clock.advance(days=45)
    middle = judged_valid(desk)
    desk.returns.dispose(middle.ref, "rework", actor=QUALITY_MANAGER)
    clock.advance(days=45)  # day 90: the first one is 90 days old, still in the window
    at_90 = judged_valid(desk)
    assert desk.returns.dispose(at_90.ref, "rework", actor=QUALITY_MANAGER).capa_required
    clock.advance(days=1)  # day 91: the first one drops out (middle and at_90 remain)
    at_91 = judged_valid(desk)
    decided = desk.returns.dispose(at_91.ref, "rework", actor=QUALITY_MANAGER)
    assert desk.history(at_91.ref)[-1].decisions[0]["facts"]["same_defect_90_days"] == 3
    assert decided.capa_required
    clock.advance(days=60)  # day 151: only at_90 and at_91 (days 90, 91) are within 90 days
    late = judged_valid(desk)
    assert desk.returns.dispose(late.ref, "rework", actor=QUALITY_MANAGER).capa_required
    clock.advance(days=31)  # day 182: at_90 is 92 days old, at_91 91: none count
    alone = judged_valid(desk)
    assert not desk.returns.dispose(alone.ref, "rework", actor=QUALITY_MANAGER).capa_required


def test_the_return_window_needs_an_override_after_90_days(desk: Desk, clock: FakeClock) -> None:
    """A return 91 days after shipment is valid only with quality's written override."""
    shipped = clock.now.date() - timedelta(days=91)
    r = inspected(desk, shipped_on=shipped)
    with pytest.raises(
        TransitionBlocked, match="91 days after shipment, outside the return window"
    ):
        desk.fire(r.ref, "judge_valid", actor=INSPECTOR, **FINDINGS)
    ok = desk.fire(
        r.ref, "judge_valid", actor=INSPECTOR, override_reason="批次缺陷,品质经理批准", **FINDINGS
    )
    assert isinstance(ok, Return)
    assert ok.window_override == "批次缺陷,品质经理批准"
    r90 = inspected(desk, shipped_on=clock.now.date() - timedelta(days=90))
    assert desk.fire(r90.ref, "judge_valid", actor=INSPECTOR, **FINDINGS).state == "dispositioning"


def shipped_contract(desk: Desk) -> Contract:
    clerk = Actor("s1", departments={"sales"}, roles={"sales"})
    c = desk.contracts.draft(
        customer=CUSTOMER,
        currency="CNY",
        actor=clerk,
        lines=[
            ContractLine(
                line_no=1, product="冲压支架 ZJ-12", quantity=1000, unit_price=Money("10", "CNY")
            )
        ],
    )
    desk.fire(c.ref, "submit", actor=clerk)
    desk.sign(c.ref, department="sales", actor=Actor("s2", departments={"sales"}))
    desk.sign(c.ref, department="production", actor=Actor("p", departments={"production"}))
    for event, kw in (
        ("approve", {}),
        ("send", {}),
        ("confirm", {"confirmation": "signed"}),
        ("start_fulfilment", {}),
        ("ship", {"shipment": {1: 1000}}),
        ("mark_shipped", {}),
    ):
        desk.fire(c.ref, event, actor=Actor("s3", roles={"sales"}), **kw)
    result = desk.get(c.ref)
    assert isinstance(result, Contract)
    return result


def test_a_replacement_reopens_the_contract_delivery_through_its_lifecycle(desk: Desk) -> None:
    """换货: the contract gets a no-charge replacement line and goes back to fulfilment."""
    c = shipped_contract(desk)
    with pytest.raises(ValidationError, match=r"desk\.returns\.dispose"):
        desk.fire(c.ref, "replace_goods", actor=SALES, return_ref="x", product="p", quantity=1)
    r = judged_valid(desk, contract_ref=c.ref, line_no=1)
    assert r.shipped_on is not None  # taken from the contract's shipping order
    desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)
    reopened = desk.get(c.ref)
    assert isinstance(reopened, Contract)
    assert reopened.state == "in_fulfilment"
    assert reopened.lines[-1].quantity == 200
    assert reopened.lines[-1].unit_price == Money(0, "CNY")
    assert reopened.amount == c.amount
    event = desk.history(c.ref)[-1]
    assert (event.event, event.note) == ("replace_goods", f"换货 replacement for {r.ref}")


def test_a_replacement_that_cannot_reopen_the_contract_writes_nothing(desk: Desk) -> None:
    """A closed contract cannot take a replacement: the disposition is not written."""
    c = shipped_contract(desk)
    for event in ("complete", "close"):
        desk.fire(c.ref, event, actor=SALES)
    r = judged_valid(desk, contract_ref=c.ref, line_no=1)
    with pytest.raises(InvalidTransition, match="'replace_goods' is not allowed in state 'closed'"):
        desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)
    assert desk.get(r.ref).state == "dispositioning"


def test_reason_codes_are_checked(desk: Desk) -> None:
    """A reason outside the configured list is refused, naming the list."""
    with pytest.raises(
        ValidationError,
        match="return_reasons vocabulary: damaged, late, other, quality, quantity, wrong_item",
    ):
        report(desk, reason_code="bad mood")
    with pytest.raises(ValidationError, match="reference of a contract"):
        report(desk, contract_ref=report(desk).ref)


def test_cancel_needs_a_reason(desk: Desk) -> None:
    """Cancelling keeps the reason."""
    r = report(desk)
    assert desk.fire(r.ref, "cancel", actor=SALES, note="客户撤回").reason == "客户撤回"
