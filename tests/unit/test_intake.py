"""Intake procedures of the customer-requirement lifecycle (issue 14, points 1-5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import (
    Actor,
    CreditRecord,
    Customer,
    Desk,
    IdentifiedRequirement,
    InvalidTransition,
    Requirement,
    ValidationError,
    hookimpl,
)
from reqmgmt.testing import FakeClock

CLERK = Actor("clerk", roles={"sales"})
ENG = Actor("eng", departments={"engineering"})
MAT = Actor("mat", departments={"materials"}, roles={"materials"})
PRO = Actor("pro", departments={"production"}, roles={"production"})
VP = Actor("vp", roles={"vp"})
CUSTOMER = Customer("C-1", "Customer One")
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class Credit:
    """The host's ERP: one credit record per customer."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def reqmgmt_customer_credit(self, customer: Customer) -> CreditRecord | None:
        self.asked.append(customer.id)
        if customer.id != "C-1":
            return None
        return CreditRecord(customer_id="C-1", rating="B", note="one invoice 30 days overdue")


def desk_with(*plugins: Any, url: str = "memory://") -> Desk:
    return Desk.open(url, clock=FakeClock(START, tick=timedelta(minutes=1)), plugins=plugins)


def received(desk: Desk) -> Requirement:
    return desk.requirements.receive(customer=CUSTOMER, description="brackets", actor=CLERK)


# --- 1. identified requirements and the credit record ---------------------------------------


def test_identify_keeps_each_requirement_with_its_kind_author_and_time() -> None:
    desk = desk_with()
    ref = received(desk).ref
    desk.fire(ref, "identify", actor=CLERK, kind="explicit", text="zinc 8-12 µm, 10,000 pcs")
    desk.fire(ref, "start_evaluation", actor=CLERK)
    new = desk.fire(ref, "identify", actor=ENG, kind="statutory", text="RoHS for the EU")
    assert isinstance(new, Requirement)
    assert new.state == "evaluating"  # no state change
    assert [(x.kind, x.text, x.identified_by) for x in new.identified] == [
        ("explicit", "zinc 8-12 µm, 10,000 pcs", "clerk"),
        ("statutory", "RoHS for the EU", "eng"),
    ]
    assert all(isinstance(x, IdentifiedRequirement) for x in new.identified)
    assert new.identified[1].at > new.identified[0].at
    assert new.identified_of("statutory") == (new.identified[1],)
    assert desk.history(ref)[-1].event == "identify"


def test_every_kind_of_the_seed_is_in_the_vocabulary() -> None:
    desk = desk_with()
    labels = desk.rules.vocabulary("identified_kinds").labels
    assert {k: v[0] for k, v in labels.items()} == {
        "explicit": "明示要求",
        "implied": "隐含要求",
        "statutory": "法律法规要求",
        "company": "公司附加要求",
    }


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"kind": "legal", "text": "x"}, "kind", "identified_kinds vocabulary: company, explicit"),
        ({"kind": 1, "text": "x"}, "kind", "identified_kinds"),
        ({"kind": "implied", "text": ""}, "text", "requires 'text'"),
        ({"kind": "implied"}, "text", "requires 'text'"),
        ({"kind": "implied", "text": "a\x00b"}, "text", "control characters"),
        ({"kind": "implied", "text": "x", "by": "boss"}, "by", "only kind, text"),
    ],
)
def test_identify_refuses_bad_input_naming_the_field(
    data: dict[str, Any], field: str, says: str
) -> None:
    desk = desk_with()
    ref = received(desk).ref
    with pytest.raises(ValidationError) as info:
        desk.fire(ref, "identify", actor=CLERK, **data)
    assert info.value.field == field
    assert says in str(info.value)
    assert desk.get(ref).version == 1
    assert len(desk.history(ref)) == 1


def test_identify_only_while_the_requirement_is_open() -> None:
    desk = desk_with()
    ref = received(desk).ref
    desk.fire(ref, "cancel", actor=CLERK, note="customer withdrew")
    with pytest.raises(InvalidTransition):
        desk.fire(ref, "identify", actor=CLERK, kind="implied", text="x")


def test_the_credit_record_is_asked_at_intake_and_kept(tmp_path: Path) -> None:
    host = Credit()
    desk = desk_with(host, url=f"sqlite:///{tmp_path / 'r.db'}")
    req = received(desk)
    assert host.asked == ["C-1"]
    assert req.credit == CreditRecord(
        customer_id="C-1", rating="B", note="one invoice 30 days overdue"
    )
    assert desk.get(req.ref).credit == req.credit  # stored and read back
    first = desk.history(req.ref)[0].changes[0].new
    assert first["credit"]["rating"] == "B"  # in the audited first version
    other = desk.requirements.receive(customer=Customer("C-2", "Two"), description="x", actor=CLERK)
    assert other.credit is None
    imported = desk.create_many(
        "requirement",
        [{"customer": CUSTOMER, "description": "y", "received_at": START}],
        actor=CLERK,
    )
    made = desk.get(imported[0])
    assert isinstance(made, Requirement)
    assert made.credit == req.credit
    assert verify(desk, req.ref)


def verify(desk: Desk, ref: str) -> bool:
    return bool(desk.verify_history(ref))


def test_a_caller_cannot_give_the_credit_record_itself() -> None:
    desk = desk_with()
    with pytest.raises(ValidationError) as info:
        desk.create(
            "requirement",
            actor=CLERK,
            customer=CUSTOMER,
            description="x",
            received_at=START,
            credit=CreditRecord(customer_id="C-1", rating="AAA"),
        )
    assert info.value.field == "credit"
