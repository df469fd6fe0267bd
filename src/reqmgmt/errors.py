"""The exceptions reqmgmt raises, all under :class:`ReqMgmtError`.

Each error carries the fields a caller needs to react programmatically and a
message a person can act on: what was wrong, where, and what is allowed
instead.  Where a builtin exception fits, the error subclasses it too, so
``except ValueError`` in a host keeps working.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence

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


def _listing(items: Iterable[str]) -> str:
    names = [repr(i) for i in items]
    return ", ".join(names) if names else "none"


def _shown(value: object) -> str:
    # A 10,000-character input is named, not repeated, in the message.
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:120]}... ({len(text)} characters in all)"


class ReqMgmtError(Exception):
    """Root of every error reqmgmt raises on purpose."""


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
        super().__init__(f"{place}: got {_shown(value)}; expected {expected}")


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
            text = f"{location}: {self.problems[0]}"
        else:
            text = f"{location}: {len(self.problems)} problems\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(text)


class NotFound(ReqMgmtError, LookupError):
    """No record with that reference (or at that version) exists."""

    def __init__(self, ref: str, *, version: int | None = None, hint: str = "") -> None:
        self.ref = ref
        self.version = version
        what = f"record {ref!r}" if version is None else f"version {version} of record {ref!r}"
        super().__init__(f"{what} not found" + (f"; {hint}" if hint else ""))


class InvalidTransition(ReqMgmtError, ValueError):
    """The event does not exist, or is not allowed from the record's state."""

    def __init__(self, ref: str, kind: str, state: str, event: str, allowed: Sequence[str]) -> None:
        self.ref = ref
        self.kind = kind
        self.state = state
        self.event = event
        self.allowed: tuple[str, ...] = tuple(allowed)
        super().__init__(
            f"{kind} {ref}: event {event!r} is not allowed in state {state!r}; "
            f"events allowed there: {_listing(self.allowed)}"
        )


class NotAuthorized(ReqMgmtError, PermissionError):
    """The actor may not fire this event on this record; ``reasons`` say why."""

    def __init__(self, ref: str, event: str, actor: str, reasons: Sequence[str]) -> None:
        self.ref = ref
        self.event = event
        self.actor = actor
        self.reasons: tuple[str, ...] = tuple(reasons)
        super().__init__(f"{ref}: {actor!r} may not fire {event!r}: " + "; ".join(self.reasons))


class TransitionBlocked(ReqMgmtError):
    """A guard, sign-off rule or plugin blocked an otherwise legal event.

    Plugins raise it from ``reqmgmt_before_transition``; ``reasons`` say what
    must happen first.
    """

    def __init__(
        self, reasons: str | Sequence[str], *, ref: str = "", event: str = "", state: str = ""
    ) -> None:
        self.reasons: tuple[str, ...] = (reasons,) if isinstance(reasons, str) else tuple(reasons)
        self.ref = ref
        self.event = event
        self.state = state
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.ref}: " if self.ref else ""
        what = f"{self.event!r} in state {self.state!r} " if self.event else ""
        return f"{where}{what}blocked: " + "; ".join(self.reasons)

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
        super().__init__(f"plugin {plugin!r}, hook {hook}: {answer}; expected {expected}")

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

    Reload the record and retry the command if it still makes sense.
    """

    def __init__(self, ref: str, expected: int | None, actual: int | None) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        if expected is None:
            text = f"{ref}: a record with this reference already exists (version {actual})"
        elif actual is None:
            text = f"{ref}: expected version {expected} but the record does not exist"
        else:
            text = (
                f"{ref}: expected version {expected} but the stored version is {actual}; "
                "reload the record and retry"
            )
        super().__init__(text)


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
        super().__init__(
            f"import of {kind} records: row {row} refused: {cause}; nothing of its batch "
            f"was written, the {len(self.committed)} rows before the batch were; "
            f"fix the row and resume from row {len(self.committed)}"
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
        where = f"table {table!r}" + (f", row {row!r}" if row is not None else "")
        # reprlib shortens long facts and survives a fact whose repr raises.
        super().__init__(
            f"{where}: {reason}; facts {_FACTS_REPR.repr(dict(facts))}; fix the rule set "
            "(reqmgmt rules check) or the facts"
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
        what = (
            "its columns " + ", ".join(self.columns) + " disagree with its document"
            if self.columns
            else "its document does not read as a record"
        )
        super().__init__(
            f"{ref}: the stored record was changed outside reqmgmt: {what}"
            + (f" ({detail})" if detail else "")
            + "; nothing was done. Run `reqmgmt verify --db URL` (or desk.verify_history) "
            "to see what changed, and restore the record from a backup"
        )


class StoreUnavailable(ReqMgmtError):
    """The store at ``url`` cannot be opened: a server that does not answer, a
    folder that does not exist, a database the account may not open.

    ``url`` is the store URL with any password hidden; ``problem`` says what
    went wrong there (the driver's first line).  Nothing was written.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"cannot open the store {url}: {problem}")


class NoDatabase(StoreUnavailable, LookupError):
    """There is no reqmgmt database at ``url``, and the caller asked not to create one.

    Raised by ``Desk.open(url, create=False)`` (every reading ``reqmgmt``
    command) for a missing SQLite file or an empty database; nothing was
    created.  The message says how to create one.
    """

    def __init__(self, url: str, problem: str = "") -> None:
        self.url = url
        self.problem = problem or "no such database"
        ReqMgmtError.__init__(
            self,
            f"there is no reqmgmt database at {url} ({self.problem}); check the URL, "
            f"or create one with: reqmgmt db upgrade '{url}'",
        )
