"""The ten forms the seed names, filled from a record and its audit trail.

Each form is a :class:`FormSpec` in :data:`FORMS`: its name, zh-CN and English
title, the record kind it is for, what it is filled from, when it applies and
how it is filled.  :func:`render_form` (``desk.form(ref, name)``) renders one
as HTML through a Jinja2 template (``templates/<name>.html.j2``, extending
``base.html.j2``, styled by ``print.css``) with autoescaping on: record text
is hostile input.  A host overrides any of the templates by giving a folder
(``Desk.open(..., form_templates=path)``): a file there of the same name wins.

Signatures come from the audit trail: every signed event (one with a
signature meaning: 审核 review, 批准 approval, 负责 responsibility, 自行评审
self-review) the form concerns, with who signed, the department a countersign
was given for, when (in the Desk's calendar zone), the opinion, approve or
decline, and what the signature means.  Data a record does not have yet is a
clearly marked blank (未填 not recorded), never invented.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ..errors import ConfigError, ValidationError
from ..model import (
    REQUIREMENT_PRIORITIES,
    RETURN_KINDS,
    SIGNATURE_MEANINGS,
    AuditEvent,
    Contract,
    ContractLine,
    Money,
    Record,
    Requirement,
    Return,
)

if TYPE_CHECKING:
    import jinja2

    from ..desk import Desk

__all__ = [
    "FORMS",
    "Field",
    "FilledForm",
    "FormSpec",
    "Grid",
    "Signature",
    "fill",
    "forms_for",
    "render_form",
    "render_pdf",
    "template_folder",
]

_TEMPLATES = Path(__file__).parent / "templates"
_DECISIONS = {True: ("同意", "approve"), False: ("不同意", "decline")}
#: Labels of the countersign events ``Desk.sign`` fires (a lifecycle's own label wins).
_SIGN_EVENTS = {"sign": ("会签", "countersign"), "decline": ("会签不同意", "countersign declined")}


# --- what a filled form holds ----------------------------------------------------------------


@frozen
class Field:
    """One labelled box of a form; ``value`` ``None`` is a blank (not recorded yet)."""

    zh: str
    en: str
    value: str | None


@frozen
class Grid:
    """A table on a form: a title, column headers (zh, en) and rows of text (``None`` blank)."""

    zh: str
    en: str
    headers: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str | None, ...], ...]


@frozen
class Signature:
    """One row of a form's signatures table, from one signed audit event."""

    actor_id: str
    actor_name: str
    department: str | None
    department_label: str | None
    at: str
    opinion: str | None
    decision: str | None  #: "approve", "decline" or None (a signature without a verdict)
    decision_label: str | None
    meaning: str | None
    meaning_label: str | None
    event: str
    event_label: str
    version: int


@frozen
class FilledForm:
    """A form filled from one record: what the template renders."""

    spec: FormSpec
    ref: str
    version: int
    state: str
    state_label: str
    printed_at: str
    zone: str
    fields: tuple[Field, ...]
    grids: tuple[Grid, ...]
    signatures: tuple[Signature, ...]
    chain_head: str


# --- the registry ----------------------------------------------------------------------------


@frozen
class FormSpec:
    """One form: its name, titles, record kinds, what it is filled from, how."""

    name: str
    zh: str
    en: str
    kinds: tuple[str, ...]
    filled_from: str
    #: ``None`` when the form applies to the record, else why it does not.
    why_not: Callable[[Record, Sequence[AuditEvent]], str | None]
    build: Callable[[_Filling], tuple[tuple[Field, ...], tuple[Grid, ...], tuple[Signature, ...]]]

    @property
    def template(self) -> str:
        """The template's file name (``<name>.html.j2``)."""
        return f"{self.name}.html.j2"


class _Filling:
    """What a form is filled from: the record, its audit trail, the Desk's labels and zone."""

    def __init__(self, desk: Desk, record: Record, events: Sequence[AuditEvent]) -> None:
        self.desk = desk
        self.record = record
        self.events = events
        zone = getattr(desk.calendar, "zone", None)
        self.zone: tzinfo = zone if isinstance(zone, tzinfo) else UTC
        try:
            self.departments: Mapping[str, tuple[str, str]] = desk.rules.vocabulary(
                "departments"
            ).labels
        except ConfigError:
            self.departments = {}
        engine = desk.engine(record.RECORD_KIND)
        self.event_labels: dict[str, tuple[str, str]] = dict(_SIGN_EVENTS)
        for t in engine.lifecycle.transitions:
            if t.zh or t.en:
                self.event_labels[t.event] = (t.zh or t.event, t.en or t.event)
        self.rounds = _rounds(events)

    def when(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def label(self, vocabulary: str, value: str | None) -> str | None:
        """``value`` with its zh-CN and English label from a rule-set vocabulary."""
        if value is None:
            return None
        try:
            labels = self.desk.rules.vocabulary(vocabulary).labels
        except ConfigError:
            return value
        zh, en = labels.get(value, (value, value))
        return f"{zh} {en}" if zh != en else zh

    def department(self, name: str | None) -> str | None:
        if name is None:
            return None
        zh, en = self.departments.get(name, (name, name))
        return f"{zh} {en}" if zh != en else zh

    def event_label(self, event: str) -> str:
        zh, en = self.event_labels.get(event, (event, event))
        return f"{zh} {en}" if zh != en else zh

    def name_of(self, actor_id: str | None) -> str | None:
        """The name an actor signed with in this record's trail (else the id)."""
        if actor_id is None:
            return None
        for e in self.events:
            if e.actor_id == actor_id and e.actor_name:
                return f"{e.actor_name} ({actor_id})"
        return actor_id

    def first(self, *names: str) -> AuditEvent | None:
        return next((e for e in self.events if e.event in names), None)

    def signatures(self, keep: Callable[[AuditEvent], bool]) -> tuple[Signature, ...]:
        """Rows for the signed events ``keep`` selects, oldest first."""
        return tuple(self.signature(e) for e in self.events if keep(e))

    def signature(self, e: AuditEvent) -> Signature:
        signoff = _signoff_of(e)
        department = opinion = None
        decision: bool | None = None
        if signoff is not None:
            department = _text(signoff.get("department"))
            opinion = _text(signoff.get("opinion"))
            approve = signoff.get("approve")
            decision = approve if isinstance(approve, bool) else None
        elif e.meaning in {"approval", "self_review"}:
            decision = True
        opinion = opinion or e.note or None
        meaning = SIGNATURE_MEANINGS.get(e.meaning or "")
        return Signature(
            actor_id=e.actor_id,
            actor_name=e.actor_name or e.actor_id,
            department=department,
            department_label=self.department(department),
            at=self.when(e.at) or "",
            opinion=opinion,
            decision=None if decision is None else _DECISIONS[decision][1],
            decision_label=None if decision is None else " ".join(_DECISIONS[decision]),
            meaning=e.meaning,
            meaning_label=None if meaning is None else " ".join(meaning),
            event=e.event,
            event_label=self.event_label(e.event),
            version=e.version,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _signoff_of(e: AuditEvent) -> Mapping[str, Any] | None:
    """The countersign an event added (its ``signoffs`` change), if any."""
    for c in e.changes:
        if c.field == "signoffs" and isinstance(c.new, list | tuple) and c.new:
            old = c.old if isinstance(c.old, list | tuple) else ()
            added = [s for s in c.new if s not in old and isinstance(s, Mapping)]
            mine = [s for s in added if s.get("actor_id") == e.actor_id]
            if mine:
                return mine[-1]
    return None


def _rounds(events: Sequence[AuditEvent]) -> dict[int, int]:
    """Each event's review round (by version), from the ``review_round`` changes."""
    current = 0
    found: dict[int, int] = {}
    for e in events:
        for c in e.changes:
            if c.field == "review_round" and isinstance(c.new, int):
                current = c.new
        found[e.version] = current
    return found


def _amendment_rounds(f: _Filling) -> frozenset[int]:
    return frozenset(f.rounds[e.version] for e in f.events if e.event == "amend")


def _money(value: Money | None) -> str | None:
    return None if value is None else f"{value.amount} {value.currency}"


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _yes(value: bool) -> str:
    return "是 yes" if value else "否 no"


def _lines(lines: Iterable[ContractLine], with_shipped: bool = False) -> Grid:
    headers = [
        ("序号", "line"),
        ("品名", "product"),
        ("规格", "specification"),
        ("型号", "model"),
        ("数量", "quantity"),
        ("单位", "unit"),
        ("单价", "unit price"),
        ("交期", "delivery date"),
    ]
    if with_shipped:
        headers.append(("已出货", "shipped"))
    rows = []
    for line in lines:
        row: list[str | None] = [
            str(line.line_no),
            line.product,
            line.specification or None,
            line.model or None,
            str(line.quantity),
            line.unit,
            _money(line.unit_price),
            _day(line.delivery_date),
        ]
        if with_shipped:
            row.append(str(line.shipped))
        rows.append(tuple(row))
    return Grid("产品明细", "lines", tuple(headers), tuple(rows))


def _customer_fields(record: Requirement | Contract | Return) -> list[Field]:
    return [
        Field("客户", "customer", f"{record.customer.name} ({record.customer.id})"),
    ]


def _signed(e: AuditEvent) -> bool:
    return e.meaning is not None


# --- the ten forms ---------------------------------------------------------------------------


def _requirement_fields(f: _Filling, r: Requirement) -> list[Field]:
    return [
        Field("案件号", "case number", r.ref),
        *_customer_fields(r),
        Field("需求类别", "kind", f.label("requirement_kinds", r.kind)),
        Field("接收方式", "channel", f.label("requirement_channels", r.channel)),
        Field(
            "优先级", "priority", " ".join(REQUIREMENT_PRIORITIES.get(r.priority, (r.priority,)))
        ),
        Field("接收时间", "received", f.when(r.received_at)),
        Field("接收人", "received by", f.name_of(r.created_by)),
        Field("需求内容", "description", r.description),
        Field("澄清记录", "clarifications", "; ".join(r.clarifications) or None),
    ]


def _evaluation_grid(f: _Filling, r: Requirement) -> Grid:
    """The evaluation boxes of 生产通知表: one per department that signed, latest first."""
    latest: dict[str, Signature] = {}
    for s in f.signatures(lambda e: _signoff_of(e) is not None):
        if s.department is not None:
            latest[s.department] = s
    wanted = ["engineering", "materials", "production"]
    wanted += [d for d in latest if d not in wanted]
    rows = []
    for d in wanted:
        s_ = latest.get(d)
        rows.append(
            (
                f.department(d),
                None if s_ is None else s_.opinion,
                None if s_ is None else s_.decision_label,
                None if s_ is None else s_.actor_name,
                None if s_ is None else s_.at,
            )
        )
    headers = (
        ("部门", "department"),
        ("意见", "opinion"),
        ("结论", "decision"),
        ("签名", "signed by"),
        ("日期", "date"),
    )
    return Grid("评估意见", "evaluation opinions", headers, tuple(rows))


def _production_notice(f: _Filling) -> Any:
    r = f.record
    assert isinstance(r, Requirement)
    fields = _requirement_fields(f, r)
    fields += [
        Field("外包加工", "outsourcing", r.outsourcing),
        Field("交货计划", "delivery plan", r.delivery_plan),
        Field("备注", "remarks", "; ".join(r.remarks) or None),
    ]
    return tuple(fields), (_evaluation_grid(f, r),), f.signatures(_signed)


def _delivery_plan(f: _Filling) -> Any:
    r = f.record
    if isinstance(r, Requirement):
        accepted = f.first("accept")
        fields = [
            Field("案件号", "case number", r.ref),
            *_customer_fields(r),
            Field("需求内容", "description", r.description),
            Field("交货计划", "delivery plan", r.delivery_plan),
            Field(
                "制定人", "planned by", None if accepted is None else f.name_of(accepted.actor_id)
            ),
            Field("制定日期", "planned on", None if accepted is None else f.when(accepted.at)),
        ]
        since = accepted.version if accepted is not None else None
        return (
            tuple(fields),
            (),
            f.signatures(lambda e: _signed(e) and since is not None and e.version >= since),
        )
    assert isinstance(r, Contract)
    fields = [
        Field("合同号", "contract number", r.ref),
        *_customer_fields(r),
        Field("交货方式", "delivery method", r.delivery_method or None),
        Field("包装", "packaging", r.packaging or None),
    ]
    keep = {"approve", "self_review", "approve_amendment", "confirm"}
    return tuple(fields), (_lines(r.lines, True),), f.signatures(lambda e: e.event in keep)


def _intake_approval(f: _Filling) -> Any:
    r = f.record
    assert isinstance(r, Requirement)
    started = f.first("start_evaluation")
    fields = _requirement_fields(f, r)
    fields += [
        Field("评估开始", "evaluation started", None if started is None else f.when(started.at)),
        Field("评估轮次", "evaluation round", str(r.review_round) if r.review_round else None),
    ]
    # The customer's confirmation of the evaluation and of its section of this form
    # (the import flow): events that record it are signed ones on the requirement.
    confirmed = [e for e in f.events if e.meaning is not None and "confirm" in e.event]
    last = confirmed[-1] if confirmed else None
    by = None if last is None else f"{f.name_of(last.actor_id)} {f.when(last.at)}"
    fields.append(Field("客户确认", "customer's confirmation", by))
    return tuple(fields), (_evaluation_grid(f, r),), f.signatures(_signed)


def _contract_fields(f: _Filling, c: Contract) -> list[Field]:
    return [
        Field("合同号", "contract number", c.ref),
        *_customer_fields(c),
        Field("文件类别", "document", f.label("contract_documents", c.document)),
        Field("渠道", "channel", f.label("contract_channels", c.channel)),
        Field("合同类别", "contract class", f.label("contract_classes", c.contract_class)),
        Field("评审方式", "review route", f.label("review_routes", c.route)),
        Field(
            "评审部门",
            "reviewing departments",
            ", ".join(filter(None, map(f.department, c.route_departments))) or None,
        ),
        Field("批准人", "approver", f.label("approvers", c.route_approver)),
        Field("金额", "amount", _money(c.amount)),
        Field("付款方式", "payment terms", c.payment_terms or None),
        Field("交货方式", "delivery method", c.delivery_method or None),
        Field("质量要求", "quality requirements", c.quality_requirements or None),
        Field("验收准则", "acceptance criteria", c.acceptance_criteria or None),
        Field("起草人", "drafted by", f.name_of(c.created_by)),
    ]


def _order_review(f: _Filling) -> Any:
    c = f.record
    assert isinstance(c, Contract)
    amendments = _amendment_rounds(f)
    fields = _contract_fields(f, c)
    fields.append(Field("客户确认", "customer's confirmation", c.confirmation))

    def keep(e: AuditEvent) -> bool:
        return (
            _signed(e) and e.event != "approve_amendment" and f.rounds[e.version] not in amendments
        )

    return tuple(fields), (_lines(c.lines),), f.signatures(keep)


def _amendment_grid(f: _Filling) -> Grid:
    rows = []
    for e in f.events:
        if e.event != "amend":
            continue
        change = next((c.new for c in e.changes if c.field == "amendment"), None)
        fields = change.get("fields") if isinstance(change, Mapping) else None
        departments = change.get("departments") if isinstance(change, Mapping) else None
        done = next(
            (x for x in f.events if x.version > e.version and x.event == "approve_amendment"),
            None,
        )
        rows.append(
            (
                f.when(e.at),
                f.name_of(e.actor_id),
                e.note,
                ", ".join(map(str, fields)) if isinstance(fields, list) else None,
                ", ".join(filter(None, map(f.department, map(str, departments))))
                if isinstance(departments, list)
                else None,
                None if done is None else f.when(done.at),
            )
        )
    headers = (
        ("提出时间", "raised"),
        ("提出人", "raised by"),
        ("变更原因", "reason"),
        ("变更内容", "fields changed"),
        ("会签部门", "re-signing departments"),
        ("生效时间", "took effect"),
    )
    return Grid("变更记录", "amendments", headers, tuple(rows))


def _amendment_review(f: _Filling) -> Any:
    c = f.record
    assert isinstance(c, Contract)
    amendments = _amendment_rounds(f)
    fields = _contract_fields(f, c)[:3]
    pending = c.amendment
    fields.append(
        Field("待批变更", "pending amendment", None if pending is None else pending.reason)
    )

    def keep(e: AuditEvent) -> bool:
        return _signed(e) and (
            e.event == "approve_amendment"
            or (f.rounds[e.version] in amendments and e.event not in {"confirm"})
        )

    return tuple(fields), (_amendment_grid(f), _lines(c.lines)), f.signatures(keep)


def _liaison_notice(f: _Filling) -> Any:
    c = f.record
    assert isinstance(c, Contract)
    fields = _contract_fields(f, c)[:2]
    everyone = ", ".join(filter(None, map(f.department, f.departments))) or None
    fields += [
        Field("发文部门", "issued by", f.department("sales")),
        Field("收文部门", "to departments", everyone),
    ]
    grid = _amendment_grid(f)
    done = Grid(grid.zh, grid.en, grid.headers, tuple(r for r in grid.rows if r[-1] is not None))
    return (
        tuple(fields),
        (done, _lines(c.lines)),
        f.signatures(lambda e: e.event in {"amend", "approve_amendment"}),
    )


def _shipments(f: _Filling, c: Contract) -> Grid:
    products = {line.line_no: line for line in c.lines}
    rows = []
    for e in f.events:
        if e.event != "ship":
            continue
        for ch in e.changes:
            if ch.field != "lines" or not isinstance(ch.new, list):
                continue
            before = {
                x.get("line_no"): x.get("shipped", 0)
                for x in (ch.old if isinstance(ch.old, list) else [])
                if isinstance(x, Mapping)
            }
            for x in ch.new:
                if not isinstance(x, Mapping):
                    continue
                now, was = x.get("shipped", 0), before.get(x.get("line_no"), 0)
                if isinstance(now, int) and isinstance(was, int) and now > was:
                    line = products.get(x.get("line_no"))  # type: ignore[arg-type]
                    rows.append(
                        (
                            f.when(e.at),
                            str(x.get("line_no")),
                            str(x.get("product", line.product if line else "")),
                            str(now - was),
                            str(now),
                            str(x.get("quantity", "")),
                            str(x.get("unit", "")),
                            f.name_of(e.actor_id),
                        )
                    )
    headers = (
        ("出货时间", "shipped"),
        ("序号", "line"),
        ("品名", "product"),
        ("本次数量", "this shipment"),
        ("累计", "shipped to date"),
        ("订货数量", "ordered"),
        ("单位", "unit"),
        ("发货人", "shipped by"),
    )
    return Grid("出货明细", "shipments", headers, tuple(rows))


def _delivery_note(f: _Filling) -> Any:
    c = f.record
    assert isinstance(c, Contract)
    fields = [
        *_contract_fields(f, c)[:2],
        Field("交货方式", "delivery method", c.delivery_method or None),
        Field("包装", "packaging", c.packaging or None),
        Field("收货确认", "received by the customer", None),
    ]
    return (
        tuple(fields),
        (_shipments(f, c),),
        f.signatures(lambda e: e.event in {"ship", "mark_shipped"}),
    )


def _return_fields(f: _Filling, r: Return) -> list[Field]:
    return [
        Field("退货单号", "return number", r.ref),
        *_customer_fields(r),
        Field("类别", "kind", " ".join(RETURN_KINDS.get(r.kind, (r.kind,)))),
        Field("合同号", "contract", r.contract_ref),
        Field("品名", "product", r.product),
        Field("数量", "quantity", str(r.quantity)),
        Field("原因", "reason", f"{f.label('return_reasons', r.reason_code)}: {r.reason_text}"),
    ]


def _goods_receipt(f: _Filling) -> Any:
    r = f.record
    assert isinstance(r, Return)
    receipt = r.receipt
    fields = _return_fields(f, r)
    fields += [
        Field("入库单号", "receipt number", None if receipt is None else receipt.number),
        Field("入库数量", "quantity received", None if receipt is None else str(receipt.quantity)),
        Field("收货人", "received by", None if receipt is None else f.name_of(receipt.received_by)),
        Field("入库日期", "received on", None if receipt is None else _day(receipt.received_on)),
    ]
    return tuple(fields), (), f.signatures(lambda e: e.event in {"receive_goods", "to_quality"})


def _quality_report(f: _Filling) -> Any:
    r = f.record
    assert isinstance(r, Return)
    q = r.report
    fields = _return_fields(f, r)
    fields += [
        Field("检验结果", "findings", None if q is None else q.findings),
        Field("缺陷类别", "defect category", None if q is None else q.defect_category),
        Field("原因分析", "cause", None if q is None else q.cause),
        Field("检验员", "inspector", None if q is None else f.name_of(q.inspector)),
        Field("安全相关", "safety related", None if q is None else _yes(q.safety_related)),
        Field("判定", "judgement", r.judgement),
        Field("判定日期", "judged on", _day(r.judged_on)),
        Field("处置", "disposition", r.disposition),
        Field("结果", "outcome", r.outcome),
        Field("需纠正预防", "CAPA required", _yes(r.capa_required)),
    ]
    keep = {"judge_valid", "judge_invalid", "dispose", "settle", "grant_goodwill"}
    return tuple(fields), (), f.signatures(lambda e: e.event in keep)


def _capa(f: _Filling) -> Any:
    r = f.record
    assert isinstance(r, Return)
    c = r.capa
    q = r.report
    fields = _return_fields(f, r)[:5]
    fields += [
        Field("问题描述", "problem", None if q is None else q.findings),
        Field("原因分析", "cause", None if q is None else q.cause),
        Field("纠正预防措施", "actions", None if c is None else c.actions),
        Field("负责人", "owner", None if c is None else f.name_of(c.owner)),
        Field("完成期限", "due on", None if c is None else _day(c.due_on)),
        Field("效果验证", "verification", None if c is None else c.verification),
        Field("验证人", "verified by", None if c is None else f.name_of(c.verified_by)),
    ]
    return tuple(fields), (), f.signatures(lambda e: e.event in {"open_capa", "verify_capa"})


def _kind_only(record: Record, events: Sequence[AuditEvent]) -> str | None:
    return None


def _after(event: str, what: str) -> Callable[[Record, Sequence[AuditEvent]], str | None]:
    def why_not(record: Record, events: Sequence[AuditEvent]) -> str | None:
        return None if any(e.event == event for e in events) else f"{record.ref} has no {what}"

    return why_not


def _has(attr: str, what: str) -> Callable[[Record, Sequence[AuditEvent]], str | None]:
    def why_not(record: Record, events: Sequence[AuditEvent]) -> str | None:
        return None if getattr(record, attr, None) is not None else f"{record.ref} has no {what}"

    return why_not


def _capa_applies(record: Record, events: Sequence[AuditEvent]) -> str | None:
    if isinstance(record, Return) and (record.capa is not None or record.capa_required):
        return None
    return f"{record.ref} has no CAPA (none required, none opened)"


_SPECS = (
    FormSpec("production_notice", "生产通知表", "production notice", ("requirement",),
             "the requirement; each department's evaluation opinion and signature "
             "(engineering, materials, production); outsourcing; the delivery plan",
             _kind_only, _production_notice),
    FormSpec("delivery_plan", "交货计划表", "delivery plan", ("requirement", "contract"),
             "a requirement's delivery plan set on acceptance, or a contract's lines and "
             "delivery dates; the signatures from the plan on",
             _kind_only, _delivery_plan),
    FormSpec("intake_approval", "需求导入核准单", "requirement intake approval",
             ("requirement",),
             "the requirement, its internal evaluation and the customer's confirmation "
             "(blank until the import flow records it)",
             _kind_only, _intake_approval),
    FormSpec("order_review", "订单评审记录表", "order review record", ("contract",),
             "the contract's terms and lines, its review route and every countersign and "
             "approval outside amendments",
             _kind_only, _order_review),
    FormSpec("amendment_review", "合同变更评审表", "contract amendment review", ("contract",),
             "each amendment (who raised it, why, what changed) and its re-signing",
             _after("amend", "amendment (合同变更)"), _amendment_review),
    FormSpec("liaison_notice", "业务联络书", "business liaison notice", ("contract",),
             "each amendment that took effect and the departments told of it",
             _after("approve_amendment", "amendment that took effect"), _liaison_notice),
    FormSpec("delivery_note", "出货单", "delivery note", ("contract",),
             "each shipment (ship events: line, quantity, who, when)",
             _after("ship", "shipment"), _delivery_note),
    FormSpec("goods_receipt", "物料入库单", "goods receipt", ("return",),
             "the returned goods' receipt (number, quantity, who received them, when)",
             _has("receipt", "goods receipt (the goods were not received)"), _goods_receipt),
    FormSpec("quality_report", "品质异常处理报告", "quality anomaly report", ("return",),
             "the quality inspection report, the judgement and the disposition",
             _has("report", "quality report (not inspected yet)"), _quality_report),
    FormSpec("capa", "纠正预防措施", "corrective and preventive action (CAPA)", ("return",),
             "the CAPA: actions, owner, due date, verification",
             _capa_applies, _capa),
)  # fmt: skip

#: The ten forms by name.
FORMS: Mapping[str, FormSpec] = {s.name: s for s in _SPECS}
_BY_TITLE: Mapping[str, FormSpec] = {s.zh: s for s in _SPECS}


def _lookup(name: object, ref: str) -> FormSpec:
    if isinstance(name, str):
        spec = FORMS.get(name) or _BY_TITLE.get(name)
        if spec is not None:
            return spec
    known = ", ".join(f"{s.name} ({s.zh})" for s in _SPECS)
    raise ValidationError("name", name, f"one of the forms: {known}", where=f"form {ref}")


def forms_for(record: Record, events: Sequence[AuditEvent]) -> tuple[FormSpec, ...]:
    """The forms that apply to ``record`` with its audit ``events``."""
    return tuple(
        s for s in _SPECS if record.RECORD_KIND in s.kinds and s.why_not(record, events) is None
    )


def fill(desk: Desk, ref: str, name: str) -> FilledForm:
    """Form ``name`` (its name or Chinese title) filled from record ``ref``.

    Raises :class:`ValidationError` when the form does not apply to the
    record, naming the forms that do; :class:`NotFound` for an unknown ref.
    """
    record = desk.get(ref)
    events = desk.history(ref)
    spec = _lookup(name, ref)
    problem = (
        f"a {record.RECORD_KIND}, not a {' or '.join(spec.kinds)}"
        if record.RECORD_KIND not in spec.kinds
        else spec.why_not(record, events)
    )
    if problem is not None:
        applying = ", ".join(f"{s.name} ({s.zh})" for s in forms_for(record, events)) or "none"
        raise ValidationError(
            "name",
            name,
            f"a form that applies to {ref} ({problem}): {applying}",
            where=f"form {ref}",
        )
    filling = _Filling(desk, record, events)
    fields, grids, signatures = spec.build(filling)
    label = desk.engine(record.RECORD_KIND).labels.get(record.state)
    return FilledForm(
        spec=spec,
        ref=ref,
        version=record.version,
        state=record.state,
        state_label=record.state if label is None else f"{label.zh} {label.en}",
        printed_at=filling.when(desk.now()) or "",
        zone=str(filling.zone),
        fields=fields,
        grids=grids,
        signatures=signatures,
        chain_head=events[-1].hash[:16] if events else "",
    )


# --- rendering -------------------------------------------------------------------------------


def template_folder(path: str | Path | None) -> Path | None:
    """A host's template folder, checked: an existing directory (``None``: none)."""
    if path is None:
        return None
    if not isinstance(path, str | Path):
        raise ValidationError("form_templates", path, "a folder path (str or Path)", where="Desk")
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(
            f"form_templates {str(folder)!r}", "not a folder: give a folder of .html.j2 templates"
        )
    return folder


@functools.lru_cache(maxsize=8)
def _environment(folder: Path | None) -> jinja2.Environment:
    import jinja2

    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(_TEMPLATES)]
    if folder is not None:
        loaders.insert(0, jinja2.FileSystemLoader(folder))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Record text is hostile input: every value is escaped, whatever the file name.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_form(desk: Desk, ref: str, name: str) -> str:
    """Form ``name`` for record ``ref`` as HTML (see :meth:`reqmgmt.Desk.form`)."""
    filled = fill(desk, ref, name)
    folder: Path | None = getattr(desk, "form_templates", None)
    template = _environment(folder).get_template(filled.spec.template)
    return template.render(form=filled, spec=filled.spec)


def render_pdf(html: str) -> bytes:
    """The HTML of a form as PDF, through WeasyPrint (``pip install 'reqmgmt[forms]'``).

    Chinese needs a CJK font on the machine (Debian: fonts-wqy-microhei or
    fonts-noto-cjk); print.css names both.
    """
    if not isinstance(html, str):
        raise ValidationError("html", html, "the HTML text of a form", where="render_pdf")
    try:
        import weasyprint
    except ImportError:
        raise ConfigError(
            "render_pdf", "PDF needs WeasyPrint: pip install 'reqmgmt[forms]'"
        ) from None
    pdf: bytes = weasyprint.HTML(string=html).write_pdf()
    return pdf
