"""The customer-requirement lifecycle (客户需求管理程序, DOMAIN.md §1).

received 待处理 → clarifying 待澄清 (asked the customer; back when answered)
→ evaluating 评估中 (engineering capability, material status and production
capacity each sign an opinion on the production notice 生产通知表; material
short → outsourcing 外包审批 to a subcontractor from the host's approved list,
the VP approving the cutting order 裁剪单, which the customer confirms
(confirming_cutting 待客户确认裁剪单) before the subcontractor is told;
capacity short → negotiating 协商中 with the customer, then a new evaluation
or rejection) → accepted 已接受 (the delivery plan 交货计划表 recorded, sent to
the VP, the customer and every department, each signing for it 签收) →
in_progress 处理中 → completed 已完成 (remarks required) → closed 已关闭;
rejected 已拒绝 and cancelled 已取消 with a reason.  While open, identified
requirements (明示, 隐含, 法律法规, 公司附加) are recorded on it (identify).
A new product or process goes from evaluating to in_design 设计开发中 (the
host's design project) and comes back to a new evaluation round.  In the
import flow (需求导入) the customer confirms the signed evaluation (or
disagrees: another internal round) and its section of the import approval
form 需求导入核准单.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..hookcalls import ask_design_project, ask_subcontractors
from ..i18n import reason
from ..model import (
    CustomerConfirmation,
    IdentifiedRequirement,
    PlanReceipt,
    Record,
    Requirement,
)
from .base import (
    EVERY_DEPARTMENT,
    Context,
    CreationInput,
    Lifecycle,
    SignoffStep,
    State,
    Transition,
    all_signed,
    append_note_to,
    note_as_reason,
    refuses,
    set_from_data,
    staying,
    with_transitions,
)

__all__ = ["EVALUATING_DEPARTMENTS", "NOVELTIES", "REQUIREMENT"]

#: The three opinions of the evaluation (§5.3): engineering capability,
#: material status (warehouse 货仓部), production capacity and lead time.
EVALUATING_DEPARTMENTS = ("engineering", "materials", "production")

_OPEN = (
    "received",
    "clarifying",
    "evaluating",
    "outsourcing",
    "confirming_cutting",
    "in_design",
    "negotiating",
)
#: What makes a requirement go through design and development (工艺/产品设计与开发程序).
NOVELTIES = ("new_product", "new_process")
_NOVELTIES = frozenset(NOVELTIES)


def _hand_to_design(ctx: Context) -> Mapping[str, Any]:
    """Effect of ``hand_to_design``: the host opens its design project (checked answer)."""
    novelty = ctx.data["novelty"]
    where = f"{ctx.record.ref} {ctx.event}"
    if not isinstance(novelty, str) or novelty not in _NOVELTIES:
        raise ValidationError("novelty", novelty, "one of " + ", ".join(NOVELTIES), where=where)
    project = (
        ask_design_project(ctx.pm, ctx.record, novelty, ctx.note or "")
        if ctx.pm is not None
        else None
    )
    if project is None:
        raise ValidationError(
            "novelty",
            novelty,
            "a design project the host opens through reqmgmt_design_project; no plugin opened one",
            where=where,
        )
    return {"novelty": novelty, "design_project": project, "design_result": None}


def _note_into(name: str) -> Any:
    """Effect: keep the command's note in field ``name`` (a confirmation's wording)."""

    def effect(ctx: Context) -> Mapping[str, Any]:
        return {name: ctx.note}

    effect.__name__ = f"note_as_{name}"
    return effect


def _choose_subcontractor(ctx: Context) -> Mapping[str, Any]:
    """Effect of ``request_outsourcing``: a subcontractor from the host's approved list.

    The list comes from ``reqmgmt_subcontractors`` (its answer checked: a
    wrong one is a HookError); no list, or a name not on it, is refused
    naming the list.  Nothing is written then.
    """
    chosen = ctx.data["subcontractor"]
    where = f"{ctx.record.ref} {ctx.event}"
    approved = ask_subcontractors(ctx.pm, ctx.record) if ctx.pm is not None else None
    if approved is None:
        raise ValidationError(
            "subcontractor",
            chosen,
            "a subcontractor from the approved list (外包加工商清单), which the host gives "
            "through reqmgmt_subcontractors; no plugin gave one",
            where=where,
        )
    if not isinstance(chosen, str) or chosen not in approved:
        listed = ", ".join(approved) if approved else "(the list is empty)"
        raise ValidationError(
            "subcontractor", chosen, f"one of the approved subcontractors: {listed}", where=where
        )
    return {"subcontractor": chosen, "cutting_confirmation": None}


def _subcontractor_told(record: Record) -> tuple[str, ...]:
    """``cutting_confirmed`` tells the chosen subcontractor (after the customer confirmed)."""
    chosen = getattr(record, "subcontractor", None)
    return (f"subcontractor:{chosen}",) if chosen else ()


def _plan_departments(ctx: Context) -> Mapping[str, Any]:
    """Effect of ``accept``: the plan goes to every department of the vocabulary, now."""
    return {"plan_departments": ctx.departments(), "plan_receipts": ()}


REQUIREMENT = Lifecycle(
    kind="requirement",
    record_type=Requirement,
    zh="客户需求",
    en="customer requirement",
    initial="received",
    create_event="receive",
    create_roles={"sales"},
    create_notify=("role:sales",),
    number_prefix="REQ",
    data_help={
        "outsourcing": (
            "what is made outside and by whom (外包加工: the cutting order 裁剪单, the "
            "subcontractor), as text; kept on the requirement"
        ),
        "subcontractor": (
            "the subcontractor (外包加工商) chosen, an id from the host's approved list "
            "(`reqmgmt_subcontractors`)"
        ),
        "novelty": "what is new: `new_product` or `new_process` (新产品/新工艺)",
        "kind": (
            "the kind of requirement identified, a word of the `identified_kinds` vocabulary: "
            "`explicit` 明示, `implied` 隐含, `statutory` 法律法规, `company` 公司附加"
        ),
        "text": "the requirement identified, as text",
        "delivery_plan": (
            "the delivery plan agreed (交货计划表: lots, quantities, dates), as text; kept on "
            "the requirement"
        ),
    },
    inputs=(
        CreationInput("customer", required=True),
        CreationInput("description", required=True),
        CreationInput("received_at", required=True),
        CreationInput("kind", vocabulary="requirement_kinds"),
        CreationInput("channel", vocabulary="requirement_channels"),
        CreationInput("priority"),
        CreationInput("due_at"),
    ),
    states=(
        State("received", "待处理", "received"),
        State("clarifying", "待澄清", "clarifying with the customer", waiting=True),
        State("evaluating", "评估中", "evaluating"),
        State("outsourcing", "外包审批中", "outsourcing for VP approval"),
        State(
            "confirming_cutting",
            "待客户确认裁剪单",
            "the customer confirms the cutting order",
            waiting=True,
        ),
        State("in_design", "设计开发中", "held for design and development"),
        State("negotiating", "协商中", "negotiating with the customer", waiting=True),
        State("accepted", "已接受", "accepted"),
        State("in_progress", "处理中", "in progress"),
        State("completed", "已完成", "completed"),
        State("closed", "已关闭", "closed", final=True),
        State("rejected", "已拒绝", "rejected", final=True),
        State("cancelled", "已取消", "cancelled", final=True),
    ),
    transitions=(
        Transition(
            event="clarify",
            sources=("received",),
            dest="clarifying",
            zh="向客户澄清",
            en="ask the customer",
            roles={"sales"},
            note_required=True,
            notify=("customer",),
        ),
        Transition(
            event="clarified",
            sources=("clarifying",),
            dest="received",
            zh="客户已答复",
            en="customer answered",
            roles={"sales"},
            note_required=True,
            effects=(append_note_to("clarifications"),),
        ),
        Transition(
            event="start_evaluation",
            sources=("received",),
            dest="evaluating",
            zh="提交评估",
            en="submit for evaluation",
            roles={"sales"},
            opens_review=True,
            notify=tuple(f"department:{d}" for d in EVALUATING_DEPARTMENTS),
        ),
        Transition(
            event="request_outsourcing",
            sources=("evaluating",),
            dest="outsourcing",
            zh="材料不足,申请外包加工",
            en="material short: request outsourcing",
            roles={"materials", "sales"},
            note_required=True,
            requires=("subcontractor",),
            effects=(append_note_to("remarks"), _choose_subcontractor),
            notify=("role:vp",),
            requests_approval=True,
        ),
        Transition(
            event="approve_outsourcing",
            sources=("outsourcing",),
            dest="confirming_cutting",
            zh="副总批准裁剪单",
            en="VP approves the cutting order",
            roles={"vp"},
            requires=("outsourcing",),
            effects=(set_from_data("outsourcing"),),
            meaning="approval",
            independent_of=("requester", "submitter"),
            notify=("customer",),
        ),
        Transition(
            event="cutting_confirmed",
            sources=("confirming_cutting",),
            dest="evaluating",
            zh="客户确认裁剪单,通知外包加工商",
            en="customer confirmed the cutting order: tell the subcontractor",
            roles={"materials", "sales"},
            note_required=True,
            effects=(_note_into("cutting_confirmation"),),
            notify=("department:materials",),
            notify_from=_subcontractor_told,
            notify_from_says=(
                "`subcontractor:<id>`: the subcontractor chosen from the host's approved list "
                "(`reqmgmt_subcontractors`), told once the customer confirmed the cutting order"
            ),
        ),
        Transition(
            event="cutting_refused",
            sources=("confirming_cutting",),
            dest="negotiating",
            zh="客户不确认裁剪单",
            en="customer does not confirm the cutting order",
            roles={"materials", "sales"},
            note_required=True,
            effects=(append_note_to("remarks"),),
            notify=("role:sales",),
        ),
        Transition(
            event="refuse_outsourcing",
            sources=("outsourcing",),
            dest="negotiating",
            zh="副总不批准外包",
            en="VP refuses outsourcing",
            roles={"vp"},
            note_required=True,
            effects=(append_note_to("remarks"),),
            meaning="approval",
            independence_waived=(
                "a refusal approves nothing: the request goes back to negotiation with the customer"
            ),
            notify=("role:sales",),
        ),
        Transition(
            event="hand_to_design",
            sources=("evaluating",),
            dest="in_design",
            zh="新产品/新工艺,转设计开发",
            en="new product or process: hand to design and development",
            roles={"engineering", "sales"},
            note_required=True,
            requires=("novelty",),
            effects=(append_note_to("remarks"), _hand_to_design),
            notify=("department:engineering", "role:sales"),
        ),
        Transition(
            event="design_done",
            sources=("in_design",),
            dest="evaluating",
            zh="设计开发完成,重新评估",
            en="design done: evaluate again with its result",
            roles={"engineering", "sales"},
            note_required=True,
            opens_review=True,
            effects=(_note_into("design_result"),),
            notify=tuple(f"department:{d}" for d in EVALUATING_DEPARTMENTS),
        ),
        Transition(
            event="negotiate",
            sources=("evaluating",),
            dest="negotiating",
            zh="产能不足,与客户协商",
            en="capacity short: negotiate with the customer",
            roles={"production", "sales"},
            note_required=True,
            effects=(append_note_to("remarks"),),
            notify=("role:sales",),
        ),
        Transition(
            event="agreed",
            sources=("negotiating",),
            dest="evaluating",
            zh="协商一致,重新评估",
            en="agreed with the customer: evaluate again",
            roles={"sales"},
            note_required=True,
            opens_review=True,
            effects=(append_note_to("clarifications"),),
            notify=tuple(f"department:{d}" for d in EVALUATING_DEPARTMENTS),
        ),
        Transition(
            event="accept",
            sources=("evaluating",),
            dest="accepted",
            zh="接受,下达交货计划",
            en="accept with a delivery plan",
            roles={"sales"},
            requires=("delivery_plan",),
            guards=(all_signed,),
            effects=(set_from_data("delivery_plan"), _plan_departments),
            meaning="responsibility",
            # 交货计划表: reported to the VP, answered to the customer, copied to
            # every department (each signs for it: acknowledge_plan).
            notify=("role:vp", "customer", EVERY_DEPARTMENT),
        ),
        Transition(
            event="start",
            sources=("accepted",),
            dest="in_progress",
            zh="开始处理",
            en="start work",
            roles={"production", "sales"},
        ),
        Transition(
            event="complete",
            sources=("in_progress",),
            dest="completed",
            zh="处理完成",
            en="complete",
            roles={"production", "sales"},
            note_required=True,
            effects=(append_note_to("remarks"),),
            notify=("role:sales",),
        ),
        Transition(
            event="close",
            sources=("completed",),
            dest="closed",
            zh="关闭",
            en="close",
            roles={"sales"},
        ),
        Transition(
            event="reject",
            sources=("received", "clarifying", "negotiating"),
            dest="rejected",
            zh="拒绝",
            en="reject",
            roles={"sales"},
            note_required=True,
            effects=(note_as_reason,),
            notify=("customer",),
        ),
        Transition(
            event="cancel",
            sources=(*_OPEN, "accepted"),
            dest="cancelled",
            zh="取消",
            en="cancel",
            roles={"sales"},
            note_required=True,
            effects=(note_as_reason,),
            notify=("role:sales",),
        ),
    ),
    signoffs=(
        SignoffStep(
            state="evaluating",
            departments=EVALUATING_DEPARTMENTS,
            rework="received",
            meaning="review",
        ),
    ),
)


@refuses("requirement.not_of_the_company")
def _of_the_company(ctx: Context) -> str | None:
    """Guard of ``remark``: the actor holds a role or belongs to a department."""
    if not ctx.actor.roles and not ctx.actor.departments:
        return reason("requirement.not_of_the_company", actor=ctx.actor.id)
    return None


def _identify(ctx: Context) -> Mapping[str, Any]:
    """Effect of ``identify``: one more identified requirement, by the actor, now."""
    record = ctx.record
    assert isinstance(record, Requirement)
    item = IdentifiedRequirement(
        kind=ctx.data["kind"], text=ctx.data["text"], identified_by=ctx.actor.id, at=ctx.now
    )
    return {"identified": (*record.identified, item)}


@refuses("plan.not_sent_to", "plan.already_signed", "plan.not_a_member")
def _plan_receivable(ctx: Context) -> str | None:
    """Guard of ``acknowledge_plan``: the plan went to the department, unsigned, to its member."""
    record = ctx.record
    assert isinstance(record, Requirement)
    department = ctx.data.get("department")
    if department not in record.plan_departments:
        return reason(
            "plan.not_sent_to",
            ref=record.ref,
            department=department,
            sent=", ".join(record.plan_departments),
        )
    signed = record.plan_signed.get(department)
    if signed is not None:
        return reason("plan.already_signed", department=department, actor=signed.actor_id)
    if department not in ctx.actor.departments:
        return reason("plan.not_a_member", actor=ctx.actor.id, department=department)
    return None


def _plan_receipt(ctx: Context) -> Mapping[str, Any]:
    record = ctx.record
    assert isinstance(record, Requirement)
    receipt = PlanReceipt(department=ctx.data["department"], actor_id=ctx.actor.id, at=ctx.now)
    return {"plan_receipts": (*record.plan_receipts, receipt)}


# 交货计划表签收: each department the delivery plan went to signs for it, once, by
# one of its members, while the order is accepted, in progress or completed.
REQUIREMENT = with_transitions(
    REQUIREMENT,
    *staying(
        ("accepted", "in_progress", "completed"),
        event="acknowledge_plan",
        zh="签收交货计划",
        en="sign for the delivery plan",
        requires=("department",),
        vocabularies=(("department", "departments"),),
        guards=(_plan_receivable,),
        effects=(_plan_receipt,),
        meaning="receipt",
    ),
)


def _confirmation(ctx: Context) -> CustomerConfirmation:
    return CustomerConfirmation(
        text=ctx.note or "", round=ctx.record.review_round, recorded_by=ctx.actor.id, at=ctx.now
    )


def _keep_confirmation(name: str) -> Any:
    """Effect: the command's note as the customer's confirmation of this round, in ``name``."""

    def effect(ctx: Context) -> Mapping[str, Any]:
        return {name: _confirmation(ctx)}

    effect.__name__ = f"keep_{name}"
    return effect


@refuses("import.evaluation_confirmed_already")
def _evaluation_unconfirmed(ctx: Context) -> str | None:
    """Guard: the customer has not yet confirmed this round's evaluation."""
    record = ctx.record
    assert isinstance(record, Requirement)
    done = record.evaluation_confirmation
    if done is not None and done.round == record.review_round:
        return reason(
            "import.evaluation_confirmed_already", round=done.round, actor=done.recorded_by
        )
    return None


@refuses("import.evaluation_unconfirmed", "import.form_confirmed_already")
def _evaluation_confirmed(ctx: Context) -> str | None:
    """Guard of ``customer_confirms_import``: this round's evaluation is confirmed, once."""
    record = ctx.record
    assert isinstance(record, Requirement)
    done = record.evaluation_confirmation
    if done is None or done.round != record.review_round:
        return reason("import.evaluation_unconfirmed", round=record.review_round)
    form = record.import_confirmation
    if form is not None and form.round == record.review_round:
        return reason("import.form_confirmed_already")
    return None


# 需求导入: the customer answers the evaluation (every department has signed):
# agreement is recorded, then the customer's section of the import approval form
# 需求导入核准单; disagreement opens another internal evaluation round.
REQUIREMENT = with_transitions(
    REQUIREMENT,
    Transition(
        event="customer_confirms_evaluation",
        sources=("evaluating",),
        dest="evaluating",
        zh="客户确认评估结果",
        en="the customer confirms the evaluation",
        roles={"sales"},
        note_required=True,
        guards=(all_signed, _evaluation_unconfirmed),
        effects=(_keep_confirmation("evaluation_confirmation"),),
    ),
    Transition(
        event="customer_disagrees",
        sources=("evaluating",),
        dest="evaluating",
        zh="客户不同意,内部再评估",
        en="the customer disagrees: evaluate again",
        roles={"sales"},
        note_required=True,
        opens_review=True,
        guards=(all_signed, _evaluation_unconfirmed),
        effects=(append_note_to("clarifications"),),
        notify=tuple(f"department:{d}" for d in EVALUATING_DEPARTMENTS),
    ),
    Transition(
        event="customer_confirms_import",
        sources=("evaluating",),
        dest="evaluating",
        zh="客户确认需求导入核准单",
        en="the customer confirms its section of the import approval form",
        roles={"sales"},
        note_required=True,
        guards=(_evaluation_confirmed,),
        effects=(_keep_confirmation("import_confirmation"),),
    ),
)


# 要求的识别: while the requirement is open, anyone the host authorises records a
# requirement identified on it (explicit, implied, statutory, the company's own),
# without a state change; the kind is a word of the identified_kinds vocabulary.
REQUIREMENT = with_transitions(
    REQUIREMENT,
    *staying(
        _OPEN,
        event="identify",
        zh="识别要求",
        en="identify a requirement (explicit, implied, statutory, the company's own)",
        requires=("kind", "text"),
        vocabularies=(("kind", "identified_kinds"),),
        guards=(_of_the_company,),
        effects=(_identify,),
    ),
)

# 备注: a remark may be added at any time until the requirement is closed, rejected or
# cancelled, by anyone of the company the host authorises (reqmgmt_authorize), without a
# state change; it is audited like every command and kept in ``remarks``.
REQUIREMENT = with_transitions(
    REQUIREMENT,
    *staying(
        [s.name for s in REQUIREMENT.states if not s.final],
        event="remark",
        zh="备注",
        en="add a remark",
        note_required=True,
        guards=(_of_the_company,),
        effects=(append_note_to("remarks"),),
    ),
)
