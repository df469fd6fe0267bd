"""The seed's ten forms (issue 14 #16): rendered for the demo's records, escaped, refused, PDF."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reqmgmt import Actor, ConfigError, Customer, Desk, ValidationError
from reqmgmt.demo import run_demo
from reqmgmt.forms import FORMS, render_pdf
from reqmgmt.model import Contract, Record, Requirement, Return
from reqmgmt.testing import FakeClock

from .formpage import FormPage

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """The demo's records in a SQLite file (`reqmgmt demo --db ...`)."""
    folder = tmp_path_factory.mktemp("forms")
    url = f"sqlite:///{folder / 'demo.db'}"
    assert run_demo(url, io.StringIO()) == 0
    with Desk.open(url, create=False) as desk:
        yield desk


def _find(desk: Desk, test: Callable[[Record], bool]) -> Record:
    found = [r for r in desk.query() if test(r)]
    assert found, "the demo no longer has the record this test reads"
    return found[0]


def _order(desk: Desk) -> Requirement:
    r = _find(desk, lambda r: isinstance(r, Requirement) and r.outsourcing is not None)
    assert isinstance(r, Requirement)
    return r


def _amended(desk: Desk) -> Contract:
    c = _find(desk, lambda r: isinstance(r, Contract) and any(
        e.event == "ship" for e in desk.history(r.ref)))  # fmt: skip
    assert isinstance(c, Contract)
    return c


def _declined(desk: Desk) -> Contract:
    c = _find(desk, lambda r: isinstance(r, Contract) and any(
        not s.approve for s in r.signoffs))  # fmt: skip
    assert isinstance(c, Contract)
    return c


def _valid_return(desk: Desk) -> Return:
    r = _find(desk, lambda r: isinstance(r, Return) and r.capa is not None)
    assert isinstance(r, Return)
    return r


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def test_the_registry_names_the_ten_forms_of_the_seed() -> None:
    assert [s.zh for s in FORMS.values()] == [
        "生产通知表", "交货计划表", "需求导入核准单", "订单评审记录表", "合同变更评审表",
        "业务联络书", "出货单", "物料入库单", "品质异常处理报告", "纠正预防措施",
    ]  # fmt: skip
    for spec in FORMS.values():
        assert spec.en
        assert spec.filled_from
        assert spec.kinds


def test_production_notice_has_each_departments_opinion_and_signature(demo: Desk) -> None:
    r = _order(demo)
    page = FormPage(demo.form(r.ref, "生产通知表"))
    assert page.title == "生产通知表 production notice"
    assert page.fields["案件号 case number"] == r.ref
    assert page.fields["需求内容 description"] == r.description
    assert page.fields["外包加工 outsourcing"] == "裁剪单 CJ-0419 宏达五金"
    assert page.fields["接收方式 channel"] == "传真 fax"
    signs = page.signed("sign")
    assert [(s["data-actor"], s["department"], s["decision"]) for s in signs] == [
        ("li.na", "工程部 engineering", "同意 approve"),
        ("wang.fang", "资材部 materials", "同意 approve"),
        ("liu.yang", "生产部 production", "同意 approve"),
    ]
    assert signs[0]["opinion"] == "现有模具可做 existing die"
    assert signs[0]["meaning"] == "审核 review"
    assert signs[0]["actor"] == "李娜 (工程部) (li.na)"
    # When: in the Desk's zone (the calendar's, Asia/Shanghai), from the audit event.
    event = next(e for e in demo.history(r.ref) if e.event == "sign")
    assert signs[0]["at"] == _local(event.at)
    vp = page.signed("approve_outsourcing")
    assert [(s["data-actor"], s["meaning"]) for s in vp] == [("chen.vp", "批准 approval")]
    assert page.signed("accept")[0]["meaning"] == "负责 responsibility"


def test_delivery_plan_of_a_requirement_and_of_a_contract(demo: Desk) -> None:
    r = _order(demo)
    page = FormPage(demo.form(r.ref, "delivery_plan"))
    assert page.fields["交货计划 delivery plan"] == "2 批: 第12周, 第14周 / 2 lots"
    assert page.fields["制定人 planned by"] == "张伟 (发货部) (zhang.wei)"
    # Issued with accept, then signed for (签收) by the departments it went to.
    events = [s["data-event"] for s in page.signatures]
    assert events[0] == "accept"
    assert set(events[1:]) == {"acknowledge_plan"}
    assert len(events) == 1 + len(r.plan_receipts)
    c = _amended(demo)
    page = FormPage(demo.form(c.ref, "交货计划表"))
    line = c.lines[0]
    assert line.delivery_date is not None
    assert line.delivery_date.isoformat() in page.grid_cells
    assert {s["data-event"] for s in page.signatures} >= {"approve", "approve_amendment"}


def test_intake_approval_leaves_what_is_not_recorded_blank(demo: Desk) -> None:
    r = _order(demo)
    page = FormPage(demo.form(r.ref, "需求导入核准单"))
    assert "客户确认 customer's confirmation" in page.blank_fields
    assert page.fields["客户确认 customer's confirmation"] == "（未填 not recorded）"
    assert "现有模具可做 existing die" in page.grid_cells
    assert len(page.signed("sign")) == 3


def test_order_review_shows_the_decline_and_the_approval(demo: Desk) -> None:
    c = _declined(demo)
    page = FormPage(demo.form(c.ref, "订单评审记录表"))
    assert page.fields["合同类别 contract class"] == "special"
    declined = page.signed("decline")
    assert [(s["data-actor"], s["decision"], s["data-decision"]) for s in declined] == [
        ("liu.yang", "不同意 decline", "decline")
    ]
    assert declined[0]["opinion"] == "交期不足, 请改为6月 lead time too short"
    assert len(page.signed("sign")) == len(c.round_signoffs())
    approval = page.signed("approve")
    assert [(s["data-actor"], s["meaning"], s["decision"]) for s in approval] == [
        ("he.sm", "批准 approval", "同意 approve")
    ]


def test_amendment_review_and_liaison_notice_of_the_amended_contract(demo: Desk) -> None:
    c = _amended(demo)
    review = FormPage(demo.form(c.ref, "合同变更评审表"))
    assert "客户追加数量 customer adds pieces" in review.grid_cells
    # Only the amendment's re-signing, not the first review's countersigns.
    amend_round = max(s.round for s in c.signoffs)
    assert len(review.signed("sign")) == len(c.round_signoffs(amend_round))
    assert [s["data-actor"] for s in review.signed("approve_amendment")] == ["he.sm"]
    assert review.signed("approve") == []
    order = FormPage(demo.form(c.ref, "order_review"))
    assert order.signed("approve_amendment") == []
    assert len(order.signed("sign")) == len(c.round_signoffs(1))

    notice = FormPage(demo.form(c.ref, "业务联络书"))
    told = notice.fields["收文部门 to departments"]
    for department in demo.rules.vocabulary("departments").labels:
        zh, _ = demo.rules.vocabulary("departments").labels[department]
        assert zh in told
    assert [s["data-event"] for s in notice.signatures] == ["amend", "approve_amendment"]


def test_delivery_note_lists_each_shipment(demo: Desk) -> None:
    c = _amended(demo)
    page = FormPage(demo.form(c.ref, "出货单"))
    ships = [e for e in demo.history(c.ref) if e.event == "ship"]
    assert len(page.signed("ship")) == len(ships) == 2
    half = str(c.lines[0].quantity // 2)
    assert page.grid_cells.count(half) >= 2
    assert _local(ships[1].at) in page.grid_cells
    assert "收货确认 received by the customer" in page.blank_fields


def test_the_return_forms(demo: Desk) -> None:
    r = _valid_return(demo)
    assert r.receipt is not None
    assert r.report is not None
    assert r.capa is not None
    receipt = FormPage(demo.form(r.ref, "物料入库单"))
    assert receipt.fields["入库单号 receipt number"] == r.receipt.number
    assert receipt.fields["入库数量 quantity received"] == str(r.receipt.quantity)
    assert [s["data-actor"] for s in receipt.signed("receive_goods")] == ["wang.fang"]
    quality = FormPage(demo.form(r.ref, "品质异常处理报告"))
    assert quality.fields["检验结果 findings"] == r.report.findings
    assert quality.fields["安全相关 safety related"] == "是 yes"
    assert quality.fields["类别 kind"] == "客户退货 return with goods"
    judged = quality.signed("judge_valid")
    assert [(s["data-actor"], s["meaning"]) for s in judged] == [("chen.jing", "审核 review")]
    assert [s["data-actor"] for s in quality.signed("dispose")] == ["lin.qm"]
    capa = FormPage(demo.form(r.ref, "纠正预防措施"))
    assert capa.fields["纠正预防措施 actions"] == r.capa.actions
    verified = capa.signed("verify_capa")
    assert [(s["data-actor"], s["opinion"]) for s in verified] == [
        ("xu.qd", "连续5批无开裂 five clean lots")
    ]


def test_every_form_renders_for_some_demo_record(demo: Desk) -> None:
    """Each of the ten forms applies to a record of the demo and has its signature rows."""
    from reqmgmt.forms import forms_for

    rendered: set[str] = set()
    signed: set[str] = set()
    for record in demo.query():
        for spec in forms_for(record, demo.history(record.ref)):
            html = demo.form(record.ref, spec.name)
            page = FormPage(html)
            assert page.title == f"{spec.zh} {spec.en}"
            rendered.add(spec.name)
            if page.signatures:
                signed.add(spec.name)
            else:
                assert "尚无签名" in html, (record.ref, spec.name)
    assert rendered == signed == set(FORMS)


def test_the_demo_writes_every_form_beside_its_database(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(f"sqlite:///{tmp_path / 'shop.db'}", out) == 0
    written = sorted((tmp_path / "shop-forms").glob("*.html"))
    assert {p.stem.split("-", 3)[-1] for p in written} == set(FORMS)
    assert f"({len(FORMS)} kinds) written to {tmp_path / 'shop-forms'}" in out.getvalue()


# --- hostile text, not-applicable forms, host templates ----------------------------------------


def _desk(**kw: object) -> Desk:
    return Desk.open(clock=FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC)), **kw)  # type: ignore[arg-type]


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'


def test_record_text_is_escaped() -> None:
    with _desk() as desk:
        r = desk.requirements.receive(
            customer=Customer("C1", "<b>Evil</b> Co."), description=HOSTILE,
            actor=Actor("clerk", "<i>张伟</i>", roles={"sales"}),
        )  # fmt: skip
        html = desk.form(r.ref, "production_notice")
    for raw in ("<script>", "<img", "<b>Evil", "<i>"):
        assert raw not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;i&gt;张伟&lt;/i&gt;" in html
    page = FormPage(html)
    assert page.fields["需求内容 description"] == HOSTILE


def test_a_form_that_does_not_apply_names_those_that_do() -> None:
    with _desk() as desk:
        r = desk.requirements.receive(
            customer=Customer("C1", "华南五金"),
            description="支架",
            actor=Actor("clerk", roles={"sales"}),
        )
        with pytest.raises(ValidationError) as info:
            desk.form(r.ref, "出货单")
        message = str(info.value)
        assert "a requirement, not a contract" in message
        assert "production_notice (生产通知表)" in message
        assert "intake_approval (需求导入核准单)" in message
        with pytest.raises(ValidationError, match="one of the forms: production_notice"):
            desk.form(r.ref, "nonsense")


def test_a_capa_form_for_a_return_without_capa_is_refused(demo: Desk) -> None:
    complaint = _find(demo, lambda r: isinstance(r, Return) and r.judgement == "invalid")
    with pytest.raises(ValidationError) as info:
        demo.form(complaint.ref, "capa")
    assert "has no CAPA" in str(info.value)
    assert "quality_report (品质异常处理报告)" in str(info.value)
    contract = _declined(demo)
    with pytest.raises(ValidationError, match=r"has no shipment.*order_review"):
        demo.form(contract.ref, "delivery_note")


def test_a_host_template_folder_overrides_a_form_and_is_still_escaped(tmp_path: Path) -> None:
    (tmp_path / "production_notice.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block intro %}<p class="host">'
        "HOST {{ form.fields[7].value }}</p>{% endblock %}",
        encoding="utf-8",
    )
    (tmp_path / "print.css").write_text("body { color: #123456; }", encoding="utf-8")
    with _desk(form_templates=tmp_path) as desk:
        r = desk.requirements.receive(
            customer=Customer("C1", "华南五金"),
            description=HOSTILE,
            actor=Actor("clerk", roles={"sales"}),
        )
        html = desk.form(r.ref, "production_notice")
        other = desk.form(r.ref, "delivery_plan")
    assert '<p class="host">HOST &lt;script&gt;' in html
    assert "#123456" in html
    assert "#123456" in other
    assert "发货部制定交货计划表" in other  # the built-in template where the host has none
    with pytest.raises(ConfigError, match="not a folder"):
        _desk(form_templates=tmp_path / "missing")
    with pytest.raises(ValidationError, match="form_templates"):
        _desk(form_templates=42)


# --- PDF -----------------------------------------------------------------------------------------


def test_pdf_through_weasyprint_embeds_a_cjk_font(demo: Desk, tmp_path: Path) -> None:
    r = _order(demo)
    pdf = render_pdf(demo.form(r.ref, "生产通知表"))
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    fonts = shutil.which("pdffonts")
    if fonts is None and os.environ.get("CI") == "true":
        pytest.fail("pdffonts (poppler-utils) is required under CI=true: .ci/run installs it")
    if fonts is not None:  # poppler-utils: the embedded fonts include a CJK one
        listed = subprocess.run([fonts, path], capture_output=True, text=True, check=True).stdout
        assert any(name in listed for name in ("WenQuanYi", "Noto", "SourceHan", "Droid")), listed
    with pytest.raises(ValidationError, match=r"render_pdf\.html"):
        render_pdf(b"<html></html>")  # type: ignore[arg-type]


# --- reqmgmt form ---------------------------------------------------------------------------------


def test_reqmgmt_form_lists_renders_and_writes(tmp_path: Path) -> None:
    from .test_cli_commands import cli

    url = f"sqlite:///{tmp_path / 'erp.db'}"
    clock = FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    with Desk.open(url, clock=clock) as desk:
        ref = desk.requirements.receive(
            customer=Customer("C1", "华南五金"),
            description=HOSTILE,
            actor=Actor("clerk", roles={"sales"}),
        ).ref
    listed = cli("form", ref, "--db", url, cwd=tmp_path, check=0).stdout
    assert "production_notice  生产通知表" in listed
    assert "delivery_note" not in listed
    html = cli("form", ref, "--form", "生产通知表", "--db", url, cwd=tmp_path, check=0).stdout
    assert "&lt;script&gt;" in html
    assert FormPage(html).fields["需求内容 description"] == HOSTILE
    out = tmp_path / "notice.html"
    cli("form", ref, "--form", "production_notice", "--out", str(out), "--db", url, cwd=tmp_path,
        check=0)  # fmt: skip
    assert FormPage(out.read_text(encoding="utf-8")).title == "生产通知表 production notice"
    pdf = tmp_path / "plan.pdf"
    cli("form", ref, "--form", "delivery_plan", "--out", str(pdf), "--db", url, cwd=tmp_path,
        check=0)  # fmt: skip
    assert pdf.read_bytes().startswith(b"%PDF")
    # Host templates from the command line.
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "print.css").write_text("h1 { color: #654321; }", encoding="utf-8")
    themed = cli("form", ref, "--form", "capa", "--db", url, "--templates", str(tmp_path / "host"),
                 cwd=tmp_path, check=1)  # fmt: skip
    assert "a form that applies to" in themed.stderr
    assert "production_notice (生产通知表)" in themed.stderr
    themed = cli("form", ref, "--form", "交货计划表", "--db", url, "--templates",
                 str(tmp_path / "host"), cwd=tmp_path, check=0)  # fmt: skip
    assert "#654321" in themed.stdout
    bad = cli("form", ref, "--form", "capa", "--out", "x.txt", "--db", url, cwd=tmp_path, check=2)
    assert "--out 'x.txt': expected a file ending in .html or .pdf" in bad.stderr
    cli("form", ref, "--out", "x.html", "--db", url, cwd=tmp_path, check=2)
    cli("form", ref, "--form", "capa", "--db", url, "--templates", "nowhere", cwd=tmp_path,
        check=1)  # fmt: skip
