"""``reqmgmt demo``: the seed procedures end to end, then the management report.

Three customers; an order taken in by fax with a clarification and an
outsourcing approval (客户需求管理程序); a requirement the plant cannot take
(negotiated, then rejected); a general contract amended into a special one and
a special contract declined once and reworked (合同评审), the first delivered
in two shipments; a valid return with a replacement and a CAPA (materials
told when it is reported), a return refused for more than was shipped, a
second valid return replaced while the contract is still in fulfilment, its
disposition and its late CAPA reminded, and an invalid complaint settled
(客户投诉和退货).  Notifications go to a log file
beside the database.  The demo clock starts 30 days ago and moves 23 minutes
a step, so the report has real cycle and dwell times.  Running it again adds
another set of records; nothing fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import attrs

from .desk import Desk
from .errors import ReqMgmtError, ValidationError
from .hookspecs import hookimpl
from .model import (
    Actor,
    Contract,
    ContractLine,
    CreditRecord,
    Customer,
    Money,
    Notification,
    Record,
    Requirement,
    Survey,
)
from .rendering import history_table

__all__ = ["run_demo"]

CLERK = Actor("zhang.wei", "张伟 (发货部)", departments={"shipping"}, roles={"sales"})
SALES = Actor("zhou.min", "周敏 (市场部)", departments={"sales"}, roles={"sales"})
SALES2 = Actor("wu.qiang", "吴强 (市场部)", departments={"sales"}, roles={"sales"})
ENGINEER = Actor("li.na", "李娜 (工程部)", departments={"engineering"})
WAREHOUSE = Actor("wang.fang", "王芳 (资材部)", departments={"materials"}, roles={"materials"})
PRODUCTION = Actor("liu.yang", "刘洋 (生产部)", departments={"production"}, roles={"production"})
QUALITY = Actor("chen.jing", "陈静 (品质部)", departments={"quality"}, roles={"quality"})
QUALITY_MANAGER = Actor("lin.qm", "林经理 (品质经理)", roles={"quality_manager"})
QA_DIRECTOR = Actor("xu.qd", "徐总监 (品质总监)", roles={"quality_manager"})
SALES_MANAGER = Actor("he.sm", "何经理 (营业经理)", roles={"sales_manager"})
VP = Actor("chen.vp", "陈副总", roles={"vp"})
REVIEWERS = {
    "sales": SALES2,
    "production": PRODUCTION,
    "engineering": ENGINEER,
    "quality": QUALITY,
    "materials": WAREHOUSE,
}


class _StepClock:
    """The demo's clock: from 30 days ago, 23 minutes a step.

    ``today`` is the day the story is told from, 30 days after the start (the
    real today when no start is given): delivery dates and a CAPA's due day are
    counted from it, never from the machine's calendar, so a run from a given
    ``start`` stores the same dates on any day.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        self.today = self.now.date() + timedelta(days=30)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=23)
        return self.now

    def wait(self, hours: float) -> None:
        self.now += timedelta(hours=hours)


class _LogNotifier:
    """Appends every notification to a log file (where an ERP would send mail)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            log.write(f"{notification.created_at:%Y-%m-%d %H:%M} {notification.key}  "
                      f"{notification.text_zh} | {notification.text_en}\n")  # fmt: skip
        self.count += 1


class _DemoErp:
    """The host's ERP as far as intake asks it: credit records, approved subcontractors."""

    @hookimpl
    def reqmgmt_subcontractors(self, record: Record) -> tuple[str, ...]:
        return ("宏达五金", "新华冲压")  # 外包加工商清单

    @hookimpl
    def reqmgmt_design_project(self, record: Record, novelty: str, note: str) -> str:
        return f"DP-{record.ref}"  # the ERP's design project (设计开发项目)

    @hookimpl
    def reqmgmt_customer_credit(self, customer: Customer) -> CreditRecord | None:
        if customer.id == "HK-001":
            return CreditRecord(customer_id=customer.id, rating="A", note="按时付款 pays on time")
        return None


def _log_path(url: str) -> Path:
    if url.startswith("sqlite:///") and "memory" not in url:
        db = Path(url.removeprefix("sqlite:///").split("?")[0])
        return db.with_name(db.stem + "-notifications.log")
    return Path("reqmgmt-notifications.log")


def _forms(desk: Desk, url: str) -> str:
    """Every form that applies to the demo's records, as HTML beside the database."""
    from .forms import forms_for

    log = _log_path(url)
    folder = log.with_name(log.name.removesuffix("-notifications.log") + "-forms")
    folder.mkdir(exist_ok=True)
    written: set[str] = set()
    count = 0
    for record in desk.query():
        for spec in forms_for(record, desk.history(record.ref)):
            page = folder / f"{record.ref}-{spec.name}.html"
            page.write_text(desk.form(record.ref, spec.name), encoding="utf-8")
            written.add(spec.zh)
            count += 1
    return (f"表单 forms: {count} HTML forms ({len(written)} kinds) written to {folder}; "
            f"PDF: reqmgmt form REF --form NAME --out FILE.pdf")  # fmt: skip


#: The product of the demo's contract lines (its returns name it too).
BRACKET = "冲压支架 ZJ-12 stamped bracket"


def _line(clock: _StepClock, quantity: int, price: str) -> ContractLine:
    return ContractLine(
        line_no=1,
        product=BRACKET,
        specification="SPCC 1.2 mm, 镀锌 zinc",
        quantity=quantity,
        unit_price=Money(price, "CNY"),
        delivery_date=clock.today + timedelta(days=45),
    )


def _order_intake(desk: Desk, clock: _StepClock, customer: Customer) -> Iterator[str]:
    req = desk.requirements.receive(
        customer=customer, description="冲压支架 10,000 pcs, 镀锌 / brackets, zinc plated",
        channel="fax", priority="high", actor=CLERK,
    )  # fmt: skip
    ref = req.ref
    identified = (
        (CLERK, "explicit", "10,000 pcs, 镀锌 8-12 µm, 第12周交货 / delivery week 12"),
        (ENGINEER, "implied", "户外使用, 盐雾 48h / outdoor use: 48 h salt spray"),
        (QUALITY, "statutory", "RoHS, 出口欧盟 / exported to the EU"),
        (CLERK, "company", "每箱附出货检验报告 / an inspection report in every carton"),
    )
    for who, kind, text in identified:
        desk.fire(ref, "identify", actor=who, kind=kind, text=text)
    desk.fire(ref, "clarify", actor=CLERK, note="镀层厚度? / plating thickness?")
    clock.wait(20)  # the customer answers the next day
    desk.fire(ref, "clarified", actor=CLERK, note="8-12 µm, per customer fax")
    desk.fire(ref, "start_evaluation", actor=CLERK)
    desk.sign(ref, department="engineering", actor=ENGINEER, opinion="现有模具可做 existing die")
    desk.fire(ref, "request_outsourcing", actor=WAREHOUSE, note="钢带不足 steel strip short",
              subcontractor="宏达五金")  # fmt: skip
    clock.wait(6)
    desk.fire(ref, "approve_outsourcing", actor=VP, outsourcing="裁剪单 CJ-0419 宏达五金")
    clock.wait(3)  # faxed to the customer, who confirms it before the subcontractor hears of it
    desk.fire(
        ref, "cutting_confirmed", actor=CLERK, note="客户传真确认裁剪单 customer confirmed by fax"
    )
    desk.sign(ref, department="materials", actor=WAREHOUSE, opinion="外包后材料足够")
    clock.wait(10)
    desk.sign(ref, department="production", actor=PRODUCTION, opinion="第12周 week 12")
    desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 批: 第12周, 第14周 / 2 lots")
    for department, who in REVIEWERS.items():  # 签收: each department signs for the plan
        desk.fire(ref, "acknowledge_plan", actor=who, department=department)
    plan = desk.get(ref)
    assert isinstance(plan, Requirement)
    desk.fire(ref, "start", actor=PRODUCTION)
    clock.wait(72)
    desk.fire(ref, "complete", actor=PRODUCTION, note="全部出货 shipped in full")
    desk.fire(ref, "close", actor=CLERK)
    yield f"{ref}: order taken in by fax, clarified, outsourced, delivered, closed"
    yield (f"{ref}: outsourced to {plan.subcontractor} (approved list), cutting order confirmed "
           f"by the customer before the subcontractor was told")  # fmt: skip
    credit = req.credit
    yield (
        f"{ref}: credit {credit.rating if credit else '-'} ({credit.note if credit else '-'}); "
        f"identified: " + ", ".join(f"{x.kind} by {x.identified_by}" for x in plan.identified)
    )
    yield (f"{ref}: delivery plan (交货计划表) to the VP, the customer and "
           f"{len(plan.plan_departments)} departments; signed for by "
           f"{', '.join(plan.plan_signed)}; not yet: {', '.join(plan.plan_unsigned)}")  # fmt: skip

    other = desk.requirements.receive(
        customer=customer, description="特殊包装 10 kg/箱 special packing", channel="email",
        kind="special", actor=CLERK,
    )  # fmt: skip
    desk.fire(other.ref, "start_evaluation", actor=CLERK)
    desk.fire(other.ref, "negotiate", actor=PRODUCTION, note="产能不足 no capacity in May")
    clock.wait(30)
    desk.fire(other.ref, "reject", actor=CLERK, note="客户不接受延期 customer declines a delay")
    yield f"{other.ref}: capacity short, negotiated, rejected"


def _new_product(desk: Desk, clock: _StepClock, customer: Customer) -> Iterator[str]:
    """A new product: held for design (设计开发), then the import flow (需求导入)."""
    req = desk.requirements.receive(
        customer=customer, description="新型铰链 HX-2 hinge, new product", channel="email",
        actor=CLERK,
    )  # fmt: skip
    ref = req.ref
    desk.fire(ref, "start_evaluation", actor=CLERK)
    desk.fire(ref, "hand_to_design", actor=SALES, novelty="new_product",
              note="新产品, 需新模具 new die needed")  # fmt: skip
    held = desk.get(ref)
    assert isinstance(held, Requirement)
    clock.wait(24 * 4)
    desk.fire(ref, "design_done", actor=SALES, note="样件通过 samples approved, die T1 OK")
    evaluators = (("engineering", ENGINEER), ("materials", WAREHOUSE), ("production", PRODUCTION))
    for department, who in evaluators:
        desk.sign(ref, department=department, actor=who, opinion="可行 feasible")
    desk.fire(ref, "customer_disagrees", actor=SALES,
              note="客户要求第10周交货 customer wants week 10")  # fmt: skip
    clock.wait(8)
    for department, who in evaluators:
        desk.sign(ref, department=department, actor=who, opinion="第10周可行 week 10 feasible")
    desk.fire(ref, "customer_confirms_evaluation", actor=SALES, note="客户邮件确认 by e-mail")
    desk.fire(ref, "customer_confirms_import", actor=SALES,
              note="客户签回需求导入核准单 signed form returned")  # fmt: skip
    done = desk.get(ref)
    assert isinstance(done, Requirement)
    yield (f"{ref}: new product held for design ({held.design_project}), back with "
           f"'{done.design_result}'; evaluation round {done.review_round}")  # fmt: skip
    yield (f"{ref}: 需求导入 the customer disagreed once (another round), then confirmed the "
           f"evaluation and its section of the import approval form")  # fmt: skip


def _review(desk: Desk, ref: str) -> Contract:
    submitted = desk.fire(ref, "submit", actor=SALES)
    assert isinstance(submitted, Contract)
    for department in submitted.route_departments:
        desk.sign(ref, department=department, actor=REVIEWERS[department], opinion="同意 agree")
    approver = {"sales_manager": SALES_MANAGER}.get(submitted.route_approver or "", SALES2)
    if approver.id in {s.actor_id for s in desk.get(ref).round_signoffs()}:
        approver = Actor("tang.lead", "唐主管 (市场部主管)", roles={"sales"})
    approved = desk.fire(ref, "approve", actor=approver)
    assert isinstance(approved, Contract)
    return approved


def _contracts(desk: Desk, clock: _StepClock, regular: Customer, new: Customer) -> Iterator[str]:
    general = desk.contracts.draft(
        customer=regular, currency="CNY", lines=[_line(clock, 5000, "10")], actor=SALES,
        payment_terms="月结30天 30 days net", delivery_method="送货 delivered",
    )  # fmt: skip
    _review(desk, general.ref)
    bigger = (attrs.evolve(general.lines[0], quantity=30000),)
    pending = desk.contracts.amend(
        general.ref, {"lines": bigger}, actor=SALES, reason="客户追加数量 customer adds pieces"
    )
    assert pending.amendment is not None
    for department in pending.amendment.departments:
        desk.sign(general.ref, department=department, actor=REVIEWERS[department])
    clock.wait(8)
    amended = desk.fire(general.ref, "approve_amendment", actor=SALES_MANAGER)
    assert isinstance(amended, Contract)
    desk.fire(general.ref, "send", actor=SALES)
    clock.wait(24)
    desk.fire(general.ref, "confirm", actor=SALES, confirmation="客户盖章回传 signed copy")
    desk.fire(general.ref, "start_fulfilment", actor=SALES)
    half = amended.lines[0].quantity // 2
    desk.fire(general.ref, "ship", actor=SALES, shipment={1: half})
    clock.wait(48)
    desk.fire(general.ref, "ship", actor=SALES, shipment={1: amended.lines[0].quantity - half})
    desk.fire(general.ref, "mark_shipped", actor=SALES)
    yield (f"{general.ref}: general contract amended to {amended.amount} "
           f"({amended.contract_class}), re-signed, shipped in two lots")  # fmt: skip

    special = desk.contracts.draft(
        customer=new, currency="CNY", lines=[_line(clock, 25000, "10")], actor=SALES,
        flags=("first_order",),
    )  # fmt: skip
    desk.fire(special.ref, "submit", actor=SALES)
    desk.sign(special.ref, department="production", actor=PRODUCTION, approve=False,
              opinion="交期不足, 请改为6月 lead time too short")  # fmt: skip
    clock.wait(16)
    approved = _review(desk, special.ref)
    yield (f"{special.ref}: special contract declined once by production, "
           f"approved in review round {approved.review_round}")  # fmt: skip

    # 非正式订单: a verbal order is reviewed by its signatory himself (自行评审), the
    # customer's read-back (复述) being the control.
    verbal = desk.contracts.draft(
        customer=regular, currency="CNY", lines=[_line(clock, 3000, "9.5")], actor=SALES2,
        document="verbal", channel="domestic",
    )  # fmt: skip
    desk.fire(verbal.ref, "submit", actor=SALES2)
    desk.fire(verbal.ref, "self_review", actor=SALES2)
    desk.fire(verbal.ref, "send", actor=SALES2)
    clock.wait(2)
    desk.fire(verbal.ref, "confirm", actor=SALES2, read_back=True,
              confirmation="电话复述: 3000 pcs, 9.5 元, 第15周 read back by phone")  # fmt: skip
    yield f"{verbal.ref}: verbal order self-reviewed by its signatory (自行评审), read back"

    # 样品: 200 pieces or fewer; production makes it, quality confirms the sample.
    sample = desk.contracts.draft(
        customer=regular, currency="CNY", lines=[_line(clock, 150, "12")], actor=SALES,
        document="order",
    )  # fmt: skip
    submitted = desk.fire(sample.ref, "submit", actor=SALES)
    assert isinstance(submitted, Contract)
    assert submitted.sample
    for department in submitted.route_departments:
        desk.sign(sample.ref, department=department, actor=REVIEWERS[department],
                  opinion="送样承认 sample approved")  # fmt: skip
    desk.fire(sample.ref, "approve", actor=SALES2)
    yield (f"{sample.ref}: sample order (样品, 150 pcs) on route {submitted.route}: "
           f"{', '.join(submitted.route_departments)}")  # fmt: skip
    return None


def _returns(desk: Desk, clock: _StepClock, customer: Customer, contract: str) -> Iterator[str]:
    r = desk.returns.report(
        customer=customer, product=BRACKET, contract_ref=contract, line_no=1, quantity=200,
        reason_code="quality", reason_text="支架开裂 brackets crack under load", actor=SALES,
    )  # fmt: skip
    desk.fire(r.ref, "receive_goods", actor=WAREHOUSE, receipt_no="WL-0311", quantity=200)
    desk.fire(r.ref, "to_quality", actor=WAREHOUSE)
    clock.wait(10)
    desk.fire(r.ref, "judge_valid", actor=QUALITY, findings="R角处开裂 cracks at the radius",
              defect_category="crack", cause="模具R角磨损 worn die radius",
              safety_related=True)  # fmt: skip
    desk.returns.dispose(r.ref, "replace", actor=QUALITY_MANAGER)
    desk.fire(r.ref, "open_capa", actor=QUALITY, owner="lin.qm", due_on=clock.today,
              actions="更换模具, 首件检验 new die, first-article check")  # fmt: skip
    clock.wait(40)
    desk.fire(r.ref, "verify_capa", actor=QA_DIRECTOR, note="连续5批无开裂 five clean lots")
    yield f"{r.ref}: valid return, replacement through {contract}, CAPA verified"

    c = desk.returns.report(
        customer=customer, product="铰链 hinge", kind="complaint", reason_code="quality",
        reason_text="表面划伤 scratches", actor=SALES,
    )  # fmt: skip
    desk.fire(c.ref, "to_quality", actor=SALES)
    desk.fire(c.ref, "judge_invalid", actor=QUALITY, findings="划伤在客户装配后产生",
              defect_category="scratch", cause="客户装配 customer assembly")  # fmt: skip
    clock.wait(8)
    desk.fire(c.ref, "settle", actor=SALES, outcome="customer_accepts", note="客户接受 accepted")
    yield f"{c.ref}: complaint judged invalid, settled with the customer"
    yield from _more_returns(desk, clock, customer, contract, r.ref)


def _more_returns(
    desk: Desk, clock: _StepClock, customer: Customer, contract: str, first: str
) -> Iterator[str]:
    """Issue 14 points 10-12: the contract check, a second replacement, every step reminded."""
    with desk.store.transaction() as tx:
        told = tx.outbox(f"{first}:1:department:materials")
    if told is not None:
        yield f"{first}: materials (资材部) told when it was reported: {told.notification.text_en}"
    line = desk.get(contract).lines[0]  # type: ignore[attr-defined]
    too_many = line.shipped - 200 + 1
    try:
        desk.returns.report(
            customer=customer, product=BRACKET, contract_ref=contract, line_no=1,
            quantity=too_many, reason_code="quality", reason_text="再退 more", actor=SALES,
        )  # fmt: skip
    except ReqMgmtError as exc:
        yield f"return of {too_many} refused: {exc}"
    second = desk.returns.report(
        customer=customer, product=BRACKET, contract_ref=contract, line_no=1,
        quantity=50, reason_code="quality", reason_text="支架开裂 cracks again", actor=SALES,
    )  # fmt: skip
    desk.fire(second.ref, "receive_goods", actor=WAREHOUSE, receipt_no="WL-0312", quantity=50)
    desk.fire(second.ref, "to_quality", actor=WAREHOUSE)
    desk.fire(second.ref, "judge_valid", actor=QUALITY, findings="R角处开裂",
              defect_category="crack", cause="新模具未调好 new die not tuned",
              safety_related=True)  # fmt: skip
    waiting = desk.get(second.ref)
    if waiting.step_due_at is not None:
        clock.wait((waiting.step_due_at - clock.now).total_seconds() / 3600 + 1)
    queued = desk.run_reminders(clock.now).queued
    desk.dispatch()
    yield (f"{second.ref}: valid, waiting for the quality manager's disposition "
           f"(step {waiting.step}, due {waiting.step_due_at:%Y-%m-%d %H:%M} UTC): "
           f"{queued} reminder(s) queued")  # fmt: skip
    disposed = desk.returns.dispose(second.ref, "replace", actor=QUALITY_MANAGER)
    again = desk.get(contract)
    lines = ", ".join(str(x.line_no) for x in again.lines)  # type: ignore[attr-defined]
    yield f"{second.ref}: second replacement on {contract} while {again.state}: lines {lines}"
    if disposed.capa_required:
        due = clock.now.date() + timedelta(days=3)
        desk.fire(second.ref, "open_capa", actor=QUALITY, owner="lin.qm", due_on=due,
                  actions="模具验收标准 die acceptance criteria")  # fmt: skip
        clock.wait(24 * 5)  # past due_on: the CAPA step is late
        queued = desk.run_reminders(clock.now).queued
        desk.dispatch()
        yield (f"{second.ref}: CAPA due {due} not verified by {clock.now:%Y-%m-%d}: "
               f"{queued} reminder(s)/escalation(s) queued")  # fmt: skip


def _surveys(desk: Desk, clock: _StepClock, customers: Sequence[Customer]) -> Iterator[str]:
    """Issue 14 point 13: satisfaction surveys (满意度调查), one about a closed record."""
    regular, hk = customers
    closed = next((r.ref for r in desk.query(customer=regular.id, state="closed")), None)
    clock.wait(2)
    for customer, about, answers, comment in (
        (regular, closed, {"quality": 3, "complaints": 4, "delivery": 4},
         "退货处理及时 the return was handled quickly"),
        (hk, None, {"quality": 5, "delivery": 4, "service": 5}, ""),
    ):  # fmt: skip
        s = desk.create("survey", actor=SALES, customer=customer, about=about, answers=answers,
                        comment=comment)  # fmt: skip
        assert isinstance(s, Survey)
        said = ", ".join(f"{a.question} {a.score}" for a in s.answers)
        yield f"{s.ref}: {customer.id}" + (f" about {about}" if about else "") + f": {said}"
    try:
        desk.create("survey", actor=SALES, customer=hk, answers={"quality": 6})
    except ReqMgmtError as exc:
        yield f"a score of 6 refused: {exc}"


def run_demo(url: str, out: TextIO, *, start: datetime | None = None) -> int:
    """Run the demo on ``url`` and print what happened and the report to ``out``.

    The demo's clock starts 30 days ago, or at ``start`` (timezone-aware) for a run
    that stores the same bytes every time (the seeded-run test).
    """
    if start is not None and (not isinstance(start, datetime) or start.utcoffset() is None):
        raise ValidationError("start", start, "a timezone-aware datetime", where="run_demo")
    clock = _StepClock(start)
    log = _log_path(url)
    notifier = _LogNotifier(log)
    hk = Customer("HK-001", "香港客户 Hong Kong Trading Ltd", category="important",
                  flags={"foreign"})  # fmt: skip
    regular = Customer("C-100", "华南五金 South China Hardware")
    new = Customer("C-200", "新客户 New Customer Co.", flags={"new"})
    with Desk.open(url, plugins=[notifier, _DemoErp()], clock=clock) as desk:
        print("客户需求 requirements", file=out)
        intake = list(_order_intake(desk, clock, hk))
        intake += _new_product(desk, clock, hk)
        for line in intake:
            print("  " + line, file=out)
        trail = desk.history(intake[0].split(":")[0])
        print(history_table(trail, desk.engine(trail[0].record_kind).labels), file=out)
        print("合同评审 contract review", file=out)
        contracts = list(_contracts(desk, clock, regular, new))
        for line in contracts:
            print("  " + line, file=out)
        shipped = contracts[0].split(":")[0]
        print("客户投诉和退货 complaints and returns", file=out)
        for line in _returns(desk, clock, regular, shipped):
            print("  " + line, file=out)
        print("满意度调查 satisfaction surveys", file=out)
        for line in _surveys(desk, clock, (regular, hk)):
            print("  " + line, file=out)
        broken = [r.ref for r in desk.query() if not desk.verify_history(r.ref)]
        print(f"\naudit chains: {'all intact' if not broken else 'BROKEN: ' + ', '.join(broken)}; "
              f"{notifier.count} notifications written to {log}", file=out)  # fmt: skip
        print(_forms(desk, url), file=out)
        print("\n管理报告 management report (everything in this database)\n", file=out)
        print(desk.report().table(), file=out)
    return 0 if not broken else 1
