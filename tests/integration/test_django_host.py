"""The Django host of docs/embedding.md (examples/django_host) with Django's test client.

A minimal project configured here: SQLite in the test's temp dir, shared by
Django's tables (auth, sessions) and reqmgmt's; the Desk is opened in
``AppConfig.ready()``.  Django is a test dependency only (the ``dev`` extra).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import django
    from django.conf import settings
except ImportError as missing:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(f"{missing} (pip install django; the dev extra has it)", allow_module_level=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Django set up once (settings can be configured once per process), tables made."""
    if settings.configured:
        pytest.skip("Django was configured by another test of this process")
    db = tmp_path_factory.mktemp("django") / "erp.sqlite3"
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        ROOT_URLCONF="examples.django_host.urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "examples.django_host.apps.ReqmgmtConfig",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
        LOGIN_URL="/login",
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    yield db
    from examples.django_host.apps import ReqmgmtConfig

    if ReqmgmtConfig.desk is not None:
        ReqmgmtConfig.desk.close()


def user(name: str, *groups: str) -> Any:
    from django.contrib.auth.models import Group, User

    made = User.objects.create_user(name, password=None)
    for g in groups:
        made.groups.add(Group.objects.get_or_create(name=g)[0])
    return made


def client_for(person: Any, lang: str = "en") -> Any:
    from django.test import Client

    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(person)
    return client


def post(client: Any, path: str, body: object) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_a_django_host_takes_in_and_reviews_a_requirement(project: Path) -> None:
    """Receive, start, sign through Django views; errors are 403/409/422 in the user's language;
    reqmgmt's tables live in Django's own database."""
    clerk = client_for(user("clerk", "sales"))
    engineer = client_for(user("engineer", "dept:engineering"), lang="zh-CN")
    made = post(
        clerk,
        "/requirements",
        {"customer_id": "C-100", "customer_name": "华南五金", "description": "支架 brackets"},
    )
    assert made.status_code == 201, made.content
    ref, version = made.json()["ref"], made.json()["version"]
    assert "start_evaluation" in made.json()["actions"]

    started = post(clerk, f"/records/{ref}/start_evaluation", {"version": version})
    assert started.status_code == 200, started.content
    assert started.json()["state"] == "evaluating"

    stale = post(clerk, f"/records/{ref}/remark", {"version": version, "note": "old page"})
    assert stale.status_code == 409
    assert stale.json()["code"] == "error.conflict.version"

    version = started.json()["version"]
    refused = post(engineer, f"/records/{ref}/cancel", {"version": version, "note": "no"})
    assert refused.status_code == 403
    assert "无权执行" in refused.json()["error"]  # Accept-Language: zh-CN
    assert refused.json()["reasons"][0]["code"] == "authorize.role"

    wrong = post(clerk, f"/records/{ref}/close", {"version": version})
    assert wrong.status_code == 409
    assert wrong.json()["code"] == "error.invalid_transition"

    unknown = post(
        clerk,
        f"/records/{ref}/identify",
        {"version": version, "data": {"kind": "made_up", "text": "x"}},
    )
    assert unknown.status_code == 422
    assert post(clerk, f"/records/{ref}/remark", {"version": "2"}).status_code == 422
    forged = {"version": version, "note": "x", "data": {"actor": "vp"}}
    assert post(clerk, f"/records/{ref}/remark", forged).status_code == 422

    signed = post(
        engineer,
        f"/records/{ref}/sign",
        {"version": version, "note": "现有模具可做", "data": {"department": "engineering"}},
    )
    assert signed.status_code == 200, signed.content
    assert engineer.get(f"/records/{ref}").json()["version"] == version + 1
    assert engineer.get("/records/REQ-1999-000001").status_code == 404

    # One database: Django's auth tables and reqmgmt's records side by side.
    with sqlite3.connect(project) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "auth_user" in tables
    assert "rq_records" in tables  # reqmgmt's tables carry the prefix rq_


def test_views_need_a_logged_in_user_and_a_csrf_token(project: Path) -> None:
    """Anonymous requests go to the login; a POST without Django's CSRF token is refused."""
    from django.test import Client

    assert Client().get("/records/REQ-2026-000001").status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user("clerk2", "sales"))
    assert post(strict, "/requirements", {}).status_code == 403


def test_a_body_that_is_not_the_object_asked_for_is_400_or_422(project: Path) -> None:
    """Not JSON: 400; a list, or fields that are not strings: 422, and nothing created."""
    from examples.django_host.apps import desk

    before = len(desk().query(kind="requirement"))
    clerk = client_for(user("json-clerk", "sales"))
    garbage = clerk.post("/requirements", data=b"{nope", content_type="application/json")
    assert garbage.status_code == 400
    for body in (
        [1, 2],
        {"customer_id": {"a": 1}, "customer_name": "x", "description": "y"},
        {"customer_id": "C-1", "customer_name": "x"},
    ):
        assert post(clerk, "/requirements", body).status_code == 422, body
    assert len(desk().query(kind="requirement")) == before


def test_the_views_own_refusals_are_in_the_users_language_and_typed(project: Path) -> None:
    """Not JSON, a wrong version, a note or department that is not a string: 400/422 with
    the views' text in zh or en, nothing signed, nothing coerced with str()."""
    from examples.django_host.apps import desk

    clerk = client_for(user("typed-clerk", "sales"), lang="zh-CN")
    signer = client_for(user("typed-engineer", "dept:engineering"))
    made = post(
        clerk,
        "/requirements",
        {"customer_id": "C-101", "customer_name": "华南五金", "description": "铰链 hinges"},
    )
    ref = made.json()["ref"]
    version = post(clerk, f"/records/{ref}/start_evaluation", {"version": made.json()["version"]})
    version = version.json()["version"]

    garbage = clerk.post("/requirements", data=b"{nope", content_type="application/json")
    assert (garbage.status_code, garbage.json()["error"]) == (400, "请求体不是 JSON")
    fields = post(clerk, "/requirements", [1])
    assert (fields.status_code, fields.json()["code"]) == (422, "fields")
    assert "字符串" in fields.json()["error"]
    bad_version = post(clerk, f"/records/{ref}/remark", {"version": "2"})
    assert (bad_version.status_code, bad_version.json()["code"]) == (422, "version")
    assert "整数版本" in bad_version.json()["error"]

    before = desk().get(ref)
    for body in (
        {"version": version, "note": {"a": 1}, "data": {"department": "engineering"}},
        {"version": version, "note": 5, "data": {"department": "engineering"}},
        {"version": version, "data": {"department": ["engineering"]}},
        {"version": version, "data": {"department": 7}},
    ):
        answer = post(signer, f"/records/{ref}/sign", body)
        assert answer.status_code == 422, (body, answer.content)
        assert answer.json()["code"] in {"version", "department"}
        assert answer.json()["error"].isascii()  # Accept-Language: en
    after = desk().get(ref)
    assert (after.version, after.state) == (before.version, before.state)
