"""What a Desk answers without writing: earlier versions, verdicts, classification.

:meth:`reqmgmt.Desk.get`, :meth:`~reqmgmt.Desk.can`,
:meth:`~reqmgmt.Desk.allowed_events` and :meth:`~reqmgmt.Desk.classify`
delegate here; the checks a verdict runs are the command path's own
(:func:`reqmgmt.command.check`, with ``dry=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from attrs import frozen

from . import command
from .audit import replay
from .errors import (
    ConfigError,
    HookError,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    TransitionBlocked,
    ValidationError,
)
from .hookcalls import ask_convert
from .i18n import Reason, Text
from .model import Actor, AuditEvent, Record, check_time
from .reports import Report, build_report
from .rules import Decision
from .verification import check_history

if TYPE_CHECKING:
    from .audit import HistoryCheck
    from .desk import Desk
    from .storage.base import OutboxEntry, Store, Transaction

__all__ = [
    "TABLE_ALIASES",
    "Verdict",
    "allowed_events",
    "can",
    "classify",
    "decide",
    "history",
    "history_check",
    "pending",
    "record_at",
    "report",
    "verdict",
]

#: Short names for the default tables, for ``desk.classify``.
TABLE_ALIASES = {
    "contract": "contract_class",
    "route": "review_route",
    "sample": "sample_order",
    "customer": "customer_category",
    "deadline": "requirement_deadline",
    "return": "return_window",
    "capa": "capa_trigger",
}

#: The errors a verdict turns into a "no" with reasons (a plugin's fault included).
_REFUSALS = (InvalidTransition, NotAuthorized, TransitionBlocked, ValidationError, HookError)


@frozen
class Verdict:
    """The answer of :meth:`Desk.can`: truthy when allowed; ``reasons`` say why not.

    Each reason is a :class:`reqmgmt.i18n.Reason`: the English text as a
    ``str``, with ``code``, ``zh`` and ``params`` (an error's own code and
    texts where an error said no).
    """

    allowed: bool
    ref: str
    event: str
    state: str
    reasons: tuple[Reason, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


def record_at(tx: Transaction, ref: str, version: int | None) -> Record:
    """The record ``ref``, or its earlier ``version`` rebuilt from the audit trail."""
    record = command.load(tx, ref)
    if version is None or version == record.version:
        return record
    if not 1 <= version < record.version:
        raise NotFound(
            ref,
            version=version,
            hint=Text(f"versions 1 to {record.version} exist", f"现有第 1 至 {record.version} 版"),
        )
    return replay(tx.audit(ref), type(record), version=version)


def verdict(
    desk: Desk, record: Record, event: str, actor: Actor, data: Mapping[str, Any], now: datetime
) -> Verdict:
    """May ``actor`` fire ``event`` on ``record`` at ``now``?  Steps 2-4, dry; a no is not raised.

    For a sign-off event without ``department``, every department still
    missing is tried: yes when the actor may sign for any of them.
    """
    engine = desk._engine_of(record)
    t = engine.transition(record.state, event)
    attempts: list[Mapping[str, Any]] = [data]
    if t is not None and t.signoff and "department" not in data:
        step = engine.lifecycle.signoff_step(record.state)
        assert step is not None
        attempts = [{**data, "department": d} for d in step.missing(record)] or [data]
    reasons: list[Reason] = []
    for attempt in attempts:
        try:
            command.check(desk, record, event, actor, None, attempt, now, dry=True)
        except _REFUSALS as exc:
            told = getattr(exc, "reasons", None)
            reasons.extend(told or [Reason(exc.code, str(exc), exc.zh, exc.params)])
        else:
            return Verdict(True, record.ref, event, record.state)
    return Verdict(False, record.ref, event, record.state, tuple(dict.fromkeys(reasons)))


def can(desk: Desk, ref: str, event: str, actor: Actor, data: Mapping[str, Any]) -> Verdict:
    """:meth:`reqmgmt.Desk.can`: the :func:`verdict` on the record ``ref`` as it is now."""
    command.require_actor(actor)
    with desk.store.transaction() as tx:
        record = command.load(tx, ref)
    return verdict(desk, record, event, actor, data, desk.now())


def allowed_events(desk: Desk, ref: str, actor: Actor) -> list[str]:
    """The events of the record's state whose :func:`verdict` is yes now, sorted."""
    command.require_actor(actor)
    with desk.store.transaction() as tx:
        record = command.load(tx, ref)
    now = desk.now()
    events = desk._engine_of(record).events_from(record.state)
    return [e for e in events if verdict(desk, record, e, actor, {}, now)]


def history(store: Store, ref: str) -> tuple[AuditEvent, ...]:
    """The audit events of ``ref``, oldest first; :class:`NotFound` for an unknown ``ref``."""
    with store.transaction() as tx:
        command.load(tx, ref)
        return tuple(tx.audit(ref))


def classify(desk: Desk, kind: str, facts: Mapping[str, Any], on: date | None) -> Decision:
    """Decide table ``kind`` (or its :data:`TABLE_ALIASES` short name) with the Desk's rules.

    Money in another currency than the table's is converted with
    ``reqmgmt_convert_money`` at the rate of ``on`` (default: the Desk's today).
    """
    table = TABLE_ALIASES.get(kind, kind)
    convert = partial(ask_convert, desk.pm)
    return desk.rules.decide(table, facts, convert=convert, on=on or desk.now().date())


def decide(desk: Desk, table: str, facts: Mapping[str, Any], version: str | None) -> Decision:
    """Decide under the rule set ``version`` a record was pinned to (the current one: ``None``).

    Raises :class:`ConfigError` when the Desk was not given that rule set
    (``Desk.open(previous_rules=[...])``).
    """
    if version is None or version == desk.rules.version:
        return classify(desk, table, facts, None)
    rules = desk.previous_rules.get(version)
    if rules is None:
        raise ConfigError(
            f"rule set {version[:12]}",
            "the record was decided under this rule set, which this Desk does not have; "
            "pass it in Desk.open(previous_rules=[...]) or ask for the current rules",
        )
    return rules.decide(table, facts, convert=partial(ask_convert, desk.pm), on=desk.now().date())


def history_check(store: Store, ref: str) -> HistoryCheck:
    """The :class:`HistoryCheck` of ``ref``; :class:`NotFound` when nothing of it is stored."""
    with store.transaction() as tx:
        checked = check_history(tx, ref)
    if checked is None:
        raise NotFound(ref)
    return checked.check


def pending(desk: Desk, now: datetime | None) -> Sequence[OutboxEntry]:
    """The outbox entries due at ``now`` (timezone-aware; default: the Desk's clock)."""
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        raise ValidationError("now", now, "a timezone-aware datetime", where="outbox")
    with desk.store.transaction() as tx:
        return tx.pending(now=now or desk.now())


def report(
    desk: Desk,
    since: datetime | None,
    until: datetime | None,
    progress: Callable[[str], None] | None,
) -> Report:
    """:func:`reqmgmt.reports.build_report` of the Desk's store, the window's times checked."""
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            check_time(name, value, "report")
    if progress is None:
        return build_report(desk.store, desk.engines, since, until)
    return build_report(desk.store, desk.engines, since, until, progress)
