"""The exceptions reqmgmt raises, all under :class:`ReqMgmtError`.

Each error carries the fields a caller needs to react programmatically and a
message a person can act on: what was wrong, where, and what is allowed
instead.  Every error also has a stable ``code`` (``error.not_authorized``),
its ``params`` and the message in English (``en``, which is ``str(exc)``)
and Chinese (``zh``); the codes and both templates are listed in
docs/errors.md (:data:`reqmgmt.i18n.CATALOGUE`).  Where a builtin exception
fits, the error subclasses it too, so ``except ValueError`` in a host keeps
working.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence

from .i18n import CATALOGUE, Reason, Text, render

__all__ = [
    "ConfigError",
    "ConflictError",
    "HookError",
    "ImportFailed",
    "InvalidTransition",
    "NoDatabase",
    "NotAuthorized",
    "NotFound",
    "ReqMgmtError",
    "RuleError",
    "StoreUnavailable",
    "TamperedRecord",
    "TransitionBlocked",
    "ValidationError",
]


_NONE = Text("none", "无")


def _listing(items: Iterable[str]) -> str:
    names = [repr(i) for i in items]
    return ", ".join(names) if names else _NONE


def _reasons(reasons: Iterable[str]) -> tuple[Reason, ...]:
    # A host's plain text becomes a Reason with the generic code "text".
    return tuple(r if isinstance(r, Reason) else Reason.plain(r) for r in reasons)


def _shown(value: object) -> str:
    # A 10,000-character input is named, not repeated, in the message.
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:120]}... ({len(text)} characters in all)"


class ReqMgmtError(Exception):
    """Root of every error reqmgmt raises on purpose.

    ``code`` names the kind of error (stable; the catalogue in docs/errors.md),
    ``params`` the values its message was formatted with, ``en`` is the
    message (``str(exc)``) and ``zh`` the same in Chinese.
    """

    #: The code of an error raised with a message only (a subclass names its own).
    code: str = "error"
    #: The values the message was formatted with.
    params: Mapping[str, object]

    def _say(self, code: str, **params: object) -> str:
        """Set ``code`` and ``params``; return the English message."""
        self.code = code
        self.params = params
        return CATALOGUE[code].en.format(**{k: render(v, "en") for k, v in params.items()})

    @property
    def en(self) -> str:
        """The message in English (``str(exc)``)."""
        return str(self)

    @property
    def zh(self) -> str:
        """The message in Chinese (refs, identifiers and values as they are)."""
        params = getattr(self, "params", None)
        if params is None:  # raised with a message only
            params = {"message": str(self)}
        template = CATALOGUE.get(self.code) or CATALOGUE["error"]
        return template.zh.format(**{k: render(v, "zh") for k, v in params.items()})

    def text(self, lang: str) -> str:
        """The message in ``lang`` (``"en"`` or ``"zh"``)."""
        return self.zh if lang == "zh" else str(self)


class ValidationError(ReqMgmtError, ValueError):
    """A value given to reqmgmt is not acceptable.

    ``field`` names the field or argument, ``value`` is what was received and
    ``expected`` says what is allowed instead.
    """

    def __init__(self, field: str, value: object, expected: str, *, where: str = "") -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.where = where
        place = f"{where}.{field}" if where else field
        # ``expected`` may be a Text (a Reason): its Chinese goes into ``zh``.
        super().__init__(
            self._say("error.validation", place=place, value=_shown(value), expected=expected)
        )


class ConfigError(ReqMgmtError, ValueError):
    """A declaration, rule set or setting is wrong.

    ``location`` says where (a file, a lifecycle, a table and row); ``problems``
    lists every mistake found there, not only the first.
    """

    def __init__(self, location: str, problems: str | Sequence[str]) -> None:
        self.location = location
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        if len(self.problems) == 1:
            text = self._say("error.config", location=location, problem=self.problems[0])
        else:
            text = self._say(
                "error.config.many",
                location=location,
                count=len(self.problems),
                problems="\n".join(f"  - {p}" for p in self.problems),
            )
        super().__init__(text)


class NotFound(ReqMgmtError, LookupError):
    """No record with that reference (or at that version) exists."""

    def __init__(self, ref: str, *, version: int | None = None, hint: str = "") -> None:
        self.ref = ref
        self.version = version
        more = Text(f"; {hint}", f"；{getattr(hint, 'zh', hint)}") if hint else ""
        if version is None:
            super().__init__(self._say("error.not_found", ref=ref, hint=more))
        else:
            super().__init__(
                self._say("error.not_found.version", ref=ref, version=version, hint=more)
            )


class InvalidTransition(ReqMgmtError, ValueError):
    """The event does not exist, or is not allowed from the record's state."""

    def __init__(self, ref: str, kind: str, state: str, event: str, allowed: Sequence[str]) -> None:
        self.ref = ref
        self.kind = kind
        self.state = state
        self.event = event
        self.allowed: tuple[str, ...] = tuple(allowed)
        super().__init__(
            self._say(
                "error.invalid_transition",
                kind=kind,
                ref=ref,
                event=event,
                state=state,
                allowed=_listing(self.allowed),
            )
        )


class NotAuthorized(ReqMgmtError, PermissionError):
    """The actor may not fire this event on this record; ``reasons`` say why."""

    def __init__(self, ref: str, event: str, actor: str, reasons: Sequence[str]) -> None:
        self.ref = ref
        self.event = event
        self.actor = actor
        self.reasons: tuple[Reason, ...] = _reasons(reasons)
        super().__init__(
            self._say(
                "error.not_authorized", ref=ref, actor=actor, event=event, reasons=self.reasons
            )
        )


class TransitionBlocked(ReqMgmtError):
    """A guard, sign-off rule or plugin blocked an otherwise legal event.

    Plugins raise it from ``reqmgmt_before_transition``; ``reasons`` say what
    must happen first: :class:`~reqmgmt.i18n.Reason` objects (a plain string
    given becomes one with the code ``text``).
    """

    def __init__(
        self, reasons: str | Sequence[str], *, ref: str = "", event: str = "", state: str = ""
    ) -> None:
        self.reasons: tuple[Reason, ...] = _reasons(
            (reasons,) if isinstance(reasons, str) else reasons
        )
        self.ref = ref
        self.event = event
        self.state = state
        super().__init__(self._text())

    def _text(self) -> str:
        where = Text(f"{self.ref}: ", f"{self.ref}：") if self.ref else ""
        if self.event:
            return self._say(
                "error.transition_blocked",
                where=where,
                event=self.event,
                state=self.state,
                reasons=self.reasons,
            )
        return self._say("error.transition_blocked.bare", where=where, reasons=self.reasons)

    def locate(self, ref: str, event: str, state: str) -> TransitionBlocked:
        """Fill in where it happened (for errors a plugin raised without it)."""
        self.ref, self.event, self.state = ref, event, state
        self.args = (self._text(),)
        return self


class HookError(ReqMgmtError):
    """A plugin's hook answered something it may not, or raised.

    ``plugin`` names the plugin, ``hook`` the hook, ``answer`` is a short
    ``repr`` of what it returned (or of the exception it raised) and
    ``expected`` says what the hook may answer (docs/hooks.md).  The
    original exception, if any, is the ``__cause__``.  The command it
    happened in wrote nothing.
    """

    #: Longest ``repr`` of an answer kept in the message.
    MAX_REPR = 200

    def __init__(self, plugin: str, hook: str, answer: str, expected: str) -> None:
        self.plugin = plugin
        self.hook = hook
        self.answer = answer
        self.expected = expected
        super().__init__(
            self._say("error.hook", plugin=plugin, hook=hook, answer=answer, expected=expected)
        )

    @classmethod
    def short(cls, value: object) -> str:
        """``repr(value)``, cut to :attr:`MAX_REPR` characters (a broken ``__repr__`` too)."""
        try:
            text = repr(value)
        except Exception as exc:  # a hostile __repr__ must not hide the real problem
            text = f"<{type(value).__name__} whose repr raised {type(exc).__name__}>"
        if len(text) > cls.MAX_REPR:
            text = text[: cls.MAX_REPR - 3] + "..."
        return text


class ConflictError(ReqMgmtError):
    """Someone else changed the record first; nothing of this command was written.

    Reload the record and retry the command if it still makes sense.  An
    ``expected`` version above the stored one (``actual``) is no one's change:
    that version does not exist (code ``error.conflict.no_such_version``).
    """

    def __init__(self, ref: str, expected: int | None, actual: int | None) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        if expected is None:
            code = "error.conflict.exists"
        elif actual is None:
            code = "error.conflict.missing"
        elif expected > actual:
            # No one changed anything: the caller sent a version the record never had.
            code = "error.conflict.no_such_version"
        else:
            code = "error.conflict.version"
        super().__init__(self._say(code, ref=ref, expected=expected, actual=actual))


class ImportFailed(ReqMgmtError):
    """A row of :meth:`Desk.create_many` was refused; its batch was not written.

    ``row`` is the index of the refused row, ``cause`` the error it raised,
    ``committed`` the refs of the batches written before it (in row order),
    so the import can resume at row ``len(committed)``.
    """

    def __init__(self, kind: str, row: int, cause: Exception, committed: Sequence[str]) -> None:
        self.kind = kind
        self.row = row
        self.cause = cause
        self.committed = tuple(committed)
        told = Text(str(cause), cause.zh if isinstance(cause, ReqMgmtError) else str(cause))
        super().__init__(
            self._say(
                "error.import_failed",
                kind=kind,
                row=row,
                cause=told,
                committed=len(self.committed),
            )
        )


_FACTS_REPR = reprlib.Repr()
_FACTS_REPR.maxstring = 80
_FACTS_REPR.maxother = 80
_FACTS_REPR.maxdict = 20


class RuleError(ReqMgmtError):
    """A rule set that loaded could not decide on these facts: nothing was decided.

    Its conditions were type-checked and its examples passed when it was
    loaded, but on these facts a condition failed (a division by zero, a
    string repeated past the size limit, a rule function that raised) or two
    rows of a ``unique`` table matched.  ``table`` and ``row`` say where
    (``row`` is ``None`` when no single row is to blame), ``facts`` are the
    facts the table was given and ``reason`` what went wrong; an original
    exception is chained (``__cause__``).
    """

    def __init__(
        self, table: str, row: str | None, facts: Mapping[str, object], reason: str
    ) -> None:
        self.table = table
        self.row = row
        self.facts = facts
        self.reason = reason
        at = Text(f", row {row!r}", f" 的第 {row!r} 行") if row is not None else ""
        # reprlib shortens long facts and survives a fact whose repr raises.
        super().__init__(
            self._say(
                "error.rule",
                table=table,
                row=at,
                reason=reason,
                facts=_FACTS_REPR.repr(dict(facts)),
            )
        )


class TamperedRecord(ReqMgmtError):
    """The stored record disagrees with itself: it was changed outside reqmgmt.

    Its indexed columns (``columns``: their names) say something else than
    its document, or the document does not read as a record.  Commands and
    reads of the record are refused (nothing is written) until it is
    repaired; ``reqmgmt verify`` (or :meth:`reqmgmt.Desk.verify_history`)
    names what changed.
    """

    def __init__(self, ref: str, columns: Sequence[str], detail: str = "") -> None:
        self.ref = ref
        self.columns: tuple[str, ...] = tuple(columns)
        self.detail = detail
        names = ", ".join(self.columns)
        what = (
            Text(f"its columns {names} disagree with its document", f"索引列 {names} 与文档不一致")
            if self.columns
            else Text("its document does not read as a record", "文档无法读作记录")
        )
        told = Text(f" ({detail})", f"（{detail}）") if detail else ""
        super().__init__(self._say("error.tampered", ref=ref, what=what, detail=told))


class StoreUnavailable(ReqMgmtError):
    """The store at ``url`` cannot be opened: a server that does not answer, a
    folder that does not exist, a database the account may not open.

    ``url`` is the store URL with any password hidden; ``problem`` says what
    went wrong there (the driver's first line).  Nothing was written.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(self._say("error.store_unavailable", url=url, problem=problem))


class NoDatabase(StoreUnavailable, LookupError):
    """There is no reqmgmt database at ``url``, and the caller asked not to create one.

    Raised by ``Desk.open(url, create=False)`` (every reading ``reqmgmt``
    command) for a missing SQLite file or an empty database; nothing was
    created.  The message says how to create one.
    """

    def __init__(self, url: str, problem: str = "") -> None:
        self.url = url
        self.problem = problem or "no such database"
        ReqMgmtError.__init__(self, self._say("error.no_database", url=url, problem=self.problem))
