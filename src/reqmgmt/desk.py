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
from typing import Any, TypeVar, cast

import attrs
import pluggy
from attrs import frozen

from . import notices, summaries
from .audit import HistoryCheck, replay, sealed_event
from .creation import CreationCheck
from .errors import (
    ConfigError,
    ConflictError,
    HookError,
    ImportFailed,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    ReqMgmtError,
    TransitionBlocked,
    ValidationError,
)
from .forms.forms import render_form, template_folder
from .hookcalls import (
    ask_approvers,
    ask_authorize,
    ask_before,
    ask_calendar,
    ask_convert,
    ask_credit,
    ask_next_number,
    ask_notify,
    ask_observers,
    ask_open_store,
)
from .i18n import Reason, Text, reason
from .lifecycle import BUILTIN_LIFECYCLES
from .lifecycle.base import EVERY_DEPARTMENT, Context, Engine, Lifecycle, Party, Transition
from .model import (
    CONTRACT_TERMS,
    Actor,
    AuditEvent,
    Contract,
    ContractLine,
    Customer,
    FieldChange,
    Money,
    Notification,
    Record,
    Requirement,
    Return,
    check_time,
    derive,
)
from .people import actor_key
from .plugins import make_plugin_manager, rule_functions
from .reminders import (
    Calendar,
    ReminderResult,
    check_no_step_deadline,
    deadline_changes,
    run_reminders,
    with_company_days,
)
from .reports import Report, build_report
from .rules import Decision, RuleSet, default_rules, load_rules
from .rules.loader import Source
from .serialize import field_unstructurer, hand_over, unstructure
from .storage.base import BulkInsert, Lenient, OutboxEntry, Store, Transaction
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


@frozen
class DispatchResult:
    """What one dispatch pass did.

    ``failed`` lists, as ``(ref, reason)``, each notification whose delivery
    failed this pass (it is retried later, or became one of the ``dead``
    letters) and each outbox entry that could not be read or written back;
    every one is logged, and the pass went on with the others.
    """

    delivered: int = 0
    failed: tuple[tuple[str, str], ...] = ()
    dead: int = 0


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
        check_no_step_deadline(self)
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
        Raises :class:`ConfigError` when no plugin can open ``url``, and
        :class:`StoreUnavailable` when the database cannot be reached.
        """
        pm = make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
        ruleset: RuleSet | None
        if rules is None or isinstance(rules, RuleSet):
            ruleset = rules
        else:
            ruleset = load_rules(rules, functions=rule_functions(pm), with_defaults=True)
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

    def _before(self, record: Record, event: str, actor: Actor, state: str) -> None:
        """``reqmgmt_before_transition``: a TransitionBlocked gets its place filled in.

        Any other exception, or an answer other than ``None``, raises
        :class:`HookError`.
        """
        if self.pm.hook.reqmgmt_before_transition.get_hookimpls():
            try:
                ask_before(self.pm, {"record": record, "event": event, "actor": actor})
            except TransitionBlocked as exc:
                raise exc.locate(record.ref, event, state) from None

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
        """Steps 2-4: find, authorise, guard.  Raises; writes nothing."""
        engine = self._engine_of(record)
        t = engine.transition(record.state, event)
        if t is None:
            raise InvalidTransition(
                record.ref, engine.kind, record.state, event, engine.events_from(record.state)
            )
        if not dry:
            _check_input(record, t, note, data)
            for key, words in t.vocabularies:
                if key in data:
                    self.rules.vocabulary(words).check(data[key], key, _place(record, t))
        refusals = _role_problems(t, actor, None, record)
        parties = engine.independence(t)
        if parties:
            refusals.extend(_independence_problems(record, actor, parties, t.signoff))
        if t.signoff:
            refusals.extend(self._signer_problems(record, actor, data.get("department")))
        if not refusals:
            refusals.extend(self._vetoes(actor, record, event))
        if refusals:
            raise NotAuthorized(record.ref, event, actor.id, refusals)
        self._before(record, event, actor, record.state)
        ctx = Context(record, actor, event, note, data, now, t, engine.lifecycle, self._decide)
        ctx.vocabularies = self.rules.vocabularies
        ctx.pm = self.pm
        dest = engine.run(ctx)
        return engine, ctx, dest

    def _signer_problems(self, record: Record, actor: Actor, department: object) -> list[Reason]:
        """Once per round, and eligible (``reqmgmt_approvers``, else the actor's departments).

        Who a signer may not be (drafter, submitter) is the step's
        ``independent_of``, checked with every other declaration.
        """
        problems: list[Reason] = []
        for s in record.round_signoffs():
            if actor_key(s.actor_id) == actor.id:
                problems.append(
                    reason(
                        "signoff.signer_already_signed",
                        actor=actor.id,
                        department=s.department,
                        round=s.round,
                    )
                )
                break
        if isinstance(department, str):
            answer = (
                ask_approvers(self.pm, [record], department)
                if self.pm.hook.reqmgmt_approvers.get_hookimpls()
                else None
            )
            eligible = department in actor.departments if answer is None else actor.id in answer[0]
            if not eligible:
                problems.append(
                    reason("signoff.not_eligible", actor=actor.id, department=department)
                )
        return problems

    def _vetoes(self, actor: Actor, record: Record, event: str) -> list[Reason]:
        """``reqmgmt_authorize``: the refusals (an answer not True/False/None: HookError)."""
        if not self.pm.hook.reqmgmt_authorize.get_hookimpls():
            return []
        names = ask_authorize(self.pm, {"actor": actor, "record": record, "event": event})
        if not names:
            return []
        return [reason("authorize.vetoed", plugins=", ".join(names))]

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
        return self._command(
            ref, event, actor, note, data, direct=True, expected_version=expected_version
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
        return self._command(
            ref,
            choose,
            actor,
            opinion or None,
            {"department": department},
            expected_version=expected_version,
        )

    def _command(
        self,
        ref: str,
        event: str | Callable[[Record, Engine], str],
        actor: Actor,
        note: str | None,
        data: Mapping[str, Any],
        *,
        direct: bool = False,
        expected_version: int | None = None,
    ) -> Record:
        with self.store.transaction() as tx:
            new, audit_event, notes = self._fire_in(
                tx, ref, event, actor, note, data, direct=direct, expected_version=expected_version
            )
        self._after_commit(new, audit_event, notes)
        return new

    def _fire_in(
        self,
        tx: Transaction,
        ref: str,
        event: str | Callable[[Record, Engine], str],
        actor: Actor,
        note: str | None,
        data: Mapping[str, Any],
        *,
        direct: bool = False,
        expected_version: int | None = None,
    ) -> tuple[Record, AuditEvent, tuple[Notification, ...]]:
        """Steps 1-5 of a command inside ``tx`` (the caller commits, then runs step 6)."""
        _require_actor(actor)
        record = self._load(tx, ref)
        if expected_version is not None and record.version != expected_version:
            raise ConflictError(ref, expected_version, record.version)
        if not isinstance(event, str):
            event = event(record, self._engine_of(record))
        if direct:
            t = self._engine_of(record).transition(record.state, event)
            if t is not None and t.via:
                raise ValidationError(
                    "event", event, f"a call of {t.via}(...), which fires it", where=ref
                )
        engine, ctx, dest = self._check(record, event, actor, note, data, self.now())
        ctx.find = lambda **criteria: list(tx.query(**criteria))
        return self._write(tx, engine, ctx, dest)

    def _write(
        self, tx: Transaction, engine: Engine, ctx: Context, dest: str
    ) -> tuple[Record, AuditEvent, tuple[Notification, ...]]:
        """Step 5: the new version, its audit event and notifications, in ``tx``."""
        record = ctx.record
        changes = engine.changes(ctx)
        changes["state"] = dest
        changes["version"] = record.version + 1
        changes["updated_at"] = ctx.now
        changes.update(deadline_changes(self, engine, record, dest, ctx.now, changes=changes))
        new = derive(record, changes)
        hooks = field_unstructurer(type(record))
        diff = []
        for name, value in changes.items():
            old = getattr(record, name)
            if old == value:
                continue
            hook = hooks[name]
            if hook is None:
                diff.append(FieldChange(name, old, value))
            elif (
                type(old) is tuple
                and type(value) is tuple
                and len(value) > len(old)
                and value[: len(old)] == old
            ):
                diff.append(FieldChange(name, len(old), hook(value[len(old) :]), "append"))
            else:
                diff.append(FieldChange(name, hook(old), hook(value)))
        t = ctx.transition
        prev_hash = tx.last_hash(record.ref)
        event = sealed_event(
            ref=record.ref,
            record_kind=engine.kind,
            version=new.version,
            event=ctx.event,
            from_state=record.state,
            to_state=dest,
            actor_id=ctx.actor.id,
            actor_name=ctx.actor.name,
            at=ctx.now,
            note=ctx.note,
            meaning=t.meaning,
            changes=tuple(diff),
            decisions=tuple(d.summary() for d in ctx.decisions),
            prev_hash=prev_hash or "",
        )
        notes = self._notifications(engine, t, record, new, ctx.now, ctx.note, ctx.data)
        tx.update(new, expected_version=record.version)
        tx.append_audit(event)
        if notes:
            tx.enqueue(notes)
        summaries.stage(tx, engine, record, new, ctx.now)  # summaries (issue 15.3)
        return new, event, notes

    def _notifications(
        self,
        engine: Engine,
        t: Transition,
        old: Record | None,
        new: Record,
        now: datetime,
        note: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> tuple[Notification, ...]:
        recipients = list(t.notify)
        if t.notify_from is not None:
            recipients.extend(r for r in t.notify_from(new) if r not in recipients)
        if not recipients:
            return ()
        if EVERY_DEPARTMENT in recipients:
            at = recipients.index(EVERY_DEPARTMENT)
            every = [f"department:{d}" for d in self.rules.vocabulary("departments")]
            recipients[at : at + 1] = [r for r in every if r not in recipients]
        lc = engine.lifecycle
        to = engine.labels[new.state]
        if old is None:
            zh = f"{lc.zh} {new.ref}:{to.zh}"
            en = f"{lc.en} {new.ref}: {to.en}"
        else:
            frm = engine.labels[old.state]
            zh = f"{lc.zh} {new.ref}:{frm.zh} → {to.zh}({t.zh})"
            en = f"{lc.en} {new.ref}: {frm.en} → {to.en} ({t.en})"
        if note:
            said = notices.text(note)
            zh += f";说明:{said}"
            en += f"; note: {said}"
        details = notices.details(data)
        return tuple(
            Notification(
                key=f"{new.ref}:{new.version}:{recipient}",
                ref=new.ref,
                record_kind=engine.kind,
                version=new.version,
                event=t.event,
                recipient=recipient,
                topic=f"{engine.kind}.{t.event}",
                text_zh=zh,
                text_en=en,
                created_at=now,
                note=note,
                details=details,
            )
            for recipient in recipients
        )

    def _after_commit(
        self, record: Record, event: AuditEvent, notes: Sequence[Notification]
    ) -> None:
        """Step 6: observers, then delivery.  Nothing here can undo the command."""
        self._observe(record, event)
        if notes and self.autodispatch and self.pm.hook.reqmgmt_notify.get_hookimpls():
            # Claimed like any dispatcher would, so a worker running dispatch
            # at the same time does not deliver them too.  Per record, order
            # is kept: behind an earlier notification that is backing off,
            # these wait for the next dispatch.
            failed: list[tuple[str, str]] = []
            self._deliver(self._claim(failed, ref=record.ref), failed)

    def _observe(self, record: Record, event: AuditEvent) -> None:
        """``reqmgmt_after_transition`` observers; a failing one is logged, not raised."""
        if self.pm.hook.reqmgmt_after_transition.get_hookimpls():
            ask_observers(
                self.pm,
                {"record": record, "audit_event": event},
                f"{record.ref} version {record.version}",
            )

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
        with self.store.transaction() as tx:
            record, event, notes = self._create_in(
                tx, record_kind, actor=actor, note=note, decisions=decisions, fields=fields
            )
        self._after_commit(record, event, notes)
        return record

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
        _require_actor(actor)
        if batch_size < 1:
            raise ValidationError("batch_size", batch_size, "a positive number", where="import")
        done: list[str] = []
        batch: list[Mapping[str, Any]] = []
        start = 0
        for row in rows:
            batch.append(row)
            if len(batch) == batch_size:
                done.extend(self._create_batch(record_kind, batch, start, actor, note, done))
                start += len(batch)
                batch = []
        if batch:
            done.extend(self._create_batch(record_kind, batch, start, actor, note, done))
        return done

    def _create_batch(
        self,
        kind: str,
        rows: Sequence[Mapping[str, Any]],
        start: int,
        actor: Actor,
        note: str | None,
        committed: list[str],
    ) -> list[str]:
        created: list[tuple[Record, AuditEvent]] = []
        # Every row's inputs first: a refused row uses up no sequence number.
        check = self._creation_check(kind)
        for i, row in enumerate(rows):
            try:
                check.fields(row, self.rules)
            except ReqMgmtError as exc:
                raise ImportFailed(kind, start + i, exc, committed) from exc
        with self.store.transaction() as tx:
            # One update of the sequence per batch: updating one row a thousand
            # times in a transaction is quadratic on PostgreSQL (each update
            # leaves a row version the next must step over).
            reserved: dict[str, tuple[int, int]] = {}

            def number(name: str) -> int:
                nxt, end = reserved.get(name, (0, 0))
                if nxt >= end:
                    nxt = tx.next_sequence(name, count=len(rows))
                    end = nxt + len(rows)
                reserved[name] = (nxt + 1, end)
                return nxt

            # Rows checked against stored records are written one by one, so
            # each sees the rows before it (two returns on one contract line).
            bulk = (
                tx.insert_many
                if isinstance(tx, BulkInsert) and self.engine(kind).lifecycle.against_store is None
                else None
            )
            notes: list[Notification] = []
            for i, row in enumerate(rows):
                try:
                    record, event, made = self._create_in(
                        tx,
                        kind,
                        actor=actor,
                        note=note,
                        decisions=(),
                        fields=row,
                        number=number,
                        write=bulk is None,
                        checked=True,
                    )
                except (ReqMgmtError, TypeError) as exc:
                    raise ImportFailed(kind, start + i, exc, committed) from exc
                created.append((record, event))
                if bulk is not None:  # else _create_in queued them already
                    notes.extend(made)
            if bulk is not None:
                try:
                    bulk([r for r, _ in created], [e for _, e in created])
                except ConflictError as exc:
                    i = next((i for i, (r, _) in enumerate(created) if r.ref == exc.ref), 0)
                    raise ImportFailed(kind, start + i, exc, committed) from exc
                tx.enqueue(notes)
                # summaries (issue 15.3)
                summaries.stage_created(tx, self.engine(kind), [r for r, _ in created])
        for record, event in created:
            self._observe(record, event)
        return [record.ref for record, _ in created]

    def _create_in(
        self,
        tx: Transaction,
        kind: str,
        *,
        actor: Actor,
        note: str | None,
        decisions: Sequence[Decision],
        fields: Mapping[str, Any],
        number: Callable[[str], int] | None = None,
        write: bool = True,
        engine_fields: Mapping[str, Any] | None = None,
        checked: bool = False,
    ) -> tuple[Record, AuditEvent, tuple[Notification, ...]]:
        """A creating command inside ``tx`` (the caller commits, then runs step 6).

        ``fields`` are the caller's, checked against the lifecycle's creation
        inputs; ``engine_fields`` are set by the library itself (an order's
        ``quotation_ref``); ``checked``: the caller checked ``fields`` already
        (an import checks a batch's rows first).  ``number`` hands out sequence numbers (an import
        reserves a batch's at once); with ``write=False`` the caller writes
        what is returned (an import writes a batch at once).
        """
        _require_actor(actor)
        engine = self.engine(kind)
        lc = engine.lifecycle
        t = engine.creation
        refusals = _role_problems(t, actor, Text(f"creating a {kind}", f"新建{lc.zh}"), None)
        if refusals:
            raise NotAuthorized("(new)", lc.create_event, actor.id, refusals)
        # Only the declared inputs, in their vocabularies; refused before a
        # number is drawn for it.
        if not checked:
            self._creation_check(kind).fields(fields, self.rules)
        if lc.against_store is not None:
            # Against other records, in this transaction (a return against its contract).
            lc.against_store(fields, tx)
        if lc.derived is not None:
            fields = {**fields, **lc.derived(fields)}
        if engine_fields:
            fields = {**fields, **engine_fields}
        if lc.record_type is Requirement:
            fields = self._with_credit(fields)
        now = self.now()
        ref = ask_next_number(self.pm, kind, now.year)
        if ref is None:
            seq = (number or tx.next_sequence)(f"{kind}:{now.year}")
            ref = f"{lc.number_prefix}-{now.year}-{seq:06d}"
        values = {
            "ref": ref,
            "state": lc.initial,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "created_by": actor.id,
            "rules_version": self.rules.version if decisions else None,
            **fields,
        }
        if fields.get("due_at") is None:
            # No due date to count from: the deadline fields go straight in.
            timing = deadline_changes(self, engine, None, lc.initial, now)
            record = lc.record_type(**{**values, **timing})
        else:
            # The due date is validated by the record before it is counted on.
            record = lc.record_type(**values)
            timing = deadline_changes(self, engine, None, lc.initial, now, created=record)
            if timing:
                record = derive(record, timing)
        refusals = self._vetoes(actor, record, lc.create_event)
        if refusals:
            raise NotAuthorized(ref, lc.create_event, actor.id, refusals)
        self._before(record, lc.create_event, actor, "(new)")
        # One change holding the whole first version (op "create"), rather
        # than one per field: the same content at a fraction of the objects.
        first = unstructure(record)
        if getattr(tx, "takes_documents", False):
            hand_over(record, first)  # the store writes the same document
        diff = (FieldChange("*", None, first, "create"),)
        event = sealed_event(
            ref=ref,
            record_kind=kind,
            version=1,
            event=lc.create_event,
            from_state=None,
            to_state=lc.initial,
            actor_id=actor.id,
            actor_name=actor.name,
            at=now,
            note=note,
            changes=diff,
            decisions=tuple(d.summary() for d in decisions),
            prev_hash="",
        )
        notes = self._notifications(engine, t, None, record, now, note)
        if write:
            tx.insert(record)
            tx.append_audit(event)
            if notes:
                tx.enqueue(notes)
            summaries.stage_created(tx, engine, (record,))  # summaries (issue 15.3)
        return record, event, notes

    def _with_credit(self, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """A requirement's fields with its customer's credit record (reqmgmt_customer_credit)."""
        customer = fields.get("customer")
        if not isinstance(customer, Customer):
            return fields  # the record refuses it, naming the field
        if not self.pm.hook.reqmgmt_customer_credit.get_hookimpls():
            return fields
        credit = ask_credit(self.pm, customer)
        return fields if credit is None else {**fields, "credit": credit}

    # --- rules ------------------------------------------------------------------------------

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
        _require_actor(actor)
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
        _require_actor(actor)
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
        return run_reminders(self, now)

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
        _check_limit(limit, "dispatch")
        if not self.pm.hook.reqmgmt_notify.get_hookimpls():
            return DispatchResult()
        failed: list[tuple[str, str]] = []
        entries = self._claim(failed, limit=limit)
        return self._deliver(entries, failed)

    def _claim(
        self, unreadable: list[tuple[str, str]], *, limit: int | None = None, ref: str | None = None
    ) -> Sequence[OutboxEntry]:
        """Claim due entries; an entry that cannot be read goes to ``unreadable``, logged."""
        now = self.now()
        with self.store.transaction() as tx:
            if isinstance(tx, Lenient):
                tx.unreadable = unreadable
            entries = tx.claim(now=now, lease_until=now + self.lease, limit=limit, ref=ref)
        for key, why in unreadable:
            log.error("dispatch: skipped %s: %s", key, why)
        return entries

    def dead_letters(self, *, limit: int | None = None) -> Sequence[OutboxEntry]:
        """Notifications given up after :attr:`max_attempts`, oldest first, with the last error."""
        _check_limit(limit, "dead_letters")
        with self.store.transaction() as tx:
            return tx.entries(status="dead", limit=limit)

    def retry(self, keys: Iterable[str] | None = None) -> int:
        """Put dead letters back in the queue (all, or those with ``keys``); return how many.

        Their attempts start again from zero; the last error is kept until a
        delivery succeeds.  A key that is unknown or not dead raises
        :class:`ValidationError`, and nothing is retried.
        """
        with self.store.transaction() as tx:
            if keys is None:
                chosen = list(tx.entries(status="dead"))
            else:
                chosen = []
                for key in keys:
                    entry = tx.outbox(key)
                    if entry is None or entry.status != "dead":
                        found = "no such key" if entry is None else f"status {entry.status}"
                        raise ValidationError(
                            "key",
                            key,
                            "the key of a dead letter (`reqmgmt outbox --status dead` lists them)",
                            where=f"outbox, {found}",
                        )
                    chosen.append(entry)
            for entry in chosen:
                tx.save_outbox(
                    attrs.evolve(entry, status="pending", attempts=0, next_attempt_at=None)
                )
        return len(chosen)

    def _deliver(
        self, entries: Sequence[OutboxEntry], failed: list[tuple[str, str]]
    ) -> DispatchResult:
        """Deliver claimed entries, each on its own: a failing one is logged and listed."""
        delivered = dead = 0
        blocked: set[str] = set()
        for entry in entries:
            n = entry.notification
            if n.ref in blocked:
                # Behind a failed one: give the claim back, keep the order.
                self._save_outbox(attrs.evolve(entry, next_attempt_at=None), failed)
                continue
            try:
                ask_notify(self.pm, n)
            except Exception as exc:
                attempts = entry.attempts + 1
                now = self.now()
                gone = attempts >= self.max_attempts
                error = _error_text(exc)
                updated = attrs.evolve(
                    entry,
                    status="dead" if gone else "pending",
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=now + self.retry_base * (2 ** (attempts - 1)),
                )
                log.warning("delivering %s failed (attempt %d): %s", n.key, attempts, error)
                blocked.add(n.ref)
                failed.append((n.ref, f"delivering {n.key!r} failed: {error}"))
                dead += gone
            else:
                updated = attrs.evolve(
                    entry, status="delivered", attempts=entry.attempts + 1, delivered_at=self.now()
                )
                delivered += 1
            if not self._save_outbox(updated, failed):
                blocked.add(n.ref)
        return DispatchResult(delivered, tuple(failed), dead)

    def _save_outbox(self, entry: OutboxEntry, failed: list[tuple[str, str]]) -> bool:
        """Write back one entry's bookkeeping; a failure is logged and listed, not raised.

        The entry stays claimed until its lease runs out, then comes back:
        at least once, as for a worker that died.
        """
        try:
            with self.store.transaction() as tx:
                tx.save_outbox(entry)
        except Exception as exc:
            n = entry.notification
            log.error("dispatch: could not save the outbox entry %s: %s", n.key, exc)
            failed.append((n.ref, f"saving outbox entry {n.key!r} failed: {_error_text(exc)}"))
            return False
        return True


def _check_limit(limit: object, where: str) -> None:
    """``limit``: None (no limit) or a positive whole number, alike on every backend."""
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValidationError(
            "limit", limit, "None (no limit) or a whole number from 1", where=where
        )


def _error_text(exc: BaseException) -> str:
    """An exception as one storable line: the input policy's text, at most 1,000 characters."""
    text = f"{type(exc).__name__}: {exc}"
    # A plugin's message may hold anything; PostgreSQL's text refuses NUL.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= 1000 else text[:999] + "…"


def _role_problems(
    t: Transition, actor: Actor, what: str | None, record: Record | None
) -> list[Reason]:
    """Why ``actor`` lacks the role (``what``: the action named, by default the event)."""
    roles = t.roles_from(record) if t.roles_from is not None and record is not None else t.roles
    if not roles or actor.roles & roles:
        return []
    return [
        reason(
            "authorize.role",
            action=what or Text(repr(t.event), f"执行 {t.event!r}"),
            roles=", ".join(sorted(roles)),
            actor=actor.id,
            has=", ".join(sorted(actor.roles)) or _NONE,
        )
    ]


def _require_actor(actor: object) -> None:
    if not isinstance(actor, Actor):
        raise ValidationError(
            "actor", actor, "an Actor (reqmgmt.Actor(id, name, roles=..., departments=...))"
        )


def _independence_problems(
    record: Record, actor: Actor, parties: Sequence[Party], signing: bool
) -> list[Reason]:
    """The declared parties (``Transition.independent_of``) the actor is one of."""
    problems = []
    code = "independence.sign" if signing else "independence.approve"
    for party in parties:
        for pid in party.ids(record):
            if pid is not None and actor_key(pid) == actor.id:
                problems.append(reason(code, actor=actor.id, party=party.told(record)))
                break
    return problems


def _check_input(record: Record, t: Transition, note: str | None, data: Mapping[str, Any]) -> None:
    # Runs on every command: the messages (and their place) are built only
    # when something is wrong.
    if t.note_required and (note is None or not str(note).strip()):
        raise ValidationError(
            "note", note, reason("input.note_required", event=t.event), where=_place(record, t)
        )
    if note is not None and not isinstance(note, str):
        raise ValidationError("note", note, reason("input.note_type"), where=_place(record, t))
    if data:
        unknown = sorted(k for k in data if k not in t.requires and k not in t.optional)
        if unknown:
            accepted = sorted({*t.requires, *t.optional})
            raise ValidationError(
                unknown[0],
                data[unknown[0]],
                reason(
                    "input.unknown_data",
                    accepted=", ".join(accepted) or Text("no data", "无"),
                    event=t.event,
                ),
                where=_place(record, t),
            )
    for key in t.requires:
        value = data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValidationError(
                key,
                value,
                reason("input.data_required", event=t.event, key=key),
                where=_place(record, t),
            )


def _place(record: Record, t: Transition) -> str:
    return f"{record.ref} {t.event}"


class RequirementDesk:
    """``desk.requirements``: taking in customer requirements (客户需求)."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    def receive(
        self,
        *,
        customer: Customer,
        description: str,
        actor: Actor,
        channel: str = "fax",
        kind: str = "order",
        priority: str = "normal",
        due_at: datetime | None = None,
        received_at: datetime | None = None,
        note: str | None = None,
    ) -> Requirement:
        """Record a new requirement in state received (待处理) with its case number.

        Without ``due_at`` the deadline comes from the rule set's
        ``requirement_deadline`` table (priority → working hours, counted on
        the Desk's working calendar from ``received_at``); that decision is
        kept in the audit event and the record pins the rule-set version.
        """
        desk = self._desk
        received = received_at or desk.now()
        check_time("received_at", received, "Requirement")  # before any deadline arithmetic
        decisions: list[Decision] = []
        if due_at is None and "requirement_deadline" in desk.rules.tables:
            decision = desk.classify("requirement_deadline", {"priority": priority})
            hours = decision.outcome.get("hours")
            if hours is not None:
                due_at = desk.calendar.add(received, timedelta(hours=float(hours)))
                decisions.append(decision)
        record = desk.create(
            "requirement",
            actor=actor,
            note=note,
            decisions=decisions,
            customer=customer,
            description=description,
            channel=channel,
            kind=kind,
            priority=priority,
            due_at=due_at,
            received_at=received,
        )
        return cast(Requirement, record)


class ContractDesk:
    """``desk.contracts``: drafting sales contracts and orders for review (合同评审)."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    def draft(
        self,
        *,
        customer: Customer,
        lines: Sequence[ContractLine],
        currency: str,
        actor: Actor,
        document: str = "contract",
        channel: str = "domestic",
        flags: Iterable[str] = (),
        requirement_refs: Iterable[str] = (),
        note: str | None = None,
        **terms: str,
    ) -> Contract:
        """Draft a contract (草稿) numbered ``CON-<year>-<n>``; the amount is the lines' sum.

        ``terms`` are the reviewed texts: payment_terms, delivery_method,
        packaging, quality_requirements, acceptance_criteria.  ``flags`` come
        from the rule set's ``contract_flags`` vocabulary (first_order,
        new_product, oem), ``document`` and ``channel`` from
        ``contract_documents`` and ``contract_channels``.  Prices are positive;
        a reduction is a line of kind ``"discount"``, subtracted from the
        amount (which must stay above zero) but not from the gross amount the
        class is decided on.  Raises :class:`ValidationError` when a line is in
        another currency or a field is wrong.
        """
        unknown = sorted(set(terms) - set(CONTRACT_TERMS))
        if unknown:
            raise ValidationError(
                unknown[0], terms[unknown[0]], "one of " + ", ".join(CONTRACT_TERMS), where="draft"
            )
        record = self._desk.create(
            "contract",
            actor=actor,
            note=note,
            customer=customer,
            lines=tuple(lines),
            currency=currency,
            document=document,
            channel=channel,
            flags=frozenset(flags),
            requirement_refs=tuple(requirement_refs),
            **cast(dict[str, Any], terms),
        )
        return cast(Contract, record)

    def order_from_quotation(
        self,
        ref: str,
        *,
        actor: Actor,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Contract:
        """An accepted quotation (报价单, customer confirmed) becomes an order draft.

        One transaction: the quotation moves to ``ordered`` and a new order
        draft is created from its customer, lines and terms, with
        ``quotation_ref`` pointing back; either both are written or neither.
        The order then goes through its own review.
        """
        desk = self._desk
        with desk.store.transaction() as tx:
            quotation, q_event, q_notes = desk._fire_in(
                tx, ref, "convert_to_order", actor, note, {}, expected_version=expected_version
            )
            assert isinstance(quotation, Contract)
            fields: dict[str, Any] = {
                name: getattr(quotation, name)
                for name in (
                    "customer", "channel", "currency", "lines", "flags",
                    "requirement_refs", *CONTRACT_TERMS,
                )
            }  # fmt: skip
            order, o_event, o_notes = desk._create_in(
                tx,
                "contract",
                actor=actor,
                note=note or f"from quotation {ref}",
                decisions=(),
                fields={**fields, "document": "order"},
                engine_fields={"quotation_ref": ref},
            )
        desk._after_commit(quotation, q_event, q_notes)
        desk._after_commit(order, o_event, o_notes)
        return cast(Contract, order)

    def amend(
        self,
        ref: str,
        changes: Mapping[str, Any],
        *,
        actor: Actor,
        reason: str,
        current_rules: bool = False,
        expected_version: int | None = None,
    ) -> Contract:
        """Change a contract (合同变更); the only way its fields change after drafting.

        ``changes`` maps fields (``lines``, ``payment_terms``,
        ``delivery_method``, ``packaging``, ``quality_requirements``,
        ``acceptance_criteria``) to new values; the audit keeps old → new.  In
        draft the change applies at once.  Later, the contract is
        re-classified under the rule set it was submitted with (or the current
        one with ``current_rules=True``): a general contract that stays
        general is changed at once and the departments are told (业务联络书);
        a special one, or one that becomes special, waits in an amendment
        review (合同变更评审) for the departments whose fields changed (all of
        the route's when the class changed) and the route's approver
        (``approve_amendment``).  Earlier versions stay readable with
        ``desk.get(ref, version=n)``.
        """
        record = self._desk.get(ref)
        event = "revise" if record.state == "draft" else "amend"
        data: dict[str, Any] = {"changes": changes}
        if current_rules and event == "amend":
            data["current_rules"] = True
        return cast(
            Contract,
            self._desk.fire(
                ref, event, actor=actor, note=reason, expected_version=expected_version, **data
            ),
        )


class ReturnDesk:
    """``desk.returns``: customer complaints and returns (客户投诉和退货)."""

    def __init__(self, desk: Desk) -> None:
        self._desk = desk

    @property
    def reasons(self) -> tuple[str, ...]:
        """Reason codes :meth:`report` accepts: the rule set's ``return_reasons`` vocabulary."""
        return tuple(self._desk.rules.vocabulary("return_reasons"))

    def report(
        self,
        *,
        customer: Customer,
        product: str,
        reason_code: str,
        reason_text: str,
        actor: Actor,
        kind: str = "return",
        quantity: int = 1,
        contract_ref: str | None = None,
        line_no: int | None = None,
        shipped_on: date | None = None,
        note: str | None = None,
    ) -> Return:
        """Register a complaint (``kind="complaint"``) or a return with goods (已登记).

        ``reason_code`` is one of :attr:`reasons`, ``reason_text`` says what
        the customer reported.  With ``contract_ref`` the contract must exist
        (:class:`NotFound`) and be the same customer's; a return with goods
        names its line (``line_no``) and returns at most what was shipped on
        it minus earlier returns (not cancelled, not judged invalid), checked
        in the creating transaction with the contract locked
        (:func:`reqmgmt.lifecycle.returns.check_against_contract`).  The
        contract's last shipment date is used for the return window unless
        ``shipped_on`` is given.  Quality is told; materials too for goods.
        """
        self._desk.rules.vocabulary("return_reasons").check(reason_code, "reason_code", "return")
        if contract_ref is not None:
            contract = self._desk.get(contract_ref)
            if not isinstance(contract, Contract):
                raise ValidationError(
                    "contract_ref", contract_ref, "the reference of a contract", where="return"
                )
            if shipped_on is None:
                shipped = [
                    e.at.date() for e in self._desk.history(contract_ref) if e.event == "ship"
                ]
                shipped_on = shipped[-1] if shipped else None
        record = self._desk.create(
            "return",
            actor=actor,
            note=note,
            customer=customer,
            kind=kind,
            product=product,
            quantity=quantity,
            contract_ref=contract_ref,
            line_no=line_no,
            reason_code=reason_code,
            reason_text=reason_text,
            shipped_on=shipped_on,
        )
        return cast(Return, record)

    def dispose(
        self,
        ref: str,
        disposition: str,
        *,
        actor: Actor,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Return:
        """The quality manager's disposition (处置) of a valid return.

        ``replace`` on a return linked to a contract reopens the contract's
        delivery obligation through its own lifecycle (``replace_goods``: a
        no-charge replacement line, back to in_fulfilment), in the same
        transaction: both happen or neither.  The CAPA trigger rule is
        evaluated here and kept in the audit.
        """
        desk = self._desk
        with desk.store.transaction() as tx:
            ret, r_event, r_notes = desk._fire_in(
                tx,
                ref,
                "dispose",
                actor,
                note,
                {"disposition": disposition},
                expected_version=expected_version,
            )
            assert isinstance(ret, Return)
            linked = None
            if disposition == "replace" and ret.contract_ref is not None:
                linked = desk._fire_in(
                    tx,
                    ret.contract_ref,
                    "replace_goods",
                    actor,
                    f"换货 replacement for {ref}",
                    {"return_ref": ref, "product": ret.product, "quantity": ret.quantity},
                )
        desk._after_commit(ret, r_event, r_notes)
        if linked is not None:
            desk._after_commit(*linked)
        return ret
