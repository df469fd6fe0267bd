"""Customer complaints and returns (客户投诉和退货, DOMAIN.md §3).

reported 已登记 → received 已收货 (goods only: materials writes the receipt
物料入库单, copies to finance, sales and the store) → inspecting 检验中
(quality) → judged: invalid 不成立 → negotiating 协商中 → closed (customer
accepts, goods sent back, or a goodwill credit the sales manager approves);
valid 成立 → dispositioning 待处置 → dispositioned 已处置 (rework, replace,
refund, scrap; approved by the quality manager) → CAPA 纠正预防措施 when the
rules say so → closed only when the CAPA is verified.  Cancel with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import attrs

from ..errors import NotFound, ValidationError
from ..i18n import Text, reason
from ..model import (
    DISPOSITIONS,
    Capa,
    Contract,
    ContractLine,
    Customer,
    GoodsReceipt,
    Money,
    QualityReport,
    Record,
    Return,
)
from ..storage.base import RowLock
from .base import (
    Context,
    CreationInput,
    Lifecycle,
    Party,
    State,
    Transition,
    note_as_reason,
    refuses,
)

__all__ = ["REPLACEMENT", "REPLACEMENT_IN_FULFILMENT", "RETURNS", "check_against_contract"]

CAPA_WINDOW = timedelta(days=90)


def _return(record: Record) -> Return:
    assert isinstance(record, Return)
    return record


@refuses("return.no_goods")
def _goods_only(ctx: Context) -> str | None:
    if _return(ctx.record).kind != "return":
        return reason("return.no_goods")
    return None


@refuses("return.goods_first")
def _complaint_only(ctx: Context) -> str | None:
    if _return(ctx.record).kind != "complaint":
        return reason("return.goods_first")
    return None


def _receipt(ctx: Context) -> Mapping[str, Any]:
    quantity = ctx.data["quantity"]
    return {
        "receipt": GoodsReceipt(
            number=ctx.data["receipt_no"],
            quantity=quantity,
            received_by=ctx.actor.id,
            received_on=ctx.now.date(),
        )
    }


def _report(ctx: Context) -> QualityReport:
    safety = ctx.data.get("safety_related", False)
    if not isinstance(safety, bool):
        raise ValidationError("safety_related", safety, "True or False", where=ctx.record.ref)
    return QualityReport(
        findings=ctx.data["findings"],
        defect_category=ctx.data["defect_category"],
        cause=ctx.data["cause"],
        inspector=ctx.actor.id,
        safety_related=safety,
    )


@refuses("return.outside_window")
def _within_window(ctx: Context) -> str | None:
    """Guard of judge_valid: the return window rule, unless quality overrides with a reason."""
    record = _return(ctx.record)
    days = (ctx.now.date() - record.shipped_on).days if record.shipped_on else 0
    override = ctx.data.get("override_reason")
    decision = ctx.classify(
        "return_window",
        {"days_since_shipment": days, "quality_override": bool(override)},
    )
    if not decision.outcome["within_window"]:
        matched = ", ".join(decision.matched) or Text("no row matched", "没有匹配的规则行")
        return reason("return.outside_window", days=days, matched=matched)
    return None


def _judge_valid(ctx: Context) -> Mapping[str, Any]:
    return {
        "report": _report(ctx),
        "judgement": "valid",
        "judged_on": ctx.now.date(),
        "window_override": ctx.data.get("override_reason"),
    }


def _judge_invalid(ctx: Context) -> Mapping[str, Any]:
    return {"report": _report(ctx), "judgement": "invalid", "judged_on": ctx.now.date()}


def _settle(ctx: Context) -> Mapping[str, Any]:
    outcome = ctx.data["outcome"]
    if outcome not in ("customer_accepts", "goods_sent_back"):
        raise ValidationError(
            "outcome",
            outcome,
            "'customer_accepts' or 'goods_sent_back' (a goodwill credit "
            "is granted by the sales manager: grant_goodwill)",
            where=ctx.record.ref,
        )
    return {"outcome": outcome}


def _goodwill(ctx: Context) -> Mapping[str, Any]:
    credit = ctx.data["credit"]
    if not isinstance(credit, Money) or credit.amount <= 0:
        raise ValidationError("credit", credit, "a positive Money amount", where=ctx.record.ref)
    return {"outcome": "goodwill_credit", "goodwill": credit}


def same_defects(ctx: Context, record: Return) -> int:
    """Valid returns of the same product and defect category in the last 90 days, this one too."""
    assert record.report is not None
    assert ctx.find is not None
    since = ctx.now.date() - CAPA_WINDOW
    count = 1
    for other in ctx.find(kind="return"):
        if (
            isinstance(other, Return)
            and other.ref != record.ref
            and other.judgement == "valid"
            and other.product == record.product
            and other.report is not None
            and other.report.defect_category == record.report.defect_category
            and other.judged_on is not None
            and other.judged_on >= since
        ):
            count += 1
    return count


def _dispose(ctx: Context) -> Mapping[str, Any]:
    record = _return(ctx.record)
    disposition = ctx.data["disposition"]
    if disposition not in DISPOSITIONS:
        raise ValidationError(
            "disposition", disposition, "one of " + ", ".join(DISPOSITIONS), where=record.ref
        )
    assert record.report is not None  # judged valid with a report
    decision = ctx.classify(
        "capa_trigger",
        {
            "safety_related": record.report.safety_related,
            "same_defect_90_days": same_defects(ctx, record),
        },
    )
    return {"disposition": disposition, "capa_required": bool(decision.outcome["capa"])}


#: How far ahead a CAPA may be due: its ``due_on`` is at most this many years
#: after the day it is opened (docs/lifecycles/return.md).
CAPA_HORIZON_YEARS = 5


def capa_due_on_allowed(due: object, ctx: Context) -> date:
    """``due`` if it is a date from the return's creation day (``created_at``'s
    date) to :data:`CAPA_HORIZON_YEARS` years after today; else ValidationError.

    A date long past or far ahead is a typo (1900 for 2026) and would make
    every deadline computed over it cost a century of working days.
    """
    if not isinstance(due, date):
        raise ValidationError("due_on", due, "a date", where=ctx.record.ref)
    first = ctx.record.created_at.date()
    today = ctx.now.date()
    try:
        last = today.replace(year=today.year + CAPA_HORIZON_YEARS)
    except ValueError:  # 29 February
        last = today.replace(year=today.year + CAPA_HORIZON_YEARS, day=28)
    if not first <= due <= last:
        expected = reason("return.capa_due_on", first=first, last=last, years=CAPA_HORIZON_YEARS)
        raise ValidationError("due_on", due, expected, where=ctx.record.ref)
    return due


def _open_capa(ctx: Context) -> Mapping[str, Any]:
    due = capa_due_on_allowed(ctx.data["due_on"], ctx)
    return {"capa": Capa(owner=ctx.data["owner"], due_on=due, actions=ctx.data["actions"])}


def _capa_owner(record: Record) -> tuple[str | None]:
    capa = _return(record).capa
    return (capa.owner if capa is not None else None,)


def _verify_capa(ctx: Context) -> Mapping[str, Any]:
    capa = _return(ctx.record).capa
    assert capa is not None
    return {
        "capa": Capa(
            owner=capa.owner,
            due_on=capa.due_on,
            actions=capa.actions,
            verification=ctx.note,
            verified_by=ctx.actor.id,
        )
    }


@refuses("return.capa_required")
def _no_capa_needed(ctx: Context) -> str | None:
    if _return(ctx.record).capa_required:
        return reason("return.capa_required")
    return None


_WHERE = "creating a return"


def returned_before(tx: Any, contract: Contract, line_no: int) -> int:
    """Goods already returned on ``line_no`` of ``contract``: the quantities of its returns
    with goods that are neither cancelled nor judged invalid (those in progress count).

    Read through ``tx`` by the contract's customer (an indexed column), so the
    count sees the command's own transaction.
    """
    total = 0
    for other in tx.query(kind="return", customer=contract.customer.id):
        if (
            isinstance(other, Return)
            and other.kind == "return"
            and other.contract_ref == contract.ref
            and other.line_no == line_no
            and other.state != "cancelled"
            and other.judgement != "invalid"
        ):
            total += other.quantity
    return total


def check_against_contract(fields: Mapping[str, Any], tx: Any) -> None:
    """A return checked against its contract, inside the creating transaction.

    With ``contract_ref``: the contract exists (:class:`NotFound`), is a
    contract, is the same customer's; a return with goods names a goods line
    of it (``line_no``) and returns at most what was shipped on that line
    minus what was returned before (returns neither cancelled nor judged invalid, those still
    in progress too).  A complaint
    may name a line (it must exist) and has no quantity to check.  A
    ``line_no`` without ``contract_ref`` is refused.  The contract is locked
    first (:class:`~reqmgmt.storage.base.RowLock`) so two returns racing on
    one line run one after the other.  Each refusal names the check and
    the numbers.
    """
    ref = fields.get("contract_ref")
    line_no = fields.get("line_no")
    if ref is None:
        if line_no is not None:
            raise ValidationError(
                "line_no", line_no, "no line number without contract_ref (the contract's line)",
                where=_WHERE,
            )  # fmt: skip
        return
    if not isinstance(ref, str):
        raise ValidationError("contract_ref", ref, "the reference of a contract", where=_WHERE)
    if isinstance(tx, RowLock):
        tx.lock(ref)
    contract = tx.get(ref)
    if contract is None:
        raise NotFound(ref, hint="contract_ref must name an existing contract")
    if not isinstance(contract, Contract):
        raise ValidationError(
            "contract_ref", ref, f"the reference of a contract, not of a {contract.RECORD_KIND}",
            where=_WHERE,
        )  # fmt: skip
    customer = fields.get("customer")
    if not isinstance(customer, Customer):
        raise ValidationError("customer", customer, "a Customer", where=_WHERE)
    if customer.id != contract.customer.id:
        raise ValidationError(
            "customer",
            customer.id,
            f"the customer of {ref}, {contract.customer.id} ({contract.customer.name}): "
            "a return is made against the same customer's contract",
            where=_WHERE,
        )
    goods = fields.get("kind", "return") == "return"
    if line_no is None:
        if not goods:
            return
        raise ValidationError(
            "line_no", None,
            f"the line of {ref} the goods come from: " + _lines(contract), where=_WHERE,
        )  # fmt: skip
    line = next((x for x in contract.lines if x.line_no == line_no and type(line_no) is int), None)
    if line is None or line.kind != "goods":
        raise ValidationError(
            "line_no", line_no, f"a goods line of {ref}: " + _lines(contract), where=_WHERE
        )
    if not goods:
        return
    quantity = fields.get("quantity", 1)
    if type(quantity) is not int or quantity < 1:
        raise ValidationError("quantity", quantity, "a positive whole number", where=_WHERE)
    already = returned_before(tx, contract, line_no)
    available = line.shipped - already
    if quantity > available:
        raise ValidationError(
            "quantity",
            quantity,
            f"at most {max(available, 0)} on {ref} line {line_no}: {line.shipped} shipped "
            f"minus {already} already returned (returns not cancelled nor judged invalid)",
            where=_WHERE,
        )


def _lines(contract: Contract) -> str:
    goods = [f"{x.line_no} ({x.product}, {x.shipped} shipped)" for x in contract.lines
             if x.kind == "goods"]  # fmt: skip
    return "lines " + ", ".join(goods) if goods else "it has no goods lines"


def _materials_for_goods(record: Record) -> tuple[str, ...]:
    """Materials receives returned goods (物料入库单): told when a return with goods is reported."""
    return ("department:materials",) if _return(record).kind == "return" else ()


RETURNS = Lifecycle(
    kind="return",
    record_type=Return,
    zh="客户投诉/退货",
    en="complaint / return",
    initial="reported",
    create_event="report",
    create_roles={"sales"},
    create_notify=("department:quality",),
    create_notify_from=_materials_for_goods,
    create_notify_from_says=(
        "a return with goods: `department:materials` (receives them, writes the 物料入库单); "
        "a complaint: nobody more"
    ),
    against_store=check_against_contract,
    number_prefix="RMA",
    data_help={
        "receipt_no": "the number of the materials receipt (物料入库单) of the returned goods",
        "quantity": "pieces received, a whole number above 0",
        "findings": "what the inspection found (品质异常处理报告), as text",
        "defect_category": "the defect (crack, scratch, dimension...), as text; CAPA counts by it",
        "cause": "the cause found, as text",
        "safety_related": (
            "`True` or `False` (default); a safety-related defect needs a CAPA "
            "(`capa_trigger` rules)"
        ),
        "override_reason": (
            "why quality accepts a return outside the return window (`return_window` rules), "
            "as text; kept in the audit"
        ),
        "outcome": (
            "how an invalid return was settled: `customer_accepts` or `goods_sent_back` "
            "(a goodwill credit is its own event, `grant_goodwill`)"
        ),
        "credit": "the goodwill credit (商誉补偿), a positive `Money`",
        "disposition": "the quality manager's decision: `rework`, `replace`, `refund` or `scrap`",
        "owner": "who owns the corrective action (an actor id)",
        "due_on": (
            "the date the CAPA is due, a `date` from the day the return was reported to "
            "5 years ahead"
        ),
        "actions": "the corrective and preventive actions (纠正预防措施), as text",
    },
    inputs=(
        CreationInput("customer", required=True),
        CreationInput("product", required=True),
        CreationInput("reason_code", required=True, vocabulary="return_reasons"),
        CreationInput("reason_text", required=True),
        CreationInput("kind"),
        CreationInput("quantity"),
        CreationInput("contract_ref"),
        CreationInput("line_no"),
        CreationInput("shipped_on"),
    ),
    parties=(Party("capa_owner", _capa_owner, "owns the CAPA", "负责该纠正预防措施（CAPA）"),),
    states=(
        State("reported", "已登记", "reported"),
        State("received", "已收货", "goods received"),
        State("inspecting", "检验中", "inspecting"),
        State("negotiating", "协商中", "negotiating with the customer", waiting=True),
        State("dispositioning", "待处置", "awaiting disposition"),
        State("dispositioned", "已处置", "dispositioned"),
        State("capa_open", "纠正预防中", "CAPA open"),
        State("closed", "已关闭", "closed", final=True),
        State("cancelled", "已取消", "cancelled", final=True),
    ),
    transitions=(
        Transition(
            event="receive_goods",
            sources=("reported",),
            dest="received",
            zh="退货入库(物料入库单)",
            en="receive the goods (materials receipt)",
            roles={"materials"},
            requires=("receipt_no", "quantity"),
            guards=(_goods_only,),
            effects=(_receipt,),
            notify=("department:finance", "department:sales", "department:store"),
        ),
        Transition(
            event="to_quality",
            sources=("received",),
            dest="inspecting",
            zh="送品质检验",
            en="send to quality",
            roles={"materials"},
            notify=("department:quality",),
        ),
        Transition(
            event="to_quality",
            sources=("reported",),
            dest="inspecting",
            zh="投诉送品质分析",
            en="send the complaint to quality",
            roles={"sales"},
            guards=(_complaint_only,),
            notify=("department:quality",),
        ),
        Transition(
            event="judge_valid",
            sources=("inspecting",),
            dest="dispositioning",
            zh="判定成立",
            en="judge valid",
            roles={"quality"},
            requires=("findings", "defect_category", "cause"),
            optional=("safety_related", "override_reason"),
            guards=(_within_window,),
            effects=(_judge_valid,),
            meaning="review",
            requests_approval=True,
            notify=("department:sales", "department:materials"),
        ),
        Transition(
            event="judge_invalid",
            sources=("inspecting",),
            dest="negotiating",
            zh="判定不成立",
            en="judge invalid",
            roles={"quality"},
            requires=("findings", "defect_category", "cause"),
            optional=("safety_related",),
            effects=(_judge_invalid,),
            meaning="review",
            notify=("department:sales",),
        ),
        Transition(
            event="settle",
            sources=("negotiating",),
            dest="closed",
            zh="协商结案",
            en="settle with the customer",
            roles={"sales"},
            requires=("outcome",),
            note_required=True,
            effects=(_settle,),
        ),
        Transition(
            event="grant_goodwill",
            sources=("negotiating",),
            dest="closed",
            zh="批准商誉补偿",
            en="approve a goodwill credit",
            roles={"sales_manager"},
            requires=("credit",),
            note_required=True,
            effects=(_goodwill,),
            meaning="approval",
            independent_of=("drafter",),
            notify=("department:finance",),
        ),
        Transition(
            event="dispose",
            sources=("dispositioning",),
            dest="dispositioned",
            zh="处置(依不合格品控制程序)",
            en="disposition (nonconforming-product procedure)",
            roles={"quality_manager"},
            requires=("disposition",),
            effects=(_dispose,),
            meaning="approval",
            independent_of=("requester",),
            notify=("department:sales", "department:materials"),
            via="desk.returns.dispose",
        ),
        Transition(
            event="open_capa",
            sources=("dispositioned",),
            dest="capa_open",
            zh="启动纠正预防措施",
            en="open a CAPA",
            roles={"quality", "quality_manager"},
            requires=("owner", "due_on", "actions"),
            effects=(_open_capa,),
            notify=("department:quality",),
        ),
        Transition(
            event="verify_capa",
            sources=("capa_open",),
            dest="closed",
            zh="纠正预防措施验证有效,结案",
            en="CAPA verified: close",
            roles={"quality_manager"},
            note_required=True,
            effects=(_verify_capa,),
            meaning="approval",
            independent_of=("capa_owner",),
        ),
        Transition(
            event="close",
            sources=("dispositioned",),
            dest="closed",
            zh="结案",
            en="close",
            roles={"quality", "quality_manager", "sales"},
            guards=(_no_capa_needed,),
        ),
        Transition(
            event="cancel",
            sources=("reported", "received", "inspecting"),
            dest="cancelled",
            zh="取消",
            en="cancel",
            roles={"sales"},
            note_required=True,
            effects=(note_as_reason,),
        ),
    ),
)


def _replacement(ctx: Context) -> Mapping[str, Any]:
    """Effect on a contract: a no-charge replacement line for a valid return."""
    contract = ctx.record
    assert isinstance(contract, Contract)
    quantity = ctx.data["quantity"]
    return_ref = ctx.data["return_ref"]
    product = ctx.data["product"]
    line = ContractLine(
        line_no=max(x.line_no for x in contract.lines) + 1,
        product=f"{product} (换货 replacement for {return_ref})",
        quantity=quantity,
        unit_price=Money(0, contract.currency),
    )
    return {"lines": (*contract.lines, line)}


@refuses("contract.amendment_before_replacement")
def _no_amendment_in_review(ctx: Context) -> str | None:
    """A pending amendment would overwrite the lines on approval: decide it first."""
    amendment = getattr(ctx.record, "amendment", None)
    if amendment is not None:
        return reason("contract.amendment_before_replacement", fields=", ".join(amendment.fields))
    return None


#: The contract transition a valid return with disposition "replace" fires:
#: the delivery obligation reopens through the contract's own lifecycle.
REPLACEMENT = Transition(
    event="replace_goods",
    sources=("shipped", "completed"),
    dest="in_fulfilment",
    zh="退货换货,重新交付",
    en="replacement shipment for a valid return",
    roles={"quality_manager", "sales"},
    requires=("return_ref", "product", "quantity"),
    effects=(_replacement,),
    notify=("department:shipping", "department:production"),
    via="desk.returns.dispose",
)

#: A further valid return on a contract still in fulfilment (an earlier
#: replacement reopened it, or it never finished shipping): the replacement line
#: is added and the contract stays in fulfilment.
REPLACEMENT_IN_FULFILMENT = attrs.evolve(
    REPLACEMENT,
    sources=("in_fulfilment",),
    dest="in_fulfilment",
    guards=(_no_amendment_in_review,),
)
