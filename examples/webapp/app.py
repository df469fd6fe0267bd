"""The reference web app: a Flask host of reqmgmt (docs/embedding.md).

Sign in as one of the demo's people, work the inbox of what you may do now,
act on a record with every event you are allowed, sign in a review (会签),
amend a contract and print its forms.  Every command goes through the public
API of :class:`reqmgmt.Desk`; every error it raises becomes a page in the
person's language with the HTTP status of its kind (:data:`STATUS`).

This module holds the app and its routes; ``pages`` what the pages show,
``commands`` what the forms do, ``fields`` the typed event data, ``words`` the
interface's two languages, ``people`` the demo's people, ``serve`` the server.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

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
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from reqmgmt import (
    Actor,
    ConfigError,
    ConflictError,
    Desk,
    HookError,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    Record,
    ReqMgmtError,
    StoreUnavailable,
    TransitionBlocked,
    ValidationError,
)
from reqmgmt.forms import forms_for
from reqmgmt.model import REQUIREMENT_PRIORITIES, RETURN_KINDS

from .commands import amend_contract, create_record, expected_version, fire_event
from .fields import CURRENCIES
from .pages import (
    PAGE_SIZE,
    actions,
    deadline,
    details,
    inbox_candidates,
    inbox_rows,
    page_number,
    position,
)
from .people import CUSTOMERS, PEOPLE, ExampleErp
from .words import LANGUAGES, WORDS, both, label, lang, say

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
KINDS = ("requirement", "contract", "return")


# --8<-- [start:open]
def open_desk(url: str) -> Desk:
    """The app's Desk on the database at ``url``; the one place to change to share an engine.

    With the host's SQLAlchemy engine: ``Desk.open(engine=engine, plugins=...)``.
    """
    return Desk.open(url, plugins=[ExampleErp()], create=False)


def create_app(
    desk: Desk, *, secret_key: str | bytes | None = None, page_size: int = PAGE_SIZE
) -> Flask:
    """The Flask app serving ``desk``.

    ``secret_key`` signs the session cookie (the person signed in, the CSRF
    token, the language); a random one by default, so sessions end with the
    process.  ``page_size``: the open records an inbox page looks at (and
    lists at most).
    """
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
        raise ConfigError(f"create_app(page_size={page_size!r})", "a whole number from 1")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
        # Open records per inbox page: a page's cost is bounded whatever the store holds.
        INBOX_PAGE_SIZE=page_size,
    )
    app.extensions["reqmgmt.desk"] = desk
    _routes(app, desk)
    return app


# --8<-- [end:open]


# --- the person, the CSRF token ---------------------------------------------------------


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


def _local_path(target: str) -> bool:
    """``target`` is a path on this site: printable ASCII, one leading ``/``, no scheme or host.

    Browsers drop tabs and newlines in a URL and read ``\\`` as ``/``, so
    ``/\t/evil.example`` would leave the site: anything but printable ASCII
    is refused before the parse.
    """
    if not target.startswith("/") or not target.isascii() or not target.isprintable():
        return False
    if target.startswith("//") or "\\" in target:
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def current_actor() -> Actor | None:
    """The person signed in (an id of :data:`PEOPLE`), or ``None``."""
    return PEOPLE.get(str(session.get("person", "")))


def error_text(err: ReqMgmtError) -> tuple[str, list[str]]:
    """The error and its reasons in the person's language."""
    reasons = [r.text(lang()) for r in getattr(err, "reasons", ())]
    return err.text(lang()), reasons


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
        if isinstance(err, ConflictError) and err.code == "error.conflict.version":
            # someone changed it; a version the record never had keeps the library's text
            message = say("conflict", expected=err.expected, actual=err.actual)
        ref = (request.view_args or {}).get("ref")
        actor = current_actor()
        if ref and actor is not None and not isinstance(err, NotFound):
            try:  # the record's page with the refusal on it, if the record can be shown
                shown = {"message": message, "reasons": reasons, "code": err.code}
                return record_page(str(ref), actor, error=shown), status
            except ReqMgmtError:  # no such record, the store unavailable: the plain page
                pass
        return render_template(
            "error.html", message=message, reasons=reasons, code=err.code
        ), status

    # --8<-- [end:refused]

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> tuple[str, int]:
        """Werkzeug's own refusals (400, 404, 405, 413) on the app's page, in the person's
        language."""
        status = err.code or 500
        word = f"http_{status}" if f"http_{status}" in WORDS else "http_other"
        return render_template(
            "error.html", message=say(word), reasons=[], code=f"http {status}"
        ), status

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
        return redirect(back if _local_path(back) else url_for("home"))

    @app.get("/inbox")
    @signed_in
    def inbox() -> str:
        actor = current_actor()
        assert actor is not None
        creatable = [k for k in KINDS if actor.roles & desk.engine(k).lifecycle.create_roles]
        size = int(app.config["INBOX_PAGE_SIZE"])
        candidates = inbox_candidates(desk)
        pages = max(1, -(-len(candidates) // size))
        page = page_number(request.args.get("page", ""), pages)
        shown = candidates[(page - 1) * size : page * size]
        return render_template(
            "inbox.html",
            rows=inbox_rows(desk, actor, shown),
            creatable=creatable,
            page=page,
            pages=pages,
        )

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
            raise ValidationError("decision", decision, both("x_decision"), where=f"{ref} sign")
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
