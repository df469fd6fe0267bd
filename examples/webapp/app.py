"""The reference web app: a Flask host of reqmgmt (docs/embedding.md).

Sign in as one of the demo's people, work the inbox of what you may do now,
act on a record with every event you are allowed, sign in a review (会签),
amend a contract and print its forms.  Every command goes through the public
API of :class:`reqmgmt.Desk`; every error it raises becomes a page in the
person's language with the HTTP status of its kind (:data:`STATUS`).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import attrs
from flask import (
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from reqmgmt import (
    Actor,
    ConflictError,
    Contract,
    ContractLine,
    Desk,
    HookError,
    InvalidTransition,
    Money,
    NotAuthorized,
    NotFound,
    Record,
    ReqMgmtError,
    StoreUnavailable,
    TransitionBlocked,
    ValidationError,
)
from reqmgmt.forms import forms_for
from reqmgmt.model import CONTRACT_TERMS, REQUIREMENT_PRIORITIES, RETURN_KINDS

from .fields import CURRENCIES, Field, day, fields_for, money, read_fields, whole
from .people import CUSTOMERS, PEOPLE, ExampleErp

# --8<-- [start:status]
#: The HTTP status of each kind of library error (the first match counts).
STATUS: tuple[tuple[type[ReqMgmtError], int], ...] = (
    (NotFound, 404),
    (NotAuthorized, 403),  # the person may not: their role, independence, a veto
    (ConflictError, 409),  # someone else changed the record first
    (InvalidTransition, 409),  # not from the record's state
    (TransitionBlocked, 409),  # a rule of the state refuses it now (unsigned departments...)
    (ValidationError, 422),  # what the form carried is wrong
    (StoreUnavailable, 503),
    (HookError, 502),  # a plugin of the host failed
)
# --8<-- [end:status]
#: Events fired as part of a larger command, never from a button of their own.
INTERNAL_EVENTS = frozenset({"replace_goods"})
LANGUAGES = ("zh", "en")
KINDS = ("requirement", "contract", "return")

#: The interface's own words; everything else comes from the library in both languages.
WORDS: dict[str, tuple[str, str]] = {
    "inbox": ("待办", "Inbox"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "who": ("请选择您的身份", "Who are you?"),
    "nothing": ("目前没有需要您处理的事项。", "Nothing waits for you now."),
    "record": ("单据", "Record"),
    "customer": ("客户", "Customer"),
    "state": ("状态", "State"),
    "actions": ("可执行操作", "What you can do"),
    "due": ("期限", "Due"),
    "overdue": ("已逾期", "overdue"),
    "left": ("剩余工作时间", "working time left"),
    "paused": ("等待客户, 计时暂停", "waiting on the customer, clock stopped"),
    "hours": ("小时", "h"),
    "version": ("版本", "version"),
    "position": ("流程位置", "Where it is"),
    "ways": ("从这里可以到", "Ways on from here"),
    "history": ("历史记录", "History"),
    "verified": ("审计链完整", "Audit chain intact"),
    "broken": ("审计链损坏", "Audit chain BROKEN"),
    "events": ("个事件", "events"),
    "signoffs": ("本轮会签", "Sign-offs of this round"),
    "forms": ("打印表单", "Printed forms"),
    "note": ("备注/理由", "Note / reason"),
    "opinion": ("意见", "Opinion"),
    "approve": ("同意", "Approve"),
    "decline": ("不同意", "Decline"),
    "department": ("部门", "Department"),
    "amend": ("合同变更", "Amend the contract"),
    "amend_reason": ("变更理由", "Reason for the change"),
    "new": ("新建", "New"),
    "create": ("创建", "Create"),
    "conflict": (
        "您打开页面之后, 其他人已修改了这张单据"
        " (您看到的是第 {expected} 版, 现在是第 {actual} 版)。"
        "您的操作未执行; 下面是最新状态, 请确认后再操作。",
        "Someone changed this record after you opened the page (you saw version {expected}, "
        "it is now version {actual}). Nothing was done; below is its current state: check it "
        "and act again.",
    ),
    "refused": ("操作被拒绝", "Refused"),
    "done": ("已完成", "Done"),
    "no_people": ("未知人员", "unknown person"),
    "lines": ("明细", "Lines"),
    "all_open": ("全部未结单据", "All open records"),
    "required": ("必填", "required"),
    "yes": ("是", "yes"),
    "line": ("行", "line"),
    "unit_price": ("单价", "unit price"),
    "quantity": ("数量", "quantity"),
    "delivery_date": ("交货日期", "delivery date"),
}


# --8<-- [start:open]
def open_desk(url: str) -> Desk:
    """The app's Desk on the database at ``url``; the one place to change to share an engine.

    With the host's SQLAlchemy engine: ``Desk.open(engine=engine, plugins=...)``.
    """
    return Desk.open(url, plugins=[ExampleErp()], create=False)


def create_app(desk: Desk, *, secret_key: str | bytes | None = None) -> Flask:
    """The Flask app serving ``desk``.

    ``secret_key`` signs the session cookie (the person signed in, the CSRF
    token, the language); a random one by default, so sessions end with the
    process.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    app.extensions["reqmgmt.desk"] = desk
    _routes(app, desk)
    return app


# --8<-- [end:open]


# --- the person, the language, the CSRF token --------------------------------------------


def lang() -> str:
    """The person's language: the toggle's choice, else the browser's Accept-Language."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return "zh" if request.accept_languages.best_match(["en", "zh"]) == "zh" else "en"


def say(word: str, **params: object) -> str:
    """An interface word in the person's language."""
    zh, en = WORDS[word]
    return (zh if lang() == "zh" else en).format(**params)


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


# --8<-- [start:csrf]
def check_csrf() -> None:
    """Every POST carries the session's token (a 400 otherwise, nothing done)."""
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        abort(400, "the form's CSRF token is missing or stale: reload the page")


# --8<-- [end:csrf]


def current_actor() -> Actor | None:
    """The person signed in (an id of :data:`PEOPLE`), or ``None``."""
    return PEOPLE.get(str(session.get("person", "")))


# --8<-- [start:version]
def expected_version() -> int:
    """The version the page showed (every command form carries it)."""
    raw = request.form.get("expected_version", "")
    return whole("expected_version", raw.strip(), "form")


# --8<-- [end:version]


def label(obj: Any) -> str:
    """The zh or en label of a State or Transition (``zh`` / ``en`` attributes)."""
    text = getattr(obj, lang(), "") or getattr(obj, "en", "")
    return str(text or getattr(obj, "name", "") or getattr(obj, "event", ""))


def error_text(err: ReqMgmtError) -> tuple[str, list[str]]:
    """The error and its reasons in the person's language."""
    reasons = [r.text(lang()) for r in getattr(err, "reasons", ())]
    return err.text(lang()), reasons


# --- reading: deadlines, rows, the diagram ------------------------------------------------


def deadline(desk: Desk, record: Record, now: datetime) -> dict[str, Any] | None:
    """The next deadline of ``record`` with the working time left or overdue."""
    if record.paused_since is not None:
        return {"paused": True}
    due = record.step_due_at or record.due_at
    if due is None:
        return None
    overdue = due <= now
    span = desk.calendar.working_time(*((due, now) if overdue else (now, due)))
    return {"at": due, "overdue": overdue, "hours": round(span / timedelta(hours=1), 1)}


# --8<-- [start:inbox]
def inbox_rows(desk: Desk, actor: Actor) -> list[dict[str, Any]]:
    """Every open record with the events ``actor`` may fire on it now, most urgent first."""
    now = desk.now()
    rows: list[dict[str, Any]] = []
    for record in desk.query():
        engine = desk.engine(record.RECORD_KIND)
        if record.state in engine.final:
            continue
        events = [
            e for e in desk.allowed_events(record.ref, actor=actor) if e not in INTERNAL_EVENTS
        ]
        if not events:
            continue
        labels = [label(engine.transition(record.state, e)) for e in events]
        due = deadline(desk, record, now)
        rows.append(
            {
                "record": record,
                "events": labels,
                "due": due,
                "state": label(engine.labels[record.state]),
            }
        )
    never = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (r["due"] or {}).get("at") or never)
    return rows


# --8<-- [end:inbox]


def position(desk: Desk, record: Record) -> dict[str, Any]:
    """The lifecycle's states with the current one marked, its ways out, and the
    Mermaid diagram (reqmgmt.diagram) with the current state highlighted."""
    from reqmgmt.diagram import mermaid

    engine = desk.engine(record.RECORD_KIND)
    lifecycle = engine.lifecycle
    ways = []
    for event in engine.events_from(record.state):
        t = engine.transition(record.state, event)
        if t is not None and event not in INTERNAL_EVENTS:
            ways.append((label(t), label(engine.labels[t.dest])))
    diagram = mermaid(lifecycle) + (
        "    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px\n"
        f"    class {record.state} current\n"
    )
    dests = {
        t.dest
        for e in engine.events_from(record.state)
        if (t := engine.transition(record.state, e))
    }
    return {
        "states": [(s.name, label(s), s.final) for s in lifecycle.states],
        "current": record.state,
        "next": dests,
        "ways": ways,
        "mermaid": diagram,
    }


def details(record: Record) -> list[tuple[str, str]]:
    """The record's own fields worth a line each (text, numbers, money, dates)."""
    skip = {"ref", "state", "version", "signoffs", "lines", "rules_version", "paused_seconds"}
    out = []
    for a in attrs.fields(type(record)):
        value = getattr(record, a.name)
        if a.name in skip or value in (None, "", (), frozenset()):
            continue
        if isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M} UTC"
        elif hasattr(value, "name") and hasattr(value, "id"):  # a customer snapshot
            value = f"{value.name} ({value.id})"
        elif isinstance(value, frozenset):
            value = ", ".join(sorted(map(str, value)))
        elif not isinstance(value, str | int | date | Money):
            continue
        out.append((a.name, str(value)))
    return out


def actions(desk: Desk, record: Record, actor: Actor) -> dict[str, Any]:
    """The forms of the record page: one per allowed event, the sign-off, the amendment."""
    engine = desk.engine(record.RECORD_KIND)
    allowed = [e for e in desk.allowed_events(record.ref, actor=actor) if e not in INTERNAL_EVENTS]
    step = engine.lifecycle.signoff_step(record.state)
    signing = None
    events: list[dict[str, Any]] = []
    for event in allowed:
        t = engine.transition(record.state, event)
        assert t is not None
        if step is not None and event in (step.sign_event, step.decline_event):
            if signing is None:
                mine = [
                    d
                    for d in step.missing(record)
                    if desk.can(record.ref, step.sign_event, actor=actor, department=d)
                ]
                signing = {"departments": mine or list(step.missing(record))}
            continue
        if event in ("amend", "revise"):
            continue  # the amendment form below
        fields: list[Field] = fields_for(desk, record, t, actor, lang())
        events.append(
            {"event": event, "label": label(t), "note_required": t.note_required, "fields": fields}
        )
    amend = None
    if isinstance(record, Contract) and {"amend", "revise"} & set(allowed):
        amend = {
            "terms": [(k, getattr(record, k)) for k in CONTRACT_TERMS],
            "lines": [x for x in record.lines if x.kind == "goods"],
        }
    return {"events": events, "signing": signing, "amend": amend}


# --- writing --------------------------------------------------------------------------------


# --8<-- [start:fire]
def fire_event(desk: Desk, record: Record, event: str, actor: Actor) -> Record:
    """Fire ``event`` (allow-listed by the record's lifecycle) with the form's typed data."""
    engine = desk.engine(record.RECORD_KIND)
    if event not in engine.events or event in INTERNAL_EVENTS:
        abort(404)
    t = engine.transition(record.state, event)
    version = expected_version()
    if t is None:  # not from this state: the library says so, with what is allowed
        return desk.fire(record.ref, event, actor=actor, expected_version=version)
    where = f"{record.ref} {event}"
    data = read_fields(fields_for(desk, record, t, actor, lang()), request.form, where)
    note = request.form.get("note", "").strip() or None
    if event == "dispose":
        disposition = data.get("disposition")
        return desk.returns.dispose(
            record.ref, str(disposition or ""), actor=actor, note=note, expected_version=version
        )
    if event == "convert_to_order":
        return desk.contracts.order_from_quotation(
            record.ref, actor=actor, note=note, expected_version=version
        )
    return desk.fire(record.ref, event, actor=actor, note=note, expected_version=version, **data)


# --8<-- [end:fire]


def amend_contract(desk: Desk, record: Record, actor: Actor) -> Record:
    """The amendment form: changed terms and line quantities / prices only."""
    if not isinstance(record, Contract):
        abort(404)
    where = f"{record.ref} amend"
    form = request.form
    changes: dict[str, Any] = {}
    for key in CONTRACT_TERMS:
        value = form.get(key, "").strip()
        if value != getattr(record, key):
            changes[key] = value
    lines = []
    for line in record.lines:
        if line.kind != "goods":
            lines.append(line)
            continue
        quantity = whole(
            f"quantity.{line.line_no}", form.get(f"quantity.{line.line_no}", "").strip(), where
        )
        price = read_money(form, f"unit_price.{line.line_no}", line.unit_price.currency, where)
        lines.append(attrs.evolve(line, quantity=quantity, unit_price=price))
    if tuple(lines) != record.lines:
        changes["lines"] = tuple(lines)
    return desk.contracts.amend(
        record.ref,
        changes,
        actor=actor,
        reason=form.get("reason", "").strip(),
        expected_version=expected_version(),
    )


def read_money(form: Mapping[str, str], key: str, currency: str, where: str) -> Money:
    """The amount field ``key`` in ``currency``."""
    return money(key, form.get(key, "").strip(), currency, where)


def create_record(desk: Desk, kind: str, actor: Actor) -> Record:
    """The intake forms: a requirement received, a contract drafted, a return reported."""
    form = request.form
    where = f"new {kind}"
    customer = CUSTOMERS.get(form.get("customer", ""))
    if customer is None:
        raise ValidationError(
            "customer", form.get("customer"), "one of " + ", ".join(CUSTOMERS), where=where
        )

    def choice(key: str, allowed: Any, default: str) -> str:
        value = form.get(key, default)
        if value not in allowed:
            raise ValidationError(key, value, "one of " + ", ".join(allowed), where=where)
        return value

    if kind == "requirement":
        return desk.requirements.receive(
            customer=customer,
            description=form.get("description", "").strip(),
            actor=actor,
            channel=choice("channel", list(desk.rules.vocabulary("requirement_channels")), "fax"),
            kind=choice("kind", list(desk.rules.vocabulary("requirement_kinds")), "order"),
            priority=choice("priority", list(REQUIREMENT_PRIORITIES), "normal"),
        )
    if kind == "contract":
        currency = choice("currency", CURRENCIES, "CNY")
        delivery = form.get("delivery_date", "").strip()
        line = ContractLine(
            line_no=1,
            product=form.get("product", "").strip(),
            specification=form.get("specification", "").strip(),
            quantity=whole("quantity", form.get("quantity", "").strip(), where),
            unit_price=read_money(form, "unit_price", currency, where),
            delivery_date=day("delivery_date", delivery, where) if delivery else None,
        )
        flags_allowed = list(desk.rules.vocabulary("contract_flags"))
        flags = form.getlist("flags")
        for flag in flags:
            if flag not in flags_allowed:
                raise ValidationError(
                    "flags", flag, "one of " + ", ".join(flags_allowed), where=where
                )
        return desk.contracts.draft(
            customer=customer,
            lines=[line],
            currency=currency,
            actor=actor,
            flags=flags,
            document=choice(
                "document", list(desk.rules.vocabulary("contract_documents")), "contract"
            ),
            channel=choice("channel", list(desk.rules.vocabulary("contract_channels")), "domestic"),
            payment_terms=form.get("payment_terms", "").strip(),
        )
    return desk.returns.report(
        customer=customer,
        product=form.get("product", "").strip(),
        actor=actor,
        kind=choice("kind", list(RETURN_KINDS), "return"),
        reason_code=choice("reason_code", list(desk.returns.reasons), "quality"),
        reason_text=form.get("reason_text", "").strip(),
        quantity=whole("quantity", form.get("quantity", "1").strip() or "1", where),
    )


# --- the routes -------------------------------------------------------------------------------


def _routes(app: Flask, desk: Desk) -> None:
    @app.context_processor
    def helpers() -> dict[str, Any]:
        return {
            "say": say,
            "lang": lang(),
            "csrf_token": csrf_token,
            "me": current_actor(),
            "label": label,
            "people": PEOPLE,
        }

    def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(**kw: Any) -> Any:
            if current_actor() is None:
                return redirect(url_for("login"))
            if request.method == "POST":
                check_csrf()
            return view(**kw)

        wrapper.__name__ = view.__name__
        return wrapper

    # --8<-- [start:refused]
    @app.errorhandler(ReqMgmtError)
    def refused(err: ReqMgmtError) -> tuple[str, int]:
        status = next((code for kind, code in STATUS if isinstance(err, kind)), 500)
        message, reasons = error_text(err)
        if isinstance(err, ConflictError) and err.expected and err.actual:
            message = say("conflict", expected=err.expected, actual=err.actual)
        ref = (request.view_args or {}).get("ref")
        actor = current_actor()
        if ref and actor is not None and not isinstance(err, NotFound):
            page = record_page(
                str(ref), actor, error={"message": message, "reasons": reasons, "code": err.code}
            )
            return page, status
        return render_template(
            "error.html", message=message, reasons=reasons, code=err.code
        ), status

    # --8<-- [end:refused]

    def record_page(ref: str, actor: Actor, error: dict[str, Any] | None = None) -> str:
        record = desk.get(ref)
        engine = desk.engine(record.RECORD_KIND)
        events = desk.history(ref)
        return render_template(
            "record.html",
            record=record,
            kind=label(engine.lifecycle),
            state=label(engine.labels[record.state]),
            position=position(desk, record),
            details=details(record),
            history=events,
            check=desk.verify_history(ref),
            actions=actions(desk, record, actor),
            error=error,
            due=deadline(desk, record, desk.now()),
            forms=[(s.name, s.zh if lang() == "zh" else s.en) for s in forms_for(record, events)],
            signoffs=record.round_signoffs(),
        )

    @app.get("/")
    def home() -> Response:
        return redirect(url_for("inbox" if current_actor() else "login"))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            check_csrf()
            person = request.form.get("person", "")
            if person not in PEOPLE:
                abort(400, "no such person")
            session["person"] = person
            return redirect(url_for("inbox"))
        return render_template("login.html")

    @app.post("/logout")
    def logout() -> Response:
        check_csrf()
        session.pop("person", None)
        return redirect(url_for("login"))

    @app.get("/lang/<code>")
    def choose_language(code: str) -> Response:
        if code not in LANGUAGES:
            abort(404)
        session["lang"] = code
        back = request.args.get("next", "")
        safe = back.startswith("/") and not back.startswith("//") and "\\" not in back
        return redirect(back if safe else url_for("home"))

    @app.get("/inbox")
    @signed_in
    def inbox() -> str:
        actor = current_actor()
        assert actor is not None
        creatable = [k for k in KINDS if actor.roles & desk.engine(k).lifecycle.create_roles]
        return render_template("inbox.html", rows=inbox_rows(desk, actor), creatable=creatable)

    @app.get("/records/<ref>")
    @signed_in
    def record(ref: str) -> str:
        actor = current_actor()
        assert actor is not None
        return record_page(ref, actor)

    def done(after: Record) -> Response:
        engine = desk.engine(after.RECORD_KIND)
        flash(
            f"{say('done')}: {after.ref} → {label(engine.labels[after.state])} "
            f"({say('version')} {after.version})"
        )
        return redirect(url_for("record", ref=after.ref))

    @app.post("/records/<ref>/events/<event>")
    @signed_in
    def fire(ref: str, event: str) -> Response:
        actor = current_actor()
        assert actor is not None
        return done(fire_event(desk, desk.get(ref), event, actor))

    # --8<-- [start:sign]
    @app.post("/records/<ref>/sign")
    @signed_in
    def sign(ref: str) -> Response:
        actor = current_actor()
        assert actor is not None
        decision = request.form.get("decision", "")
        if decision not in ("approve", "decline"):
            raise ValidationError("decision", decision, "approve or decline", where=f"{ref} sign")
        after = desk.sign(
            ref,
            department=request.form.get("department", ""),
            actor=actor,
            approve=decision == "approve",
            opinion=request.form.get("opinion", "").strip(),
            expected_version=expected_version(),
        )
        return done(after)

    # --8<-- [end:sign]

    @app.post("/records/<ref>/amend")
    @signed_in
    def amend(ref: str) -> Response:
        actor = current_actor()
        assert actor is not None
        return done(amend_contract(desk, desk.get(ref), actor))

    @app.get("/records/<ref>/forms/<name>")
    @signed_in
    def printed(ref: str, name: str) -> str:
        record = desk.get(ref)
        if name not in {s.name for s in forms_for(record, desk.history(ref))}:
            abort(404)
        return desk.form(ref, name)

    @app.route("/new/<kind>", methods=["GET", "POST"])
    @signed_in
    def new(kind: str) -> Any:
        actor = current_actor()
        assert actor is not None
        if kind not in KINDS:
            abort(404)
        if request.method == "POST":
            created = create_record(desk, kind, actor)
            return done(created)
        vocab = {
            n: list(desk.rules.vocabulary(n))
            for n in (
                "requirement_channels",
                "requirement_kinds",
                "contract_flags",
                "contract_documents",
                "contract_channels",
            )
        }
        return render_template(
            "new.html",
            kind=kind,
            customers=CUSTOMERS,
            vocab=vocab,
            priorities=REQUIREMENT_PRIORITIES,
            return_kinds=RETURN_KINDS,
            reasons=desk.returns.reasons,
            currencies=CURRENCIES,
        )
