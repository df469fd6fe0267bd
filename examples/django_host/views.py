"""JSON views over the Desk: the person from Django's login, errors as 403/404/409/422."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.utils.translation import get_language_from_request
from django.views.decorators.http import require_GET, require_POST

from reqmgmt import (
    Actor,
    ConflictError,
    Customer,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    ReqMgmtError,
    TransitionBlocked,
    ValidationError,
)

from .apps import desk

STATUS: tuple[tuple[type[ReqMgmtError], int], ...] = (
    (NotFound, 404),
    (NotAuthorized, 403),
    (ConflictError, 409),
    (InvalidTransition, 409),
    (TransitionBlocked, 409),
    (ValidationError, 422),
)
#: Keyword arguments of Desk.fire that a request's data may not set.
RESERVED = frozenset({"actor", "note", "expected_version"})
#: The views' own refusals (the library's come with their zh/en text): code -> (zh, en).
WORDS: dict[str, tuple[str, str]] = {
    "json": ("请求体不是 JSON", "the body is not JSON"),
    "version": (
        "须为 JSON 对象, 含所显示的整数版本 version; note 为字符串或省略",
        "a JSON object with the integer version shown; note a string or left out",
    ),
    "fields": (
        "须为 JSON 对象, 含字符串 customer_id, customer_name, description",
        "a JSON object with the strings customer_id, customer_name, description",
    ),
    "department": (
        "department 须为字符串 (会签部门)",
        "department must be a string (the signing department)",
    ),
}


def actor(request: HttpRequest) -> Actor:
    """The Django user as a reqmgmt Actor: groups are roles, ``dept:<name>`` groups departments."""
    user: Any = request.user
    groups = [g.name for g in user.groups.all()]
    return Actor(
        user.get_username(),
        user.get_full_name() or user.get_username(),
        roles={g for g in groups if not g.startswith("dept:")},
        departments={g.removeprefix("dept:") for g in groups if g.startswith("dept:")},
    )


def lang(request: HttpRequest) -> str:
    return "zh" if get_language_from_request(request).startswith("zh") else "en"


def malformed(request: HttpRequest, code: str, status: int) -> JsonResponse:
    """The views' own refusal of a body that is not what they take, in the user's language."""
    zh, en = WORDS[code]
    return JsonResponse({"error": zh if lang(request) == "zh" else en, "code": code}, status=status)


def refused(request: HttpRequest, err: ReqMgmtError) -> JsonResponse:
    """The library's error with its code and reasons in the user's language."""
    status = next((code for kind, code in STATUS if isinstance(err, kind)), 500)
    said = lang(request)
    reasons = [{"code": r.code, "text": r.text(said)} for r in getattr(err, "reasons", ())]
    return JsonResponse(
        {"error": err.text(said), "code": err.code, "reasons": reasons}, status=status
    )


def shown(ref: str, person: Actor) -> dict[str, Any]:
    record = desk().get(ref)
    return {
        "ref": record.ref, "state": record.state, "version": record.version,
        "due_at": record.due_at.isoformat() if record.due_at else None,
        "actions": desk().allowed_events(ref, actor=person),
    }  # fmt: skip


@login_required
@require_GET
def record(request: HttpRequest, ref: str) -> JsonResponse:
    try:
        return JsonResponse(shown(ref, actor(request)))
    except ReqMgmtError as err:
        return refused(request, err)


@login_required
@require_POST
def fire(request: HttpRequest, ref: str, event: str) -> JsonResponse:
    """``{"version": n, "note": "...", "data": {...}}``: only the event's declared data keys."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return malformed(request, "json", 400)
    if not isinstance(body, dict) or type(body.get("version")) is not int:
        return malformed(request, "version", 422)
    data = body.get("data") or {}
    note = body.get("note")
    if note is not None and type(note) is not str:
        return malformed(request, "version", 422)
    department = data.get("department", "") if isinstance(data, dict) else ""
    if event in ("sign", "decline") and type(department) is not str:
        return malformed(request, "department", 422)
    try:
        if not isinstance(data, dict) or RESERVED & set(data):
            raise ValidationError("data", data, "an object of the event's data", where=ref)
        person = actor(request)
        if event in ("sign", "decline"):
            desk().sign(
                ref,
                department=department,
                actor=person,
                approve=event == "sign",
                opinion=note or "",
                expected_version=body["version"],
            )
        else:
            desk().fire(
                ref, event, actor=person, note=note, expected_version=body["version"], **data
            )
        return JsonResponse(shown(ref, person))
    except ReqMgmtError as err:
        return refused(request, err)


@login_required
@require_POST
def receive(request: HttpRequest) -> JsonResponse:
    """A requirement taken in: ``{"customer_id", "customer_name", "description"}``."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return malformed(request, "json", 400)
    keys = ("customer_id", "customer_name", "description")
    if not isinstance(body, dict) or not all(type(body.get(k)) is str for k in keys):
        return malformed(request, "fields", 422)
    try:
        created = desk().requirements.receive(
            customer=Customer(body["customer_id"], body["customer_name"]),
            description=body["description"],
            actor=actor(request),
        )
        return JsonResponse(shown(created.ref, actor(request)), status=201)
    except ReqMgmtError as err:
        return refused(request, err)
