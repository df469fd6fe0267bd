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
    NotAuthorized,
    Requirement,
    TransitionBlocked,
    ValidationError,
    hookimpl,
)
from reqmgmt.rules import default_rules, load_rules
from reqmgmt.testing import ApprovedSubcontractors, DesignProjects, FakeClock, RecordingNotifier

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


# --- 4. the delivery plan to every department, each signing for it -----------------------------


def accepted(desk: Desk) -> Requirement:
    ref = received(desk).ref
    desk.fire(ref, "start_evaluation", actor=CLERK)
    for department, actor in (("engineering", ENG), ("materials", MAT), ("production", PRO)):
        desk.sign(ref, department=department, actor=actor)
    new = desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots: week 12, week 14")
    assert isinstance(new, Requirement)
    return new


def test_the_delivery_plan_reaches_the_vp_the_customer_and_every_department() -> None:
    desk = desk_with()
    desk.autodispatch = False
    req = accepted(desk)
    departments = tuple(desk.rules.vocabulary("departments"))
    sent = [e.notification for e in desk.outbox() if e.notification.version == req.version]
    assert [n.recipient for n in sent] == [
        "role:vp",
        "customer",
        *(f"department:{d}" for d in departments),
    ]
    assert {n.event for n in sent} == {"accept"}
    assert req.plan_departments == departments
    assert req.plan_unsigned == departments
    assert req.plan_signed == {}


def test_each_department_signs_for_the_plan_once_and_the_requirement_shows_who_has_not() -> None:
    desk = desk_with()
    ref = accepted(desk).ref
    keeper = Actor("keeper", departments={"warehouse"})
    signed = desk.fire(ref, "acknowledge_plan", actor=keeper, department="warehouse")
    assert isinstance(signed, Requirement)
    receipt = signed.plan_signed["warehouse"]
    assert (receipt.department, receipt.actor_id) == ("warehouse", "keeper")
    assert receipt.at == desk.history(ref)[-1].at
    assert "warehouse" not in signed.plan_unsigned
    assert len(signed.plan_unsigned) == len(signed.plan_departments) - 1
    assert desk.history(ref)[-1].meaning == "receipt"
    desk.fire(ref, "start", actor=PRO)
    later = desk.fire(ref, "acknowledge_plan", actor=PRO, department="production")
    assert isinstance(later, Requirement)
    assert set(later.plan_signed) == {"warehouse", "production"}
    assert later.state == "in_progress"


def test_signing_for_the_plan_is_refused_twice_for_outsiders_and_for_unknown_departments() -> None:
    desk = desk_with()
    ref = accepted(desk).ref
    keeper = Actor("keeper", departments={"warehouse"})
    desk.fire(ref, "acknowledge_plan", actor=keeper, department="warehouse")
    version = desk.get(ref).version
    with pytest.raises(TransitionBlocked, match="signed for the delivery plan already"):
        desk.fire(ref, "acknowledge_plan", actor=keeper, department="warehouse")
    with pytest.raises(TransitionBlocked, match="keeper is not in finance"):
        desk.fire(ref, "acknowledge_plan", actor=keeper, department="finance")
    with pytest.raises(ValidationError, match="departments vocabulary") as info:
        desk.fire(ref, "acknowledge_plan", actor=keeper, department="accounting")
    assert info.value.field == "department"
    assert desk.get(ref).version == version


def test_the_departments_are_fixed_when_the_plan_is_issued() -> None:
    """A department added to the vocabulary later does not owe a signature for it."""
    desk = desk_with()
    ref = accepted(desk).ref
    wider = Desk(
        desk.store,
        desk.pm,
        rules=load_rules(
            [{"vocabularies": {"departments": {"logistics": {"zh": "物流", "en": "x"}}}}],
            with_defaults=True,
        ),
    )
    assert "logistics" in wider.rules.vocabulary("departments")
    kept = wider.get(ref)
    assert isinstance(kept, Requirement)
    assert "logistics" not in kept.plan_unsigned
    mover = Actor("mover", departments={"logistics"})
    with pytest.raises(TransitionBlocked, match="did not go to 'logistics'"):
        wider.fire(ref, "acknowledge_plan", actor=mover, department="logistics")


def test_no_plan_to_sign_for_before_acceptance() -> None:
    desk = desk_with()
    ref = received(desk).ref
    with pytest.raises(InvalidTransition):
        desk.fire(ref, "acknowledge_plan", actor=ENG, department="engineering")


def test_the_demo_shows_the_credit_record_the_identified_requirements_and_the_plan_receipts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from reqmgmt.cli import main

    assert main(["demo", "--db", f"sqlite:///{tmp_path / 'demo.db'}"]) == 0
    out = capsys.readouterr().out
    assert "credit A (按时付款 pays on time)" in out
    assert "identified: explicit by zhang.wei, implied by li.na, statutory by chen.jing" in out
    every = len(default_rules().vocabulary("departments"))
    assert f"delivery plan (交货计划表) to the VP, the customer and {every} departments" in out
    assert "not yet: finance, foreign_trade, section_chief, shipping, store, warehouse" in out
    assert "capacity short, negotiated, rejected" in out  # the rest of the output is kept


# --- 3. outsourcing: an approved subcontractor, the customer confirms the cutting order -------


def outsourcing(desk: Desk) -> str:
    ref = received(desk).ref
    desk.fire(ref, "start_evaluation", actor=CLERK)
    return ref


def test_outsourcing_goes_to_an_approved_subcontractor_after_the_customer_confirmed() -> None:
    notes = RecordingNotifier()
    desk = desk_with(ApprovedSubcontractors(["hongda", "xinhua"]), notes)
    ref = outsourcing(desk)
    asked = desk.fire(
        ref, "request_outsourcing", actor=MAT, note="steel strip short", subcontractor="hongda"
    )
    assert isinstance(asked, Requirement)
    assert (asked.state, asked.subcontractor) == ("outsourcing", "hongda")
    approved = desk.fire(ref, "approve_outsourcing", actor=VP, outsourcing="cutting order CJ-1")
    assert approved.state == "confirming_cutting"  # waits on the customer
    told = [n.recipient for n in notes.sent]
    assert "customer" in told
    assert not [r for r in told if r.startswith("subcontractor:")], "told before confirmation"
    with pytest.raises(ValidationError, match="note"):
        desk.fire(ref, "cutting_confirmed", actor=CLERK)  # the confirmation is kept: required
    confirmed = desk.fire(ref, "cutting_confirmed", actor=CLERK, note="customer fax 3 March: OK")
    assert isinstance(confirmed, Requirement)
    assert confirmed.state == "evaluating"
    assert confirmed.cutting_confirmation == "customer fax 3 March: OK"
    last = [n.recipient for n in notes.sent if n.version == confirmed.version]
    assert last == ["department:materials", "subcontractor:hongda"]


def test_a_subcontractor_off_the_list_is_refused_naming_the_list() -> None:
    desk = desk_with(ApprovedSubcontractors(["hongda", "xinhua"]))
    ref = outsourcing(desk)
    for chosen in ("acme", 7, "HONGDA"):
        with pytest.raises(ValidationError) as info:
            desk.fire(ref, "request_outsourcing", actor=MAT, note="short", subcontractor=chosen)
        assert info.value.field == "subcontractor"
        assert "one of the approved subcontractors: hongda, xinhua" in str(info.value)
    with pytest.raises(ValidationError, match="requires 'subcontractor'"):
        desk.fire(ref, "request_outsourcing", actor=MAT, note="short")
    assert desk.get(ref).state == "evaluating"
    assert len(desk.history(ref)) == 2


def test_without_an_approved_list_outsourcing_is_refused() -> None:
    desk = desk_with()
    ref = outsourcing(desk)
    with pytest.raises(ValidationError, match="reqmgmt_subcontractors; no plugin gave one"):
        desk.fire(ref, "request_outsourcing", actor=MAT, note="short", subcontractor="hongda")
    assert desk.get(ref).state == "evaluating"


def test_a_customer_who_does_not_confirm_the_cutting_order_sends_it_to_negotiation() -> None:
    notes = RecordingNotifier()
    desk = desk_with(ApprovedSubcontractors(), notes)
    ref = outsourcing(desk)
    desk.fire(ref, "request_outsourcing", actor=MAT, note="short", subcontractor="hongda")
    desk.fire(ref, "approve_outsourcing", actor=VP, outsourcing="cutting order CJ-1")
    refused = desk.fire(ref, "cutting_refused", actor=CLERK, note="customer wants own steel")
    assert refused.state == "negotiating"
    assert not [n for n in notes.sent if n.recipient.startswith("subcontractor:")]


# --- 2. new product or process: held for design and development ------------------------------


def test_a_new_process_is_handed_to_design_and_comes_back_for_a_new_evaluation() -> None:
    design = DesignProjects()
    desk = desk_with(design)
    ref = outsourcing(desk)  # in evaluation
    desk.sign(ref, department="engineering", actor=ENG, opinion="new die needed")
    held = desk.fire(
        ref, "hand_to_design", actor=CLERK, note="deep drawing: new process", novelty="new_process"
    )
    assert isinstance(held, Requirement)
    assert (held.state, held.novelty, held.design_project) == (
        "in_design",
        "new_process",
        f"DP-{ref}",
    )
    assert design.opened == [(ref, "new_process", "deep drawing: new process")]
    with pytest.raises(InvalidTransition):
        desk.sign(ref, department="materials", actor=MAT)  # no evaluation while in design
    back = desk.fire(ref, "design_done", actor=CLERK, note="die DP-7 tried out, Cpk 1.5")
    assert isinstance(back, Requirement)
    assert back.state == "evaluating"
    assert back.design_result == "die DP-7 tried out, Cpk 1.5"
    assert back.review_round == held.review_round + 1  # every department signs again
    assert back.round_signoffs() == ()


@pytest.mark.parametrize("novelty", ["new", "", 3, None])
def test_the_hand_over_names_a_new_product_or_a_new_process(novelty: Any) -> None:
    desk = desk_with(DesignProjects())
    ref = outsourcing(desk)
    with pytest.raises(ValidationError) as info:
        desk.fire(ref, "hand_to_design", actor=CLERK, note="new", novelty=novelty)
    assert info.value.field == "novelty"
    assert desk.get(ref).state == "evaluating"


def test_without_a_design_procedure_the_hand_over_is_refused() -> None:
    desk = desk_with()
    ref = outsourcing(desk)
    with pytest.raises(ValidationError, match="reqmgmt_design_project; no plugin opened one"):
        desk.fire(ref, "hand_to_design", actor=CLERK, note="new", novelty="new_product")
    assert len(desk.history(ref)) == 2


# --- 5. the requirement-import flow: the customer answers the evaluation ------------------------


def evaluated(desk: Desk) -> str:
    ref = outsourcing(desk)
    for department, actor in (("engineering", ENG), ("materials", MAT), ("production", PRO)):
        desk.sign(ref, department=department, actor=actor)
    return ref


def test_a_disagreeing_customer_sends_it_to_another_internal_evaluation_round() -> None:
    desk = desk_with()
    ref = evaluated(desk)
    again = desk.fire(ref, "customer_disagrees", actor=CLERK, note="needs 20 µm zinc")
    assert isinstance(again, Requirement)
    assert (again.state, again.review_round) == ("evaluating", 2)
    assert again.round_signoffs() == ()
    assert again.clarifications[-1] == "needs 20 µm zinc"
    with pytest.raises(TransitionBlocked, match="still needs: engineering, materials"):
        desk.fire(ref, "customer_confirms_evaluation", actor=CLERK, note="OK")
    for department, actor in (("engineering", ENG), ("materials", MAT), ("production", PRO)):
        desk.sign(ref, department=department, actor=actor)
    agreed = desk.fire(ref, "customer_confirms_evaluation", actor=CLERK, note="fax: agreed")
    assert isinstance(agreed, Requirement)
    confirmation = agreed.evaluation_confirmation
    assert confirmation is not None
    assert (confirmation.text, confirmation.round, confirmation.recorded_by) == (
        "fax: agreed",
        2,
        "clerk",
    )


def test_the_customer_confirms_its_section_of_the_import_form_after_the_evaluation() -> None:
    desk = desk_with()
    ref = evaluated(desk)
    with pytest.raises(TransitionBlocked, match="has not confirmed the evaluation of round 1"):
        desk.fire(ref, "customer_confirms_import", actor=CLERK, note="signed section")
    desk.fire(ref, "customer_confirms_evaluation", actor=CLERK, note="agreed")
    with pytest.raises(TransitionBlocked, match="confirmed the evaluation of round 1 already"):
        desk.fire(ref, "customer_disagrees", actor=CLERK, note="changed mind")
    form = desk.fire(ref, "customer_confirms_import", actor=CLERK, note="客户确认栏 signed")
    assert isinstance(form, Requirement)
    assert form.import_confirmation is not None
    assert (form.import_confirmation.text, form.import_confirmation.round) == (
        "客户确认栏 signed",
        1,
    )
    with pytest.raises(TransitionBlocked, match="import approval form already"):
        desk.fire(ref, "customer_confirms_import", actor=CLERK, note="again")
    with pytest.raises(NotAuthorized):
        desk.fire(ref, "customer_confirms_evaluation", actor=ENG, note="x")
    accepted_ = desk.fire(ref, "accept", actor=CLERK, delivery_plan="week 12")
    assert accepted_.state == "accepted"
