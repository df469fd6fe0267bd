"""The reference web app (examples/webapp) driven in headless Chromium (issue 17 #3).

Playwright for Python with Debian's Chromium (.ci/run installs it; Playwright's
own browser download is not used).  The server runs in a thread on a free port
against a demo database in the test's temp dir.  Every button press must end in
the redirect of a command that succeeded (or in the error status the step
expects), so a command that fails fails the test.  A screenshot of each page is
saved under the test's temp dir.  Skipped with the reason when Flask,
Playwright or Chromium is missing; failed under CI=true.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import BUILTIN_LIFECYCLES
from reqmgmt.demo import run_demo


def _need(what: str, reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true: {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    found = os.environ.get("REQMGMT_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if found is None:
        _need("Chromium", "no Chromium found (apt-get install chromium; .ci/run installs it)")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web app on 127.0.0.1:<free port>, serving a fresh demo database."""
    try:
        from examples.webapp import create_app, open_desk
        from examples.webapp.serve import PooledServer
    except ImportError as err:
        _need("Flask", f"{err} (pip install -e '.[webapp]')")
    url = f"sqlite:///{tmp_path_factory.mktemp('webapp') / 'demo.db'}"
    assert run_demo(url, io.StringIO()) == 0
    with open_desk(url) as desk:
        server = PooledServer("127.0.0.1", 0, create_app(desk))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(10)
            server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _need("Playwright", f"{err} (pip install playwright)")
    executable = _chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


DOC_CLIP = {"x": 0, "y": 0, "width": 1100, "height": 640}


class Person:
    """One person's browser context, signed in through the person picker."""

    def __init__(self, browser: Any, base: str, shots: Path, person: str) -> None:
        self.base = base
        self.shots = shots
        self.context = browser.new_context(viewport={"width": 1100, "height": 800}, locale="en-US")
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.page.goto(f"{base}/login")
        if not any(shots.iterdir()):
            self.shot("login")
        self.press(f"button[value='{person}']", to="/inbox")

    def shot(self, name: str, page: Any = None, *, doc: bool = False) -> None:
        """A full-page screenshot, numbered in the order taken.

        ``doc``: one of the pictures of docs/embedding.md; with
        ``REQMGMT_DOCS_SHOTS=docs/img/webapp`` the test refreshes them (the top of the page
        only, to keep them small).
        """
        page = page or self.page
        number = len(list(self.shots.glob("*.png"))) + 1
        page.screenshot(path=self.shots / f"{number:02d}-{name}.png", full_page=True)
        folder = os.environ.get("REQMGMT_DOCS_SHOTS")
        if doc and folder:
            page.screenshot(path=Path(folder) / f"{name}.png", clip=DOC_CLIP)

    def open(self, ref: str, page: Any = None) -> Any:
        """Open ``ref`` from the inbox (it must be listed there) or directly."""
        page = page or self.page
        page.goto(f"{self.base}/inbox")
        page.click(f"#inbox tr[data-ref='{ref}'] a")
        page.wait_for_url(f"**/records/{ref}")
        return page

    def press(
        self, selector: str, *, to: str | None = None, status: int = 302, page: Any = None
    ) -> Any:
        """Click ``selector`` (a form's button); its POST must answer ``status``.

        302 is a command that succeeded (redirect to the page it changed);
        anything else is the error page the step expects.
        """
        page = page or self.page
        page.bring_to_front()  # a background tab's form does not submit in headless Chromium
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click(selector)
        got = answer.value
        assert got.status == status, f"{selector}: HTTP {got.status}\n{page.content()[:3000]}"
        page.wait_for_load_state()
        if to is not None:
            page.wait_for_url(f"**{to}")
        return page

    def fire(self, event: str, page: Any = None, **fields: str) -> str:
        """Fill the event's form and press its button; the flash must say it was done."""
        page = page or self.page
        form = f"#event-{event}"
        for name, value in fields.items():
            field = page.locator(f"{form} [name='{name}']")
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(value)
            else:
                field.fill(value)
        self.press(f"{form} button[data-event='{event}']", page=page)
        flash = page.locator("[role=status]").inner_text()
        assert "Done" in flash, flash
        return flash

    def sign(
        self,
        department: str,
        opinion: str,
        *,
        approve: bool = True,
        page: Any = None,
        status: int = 302,
    ) -> Any:
        """Sign (or decline) ``department``'s opinion in the review shown."""
        page = page or self.page
        page.select_option("#signoff select[name=department]", department)
        page.fill("#signoff textarea[name=opinion]", opinion)
        decision = "approve" if approve else "decline"
        return self.press(f"#signoff button[value={decision}]", page=page, status=status)

    def post(self, path: str, **form: str) -> Any:
        """A request the page's forms never make (a hostile or hand-made one), with the
        session's cookie and CSRF token."""
        token = self.page.locator("input[name=csrf]").first.get_attribute("value")
        return self.page.request.post(f"{self.base}{path}", form={"csrf": token, **form},
                                      max_redirects=0)  # fmt: skip

    def state(self, page: Any = None) -> str:
        """The record's state (its name; the page shows its label)."""
        return str((page or self.page).locator("#state").get_attribute("data-state"))

    def close(self) -> None:
        self.context.close()


def _ref(page: Any, prefix: str) -> str:
    found = re.search(rf"{prefix}-\d{{4}}-\d{{6}}", page.url)
    assert found, page.url
    return found.group(0)


def test_the_team_works_requirements_contracts_and_returns_in_a_browser(
    app_url: str, browser: Any, tmp_path: Path
) -> None:
    """Intake and three sign-offs, a stale tab's conflict, a special review with a decline,
    a return judged and disposed: every page works in Chromium, errors are 409 pages."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    people: dict[str, Person] = {}

    def who(person: str) -> Person:
        if person not in people:
            people[person] = Person(browser, app_url, shots, person)
        return people[person]

    # --- the clerk receives a requirement and starts its evaluation -----------------------
    clerk = who("zhang.wei")
    clerk.shot("inbox-clerk", doc=True)
    clerk.page.click("a[href='/new/requirement']")
    clerk.page.fill("textarea[name=description]", "冲压支架 5,000 pcs / brackets, zinc plated")
    clerk.page.select_option("select[name=priority]", "high")
    clerk.shot("new-requirement")
    clerk.press("#create button", to="/records/*")
    ref = _ref(clerk.page, "REQ")
    assert clerk.state() == "received"
    clerk.shot("requirement-received")
    clerk.fire("start_evaluation")
    assert clerk.state() == "evaluating"
    clerk.shot("requirement-evaluating")

    # --- three department heads sign from their inboxes; a stale tab is refused -----------
    engineer = who("li.na")
    engineer.shot("inbox-engineering")
    engineer.open(ref)
    engineer.shot("record-sign-off", doc=True)
    engineer.sign("engineering", "现有模具可做 existing die")
    assert "engineering" in engineer.page.locator("#signoffs").inner_text()

    materials = who("wang.fang")
    first = materials.open(ref)
    second = materials.context.new_page()  # the same record in a second tab
    materials.open(ref, page=second)
    materials.sign("materials", "材料足够 enough steel", page=first)
    materials.shot("signed-materials", first)
    materials.sign("materials", "again from the stale tab", page=second, status=409)
    alert = second.locator("[role=alert]").inner_text()
    materials.shot("stale-tab-conflict", second, doc=True)
    assert "Someone changed this record" in alert
    assert second.locator("#version").inner_text() == first.locator("#version").inner_text()
    assert "materials" in second.locator("#signoffs").inner_text()  # the fresh state

    production = who("liu.yang")
    production.open(ref)
    production.sign("production", "第12周 week 12")
    production.shot("signed-all")
    clerk.open(ref)
    clerk.fire("accept", delivery_plan="2 批: 第12周, 第14周 / 2 lots")
    assert clerk.state() == "accepted"
    clerk.shot("requirement-accepted")

    # --- a special contract: declined once, revised, reviewed again, approved -------------
    sales = who("zhou.min")
    sales.page.goto(f"{app_url}/new/contract")
    sales.page.select_option("select[name=customer]", "C-200")
    sales.page.check("input[name=flags][value=first_order]")
    sales.page.fill("input[name=product]", "冲压支架 ZJ-12 stamped bracket")
    sales.page.fill("input[name=quantity]", "25000")
    sales.page.fill("input[name=unit_price]", "10")
    sales.shot("new-contract")
    sales.press("#create button", to="/records/*")
    contract = _ref(sales.page, "CON")
    sales.fire("submit")
    assert sales.state() == "in_review"
    reviewers = {"sales": "wu.qiang", "production": "liu.yang", "engineering": "li.na",
                 "quality": "chen.jing", "materials": "wang.fang"}  # fmt: skip
    production.open(contract)
    production.sign("production", "交期不足 lead time too short", approve=False)
    assert production.state() == "draft"
    production.shot("contract-declined")
    sales.open(contract)
    sales.page.fill("#amend input[name='quantity.1']", "20000")
    sales.page.fill("#amend textarea[name=reason]", "客户同意分批 customer takes 20,000 first")
    sales.shot("contract-amend-form")
    sales.press("#amend button")
    assert "20000" in sales.page.locator("#details").inner_text()
    sales.fire("submit")
    for department, person in reviewers.items():
        signer = who(person)
        signer.open(contract)
        signer.sign(department, "同意 agree")
    manager = who("he.sm")
    manager.open(contract)
    manager.shot("contract-ready-to-approve")
    manager.fire("approve")
    assert manager.state() == "approved"
    manager.shot("contract-approved")
    with manager.page.expect_popup() as popup:  # a printed form opens in a new tab
        manager.page.click("#forms a >> nth=0")
    printed = popup.value
    printed.wait_for_load_state()
    assert contract in printed.content()
    manager.shot("printed-form", printed)
    # Requests no button makes: an event not from this state, one the person may not fire.
    version = manager.page.locator("#version").inner_text()
    wrong = manager.post(f"/records/{contract}/events/close", expected_version=version)
    assert wrong.status == 409, wrong.text()
    assert "error.invalid_transition" in wrong.text()
    assert manager.post(f"/records/{contract}/events/no_such_event").status == 404
    forged = manager.post(f"/records/{contract}/events/send", expected_version=version)
    assert forged.status == 403, forged.text()
    missing = manager.page.request.post(
        f"{app_url}/records/{contract}/events/send", form={"expected_version": version}
    )
    assert missing.status == 400  # no CSRF token
    manager.page.click("a[href^='/lang/zh']")  # the toggle: the library's reasons in Chinese
    forged = manager.post(f"/records/{contract}/events/send", expected_version=version)
    assert forged.status == 403
    assert "无权执行" in forged.text(), forged.text()
    assert "需要以下角色之一" in forged.text()
    manager.page.wait_for_url(f"**/records/{contract}")
    approved = BUILTIN_LIFECYCLES["contract"].state("approved").zh
    assert manager.page.locator("#state").inner_text() == approved
    manager.shot("contract-in-chinese", doc=True)

    # --- a return: reported, received, judged valid, disposed -----------------------------
    sales.page.goto(f"{app_url}/new/return")
    sales.page.select_option("select[name=customer]", "C-100")
    sales.page.fill("input[name=product]", "冲压支架 ZJ-12")
    sales.page.fill("input[name=quantity]", "20")
    sales.page.fill("textarea[name=reason_text]", "支架开裂 brackets crack")
    sales.press("#create button", to="/records/*")
    rma = _ref(sales.page, "RMA")
    materials.page = first
    materials.open(rma)
    materials.fire("receive_goods", receipt_no="WL-0401", quantity="20")
    materials.fire("to_quality")
    quality = who("chen.jing")
    quality.open(rma)
    # A hostile value the form never offers: refused with 422, nothing written.
    quality.page.evaluate(
        "document.querySelector(\"#event-judge_valid [name='safety_related']\").value = 'maybe'"
    )
    quality.page.check("#event-judge_valid [name='safety_related']")
    quality.page.fill("#event-judge_valid [name=findings]", "R角处开裂 cracks at the radius")
    quality.page.fill("#event-judge_valid [name=defect_category]", "crack")
    quality.page.fill("#event-judge_valid [name=cause]", "模具磨损 worn die")
    quality.press("#event-judge_valid button", status=422)
    assert "safety_related" in quality.page.locator("[role=alert]").inner_text()
    quality.shot("hostile-value-refused")
    quality.fire("judge_valid", findings="R角处开裂", defect_category="crack", cause="worn die")
    assert quality.state() == "dispositioning"
    qm = who("lin.qm")
    qm.shot("inbox-quality-manager")
    qm.open(rma)
    qm.fire("dispose", disposition="rework")
    assert qm.state() == "dispositioned"
    assert "Audit chain intact" in qm.page.locator("#verification").inner_text()
    qm.shot("return-disposed")
    director = who("xu.qd")  # the demo's late CAPA: overdue on the working calendar
    assert director.page.locator("#inbox .overdue").count() >= 1
    director.shot("inbox-overdue", doc=True)
    for person in people.values():
        person.close()
    assert len(list(shots.glob("*.png"))) >= 20
