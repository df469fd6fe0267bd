"""The reference web app (examples/webapp) through Flask's test client: no browser, no server.

Every form field is hostile: the person, the event, the data, the version and the
CSRF token are checked before the library is asked; the library's errors come back
as 403/404/409/422 pages in the person's language.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import Actor, Desk, Requirement
from reqmgmt import demo as demo_module

ROOT = Path(__file__).resolve().parents[2]

try:
    from examples.webapp import create_app
    from examples.webapp.people import CUSTOMERS, PEOPLE, ExampleErp
except ImportError as missing:  # Flask is the `webapp` extra
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(f"{missing} (pip install -e '.[webapp]')", allow_module_level=True)


@pytest.fixture
def desk() -> Iterator[Desk]:
    with Desk.open("memory://", plugins=[ExampleErp()]) as opened:
        yield opened


@pytest.fixture
def client(desk: Desk) -> Any:
    return create_app(desk, secret_key="test").test_client()


def sign_in(client: Any, person: str, lang: str = "en") -> str:
    """Sign in through the picker; return the session's CSRF token."""
    client.get(f"/lang/{lang}")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    answer = client.post("/login", data={"person": person, "csrf": token.group(1)})
    assert answer.status_code == 302
    return token.group(1)


def evaluating(desk: Desk) -> Requirement:
    """A requirement in its evaluation review (engineering, materials, production sign)."""
    clerk = PEOPLE["zhang.wei"]
    req = desk.requirements.receive(customer=CUSTOMERS["C-100"], description="支架", actor=clerk)
    record = desk.fire(req.ref, "start_evaluation", actor=clerk)
    assert isinstance(record, Requirement)
    return record


def test_the_people_are_the_demos() -> None:
    """The picker offers exactly the people the demo acts as (ids, roles, departments)."""
    demo = {a.id: a for a in vars(demo_module).values() if isinstance(a, Actor)}
    assert demo == PEOPLE


def test_signing_in_takes_only_a_known_person_with_the_token(client: Any) -> None:
    """An unknown person or a missing CSRF token is refused; the inbox needs a person."""
    assert client.get("/inbox").status_code == 302
    token = sign_in(client, "li.na")
    assert client.post("/login", data={"person": "root", "csrf": token}).status_code == 400
    assert client.post("/login", data={"person": "li.na"}).status_code == 400
    assert "李娜" in client.get("/inbox").get_data(as_text=True)


def test_a_sign_off_in_the_browser_form_is_the_librarys(client: Any, desk: Desk) -> None:
    """The engineer signs from the record page's form; the audit keeps the opinion."""
    record = evaluating(desk)
    token = sign_in(client, "li.na")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert record.ref in inbox
    page = client.get(f"/records/{record.ref}").get_data(as_text=True)
    assert 'id="signoff"' in page
    assert 'aria-current="step"' in page
    answer = client.post(
        f"/records/{record.ref}/sign",
        data={
            "csrf": token,
            "expected_version": str(record.version),
            "department": "engineering",
            "decision": "approve",
            "opinion": "现有模具可做",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert desk.history(record.ref)[-1].note == "现有模具可做"


def test_a_stale_version_is_a_409_page_with_the_fresh_state(client: Any, desk: Desk) -> None:
    """The form's expected_version is older than the record: 409, nothing written."""
    record = evaluating(desk)
    desk.sign(record.ref, department="engineering", actor=PEOPLE["li.na"])
    token = sign_in(client, "wang.fang")
    answer = client.post(
        f"/records/{record.ref}/sign",
        data={
            "csrf": token,
            "expected_version": str(record.version),
            "department": "materials",
            "decision": "approve",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 409
    assert "Someone changed this record" in page
    assert f'<span id="version">{record.version + 1}</span>' in page
    assert desk.get(record.ref).version == record.version + 1


@pytest.mark.parametrize(
    ("person", "event", "data", "status", "code"),
    [
        # not the person's role
        ("li.na", "cancel", {"note": "x"}, 403, "error.not_authorized"),
        # not from this state
        ("zhang.wei", "close", {}, 409, "error.invalid_transition"),
        # a required note missing
        ("zhang.wei", "cancel", {}, 422, "error.validation"),
        # a word outside the vocabulary the form offers
        ("zhang.wei", "identify", {"kind": "made_up", "text": "x"}, 422, "error.validation"),
        # no such event at all
        ("zhang.wei", "drop_table", {}, 404, None),
    ],
)
def test_library_errors_map_to_statuses(
    client: Any, desk: Desk, person: str, event: str, data: dict[str, str], status: int,
    code: str | None,
) -> None:  # fmt: skip
    """403 not authorized, 409 invalid transition, 422 validation, 404 unknown event."""
    record = evaluating(desk)
    token = sign_in(client, person)
    answer = client.post(
        f"/records/{record.ref}/events/{event}",
        data={"csrf": token, "expected_version": str(record.version), **data},
    )
    assert answer.status_code == status, answer.get_data(as_text=True)
    if code is not None:
        assert code in answer.get_data(as_text=True)
    assert desk.get(record.ref).version == record.version  # nothing written


@pytest.mark.parametrize("version", ["", "abc", "-1", "1e3", "9" * 40])
def test_a_version_that_is_no_whole_number_is_a_422(client: Any, desk: Desk, version: str) -> None:
    """expected_version is typed: digits only, or the command is refused before it runs."""
    record = evaluating(desk)
    token = sign_in(client, "zhang.wei")
    answer = client.post(
        f"/records/{record.ref}/events/remark",
        data={"csrf": token, "expected_version": version, "note": "x"},
    )
    assert answer.status_code == 422
    assert desk.get(record.ref).version == record.version


@pytest.mark.parametrize(
    ("field", "value"),
    [("delivery_date", "2026-13-45"), ("delivery_date", "soon"), ("quantity", "1e6"),
     ("unit_price", "10.001"), ("currency", "XBT"), ("flags", "vip"), ("customer", "C-999")],
)  # fmt: skip
def test_a_hostile_intake_form_is_a_422_and_creates_nothing(
    client: Any, desk: Desk, field: str, value: str
) -> None:
    """Each field of the new-contract form is converted or refused, never a 500."""
    token = sign_in(client, "zhou.min")
    form = {"csrf": token, "customer": "C-200", "product": "支架", "quantity": "100",
            "unit_price": "10", "currency": "CNY", "delivery_date": "2027-01-15"}  # fmt: skip
    assert client.post("/new/contract", data=form).status_code == 302  # the valid one
    answer = client.post("/new/contract", data={**form, field: value})
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert field in answer.get_data(as_text=True)
    assert len(desk.query(kind="contract")) == 1


def test_reasons_come_in_the_persons_language(client: Any, desk: Desk) -> None:
    """The toggle (or Accept-Language) chooses zh: the library's Chinese reasons."""
    record = evaluating(desk)
    token = sign_in(client, "li.na", lang="zh")
    answer = client.post(
        f"/records/{record.ref}/events/cancel",
        data={"csrf": token, "expected_version": "2", "note": "x"},
    )
    assert answer.status_code == 403
    assert "无权执行" in answer.get_data(as_text=True)
    fresh = create_app(desk, secret_key="t").test_client()
    page = fresh.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "请选择您的身份" in page.get_data(as_text=True)


def test_the_language_toggle_only_redirects_inside_the_app(client: Any) -> None:
    """An open redirect through ?next= is refused."""
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",  # browsers drop the tab: //evil.example
        "/\r\n/x",  # a header split: was a 500
        "/\u00e9/x",
    ):
        answer = client.get("/lang/en", query_string={"next": target})
        assert answer.status_code == 302, target
        assert answer.headers["Location"] == "/", target
    assert client.get("/lang/en", query_string={"next": "/inbox"}).headers["Location"] == "/inbox"
    assert client.get("/lang/fr").status_code == 404


def test_a_refusal_on_a_record_that_does_not_exist_is_not_a_500(client: Any) -> None:
    """The error page falls back to the plain page when the record cannot be drawn."""
    csrf = sign_in(client, "li.na")
    answer = client.post(
        "/records/NO-SUCH-REF/sign",
        data={"csrf": csrf, "expected_version": "x", "decision": "maybe"},
    )
    assert answer.status_code in (404, 422), answer.status_code


def test_werkzeug_refusals_use_the_app_page_in_the_person_language(client: Any) -> None:
    sign_in(client, "li.na", lang="zh")
    answer = client.get("/no/such/page")
    assert answer.status_code == 404
    assert "找不到该页面或单据" in answer.get_data(as_text=True)
    answer = client.get("/logout")  # a POST route
    assert answer.status_code == 405
    assert "此地址不接受这种请求" in answer.get_data(as_text=True)


def test_the_example_runs_as_a_module_without_serving(tmp_path: Path) -> None:
    """docs/embedding.md's command with `--check`: the demo's database, every inbox, exit 0."""
    page = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    commands = re.search(r"## The reference web app.*?```sh\n(.*?)```", page, re.S)
    assert commands, "docs/embedding.md lost the commands that start the web app"
    install, run = commands.group(1).strip().splitlines()
    assert "pip install -e '.[webapp]'" in install
    assert run.split()[0] == ".venv/bin/python"
    db = tmp_path / "reqmgmt.db"
    done = subprocess.run(
        [sys.executable, *run.split()[1:], "--check", "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert db.exists()
    assert re.search(r"zhang\.wei: [1-9]\d* record\(s\) to act on", done.stdout)
    missing = subprocess.run(
        [sys.executable, "-m", "examples.webapp", "--check", "--db", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert missing.returncode == 2
    assert "reqmgmt demo" in missing.stderr


def test_an_amendment_keeps_the_terms_the_form_did_not_send(client: Any, desk: Desk) -> None:
    """A term missing from the POST (an old page, a script) is kept, not blanked."""
    token = sign_in(client, "zhang.wei")
    made = client.post(
        "/new/contract",
        data={"csrf": token, "customer": "C-100", "product": "p", "quantity": "5",
              "unit_price": "10", "payment_terms": "30 days net"},
    )  # fmt: skip
    assert made.status_code == 302, made.get_data(as_text=True)[:300]
    ref = made.headers["Location"].rsplit("/", 1)[-1]
    answer = client.post(
        f"/records/{ref}/amend",
        data={"csrf": token, "expected_version": "1", "quantity.1": "7", "unit_price.1": "10",
              "reason": "more pieces"},
    )  # fmt: skip
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    contract = desk.get(ref)
    assert contract.payment_terms == "30 days net"  # type: ignore[attr-defined]
    assert contract.lines[0].quantity == 7  # type: ignore[attr-defined]


def test_a_record_where_one_can_only_remark_is_not_in_the_inbox(client: Any, desk: Desk) -> None:
    """Anyone may remark on (or identify a requirement of) any open record; that alone
    puts nothing in a person's inbox: the VP has no part in a fresh intake."""
    clerk = PEOPLE["zhang.wei"]
    fresh = desk.requirements.receive(customer=CUSTOMERS["C-100"], description="支架", actor=clerk)
    sign_in(client, "chen.vp")
    assert set(desk.allowed_events(fresh.ref, actor=PEOPLE["chen.vp"])) <= {"remark", "identify"}
    assert fresh.ref not in client.get("/inbox").get_data(as_text=True)
    sign_in(client, "zhang.wei")
    assert fresh.ref in client.get("/inbox").get_data(as_text=True)
