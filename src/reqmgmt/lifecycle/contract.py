"""The contract and order review lifecycle (合同评审, DOMAIN.md §2).

draft 草稿 → in_review 评审中 (the route's departments countersign, then the
route's approver) → approved 已批准 → awaiting_customer 待客户确认 (our
countersigned order or contract sent back; verbal orders need the customer's
read-back 复述) → confirmed 已签订 → in_fulfilment 履行中 (special contracts
send the reviewed order to the acting departments; general ones go straight
to shipping) → shipped 已出货 (every line shipped, partial shipments tracked
per line) → completed 已完成 → closed 已关闭.  A decline in review sends it
back to draft for rework with the reason kept; cancel with a reason.

The class (一般/特殊) and the review route are decided by the rule set when the
contract is first submitted and pinned on the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ValidationError
from ..i18n import Text, reason
from ..model import (
    CONTRACT_TERMS,
    Amendment,
    Contract,
    ContractLine,
    Money,
    Record,
    goods_total,
    lines_total,
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
    note_as_reason,
    refuses,
)
from .returns import REPLACEMENT, REPLACEMENT_IN_FULFILMENT

__all__ = ["AMENDABLE", "APPROVER_ROLES", "CONTRACT", "classify_contract"]

_AMENDABLE_STATES = ("approved", "awaiting_customer", "confirmed", "in_fulfilment")

#: The role that may give the final approval, per approver the route names.
#: "none" (general contracts: sales with production) and "signatory" (verbal
#: orders, self-reviewed) leave the approval to sales.
APPROVER_ROLES: dict[str, frozenset[str]] = {
    "sales_manager": frozenset({"sales_manager"}),
    "general_manager": frozenset({"general_manager"}),
    "factory_head": frozenset({"factory_head"}),
    "none": frozenset({"sales", "foreign_trade"}),
    "signatory": frozenset({"sales", "foreign_trade"}),
}
_SALES = frozenset({"sales", "foreign_trade"})


def _contract(record: Record) -> Contract:
    assert isinstance(record, Contract)
    return record


def _class_and_route(
    ctx: Context,
    record: Contract,
    amount: Money,
    version: str | None,
    lines: Sequence[ContractLine] | None = None,
) -> tuple[str, Mapping[str, Any], bool]:
    """The class, review route and sample decision for ``amount`` and ``lines``.

    Decided under rule set ``version``; ``lines`` default to the contract's.
    """
    flags = record.flags | record.customer.flags
    cls: str = ctx.classify(
        "contract_class",
        {
            "amount": amount,
            "new_product": "new_product" in flags,
            "oem": "oem" in flags,
            "new_customer": "new" in record.customer.flags,
            "first_order": "first_order" in flags,
            "foreign_trade": record.channel == "foreign_trade",
        },
        version,
    ).outcome["class"]
    pieces = sum(
        x.quantity for x in (record.lines if lines is None else lines) if x.kind == "goods"
    )
    sample: bool = ctx.classify(
        "sample_order",
        {"quantity": pieces, "marked_sample": "sample" in record.flags},
        version,
    ).outcome["sample"]
    route = ctx.classify(
        "review_route",
        {
            "document": record.document,
            "contract_class": cls,
            "channel": record.channel,
            "amount": amount,
            "sample": sample,
        },
        version,
    ).outcome
    return cls, route, sample


def classify_contract(ctx: Context) -> Mapping[str, Any]:
    """Effect of the first submission: class and route from the rules, pinned on the record."""
    record = _contract(ctx.record)
    if record.contract_class is not None:
        return {}  # pinned at the first submission; only an amendment re-classifies
    # The goods' gross amount: a discount line cannot move a contract under a threshold.
    cls, route, sample = _class_and_route(
        ctx, record, goods_total(record.lines, record.currency), None
    )
    return {
        "contract_class": cls,
        "route": route["route"],
        "route_departments": tuple(route["departments"]),
        "route_approver": route["approver"],
        "confirmation_required": route["confirmation"],
        "self_review": route.get("self_review") is True,
        "sample": sample,
        "rules_version": ctx.decisions[-1].version,
    }


def _route_departments(record: Record) -> Sequence[str]:
    return _contract(record).route_departments


def _approver_roles(record: Record) -> frozenset[str]:
    approver = _contract(record).route_approver or "none"
    return APPROVER_ROLES.get(approver, frozenset({approver}))


# --- amendments (合同变更) ---------------------------------------------------------------

_LINE_FIELDS = ("product", "specification", "model", "quantity", "unit", "unit_price",
                "delivery_date")  # fmt: skip
AMENDABLE = ("lines", *CONTRACT_TERMS)


def _proposed(
    record: Contract, changes: Any
) -> tuple[tuple[ContractLine, ...], dict[str, str], list[str]]:
    """Check an amendment's changes; return the new lines, new terms and what changed."""
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationError(
            "changes",
            changes,
            "a mapping of field to new value; fields: " + ", ".join(AMENDABLE),
            where=record.ref,
        )
    unknown = sorted(set(changes) - set(AMENDABLE))
    if unknown:
        raise ValidationError(
            unknown[0],
            changes[unknown[0]],
            "one of the amendable fields: " + ", ".join(AMENDABLE),
            where=record.ref,
        )
    lines = tuple(changes.get("lines", record.lines))
    if not all(isinstance(x, ContractLine) for x in lines):
        raise ValidationError("lines", lines, "ContractLine objects", where=record.ref)
    for x in lines:
        if x.unit_price.currency != record.currency:
            raise ValidationError(
                "lines",
                x.unit_price,
                f"prices in the contract's currency {record.currency}",
                where=record.ref,
            )
    terms = {k: v for k, v in changes.items() if k != "lines"}
    for key, value in terms.items():
        if not isinstance(value, str):
            raise ValidationError(key, value, "a string", where=record.ref)
    fields = [k for k, v in terms.items() if getattr(record, k) != v]
    old = {x.line_no: x for x in record.lines}
    new = {x.line_no: x for x in lines}
    if set(old) != set(new):
        fields.append("lines")
    for no, x in new.items():
        before = old.get(no)
        if x.unit_price.amount <= 0 and (before is None or before.unit_price != x.unit_price):
            raise ValidationError(
                f"lines[{no}].unit_price",
                x.unit_price,
                "a positive price (a reduction is a line of kind 'discount')",
                where=record.ref,
            )
    total = lines_total(lines, record.currency)
    if total.amount <= 0:
        raise ValidationError("lines", total, "lines whose total is above zero", where=record.ref)
    lines = _carry_shipped(record, old, lines)
    new = {x.line_no: x for x in lines}
    for no in set(old) & set(new):
        fields.extend(f for f in _LINE_FIELDS if getattr(new[no], f) != getattr(old[no], f))
        if new[no].kind != old[no].kind:
            fields.append("lines")  # goods became a discount or back: the lines changed
    fields = list(dict.fromkeys(fields))
    if not fields:
        raise ValidationError(
            "changes", changes, "at least one field that differs", where=record.ref
        )
    return lines, terms, fields


def _carry_shipped(
    record: Contract, old: Mapping[int, ContractLine], lines: tuple[ContractLine, ...]
) -> tuple[ContractLine, ...]:
    """An amendment's lines with what has shipped carried over from the contract.

    Shipments are recorded by shipping orders (出货单), never by an amendment: a
    fresh ``ContractLine`` (``shipped=0``) takes the line's shipped quantity; any
    other shipped figure than the contract's, a quantity below what has shipped,
    or removing a line that has shipped is refused.
    """
    out = []
    for x in lines:
        before = old.get(x.line_no)
        shipped = before.shipped if before is not None else 0
        if x.shipped not in (0, shipped):
            raise ValidationError(
                f"lines[{x.line_no}].shipped",
                x.shipped,
                f"{shipped} (or 0 to carry it over): shipments are recorded by shipping orders",
                where=record.ref,
            )
        if x.quantity < shipped:
            raise ValidationError(
                f"lines[{x.line_no}].quantity",
                x.quantity,
                f"at least the {shipped} already shipped on line {x.line_no}",
                where=record.ref,
            )
        out.append(x if x.shipped == shipped else attrs.evolve(x, shipped=shipped))
    kept = {x.line_no for x in lines}
    for no, before in old.items():
        if no not in kept and before.shipped:
            raise ValidationError(
                "lines",
                sorted(kept),
                f"line {no} kept: {before.shipped} of it has shipped already",
                where=record.ref,
            )
    return tuple(out)


def _revise(ctx: Context) -> Mapping[str, Any]:
    """Effect: a draft's fields changed directly (nothing has been reviewed yet)."""
    record = _contract(ctx.record)
    lines, terms, _ = _proposed(record, ctx.data["changes"])
    out: dict[str, Any] = {"lines": lines, "amount": lines_total(lines, record.currency), **terms}
    if record.contract_class is not None:
        # Reworked after a review: the next submission classifies it afresh.
        out.update(
            contract_class=None,
            route=None,
            route_departments=(),
            route_approver=None,
            confirmation_required=None,
            self_review=False,
            sample=False,
        )
    return out


def _amend(ctx: Context) -> Mapping[str, Any]:
    """Effect of ``amend``: re-classify; apply at once, or open an amendment review."""
    record = _contract(ctx.record)
    lines, terms, fields = _proposed(record, ctx.data["changes"])
    amount = lines_total(lines, record.currency)
    version = None if ctx.data.get("current_rules") else record.rules_version
    cls, route, sample = _class_and_route(
        ctx, record, goods_total(lines, record.currency), version, lines
    )
    if record.contract_class == "general" and cls == "general" and sample == record.sample:
        # A general contract that stays general (and a sample or not): applied at once,
        # departments told.
        return {"lines": lines, "amount": amount, **terms}
    # A sample becoming an order (or back) changes the route: the new route reviews it.
    reclassified = cls != record.contract_class or sample != record.sample
    if reclassified:
        departments = tuple(route["departments"])
    else:
        wanted: list[str] = []
        for f in fields:
            for outcome in ctx.classify("amendment_departments", {"field": f}, version).outcome:
                wanted.append(outcome["department"])
        departments = tuple(d for d in dict.fromkeys(wanted))
    amendment = Amendment(
        reason=ctx.note or "",
        fields=tuple(fields),
        lines=lines if "lines" in fields or any(f in _LINE_FIELDS for f in fields) else None,
        terms=tuple(terms.items()),
        departments=departments,
        contract_class=cls,
        route=route["route"],
        route_departments=tuple(route["departments"]),
        route_approver=route["approver"],
        confirmation_required=route["confirmation"],
        rules_version=ctx.decisions[-1].version,
        reclassified=reclassified,
        self_review=route.get("self_review") is True,
        sample=sample,
    )
    return {
        "amendment": amendment,
        "review_round": record.review_round + 1,
        "submitted_by": ctx.actor.id,
    }


def _apply_amendment(ctx: Context) -> Mapping[str, Any]:
    """Effect of ``approve_amendment``: the reviewed change takes effect."""
    record = _contract(ctx.record)
    a = record.amendment
    assert a is not None  # guarded by _amendment_pending
    out: dict[str, Any] = dict(a.terms)
    if a.lines is not None:
        out["lines"] = a.lines
        out["amount"] = lines_total(a.lines, record.currency)
    if a.reclassified:
        out.update(
            contract_class=a.contract_class,
            route=a.route,
            route_departments=a.route_departments,
            route_approver=a.route_approver,
            confirmation_required=a.confirmation_required,
            self_review=a.self_review,
            sample=a.sample,
            rules_version=a.rules_version,
        )
    out["amendment"] = None
    return out


def _drop_amendment(ctx: Context) -> Mapping[str, Any]:
    return {"amendment": None}


@refuses("contract.no_amendment")
def _amendment_pending(ctx: Context) -> str | None:
    if _contract(ctx.record).amendment is None:
        return reason("contract.no_amendment")
    return None


@refuses("contract.amendment_in_review")
def _no_amendment_pending(ctx: Context) -> str | None:
    a = _contract(ctx.record).amendment
    if a is not None:
        return reason("contract.amendment_in_review", fields=", ".join(a.fields))
    return None


def _amendment_departments(record: Record) -> Sequence[str]:
    a = _contract(record).amendment
    return a.departments if a is not None else ()


def _amendment_approver_roles(record: Record) -> frozenset[str]:
    a = _contract(record).amendment
    approver = (a.route_approver if a is not None else None) or "none"
    return APPROVER_ROLES.get(approver, frozenset({approver}))


_LIAISON_SAYS = (
    "in review: `department:<d>` for each department that re-signs; once the change takes "
    "effect: every department (`department:*`, the liaison notice 业务联络书)"
)


def _liaison(record: Record) -> Sequence[str]:
    """业务联络书: who hears of an amendment (the reviewers while in review, then everyone)."""
    contract = _contract(record)
    if contract.amendment is not None:
        return [f"department:{d}" for d in contract.amendment.departments]
    # The change took effect: the liaison notice goes to every department (业务联络书).
    return [EVERY_DEPARTMENT]


def _confirmation(ctx: Context) -> Mapping[str, Any]:
    return {"confirmation": ctx.data["confirmation"]}


@refuses("contract.read_back_missing")
def _read_back_given(ctx: Context) -> str | None:
    record = _contract(ctx.record)
    if record.confirmation_required == "read_back" and ctx.data.get("read_back") is not True:
        return reason("contract.read_back_missing")
    return None


def _shipment(ctx: Context) -> Mapping[str, Any]:
    record = _contract(ctx.record)
    shipment = ctx.data["shipment"]
    if not isinstance(shipment, Mapping) or not shipment:
        raise ValidationError(
            "shipment", shipment, "a mapping of line number to quantity shipped", where=record.ref
        )
    by_no = {x.line_no: x for x in record.lines}
    lines = []
    for line in record.lines:
        qty = shipment.get(line.line_no, 0)
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            raise ValidationError(
                f"shipment[{line.line_no}]", qty, "a non-negative whole number", where=record.ref
            )
        if qty > line.open_quantity:
            raise ValidationError(
                f"shipment[{line.line_no}]",
                qty,
                f"at most the {line.open_quantity} still open on line {line.line_no}",
                where=record.ref,
            )
        lines.append(attrs.evolve(line, shipped=line.shipped + qty) if qty else line)
    unknown = sorted(set(shipment) - set(by_no))
    if unknown:
        raise ValidationError(
            "shipment",
            unknown,
            "line numbers of this contract: " + ", ".join(map(str, by_no)),
            where=record.ref,
        )
    return {"lines": tuple(lines)}


@refuses("contract.not_all_shipped")
def _all_shipped(ctx: Context) -> str | None:
    record = _contract(ctx.record)
    open_lines = [
        reason("contract.open_line", line=x.line_no, open=x.open_quantity)
        for x in record.lines
        if x.open_quantity
    ]
    if not open_lines:
        return None
    listed = Text(", ".join(open_lines), "，".join(x.zh for x in open_lines))
    return reason("contract.not_all_shipped", open_lines=listed)


@refuses("contract.self_reviewed_route")
def _not_self_reviewed(ctx: Context) -> str | None:
    """Guard of ``approve``: a self-reviewed route is approved by ``self_review`` instead."""
    if _contract(ctx.record).self_review:
        return reason("contract.self_reviewed_route", route=_contract(ctx.record).route)
    return None


@refuses("contract.not_self_reviewed", "contract.not_the_signatory")
def _self_reviewed(ctx: Context) -> str | None:
    """Guard of ``self_review``: only on a self-reviewed route, only by the signatory (drafter)."""
    record = _contract(ctx.record)
    if not record.self_review:
        return reason("contract.not_self_reviewed", route=record.route)
    if ctx.actor.id != record.created_by:
        return reason("contract.not_the_signatory", signatory=record.created_by, actor=ctx.actor.id)
    return None


@refuses("contract.quotation_not_fulfilled")
def _not_a_quotation(ctx: Context) -> str | None:
    if _contract(ctx.record).document == "quotation":
        return reason("contract.quotation_not_fulfilled")
    return None


@refuses("contract.not_a_quotation")
def _a_quotation(ctx: Context) -> str | None:
    if _contract(ctx.record).document != "quotation":
        return reason("contract.not_a_quotation", document=_contract(ctx.record).document)
    return None


def _acting_departments(record: Record) -> Sequence[str]:
    contract = _contract(record)
    if contract.contract_class == "special":
        # The reviewed order is copied to every department that acts on it.
        return [f"department:{d}" for d in contract.route_departments]
    return ["department:shipping"]


def _drafted(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """The amount of a new contract: its lines' total (goods minus discounts)."""
    given = fields["lines"]
    if isinstance(given, str | bytes | Mapping) or not isinstance(given, Iterable):
        raise ValidationError("lines", given, "a sequence of ContractLine", where="contract")
    lines = tuple(given)
    for x in lines:
        if not isinstance(x, ContractLine):
            raise ValidationError("lines", x, "ContractLine objects", where="contract")
        if x.unit_price.amount <= 0:
            raise ValidationError(
                f"lines[{x.line_no}].unit_price",
                x.unit_price,
                "a positive price (no-charge lines are made by replace_goods; a reduction is "
                "a line of kind 'discount' with a positive price)",
                where="contract",
            )
    if not isinstance(fields["currency"], str):
        raise ValidationError("currency", fields["currency"], "an ISO 4217 code", where="contract")
    return {"lines": lines, "amount": lines_total(lines, fields["currency"])}


CONTRACT = Lifecycle(
    kind="contract",
    record_type=Contract,
    zh="合同/订单",
    en="contract / order",
    initial="draft",
    create_event="draft",
    create_roles=_SALES,
    number_prefix="CON",
    data_help={
        "confirmation": (
            "how the customer confirmed, as text (our countersigned order returned, the "
            "contract signed back 回传, the read-back)"
        ),
        "read_back": (
            "`True` when the customer read a verbal order back (复述); required on a route whose "
            "confirmation is `read_back`"
        ),
        "shipment": (
            "`{line_no: quantity}` shipped by this shipping order (出货单): known line numbers, "
            "whole numbers ≥ 0, at most each line's open quantity"
        ),
        "changes": (
            "`{field: new value}`: `lines` (a sequence of `ContractLine`; what has shipped is "
            "carried over) and the terms `payment_terms`, `delivery_method`, `packaging`, "
            "`quality_requirements`, `acceptance_criteria` (text)"
        ),
        "current_rules": (
            "`True` to classify the amendment under the Desk's current rule set instead of the "
            "one pinned at submission"
        ),
        "return_ref": "the valid return (`RMA-...`) whose goods are replaced",
        "product": "the product replaced, as text",
        "quantity": "pieces replaced, a whole number above 0",
    },
    inputs=(
        CreationInput("customer", required=True),
        CreationInput("lines", required=True),
        CreationInput("currency", required=True),
        CreationInput("document", vocabulary="contract_documents"),
        CreationInput("channel", vocabulary="contract_channels"),
        CreationInput("flags", vocabulary="contract_flags"),
        CreationInput("requirement_refs"),
        *(CreationInput(term) for term in CONTRACT_TERMS),
    ),
    derived=_drafted,
    states=(
        State("draft", "草稿", "draft"),
        State("in_review", "评审中", "in review"),
        State("approved", "已批准", "approved"),
        State("awaiting_customer", "待客户确认", "awaiting the customer", waiting=True),
        State("confirmed", "已签订", "confirmed"),
        State("in_fulfilment", "履行中", "in fulfilment"),
        State("shipped", "已出货", "shipped"),
        State("completed", "已完成", "completed"),
        State("closed", "已关闭", "closed", final=True),
        State("ordered", "已转订单", "became an order", final=True),
        State("cancelled", "已取消", "cancelled", final=True),
    ),
    transitions=(
        Transition(
            event="submit",
            sources=("draft",),
            dest="in_review",
            zh="提交评审",
            en="submit for review",
            roles=_SALES,
            opens_review=True,
            effects=(classify_contract,),
            notify_from=lambda r: [f"department:{d}" for d in _route_departments(r)],
            notify_from_says="`department:<d>` for each department of the review route",
        ),
        Transition(
            event="approve",
            sources=("in_review",),
            dest="approved",
            zh="批准",
            en="approve",
            roles_from=_approver_roles,
            independent_of=("drafter", "submitter", "signers"),
            guards=(_not_self_reviewed, all_signed),
            meaning="approval",
            notify=("role:sales",),
        ),
        Transition(
            event="self_review",
            sources=("in_review",),
            dest="approved",
            zh="签约人自行评审",
            en="self-review by the signatory",
            roles=_SALES,
            guards=(_self_reviewed, all_signed),
            meaning="self_review",
            independence_waived=(
                "合同评审: a verbal order is reviewed by its signatory himself (自行评审); the "
                "customer's read-back (复述) before confirm is the control. Only routes whose "
                "rules say self_review = true, and only the drafter"
            ),
            notify=("role:sales",),
        ),
        Transition(
            event="send",
            sources=("approved",),
            dest="awaiting_customer",
            zh="回传客户确认",
            en="send to the customer to confirm",
            roles=_SALES,
            guards=(_no_amendment_pending,),
            notify=("customer",),
        ),
        Transition(
            event="confirm",
            sources=("awaiting_customer",),
            dest="confirmed",
            zh="客户确认,合同签订",
            en="customer confirmed",
            roles=_SALES,
            requires=("confirmation",),
            optional=("read_back",),
            guards=(_read_back_given, _no_amendment_pending),
            effects=(_confirmation,),
            meaning="responsibility",
        ),
        Transition(
            event="start_fulfilment",
            sources=("confirmed",),
            dest="in_fulfilment",
            zh="下发执行",
            en="release for fulfilment",
            roles=_SALES,
            guards=(_no_amendment_pending, _not_a_quotation),
            notify_from=_acting_departments,
            notify_from_says=(
                "special: `department:<d>` for each department of the route; general: "
                "`department:shipping`"
            ),
        ),
        Transition(
            event="ship",
            sources=("in_fulfilment",),
            dest="in_fulfilment",
            zh="开出货单",
            en="issue a shipping order",
            roles=_SALES | {"shipping"},
            requires=("shipment",),
            guards=(_no_amendment_pending,),
            effects=(_shipment,),
            notify=("department:warehouse",),
        ),
        Transition(
            event="mark_shipped",
            sources=("in_fulfilment",),
            dest="shipped",
            zh="全部出货",
            en="all shipped",
            roles=_SALES | {"shipping"},
            guards=(_all_shipped, _no_amendment_pending),
        ),
        Transition(
            event="complete",
            sources=("shipped",),
            dest="completed",
            zh="履行完成",
            en="complete",
            roles=_SALES,
        ),
        Transition(
            event="close",
            sources=("completed",),
            dest="closed",
            zh="关闭",
            en="close",
            roles=_SALES,
        ),
        Transition(
            event="convert_to_order",
            sources=("confirmed",),
            dest="ordered",
            zh="报价单转订单",
            en="accepted quotation becomes an order",
            roles=_SALES,
            guards=(_a_quotation, _no_amendment_pending),
            notify=("role:sales",),
            via="desk.contracts.order_from_quotation",
        ),
        Transition(
            event="revise",
            sources=("draft",),
            dest="draft",
            zh="修改草稿",
            en="revise the draft",
            roles=_SALES,
            requires=("changes",),
            note_required=True,
            effects=(_revise,),
        ),
        Transition(
            event="amend",
            sources=_AMENDABLE_STATES,
            dest="approved",  # replaced per state below
            zh="合同变更",
            en="amend",
            roles=_SALES,
            requires=("changes",),
            optional=("current_rules",),
            note_required=True,
            guards=(_no_amendment_pending,),
            effects=(_amend,),
            notify_from=_liaison,
            notify_from_says=_LIAISON_SAYS,
        ),
        Transition(
            event="approve_amendment",
            sources=_AMENDABLE_STATES,
            dest="approved",  # replaced per state below
            zh="批准合同变更",
            en="approve the amendment",
            roles_from=_amendment_approver_roles,
            independent_of=("drafter", "submitter", "signers"),
            guards=(_amendment_pending, all_signed),
            effects=(_apply_amendment,),
            meaning="approval",
            notify_from=_liaison,
            notify_from_says=_LIAISON_SAYS,
        ),
        REPLACEMENT,
        REPLACEMENT_IN_FULFILMENT,
        Transition(
            event="cancel",
            sources=("draft", "in_review", "approved", "awaiting_customer", "confirmed"),
            dest="cancelled",
            zh="取消",
            en="cancel",
            roles=_SALES,
            note_required=True,
            effects=(note_as_reason,),
            notify=("role:sales",),
        ),
    ),
    signoffs=(
        SignoffStep(
            state="in_review",
            departments=_route_departments,
            rework="draft",
            meaning="review",
        ),
        SignoffStep(
            state="approved",
            also_in=_AMENDABLE_STATES[1:],
            departments=_amendment_departments,
            rework=None,
            meaning="review",
            decline_effects=(_drop_amendment,),
        ),
    ),
)

# amend and approve_amendment keep the contract where it is: one self-loop per state.
CONTRACT = attrs.evolve(
    CONTRACT,
    transitions=tuple(
        part
        for t in CONTRACT.transitions
        for part in (
            [attrs.evolve(t, sources=(s,), dest=s) for s in t.sources]
            if t.event in ("amend", "approve_amendment")
            else [t]
        )
    ),
)
