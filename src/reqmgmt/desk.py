"""The Desk: the facade a host calls.  One command, one transaction.

The Desk holds the store, the plugin manager, the rules and the lifecycles'
engines, and delegates: commands to :mod:`reqmgmt.command`, creation and
imports to :mod:`reqmgmt.creation`, delivery to :mod:`reqmgmt.delivery`,
the answers that write nothing to :mod:`reqmgmt.reading`, the options of
:meth:`Desk.open` to :mod:`reqmgmt.opening`.  docs/api/desk.md, "The Desk in
detail", describes each method at length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import command, creation, delivery, opening, reading, verbs
from .audit import HistoryCheck
from .creation import CreationCheck
from .delivery import DispatchResult
from .errors import ValidationError
from .forms.forms import render_form, template_folder
from .lifecycle import BUILTIN_LIFECYCLES
from .lifecycle.base import Engine, Lifecycle
from .model import Actor, AuditEvent, Record, check_time
from .plugins import make_plugin_manager, rule_functions
from .reading import TABLE_ALIASES, Verdict
from .reminders import (
    Calendar,
    Deadlines,
    ReminderResult,
    check_no_step_deadline,
    run_reminders,
)
from .reports import Report
from .rules import Decision, RuleSet, default_rules
from .rules.loader import Source
from .storage.base import OutboxEntry, Store
from .verbs import ContractDesk, RequirementDesk, ReturnDesk
from .verification import VerifyReport, verify_all

__all__ = [
    "TABLE_ALIASES",
    "ContractDesk",
    "Desk",
    "DispatchResult",
    "RequirementDesk",
    "ReturnDesk",
    "Verdict",
]

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import sqlalchemy

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _checked_now(clock: Clock) -> datetime:
    """A host's clock's time, which must be timezone-aware."""
    now = clock()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValidationError("clock()", now, "a timezone-aware datetime", where="Desk")
    return now


class Desk:
    """Runs the lifecycles of records kept in one store, with one plugin manager.

    Open one with :meth:`Desk.open`; close it, or use it in a ``with`` block.
    Safe to share between threads when its store is (the built-in ones are).
    A command is one transaction (the record, its audit event, its outbox
    entries); observers and delivery run after commit.  The verbs:

    - create: :attr:`requirements`, :attr:`contracts`, :attr:`returns`,
      :meth:`create`, :meth:`create_many`;
    - act: :meth:`fire`, :meth:`sign`; in the host's transaction: :meth:`unit_of_work`;
    - ask, writing nothing: :meth:`can`, :meth:`allowed_events`, :meth:`classify`;
    - read and check: :meth:`get`, :meth:`history`, :meth:`query`, :meth:`form`,
      :meth:`report`, :meth:`verify_history`, :meth:`verify_all`;
    - deliver: :meth:`outbox`, :meth:`dispatch`, :meth:`dead_letters`,
      :meth:`retry`, :meth:`run_reminders`.

    Each in detail: docs/api/desk.md; the command path: :mod:`reqmgmt.command`.
    """

    #: Delivery attempts before a notification is moved to the dead letters.
    max_attempts = 8
    #: First retry delay; doubled after each failed attempt.
    retry_base = timedelta(seconds=30)
    #: How long a dispatcher holds the notifications it claimed; one that dies
    #: meanwhile loses nothing: they are delivered by the next after this.
    lease = timedelta(minutes=5)

    def __init__(
        self,
        store: Store,
        pm: pluggy.PluginManager,
        *,
        clock: Clock | None = None,
        lifecycles: Iterable[Lifecycle] | None = None,
        autodispatch: bool = True,
        rules: RuleSet | None = None,
        previous_rules: Iterable[RuleSet] = (),
        form_templates: str | Path | None = None,
    ) -> None:
        self.store = store
        #: The host's folder of form templates (docs/forms.md), checked; ``None``: the built-in.
        self.form_templates: Path | None = template_folder(form_templates)
        self.pm = pm
        self.rules: RuleSet = rules if rules is not None else default_rules(rule_functions(pm))
        #: Earlier rule sets by version, for re-deciding records pinned to them.
        self.previous_rules: dict[str, RuleSet] = {r.version: r for r in previous_rules}
        self._clock: Clock = clock or _utcnow
        self.autodispatch = autodispatch
        chosen = BUILTIN_LIFECYCLES.values() if lifecycles is None else lifecycles
        self.engines: dict[str, Engine] = {lc.kind: lc.build() for lc in chosen}
        #: The working calendar deadlines are counted on (``reqmgmt_calendar``),
        #: with the rule set's ``[calendar]`` days when it is a WorkCalendar.
        self.calendar: Calendar = opening.calendar(pm, self.rules)
        self._by_type = {e.lifecycle.record_type: e for e in self.engines.values()}
        self._creation_checks: dict[str, CreationCheck] = {}
        #: The command path's plans by (engine, state, event) (:func:`reqmgmt.command.fire_in`).
        self._plans: dict[tuple[Engine, str, str], command.Plan] = {}
        check_no_step_deadline(self.rules, self.engines)
        self._deadline_view: Deadlines | None = None
        self.requirements = RequirementDesk(self)
        self.contracts = ContractDesk(self)
        self.returns = ReturnDesk(self)

    @classmethod
    def open(
        cls,
        url: str = "memory://",
        *,
        rules: RuleSet | Source | Sequence[Source] | None = None,
        plugins: Iterable[object] = (),
        clock: Clock | None = None,
        load_entrypoints: bool = False,
        lifecycles: Iterable[Lifecycle] | None = None,
        autodispatch: bool = True,
        previous_rules: Iterable[RuleSet] = (),
        create: bool = True,
        form_templates: str | Path | None = None,
        engine: sqlalchemy.Engine | None = None,
        table_prefix: str = "",
    ) -> Desk:
        """Open a Desk on the store at ``url`` (``memory://``), or on the host's ``engine``.

        Every option: docs/api/desk.md, "Opening a Desk".  :class:`ConfigError`
        when no plugin opens ``url`` or options clash; :class:`NoDatabase`
        (``create=False``); :class:`StoreUnavailable` when unreachable.
        """
        pm = make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
        ruleset = opening.ruleset(rules, pm)
        store = opening.open_store(pm, url, engine, table_prefix, create)
        return cls(
            store,
            pm,
            clock=clock,
            lifecycles=lifecycles,
            autodispatch=autodispatch,
            rules=ruleset,
            previous_rules=previous_rules,
            form_templates=form_templates,
        )

    def unit_of_work(self, *, connection: sqlalchemy.Connection) -> AbstractContextManager[Any]:
        """Run the block's commands inside the host's transaction on ``connection``.

        :class:`ConfigError` for another engine's connection or a memory store (docs/api/desk.md).
        """
        return opening.join_host_transaction(self.store, connection)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the delegates share -------------------------------------------------------
    def now(self) -> datetime:
        """The current time from the Desk's clock (timezone-aware)."""
        if self._clock is _utcnow:  # aware by construction: the check is for a host's clock
            return datetime.now(UTC)
        return _checked_now(self._clock)

    def deadlines(self) -> Deadlines:
        """What deadlines and reminders need of this Desk (:class:`reqmgmt.reminders.Deadlines`)."""
        view = self._deadline_view
        if view is None or view.rules is not self.rules or view.calendar is not self.calendar:
            view = self._deadline_view = Deadlines(
                self.rules, self.calendar, self.classify, self.engine, self.pm
            )
        return view

    def engine(self, kind: str) -> Engine:
        """The engine of record kind ``kind``; :class:`ValidationError` for an unknown kind."""
        try:
            return self.engines[kind]
        except KeyError:
            raise ValidationError(
                "kind", kind, "one of " + ", ".join(sorted(self.engines)), where="Desk"
            ) from None

    def _engine_of(self, record: Record) -> Engine:
        return self._by_type.get(type(record)) or self.engine(record.RECORD_KIND)

    def _creation_check(self, kind: str) -> CreationCheck:
        check = self._creation_checks.get(kind)
        if check is None:
            check = self._creation_checks[kind] = CreationCheck(self.engine(kind).lifecycle)
        return check

    def _decide(self, table: str, facts: Mapping[str, Any], version: str | None) -> Decision:
        return reading.decide(self, table, facts, version)

    # --- reading and checking -----------------------------------------------------------
    def get(self, ref: str, *, version: int | None = None) -> Record:
        """The record ``ref``, or its earlier ``version`` replayed; else :class:`NotFound`."""
        with self.store.transaction() as tx:
            return reading.record_at(tx, ref, version)

    def history(self, ref: str) -> tuple[AuditEvent, ...]:
        """The record's audit events, oldest first; :class:`NotFound` for an unknown ``ref``."""
        return reading.history(self.store, ref)

    def verify_history(self, ref: str) -> HistoryCheck:
        """Check the record's stored history: every row, column, document and link.

        Damage is reported, never raised (docs/api/desk.md); :class:`NotFound`: no ``ref``.
        """
        return reading.history_check(self.store, ref)

    def verify_all(
        self,
        *,
        progress: Callable[[int, int | None], None] | None = None,
        batch_size: int = 200,
        anchors: Mapping[str, tuple[int, str]] | None = None,
        on_head: Callable[[str, int, str], None] | None = None,
    ) -> VerifyReport:
        """:meth:`verify_history` for every record, ``batch_size`` per transaction.

        ``progress(done, total)`` after each batch; ``anchors``, ``on_head``: docs/api/desk.md.
        """
        return verify_all(
            self.store, progress=progress, batch_size=batch_size, anchors=anchors, on_head=on_head
        )

    def query(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        customer: str | None = None,
        due_before: datetime | None = None,
    ) -> list[Record]:
        """Records matching every criterion given, in ref order (the contract ledger 合同台账)."""
        with self.store.transaction() as tx:
            return list(tx.query(kind=kind, state=state, customer=customer, due_before=due_before))

    def outbox(self, *, now: datetime | None = None) -> Sequence[OutboxEntry]:
        """Notifications waiting for delivery (due at ``now``, by default the clock)."""
        return reading.pending(self, now)

    # --- commands -----------------------------------------------------------------------
    def fire(
        self,
        ref: str,
        event: str,
        *,
        actor: Actor,
        note: str | None = None,
        expected_version: int | None = None,
        **data: Any,
    ) -> Record:
        """Fire ``event`` on record ``ref`` as ``actor``; return the new version.

        ``expected_version``: the version the user was shown; a record changed
        since raises :class:`ConflictError`.  Raises :class:`NotFound`,
        :class:`InvalidTransition`, :class:`ValidationError`,
        :class:`NotAuthorized`, :class:`TransitionBlocked` or
        :class:`ConflictError`; in every case nothing is written.
        """
        # direct=True, expected_version: by position (a call with keywords costs more)
        return command.run(self, ref, event, actor, note, data, True, expected_version)

    def sign(
        self,
        ref: str,
        *,
        department: str,
        actor: Actor,
        approve: bool = True,
        opinion: str = "",
        expected_version: int | None = None,
    ) -> Record:
        """Sign ``department``'s opinion in the record's current review (会签).

        ``approve=False`` declines (``opinion``: the reason).  Errors as in :meth:`fire`;
        docs/api/desk.md.
        """
        return verbs.sign(self, ref, department, actor, approve, opinion, expected_version)

    def create(
        self,
        record_kind: str,
        /,
        *,
        actor: Actor,
        note: str | None = None,
        decisions: Sequence[Decision] = (),
        **fields: Any,
    ) -> Record:
        """Create a record of ``record_kind`` in its initial state from its creation inputs.

        :class:`ValidationError` for a field that is not an input, missing or
        bad; :class:`NotAuthorized`; :class:`ConflictError` for a taken
        number.  docs/api/desk.md, "Creating and importing".
        """
        return creation.create_with(self, record_kind, actor, note, decisions, fields)

    def create_many(
        self,
        record_kind: str,
        rows: Iterable[Mapping[str, Any]],
        /,
        *,
        actor: Actor,
        note: str | None = None,
        batch_size: int = 500,
    ) -> list[str]:
        """Create many records (an import), ``batch_size`` per transaction; return their refs.

        A bad row raises :class:`ImportFailed`; its batch is not written (docs/api/desk.md).
        """
        return creation.create_many(
            self, record_kind, rows, actor=actor, note=note, batch_size=batch_size
        )

    # --- asking (writes nothing) --------------------------------------------------------
    def classify(self, kind: str, facts: Mapping[str, Any], *, on: date | None = None) -> Decision:
        """Decide table ``kind`` (or a :data:`TABLE_ALIASES` short name) with the Desk's rules.

        Money converts at ``on``'s rate (default: today); bad facts: :class:`ValidationError`.
        """
        return reading.classify(self, kind, facts, on)

    def can(self, ref: str, event: str, *, actor: Actor, **data: Any) -> Verdict:
        """May ``actor`` fire ``event`` on ``ref`` now?  Runs the checks, writes nothing.

        :class:`NotFound`; :class:`ValidationError` for a non-:class:`Actor` (docs/api/desk.md).
        """
        return reading.can(self, ref, event, actor, data)

    def allowed_events(self, ref: str, *, actor: Actor) -> list[str]:
        """The events ``actor`` may fire on ``ref`` now, sorted (never raises for a plugin)."""
        return reading.allowed_events(self, ref, actor)

    # --- forms, reports, reminders ------------------------------------------------------
    def form(self, ref: str, name: str) -> str:
        """The form ``name`` (e.g. ``"production_notice"`` or ``"生产通知表"``) of ``ref`` as HTML.

        :class:`ValidationError` names the forms that apply (docs/forms.md).
        """
        return render_form(self, ref, name)

    def report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Report:
        """Management figures for ``since <= t < until``; ``progress(step)`` (docs/reports.md)."""
        return reading.report(self, since, until, progress)

    def run_reminders(self, now: datetime | None = None) -> ReminderResult:
        """Queue the reminders and escalations due at ``now`` (default: the clock's now).

        Idempotent; :meth:`dispatch` delivers them (docs/deadlines.md).
        :class:`ValidationError` for a naive ``now``, or one before 1900 or from 2200.
        """
        if now is not None:
            check_time("now", now, "run_reminders")
        return run_reminders(self.deadlines(), self.store, now or self.now())

    # --- delivery -----------------------------------------------------------------------
    def dispatch(self, *, limit: int | None = None) -> DispatchResult:
        """Deliver up to ``limit`` pending notifications (docs/api/desk.md, "Delivery")."""
        return delivery.dispatch(self, limit=limit)

    def dead_letters(self, *, limit: int | None = None) -> Sequence[OutboxEntry]:
        """Notifications given up after :attr:`max_attempts`, oldest first, with the last error."""
        return delivery.dead_letters(self, limit=limit)

    def retry(self, keys: Iterable[str] | None = None) -> int:
        """Put dead letters back in the queue (all, or those with ``keys``); return how many.

        A key that is unknown or not dead: :class:`ValidationError`, nothing retried.
        """
        return delivery.retry(self, keys)
