"""The Desk: the facade a host calls.  One command, one transaction.

Every command follows the same path (DESIGN.md "One command, one
transaction"):

1. open a store transaction; load the record and its version;
2. find the transition; an unknown or illegal event raises
   :class:`InvalidTransition` naming the state and the events allowed there;
3. authorise: the actor's role, the sign-off rules (eligible, not the
   submitter, once per round), ``reqmgmt_authorize`` vetoes and
   ``reqmgmt_before_transition``;
4. evaluate the guards;
5. write the new version, its audit event (hash-chained) and its
   notifications in the outbox, in the same transaction; a stale version
   raises :class:`ConflictError` and writes nothing;
6. after commit only: ``reqmgmt_after_transition`` observers, then delivery
   of the command's notifications through ``reqmgmt_notify``.

:meth:`Desk.can` runs steps 1-4 and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pluggy
from attrs import frozen

from . import command, creation, delivery
from .audit import HistoryCheck, replay
from .creation import CreationCheck
from .delivery import DispatchResult
from .errors import (
    ConfigError,
    HookError,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    TransitionBlocked,
    ValidationError,
)
from .forms.forms import render_form, template_folder
from .hookcalls import (
    ask_calendar,
    ask_convert,
    ask_open_store,
)
from .i18n import Reason, Text
from .lifecycle import BUILTIN_LIFECYCLES
from .lifecycle.base import Context, Engine, Lifecycle
from .model import (
    Actor,
    AuditEvent,
    Money,
    Notification,
    Record,
    check_time,
)
from .plugins import make_plugin_manager, rule_functions
from .reminders import (
    Calendar,
    Deadlines,
    ReminderResult,
    check_no_step_deadline,
    run_reminders,
    with_company_days,
)
from .reports import Report, build_report
from .rules import Decision, RuleSet, default_rules, load_rules
from .rules.loader import Source
from .storage.base import OutboxEntry, Store, Transaction
from .verbs import ContractDesk, RequirementDesk, ReturnDesk
from .verification import VerifyReport, check_history, verify_all

__all__ = [
    "TABLE_ALIASES",
    "ContractDesk",
    "Desk",
    "DispatchResult",
    "RequirementDesk",
    "ReturnDesk",
    "Verdict",
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

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import sqlalchemy

log = logging.getLogger("reqmgmt")
R = TypeVar("R", bound=Record)
Clock = Callable[[], datetime]


_NONE = Text("none", "无")


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


class Desk:
    """Runs the lifecycles of records kept in one store, with one plugin manager.

    Open one with :meth:`Desk.open`.  A Desk is safe to share between
    threads when its store is (the built-in ones are).
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
        calendar = ask_calendar(pm)
        if calendar is None:
            raise ConfigError("reqmgmt_calendar", "no plugin gave a working calendar")
        #: The working calendar deadlines are counted on (``reqmgmt_calendar``),
        #: with the rule set's ``[calendar]`` days when it is a WorkCalendar.
        self.calendar: Calendar = with_company_days(calendar, self.rules)
        self._by_type: dict[type[Record], Engine] = {
            e.lifecycle.record_type: e for e in self.engines.values()
        }
        self._creation_checks: dict[str, CreationCheck] = {}
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
        """Open a Desk on the store at ``url`` (``memory://`` by default).

        ``rules``: a :class:`RuleSet`, or TOML files / dicts merged over the
        default rule set (docs/rules.md); ``None`` for the defaults.
        ``previous_rules``: earlier rule sets, so records pinned to them are
        re-decided under the rules they were submitted with.
        ``plugins`` are registered after the built-in defaults (see
        docs/hooks.md); ``clock`` returns the current timezone-aware time
        (tests inject a fake one); ``autodispatch`` delivers each command's
        notifications right after it commits (else call :meth:`dispatch`).
        ``create``: a new, empty database is given the current schema (the
        default); ``False`` opens an existing reqmgmt database only and
        raises :class:`NoDatabase` otherwise, creating nothing (what a
        program that only reads or works the outbox wants: a typo in the URL
        is an error, not an empty database).
        ``form_templates``: a folder of templates overriding the built-in
        forms' (:meth:`form`, docs/forms.md).
        ``engine``: the host's SQLAlchemy engine (SQLite or PostgreSQL)
        instead of ``url``: its pool, credentials and schema/search_path are
        shared, and :meth:`unit_of_work` runs commands in the host's
        transactions (docs/embedding.md).  ``table_prefix``: reqmgmt's tables
        (and Alembic's version table) are named with it, e.g. ``"rq_"``
        (lower-case letters, digits, ``_``; a SQL store only).
        Raises :class:`ConfigError` when no plugin can open ``url``, and
        :class:`StoreUnavailable` when the database cannot be reached.
        """
        pm = make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
        ruleset: RuleSet | None
        if rules is None or isinstance(rules, RuleSet):
            ruleset = rules
        else:
            ruleset = load_rules(rules, functions=rule_functions(pm), with_defaults=True)
        store = _host_store(url, engine, table_prefix, create)
        if store is None:
            store = ask_open_store(pm, url, create)
        if store is None:
            raise ConfigError(
                f"store URL {url!r}",
                "no plugin opens this URL; built in: 'memory://', 'sqlite:///path.db', "
                "'postgresql+psycopg://...'; a host plugin may "
                "implement reqmgmt_open_store for others",
            )
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

    # --- the host's transaction (Desk.open(engine=...)) ------------------------------------

    def unit_of_work(self, *, connection: sqlalchemy.Connection) -> AbstractContextManager[Any]:
        """Run the block's commands inside the host's transaction on ``connection``.

        ``with engine.begin() as conn, desk.unit_of_work(connection=conn):``
        then the host's own writes on ``conn`` and any commands (the example
        in docs/embedding.md, "Inside the host's transaction").  The
        commands' records, audit events and outbox entries commit or roll
        back with the host's writes.  ``connection`` must be of the engine
        the Desk was opened with and have its transaction begun; else
        :class:`ConfigError`.  Each command runs in a SAVEPOINT: one that
        fails leaves the transaction as it was before it (the host may catch
        the error and go on, or let it end the transaction).  Observers and
        delivery of the commands' notifications wait until the host's
        transaction commits, and are dropped if it rolls back.  Units do not
        nest (one per Desk and thread); a command after the host's commit or
        rollback, inside the block still, is refused.  Named for the pattern:
        the host's transaction is the unit; reqmgmt only takes part in it.
        A memory store has no transaction to share: :class:`ConfigError`.
        """
        opener = getattr(self.store, "unit_of_work", None)
        if opener is None:
            raise ConfigError(
                "unit_of_work",
                f"the store {type(self.store).__name__} cannot join the host's transaction; "
                "open the Desk on a SQL store: Desk.open(engine=...) or a sqlite/postgresql URL",
            )
        return cast("AbstractContextManager[Any]", opener(connection))

    # --- context manager --------------------------------------------------------------

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time from the Desk's clock (timezone-aware)."""
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValidationError("clock()", now, "a timezone-aware datetime", where="Desk")
        return now

    def deadlines(self) -> Deadlines:
        """What deadlines and reminders need of this Desk (:class:`reqmgmt.reminders.Deadlines`)."""
        view = self._deadline_view
        if view is None or view.rules is not self.rules or view.calendar is not self.calendar:
            view = self._deadline_view = Deadlines(
                self.rules, self.calendar, self.classify, self.engine, self.pm
            )
        return view

    def engine(self, kind: str) -> Engine:
        """The engine of record kind ``kind``."""
        try:
            return self.engines[kind]
        except KeyError:
            raise ValidationError(
                "kind", kind, "one of " + ", ".join(sorted(self.engines)), where="Desk"
            ) from None

    def _creation_check(self, kind: str) -> CreationCheck:
        check = self._creation_checks.get(kind)
        if check is None:
            check = self._creation_checks[kind] = CreationCheck(self.engine(kind).lifecycle)
        return check

    def _engine_of(self, record: Record) -> Engine:
        return self._by_type.get(type(record)) or self.engine(record.RECORD_KIND)

    def _load(self, tx: Transaction, ref: str) -> Record:
        record = tx.get(ref)
        if record is None:
            raise NotFound(ref)
        return record

    # --- reading ------------------------------------------------------------------------

    def get(self, ref: str, *, version: int | None = None) -> Record:
        """The record ``ref``, or its earlier ``version`` rebuilt from the audit trail."""
        with self.store.transaction() as tx:
            record = self._load(tx, ref)
            if version is None or version == record.version:
                return record
            if not 1 <= version < record.version:
                raise NotFound(
                    ref,
                    version=version,
                    hint=Text(
                        f"versions 1 to {record.version} exist", f"现有第 1 至 {record.version} 版"
                    ),
                )
            return replay(tx.audit(ref), type(record), version=version)

    def history(self, ref: str) -> tuple[AuditEvent, ...]:
        """The record's audit events, oldest first."""
        with self.store.transaction() as tx:
            self._load(tx, ref)
            return tuple(tx.audit(ref))

    def verify_history(self, ref: str) -> HistoryCheck:
        """Check the record's stored history: every row, column, document and link.

        Each audit event must read, follow the one before (version, link,
        hash) and agree with the columns stored beside it; the record row
        must exist, agree with its indexed columns (state, version, due
        date...), be the trail's last version and equal its replay.  Returns
        a :class:`HistoryCheck` naming the first broken event and column;
        damage of any kind is reported, never raised.  Raises
        :class:`NotFound` only when the store holds nothing of ``ref``.
        """
        with self.store.transaction() as tx:
            checked = check_history(tx, ref)
        if checked is None:
            raise NotFound(ref)
        return checked.check

    def verify_all(
        self,
        *,
        progress: Callable[[int, int | None], None] | None = None,
        batch_size: int = 200,
        anchors: Mapping[str, tuple[int, str]] | None = None,
        on_head: Callable[[str, int, str], None] | None = None,
    ) -> VerifyReport:
        """:meth:`verify_history` for every record of the store, in batches.

        ``progress(done, total)`` after each batch of ``batch_size`` records
        (one transaction each); ``anchors`` (ref -> anchored ``(version,
        hash)``, see :func:`reqmgmt.verification.read_anchors`) also catch
        chains cut short, rolled back, re-hashed or gone; ``on_head(ref,
        version, hash)`` receives each intact chain's head.  Returns a
        :class:`VerifyReport` (checked, intact, the first break per broken
        record); never raises for damage.
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
        if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
            raise ValidationError("now", now, "a timezone-aware datetime", where="outbox")
        with self.store.transaction() as tx:
            return tx.pending(now=now or self.now())

    # --- the command path -----------------------------------------------------------------

    def _check(
        self,
        record: Record,
        event: str,
        actor: Actor,
        note: str | None,
        data: Mapping[str, Any],
        now: datetime,
        *,
        dry: bool = False,
    ) -> tuple[Engine, Context, str]:
        """Steps 2-4: find, authorise, guard (:func:`reqmgmt.command.check`)."""
        return command.check(self, record, event, actor, note, data, now, dry=dry)

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

        ``expected_version``: the version the caller showed the user (a form,
        a list); when the record has changed since, :class:`ConflictError` is
        raised instead of acting on a state the user never saw.

        Raises :class:`NotFound`, :class:`InvalidTransition`,
        :class:`ValidationError` (missing note or data), :class:`NotAuthorized`,
        :class:`TransitionBlocked` or :class:`ConflictError`; in every case
        nothing is written.
        """
        return command.run(
            self, ref, event, actor, note, data, direct=True, expected_version=expected_version
        )

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

        ``opinion`` is kept on the signature and as the audit note.
        ``approve=False`` declines and sends the record back for rework with
        ``opinion`` as the reason (required then).  The same as
        ``fire(ref, "sign", note=opinion, department=...)`` (or ``"decline"``).
        ``expected_version`` and errors as in :meth:`fire`.
        """

        def choose(record: Record, engine: Engine) -> str:
            step = engine.lifecycle.signoff_step(record.state)
            if step is None:
                raise InvalidTransition(
                    ref, engine.kind, record.state, "sign", engine.events_from(record.state)
                )
            return step.sign_event if approve else step.decline_event

        # A department outside the vocabulary is a typo, named as one.
        self.rules.vocabulary("departments").check(department, "department", ref)
        return command.run(
            self,
            ref,
            choose,
            actor,
            opinion or None,
            {"department": department},
            expected_version=expected_version,
        )

    def _fire_in(
        self,
        tx: Transaction,
        ref: str,
        event: str | Callable[[Record, Engine], str],
        actor: Actor,
        note: str | None,
        data: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> tuple[Record, AuditEvent, tuple[Notification, ...]]:
        """A command inside ``tx`` (the caller commits, then calls :meth:`_after_commit`)."""
        return command.fire_in(
            self, tx, ref, event, actor, note, data, expected_version=expected_version
        )

    def _after_commit(
        self, record: Record, event: AuditEvent, notes: Sequence[Notification]
    ) -> None:
        """Observers, then delivery (:func:`reqmgmt.command.after_commit`)."""
        command.after_commit(self, record, event, notes)

    # --- creating records ---------------------------------------------------------------------

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
        """Create a record of ``record_kind`` in its initial state (the lifecycle's create event).

        ``fields`` are the lifecycle's declared creation inputs
        (``Lifecycle.inputs``, listed on its page under docs/lifecycles/) and
        nothing else: state, review rounds, sign-offs, a contract's amount,
        class and route are the engine's.  The reference comes from
        ``reqmgmt_next_number`` or a store sequence.  Raises
        :class:`ValidationError` for a field that is not an input (naming the
        inputs), a missing required one, a word outside its vocabulary or a bad
        value; :class:`NotAuthorized` when the actor lacks the role;
        :class:`ConflictError` when the number is taken.  Nothing is written
        then.
        """
        return creation.create(
            self, record_kind, actor=actor, note=note, decisions=decisions, **fields
        )

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

        Each row holds the creation inputs :meth:`create` takes (nothing the
        engine sets: an import never carries states, sign-offs or review
        rounds; every record starts in its initial state).  Every row is
        checked before any number is drawn.  Every record gets its
        number, its creating audit event and its notifications exactly as if
        created one by one, but a batch is one transaction.  A bad row raises
        :class:`ImportFailed` (the row's index, the cause, the refs already
        committed): nothing of its batch is written, the batches before it
        stay, and the import can resume after them.  Observers
        (``reqmgmt_after_transition``) run after each batch commits;
        notifications wait in the outbox for :meth:`dispatch`.  Verbs' extras
        (a requirement's deadline from the rules) are not applied: give such
        fields in the rows.
        """
        return creation.create_many(
            self, record_kind, rows, actor=actor, note=note, batch_size=batch_size
        )

    def _create_in(
        self,
        tx: Transaction,
        kind: str,
        *,
        actor: Actor,
        note: str | None,
        decisions: Sequence[Decision],
        fields: Mapping[str, Any],
        engine_fields: Mapping[str, Any] | None = None,
    ) -> tuple[Record, AuditEvent, tuple[Notification, ...]]:
        """A creating command inside ``tx`` (:func:`reqmgmt.creation.create_in`)."""
        return creation.create_in(
            self,
            tx,
            kind,
            actor=actor,
            note=note,
            decisions=decisions,
            fields=fields,
            engine_fields=engine_fields,
        )

    def classify(self, kind: str, facts: Mapping[str, Any], *, on: date | None = None) -> Decision:
        """Decide with the Desk's rule set; writes nothing.

        ``kind`` is a table name (``contract_class``) or a short name
        (``contract``, ``route``, ``sample``, ``customer``, ``deadline``,
        ``return``, ``capa``).  Money facts in another currency than the
        table's are converted with ``reqmgmt_convert_money`` at the rate of
        ``on`` (default: today by the Desk's clock).  Raises
        :class:`ValidationError` for missing or mistyped facts.
        """
        table = TABLE_ALIASES.get(kind, kind)
        return self.rules.decide(table, facts, convert=self._convert, on=on or self.now().date())

    def _decide(self, table: str, facts: Mapping[str, Any], version: str | None) -> Decision:
        if version is None or version == self.rules.version:
            return self.classify(table, facts)
        rules = self.previous_rules.get(version)
        if rules is None:
            raise ConfigError(
                f"rule set {version[:12]}",
                "the record was decided under this rule set, which this Desk does not have; "
                "pass it in Desk.open(previous_rules=[...]) or ask for the current rules",
            )
        return rules.decide(table, facts, convert=self._convert, on=self.now().date())

    def _convert(self, money: Money, currency: str, on: date) -> Money | None:
        return ask_convert(self.pm, money, currency, on)

    # --- asking -------------------------------------------------------------------------------

    def can(self, ref: str, event: str, *, actor: Actor, **data: Any) -> Verdict:
        """May ``actor`` fire ``event`` on ``ref`` now?  Runs steps 1-4, writes nothing.

        Notes and required data are not asked for (a UI asks for them after
        the button is shown).  For a sign-off event without ``department``,
        the answer is yes when the actor may sign for any department still
        missing.  A plugin's fault (:class:`HookError`) is a "no" with its
        reason.  Raises :class:`NotFound`, and :class:`ValidationError` when
        ``actor`` is not an :class:`Actor`.
        """
        command.require_actor(actor)
        with self.store.transaction() as tx:
            record = self._load(tx, ref)
        return self._verdict(record, event, actor, data, self.now())

    def _verdict(
        self, record: Record, event: str, actor: Actor, data: Mapping[str, Any], now: datetime
    ) -> Verdict:
        engine = self._engine_of(record)
        t = engine.transition(record.state, event)
        attempts: list[Mapping[str, Any]] = [data]
        if t is not None and t.signoff and "department" not in data:
            step = engine.lifecycle.signoff_step(record.state)
            assert step is not None
            attempts = [{**data, "department": d} for d in step.missing(record)] or [data]
        reasons: list[Reason] = []
        for attempt in attempts:
            try:
                self._check(record, event, actor, None, attempt, now, dry=True)
            except (
                InvalidTransition,
                NotAuthorized,
                TransitionBlocked,
                ValidationError,
                HookError,
            ) as exc:
                told = getattr(exc, "reasons", None)
                reasons.extend(told or [Reason(exc.code, str(exc), exc.zh, exc.params)])
            else:
                return Verdict(True, record.ref, event, record.state)
        return Verdict(False, record.ref, event, record.state, tuple(dict.fromkeys(reasons)))

    def allowed_events(self, ref: str, *, actor: Actor) -> list[str]:
        """The events ``actor`` may fire on ``ref`` now, sorted (never raises for a plugin)."""
        command.require_actor(actor)
        with self.store.transaction() as tx:
            record = self._load(tx, ref)
        engine = self._engine_of(record)
        now = self.now()
        return [
            e for e in engine.events_from(record.state) if self._verdict(record, e, actor, {}, now)
        ]

    # --- forms ----------------------------------------------------------------------------------

    def form(self, ref: str, name: str) -> str:
        """The form ``name`` (e.g. ``"production_notice"`` or ``"生产通知表"``) of ``ref`` as HTML.

        Filled from the record and its audit trail (who signed, when, with
        which opinion); print CSS, zh-CN labels with English beside.
        :func:`reqmgmt.forms.render_pdf` turns it into PDF.  Raises
        :class:`ValidationError` when the form does not apply to the record,
        naming the forms that do (docs/forms.md).
        """
        return render_form(self, ref, name)

    # --- reports --------------------------------------------------------------------------------

    def report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Report:
        """Management figures for records and events in ``since <= t < until``.

        Counts, outcomes, cycle times (median, p90), dwell per state (the
        bottleneck), on-time rates and complaint/return analysis; see
        :mod:`reqmgmt.reports` for each definition.  Aggregated in the
        database on SQL stores, in Python otherwise, with the same results.
        ``progress`` is called with each step's name when it is done.
        """
        for name, value in (("since", since), ("until", until)):
            if value is not None:
                check_time(name, value, "report")
        if progress is None:
            return build_report(self.store, self.engines, since, until)
        return build_report(self.store, self.engines, since, until, progress)

    # --- deadlines ------------------------------------------------------------------------------

    def run_reminders(self, now: datetime | None = None) -> ReminderResult:
        """Queue the reminders and escalations due at ``now`` (default: the clock's now).

        Reads only records whose next deadline is near (the due-date index),
        and queues each reminder with an idempotency key of record, deadline,
        due time and stage: running the pass twice, or in several workers at
        once, queues it once.  Then deliver with :meth:`dispatch` (or let
        ``autodispatch`` do nothing here: reminders always wait for
        ``dispatch``).  Safe to run from cron; nothing is kept in memory
        between passes.  Raises :class:`ValidationError` for a ``now`` outside
        the input policy (naive, before 1900 or from 2200).
        """
        if now is not None:
            check_time("now", now, "run_reminders")
        return run_reminders(self.deadlines(), self.store, now or self.now())

    # --- delivery ------------------------------------------------------------------------------

    def dispatch(self, *, limit: int | None = None) -> DispatchResult:
        """Deliver pending notifications through ``reqmgmt_notify``.

        At least once: an entry is marked delivered only after every
        ``reqmgmt_notify`` implementation returned.  A failure keeps it
        pending with the error and a doubled retry delay; after
        :attr:`max_attempts` it becomes a dead letter.  Per record, a later
        notification is not delivered before an earlier one that failed.
        With no ``reqmgmt_notify`` implementation nothing is delivered.

        Safe to run in several processes at once: each pass claims what it
        delivers for :attr:`lease` (``FOR UPDATE SKIP LOCKED`` on
        PostgreSQL), so two workers do not deliver the same entry, and a
        worker killed mid-pass leaves its entries to the next pass after the
        lease.  ``limit`` caps the entries of one pass.
        """
        return delivery.dispatch(self, limit=limit)

    def dead_letters(self, *, limit: int | None = None) -> Sequence[OutboxEntry]:
        """Notifications given up after :attr:`max_attempts`, oldest first, with the last error."""
        return delivery.dead_letters(self, limit=limit)

    def retry(self, keys: Iterable[str] | None = None) -> int:
        """Put dead letters back in the queue (all, or those with ``keys``); return how many.

        Their attempts start again from zero; the last error is kept until a
        delivery succeeds.  A key that is unknown or not dead raises
        :class:`ValidationError`, and nothing is retried.
        """
        return delivery.retry(self, keys)


def _host_store(
    url: str, engine: sqlalchemy.Engine | None, table_prefix: str, create: bool
) -> Store | None:
    """The SQL store on the host's ``engine``, or on ``url`` with a table prefix; else ``None``."""
    if engine is None and table_prefix == "":
        return None  # the reqmgmt_open_store hook opens the URL
    if engine is not None and url != "memory://":
        raise ConfigError("Desk.open", "give a store URL or engine=..., not both")
    if engine is None and not url.startswith(("sqlite:", "postgresql:", "postgresql+")):
        raise ConfigError(
            f"table_prefix {table_prefix!r}",
            "a table prefix needs a SQL store (sqlite, postgresql)",
        )
    from .storage.sql import SqlStore  # SQLAlchemy is loaded only when used

    if engine is not None:
        return SqlStore(engine=engine, table_prefix=table_prefix, create=create)
    return SqlStore(url, table_prefix=table_prefix, create=create)
