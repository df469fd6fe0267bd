"""Issue 14 points 10-12: a return checked against its contract, repeated replacements,
materials told of a return with goods."""

from __future__ import annotations

import attrs
import pytest

from reqmgmt import (
    Contract,
    Customer,
    Desk,
    Money,
    NotFound,
    Return,
    TransitionBlocked,
    ValidationError,
)
from reqmgmt.errors import ImportFailed
from reqmgmt.testing import RecordingNotifier

from .test_lifecycle_returns import (
    FINDINGS,
    INSPECTOR,
    MATERIALS,
    QUALITY_MANAGER,
    SALES,
    judged_valid,
    report,
    shipped_contract,
)


def test_a_return_names_an_existing_contract_of_the_same_customer(desk: Desk) -> None:
    """Point 10: the contract exists and is the returning customer's; the error says which."""
    c = shipped_contract(desk)
    with pytest.raises(NotFound, match="CON-2026-999999"):
        report(desk, contract_ref="CON-2026-999999", line_no=1)
    with pytest.raises(NotFound, match="CON-2026-999999"):
        desk.create(
            "return", actor=SALES, customer=c.customer, product="p", reason_code="quality",
            reason_text="x", contract_ref="CON-2026-999999", line_no=1,
        )  # fmt: skip
    other = Customer("C-999", "别的客户")
    with pytest.raises(ValidationError, match=r"customer of CON-2026-000001, C-100 \(华南五金\)"):
        report(desk, contract_ref=c.ref, line_no=1, customer=other)
    with pytest.raises(ValidationError, match="no line number without contract_ref"):
        report(desk, line_no=1)
    assert desk.query(kind="return") == []


def test_a_return_names_a_line_of_the_contract(desk: Desk) -> None:
    """Point 10: goods come from a line that exists; a complaint may leave the line out."""
    c = shipped_contract(desk)
    with pytest.raises(ValidationError, match=r"line_no: got None; expected the line of "):
        report(desk, contract_ref=c.ref)
    with pytest.raises(
        ValidationError, match=r"line_no: got 7; expected a goods line of .*lines 1 "
    ):
        report(desk, contract_ref=c.ref, line_no=7)
    complaint = report(desk, contract_ref=c.ref, kind="complaint")
    assert complaint.contract_ref == c.ref


def test_quantity_returned_is_at_most_shipped_minus_already_returned(desk: Desk) -> None:
    """Point 10: 1000 shipped; 600 returned; 401 more is refused with the numbers, 400 passes;
    a cancelled return and one judged invalid no longer count."""
    c = shipped_contract(desk)
    first = report(desk, contract_ref=c.ref, line_no=1, quantity=600)
    with pytest.raises(
        ValidationError,
        match=r"quantity: got 401; expected at most 400 on CON-2026-000001 line 1: "
        r"1000 shipped minus 600 already returned",
    ):
        report(desk, contract_ref=c.ref, line_no=1, quantity=401)
    # The desk's generic create runs the same check.
    with pytest.raises(ValidationError, match="at most 400"):
        desk.create(
            "return", actor=SALES, customer=c.customer, product="p", reason_code="quality",
            reason_text="x", contract_ref=c.ref, line_no=1, quantity=401,
        )  # fmt: skip
    second = report(desk, contract_ref=c.ref, line_no=1, quantity=400)
    with pytest.raises(ValidationError, match="at most 0 on"):
        report(desk, contract_ref=c.ref, line_no=1, quantity=1)
    desk.fire(first.ref, "cancel", actor=SALES, note="客户撤回")
    desk.fire(second.ref, "receive_goods", actor=MATERIALS, receipt_no="WL-9", quantity=400)
    desk.fire(second.ref, "to_quality", actor=MATERIALS)
    desk.fire(second.ref, "judge_invalid", actor=INSPECTOR, **FINDINGS)
    assert report(desk, contract_ref=c.ref, line_no=1, quantity=1000).quantity == 1000


def test_an_import_checks_each_return_against_the_ones_before_it(desk: Desk) -> None:
    """Point 10: create_many sees the earlier rows of its own batch."""
    c = shipped_contract(desk)
    row = {
        "customer": c.customer, "product": "p", "reason_code": "quality", "reason_text": "x",
        "contract_ref": c.ref, "line_no": 1, "quantity": 600,
    }  # fmt: skip
    with pytest.raises(ImportFailed, match="at most 400"):
        desk.create_many("return", [row, row], actor=SALES)
    assert desk.query(kind="return") == []


def _replaced(desk: Desk, contract: Contract, quantity: int) -> Return:
    r = judged_valid(desk, contract_ref=contract.ref, line_no=1, quantity=quantity)
    return desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)


@pytest.mark.parametrize("returns", [2, 3])
def test_repeated_valid_returns_are_each_replaced(desk: Desk, returns: int) -> None:
    """Point 11: the second and third replacement add their lines while the contract is in
    fulfilment (it was 'replace_goods is not allowed in state in_fulfilment')."""
    c = shipped_contract(desk)
    refs = [_replaced(desk, c, 100 + i).ref for i in range(returns)]
    after = desk.get(c.ref)
    assert isinstance(after, Contract)
    assert after.state == "in_fulfilment"
    added = after.lines[1:]
    assert [x.line_no for x in added] == list(range(2, 2 + returns))
    assert [x.quantity for x in added] == [100 + i for i in range(returns)]
    assert [
        x.product.endswith(f"replacement for {ref})") for x, ref in zip(added, refs, strict=True)
    ] == [True] * returns
    assert after.amount == c.amount  # no charge
    assert [e.event for e in desk.history(c.ref)].count("replace_goods") == returns
    # The replacement lines ship and the contract finishes again.
    desk.fire(c.ref, "ship", actor=SALES, shipment={x.line_no: x.quantity for x in added})
    assert desk.fire(c.ref, "mark_shipped", actor=SALES).state == "shipped"


def test_a_replacement_in_fulfilment_waits_for_a_pending_amendment(desk: Desk) -> None:
    """Point 11: an amendment in review would overwrite the lines when approved: refused,
    and the disposition is not written either."""
    c = shipped_contract(desk)
    _replaced(desk, c, 10)
    r = judged_valid(desk, contract_ref=c.ref, line_no=1, quantity=5)
    now = desk.get(c.ref)
    assert isinstance(now, Contract)
    dearer = [attrs.evolve(now.lines[0], unit_price=Money(300, "CNY")), *now.lines[1:]]
    pending = desk.contracts.amend(c.ref, {"lines": dearer}, actor=SALES, reason="涨价")
    assert pending.amendment is not None  # became special: the amendment waits in review
    with pytest.raises(TransitionBlocked, match="approve or decline it before a replacement"):
        desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)
    assert desk.get(r.ref).state == "dispositioning"


def test_materials_is_told_when_a_return_with_goods_is_reported(
    desk: Desk, notifier: RecordingNotifier
) -> None:
    """Point 12: 资材部 receives the goods and writes the 物料入库单, so it hears of the return;
    a complaint without goods goes to quality only."""
    r = report(desk)
    c = report(desk, kind="complaint")
    told = {
        ref: [n.recipient for n in notifier.sent if n.ref == ref and n.event == "report"]
        for ref in (r.ref, c.ref)
    }
    assert told == {
        r.ref: ["department:quality", "department:materials"],
        c.ref: ["department:quality"],
    }
