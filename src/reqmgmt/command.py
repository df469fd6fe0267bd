"""The command path: one command, one transaction, each step a function a profiler names.

:meth:`reqmgmt.Desk.fire` and :meth:`reqmgmt.Desk.sign` run :func:`run`:

1. :func:`load` the record in a store transaction;
2. :func:`check`: find the transition (an unknown or illegal event raises
   :class:`InvalidTransition`), check the input, authorise (role,
   independence, sign-off rules, ``reqmgmt_authorize`` vetoes,
   ``reqmgmt_before_transition``), then :func:`trigger` the lifecycle's
   shared ``transitions`` Machine, which evaluates the guards;
3. :func:`derive_version`: the effects' field changes, the engine's
   (state, version, updated_at) and the deadlines', applied to a copy;
4. :func:`field_diff` and :func:`seal`: the audit event, hash-chained;
5. :func:`notifications`, then :func:`stage`: the new version, its audit
   event and its notifications written in the transaction;
6. after commit only, :func:`after_commit`: ``reqmgmt_after_transition``
   observers, then delivery through ``reqmgmt_notify``.

Every function takes the :class:`~reqmgmt.desk.Desk` whose command it runs;
nothing here imports the Desk at run time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from keyword import iskeyword
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import attrs
from pluggy import HookCaller

from . import notices, summaries
from .audit import seal as seal_event
from .delivery import deliver_claimed
from .errors import (
    ConflictError,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    TransitionBlocked,
    ValidationError,
)
from .hookcalls import ask_approvers, ask_authorize, ask_before, ask_observers
from .i18n import Reason, Text, reason
from .lifecycle.base import EVERY_DEPARTMENT, PARTIES, Context, Engine, Party, Transition
from .model import (
    MAX_COUNT,
    MAX_ID,
    Actor,
    AuditEvent,
    FieldChange,
    Notification,
    Record,
    derive,
    fill_line,
    maker,
    planned_derive,
)
from .people import actor_key
from .reminders import deadline_changes, step_rule_memo
from .serialize import ISO_NOT_SEEN, converter, field_unstructurer, iso, iso_seen
from .storage import hostunit
from .storage.base import Transaction
from .storage.memory import _MemoryTransaction

if TYPE_CHECKING:
    from .desk import Desk
    from .rules.model import RuleSet

__all__ = [
    "after_commit",
    "authorise",
    "check",
    "derive_version",
    "field_diff",
    "fire_in",
    "load",
    "notifications",
    "plan_of",
    "run",
    "seal",
    "stage",
    "trigger",
]

#: What a command stages: the new version, its audit event, its notifications (a
#: tuple; on the memory store, the same made when first read: :func:`notifications`).
Staged = tuple[Record, AuditEvent, Sequence[Notification]]
#: The event to fire, or a function choosing it from the record (``sign``).
EventChoice = str | Callable[[Record, Engine], str]

_NONE = Text("none", "无")
# Made from checked values, several times per command: no attrs __init__.
_make_change = maker(FieldChange)
_ENGINE_CHECKED = frozenset(("state", "version"))
_new = object.__new__


def run(
    desk: Desk,
    ref: str,
    event: EventChoice,
    actor: Actor,
    note: str | None,
    data: Mapping[str, Any],
    direct: bool = False,
    expected_version: int | None = None,
) -> Record:
    """One command in its own transaction, then :func:`after_commit`; the new version."""
    # direct and expected_version may be passed by position (Desk.fire, verbs.sign do):
    # a call with keywords costs ~0.3k instructions more than one by position.
    with desk.store.transaction() as tx:
        staged = fire_in(desk, tx, ref, event, actor, note, data, direct, expected_version)
    new, event_, notes = staged
    after_commit(desk, new, event_, notes)
    return new


def fire_in(
    desk: Desk,
    tx: Transaction,
    ref: str,
    event: EventChoice,
    actor: Actor,
    note: str | None,
    data: Mapping[str, Any],
    direct: bool = False,
    expected_version: int | None = None,
) -> Staged:
    """Steps 1-5 inside ``tx`` (the caller commits, then runs :func:`after_commit`)."""
    # require_actor and Desk._engine_of written out: they run on every command.  The
    # steps (load, authorise, trigger, write) stay functions a profiler names.
    if not isinstance(actor, Actor):
        require_actor(actor)
    record = load(tx, ref)
    if expected_version is not None and record.version != expected_version:
        raise ConflictError(ref, expected_version, record.version)
    engine = desk._by_type.get(type(record)) or desk._engine_of(record)
    if not isinstance(event, str):
        event = event(record, engine)
    # The Desk's plans by (engine, state, event): one look-up finds the transition too.
    plan = desk._plans.get((engine, record.state, event))
    if plan is not None and plan.rules is desk.rules:
        t: Transition | None = plan.transition
    else:
        t = engine.transition(record.state, event)
        plan = None if t is None else desk_plan(desk, engine, record.state, event, t)
    if direct and t is not None and t.via:
        raise ValidationError("event", event, f"a call of {t.via}(...), which fires it", where=ref)
    now = desk.now()
    if t is None or plan is None:
        raise InvalidTransition(
            record.ref, engine.kind, record.state, event, engine.events_from(record.state)
        )
    ctx = authorise(desk, engine, t, record, event, actor, note, data, now, False, plan)
    dest = trigger(engine, ctx)
    # Only an effect reads ctx.find (the guards ran before it is set): a transition
    # without one is spared making the function (~1.1k instructions).
    if plan.finds:
        ctx.find = finder(tx)
    return write(desk, tx, engine, ctx, dest, plan)


def finder(tx: Transaction) -> Callable[..., list[Record]]:
    """:attr:`Context.find`: the records matching the criteria, as ``tx`` sees them."""
    return lambda **criteria: list(tx.query(**criteria))


def implemented(caller: HookCaller) -> bool:
    """Whether a hook has an implementation, without copying the list (as
    ``get_hookimpls()`` does) on every command."""
    return bool(caller._hookimpls)


def load(tx: Transaction, ref: str) -> Record:
    """Step 1: the record ``ref`` as the transaction sees it; :class:`NotFound` otherwise."""
    record = tx.get(ref)
    if record is None:
        raise NotFound(ref)
    return record


# --- step 2: find, authorise, guard -------------------------------------------------------------


def check(
    desk: Desk,
    record: Record,
    event: str,
    actor: Actor,
    note: str | None,
    data: Mapping[str, Any],
    now: datetime,
    *,
    dry: bool = False,
) -> tuple[Engine, Context, str]:
    """Find, authorise, guard (``dry``: as :meth:`Desk.can` asks, input not checked).

    Raises; writes nothing.  Returns the engine, the guards' context and
    the destination state.
    """
    engine = desk._engine_of(record)
    t = engine.transition(record.state, event)
    if t is None:
        raise InvalidTransition(
            record.ref, engine.kind, record.state, event, engine.events_from(record.state)
        )
    ctx = authorise(desk, engine, t, record, event, actor, note, data, now, dry=dry)
    return engine, ctx, trigger(engine, ctx)


def authorise(
    desk: Desk,
    engine: Engine,
    t: Transition,
    record: Record,
    event: str,
    actor: Actor,
    note: str | None,
    data: Mapping[str, Any],
    now: datetime,
    dry: bool,
    plan: Plan | None = None,
) -> Context:
    """The input, the role, independence, sign-off rules, vetoes, ``before`` hooks.

    Raises; writes nothing.  Returns the context the guards and effects see.
    ``dry`` and ``plan`` may be passed by position (:func:`fire_in` does: cheaper).
    """
    if plan is None:
        plan = plan_of(desk, engine, t)
    if not dry:
        # check_input finds nothing where the note is a str or None, every key is
        # accepted, and a required note or value is a str that is not blank: tested
        # here on the exact types only (a str subclass's strip, a Mapping's get are
        # check_input's to call), which call nothing check_input would not.
        passed = (note is None or type(note) is str) and data.keys() <= plan.accepted
        if passed and not plan.plain_input:
            if type(data) is not dict or (t.note_required and (note is None or not note.strip())):
                passed = False
            else:
                for key in t.requires:
                    value = data.get(key)
                    if type(value) is not str or not value.strip():
                        passed = False
                        break
        if not passed:
            check_input(record, t, note, data)
        for key, words in t.vocabularies:
            if key in data:
                desk.rules.vocabulary(words).check(data[key], key, place(record, t))
    roles = t.roles
    hook = desk.pm.hook
    if plan.plain_auth and (not roles or actor.roles & roles):
        # No roles_from, parties or sign-off (the plan's flag) and the role held: the
        # general way below finds no refusal before the vetoes, so only they can refuse.
        if hook.reqmgmt_authorize._hookimpls:  # implemented(...), inline
            refusals: list[Reason] = vetoes(desk, actor, record, event)
            if refusals:
                raise NotAuthorized(record.ref, event, actor.id, refusals)
    else:
        # (Where the flag is set, the role test above failed: asked once, as before.)
        if plan.plain_auth or t.roles_from is not None or (roles and not actor.roles & roles):
            refusals = role_problems(t, actor, None, record)
        else:
            refusals = []  # role_problems would find none
        parties = plan.parties
        if parties:
            # independence_problems' passing case written out where the plan knows the
            # one field each party's ids read (the library's parties): no call of theirs.
            fields = plan.party_fields
            clear = fields is not None
            if fields is not None:
                for name in fields:
                    pid = getattr(record, name)
                    if pid is not None and actor_key(pid) == actor.id:
                        clear = False
                        break
            if not clear:
                refusals.extend(independence_problems(record, actor, parties, t.signoff))
        if t.signoff:
            department = data.get("department")
            # signer_problems written out where the record class keeps round_signoffs,
            # the department is a str and no reqmgmt_approvers answers: the actor has
            # not signed in this round (else signer_problems says so), and belongs to it.
            if (
                type(record).round_signoffs is _ROUND_SIGNOFFS
                and type(department) is str
                and not hook.reqmgmt_approvers._hookimpls
            ):
                current = record.review_round
                for s in record.signoffs:
                    if s.round == current and actor_key(s.actor_id) == actor.id:
                        refusals.extend(signer_problems(desk, record, actor, department))
                        break
                else:
                    if department not in actor.departments:
                        refusals.append(
                            reason("signoff.not_eligible", actor=actor.id, department=department)
                        )
            else:
                refusals.extend(signer_problems(desk, record, actor, department))
        if not refusals and hook.reqmgmt_authorize._hookimpls:  # implemented(...), inline
            refusals.extend(vetoes(desk, actor, record, event))
        if refusals:
            raise NotAuthorized(record.ref, event, actor.id, refusals)
    if hook.reqmgmt_before_transition._hookimpls:
        before(desk, record, event, actor, record.state)
    # Context(...) written out: attrs' __init__ through type.__call__ costs ~1.2k
    # instructions more.  Every field is set (tests/unit/test_steps6.py compares).
    ctx = _new(Context)
    ctx.record = record
    ctx.actor = actor
    ctx.event = event
    ctx.note = note
    ctx.data = data
    ctx.now = now
    ctx.transition = t
    ctx.lifecycle = engine.lifecycle
    ctx.decide = desk._decide
    ctx.decisions = []
    ctx.find = None
    ctx.vocabularies = desk.rules.vocabularies
    ctx.pm = desk.pm
    return ctx


class Plan:
    """What a command needs of its transition that depends on the transition, its
    engine and the rule set only: looked up once per transition, not per command."""

    __slots__ = (
        "accepted", "engine", "finds", "parties", "party_fields", "plain_auth", "plain_input",
        "recipients", "rules", "topic", "transition", "words",
    )  # fmt: skip

    def __init__(self, desk: Desk, engine: Engine, t: Transition) -> None:
        self.transition = t
        self.engine = engine
        self.rules = desk.rules
        #: ``t.requires`` and ``t.optional``: the data keys the command accepts.
        self.accepted = accepted_keys(t)
        #: No note and no data required: :func:`check_input` has only the
        #: note's type and the keys to check.
        self.plain_input = not t.note_required and not t.requires
        self.parties = engine.independence(t)
        #: The record field each party's ids read, where every party is one of the
        #: library's that reads one field (:data:`_PARTY_FIELDS`); else ``None``.
        self.party_fields = party_fields(self.parties)
        #: No ``roles_from``, no parties, no sign-off: :func:`authorise` has the
        #: role (``t.roles``) and the vetoes to ask, nothing else.
        self.plain_auth = t.roles_from is None and not self.parties and not t.signoff
        #: An effect may run (the transition's, or a sign-off step's where the event is
        #: not the step's sign event: Engine.changes): only then does :func:`fire_in`
        #: give the context its ``find``.
        self.finds = bool(t.effects) or (
            t.signoff
            and any(
                s.decline_effects and t.event != s.sign_event for s in engine.lifecycle.signoffs
            )
        )
        self.topic = f"{engine.kind}.{t.event}"
        #: :func:`recipients`, where they do not depend on the record.
        self.recipients = (
            None if t.notify_from is not None else tuple(every_department(desk, list(t.notify)))
        )
        #: The notification's :func:`wording` and the (from, to) states it is for.
        self.words: tuple[str | None, str, tuple[Transition, Engine, str, str, str, str]] | None
        self.words = None


#: The library's parties whose ids are one field of the record, ``(field,)``: by the
#: party's id, with the party (kept, so an id never stands for another object).
_PARTY_FIELDS: dict[int, tuple[Party, str]] = {
    id(PARTIES[name]): (PARTIES[name], field)
    for name, field in (
        ("drafter", "created_by"), ("submitter", "submitted_by"), ("requester", "requested_by"),
    )
}  # fmt: skip


def party_fields(parties: Sequence[Party]) -> tuple[str, ...] | None:
    """The record field each of ``parties`` reads its one id from, in order; ``None``
    where one is not of :data:`_PARTY_FIELDS` (its ``ids`` are to be called)."""
    fields = []
    for party in parties:
        hit = _PARTY_FIELDS.get(id(party))
        if hit is None or hit[0] is not party:
            return None
        fields.append(hit[1])
    return tuple(fields)


#: Plans by (transition, engine, rule set); each keeps the three, so an id never
#: stands for another object.
_PLANS: dict[tuple[int, int, int], Plan] = {}


def plan_of(desk: Desk, engine: Engine, t: Transition) -> Plan:
    """The :class:`Plan` of ``t`` on ``engine`` under the Desk's rule set, made once."""
    rules = desk.rules
    plan = _PLANS.get((id(t), id(engine), id(rules)))
    if plan is not None and plan.transition is t and plan.engine is engine and plan.rules is rules:
        return plan
    plan = Plan(desk, engine, t)
    if len(_PLANS) >= 4096:
        _PLANS.clear()
    _PLANS[id(t), id(engine), id(rules)] = plan
    return plan


def desk_plan(desk: Desk, engine: Engine, state: str, event: str, t: Transition) -> Plan:
    """:func:`plan_of`, also kept in the Desk's plans by (engine, state, event), where
    :func:`fire_in` finds it without the transition (only declared ones: bounded)."""
    plan = plan_of(desk, engine, t)
    desk._plans[engine, state, event] = plan
    return plan


def trigger(engine: Engine, ctx: Context) -> str:
    """The shared ``transitions`` Machine moves a cursor: guards, then the destination."""
    return engine.run(ctx)


_ROUND_SIGNOFFS = Record.round_signoffs


def signer_problems(desk: Desk, record: Record, actor: Actor, department: object) -> list[Reason]:
    """Once per round, and eligible (``reqmgmt_approvers``, else the actor's departments).

    Who a signer may not be (drafter, submitter) is the step's
    ``independent_of``, checked with every other declaration.
    """
    problems: list[Reason] = []
    # Record.round_signoffs written out where the class keeps it (~3k instructions
    # a sign-off less): the current round's sign-offs, in order.
    plain = type(record).round_signoffs is _ROUND_SIGNOFFS
    current = record.review_round
    for s in record.signoffs if plain else record.round_signoffs():
        if (not plain or s.round == current) and actor_key(s.actor_id) == actor.id:
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
            ask_approvers(desk.pm, [record], department)
            if desk.pm.hook.reqmgmt_approvers._hookimpls  # implemented(...), inline
            else None
        )
        eligible = department in actor.departments if answer is None else actor.id in answer[0]
        if not eligible:
            problems.append(reason("signoff.not_eligible", actor=actor.id, department=department))
    return problems


def vetoes(desk: Desk, actor: Actor, record: Record, event: str) -> list[Reason]:
    """``reqmgmt_authorize``: the refusals (an answer not True/False/None: HookError)."""
    if not implemented(desk.pm.hook.reqmgmt_authorize):
        return []
    names = ask_authorize(desk.pm, {"actor": actor, "record": record, "event": event})
    if not names:
        return []
    return [reason("authorize.vetoed", plugins=", ".join(names))]


def before(desk: Desk, record: Record, event: str, actor: Actor, state: str) -> None:
    """``reqmgmt_before_transition``: a TransitionBlocked gets its place filled in.

    Any other exception, or an answer other than ``None``, raises
    :class:`HookError`.
    """
    if implemented(desk.pm.hook.reqmgmt_before_transition):
        try:
            ask_before(desk.pm, {"record": record, "event": event, "actor": actor})
        except TransitionBlocked as exc:
            raise exc.locate(record.ref, event, state) from None


def role_problems(
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


def require_actor(actor: object) -> None:
    """``actor`` must be an :class:`Actor`."""
    if not isinstance(actor, Actor):
        raise ValidationError(
            "actor", actor, "an Actor (reqmgmt.Actor(id, name, roles=..., departments=...))"
        )


def independence_problems(
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


def check_input(record: Record, t: Transition, note: str | None, data: Mapping[str, Any]) -> None:
    """The note and data the transition requires and accepts."""
    # Runs on every command: the messages (and their place) are built only
    # when something is wrong.
    if t.note_required and (note is None or not str(note).strip()):
        raise ValidationError(
            "note", note, reason("input.note_required", event=t.event), where=place(record, t)
        )
    if note is not None and not isinstance(note, str):
        raise ValidationError("note", note, reason("input.note_type"), where=place(record, t))
    if data and not data.keys() <= accepted_keys(t):
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
                where=place(record, t),
            )
    for key in t.requires:
        value = data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValidationError(
                key,
                value,
                reason("input.data_required", event=t.event, key=key),
                where=place(record, t),
            )


#: The data keys each transition accepts, by transition (kept with it, so an id
#: never stands for another object).
_ACCEPTED: dict[int, tuple[Transition, frozenset[str]]] = {}


def accepted_keys(t: Transition) -> frozenset[str]:
    """``t.requires`` and ``t.optional`` as one set, made once per transition."""
    hit = _ACCEPTED.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    keys = frozenset((*t.requires, *t.optional))
    if len(_ACCEPTED) >= 4096:
        _ACCEPTED.clear()
    _ACCEPTED[id(t)] = (t, keys)
    return keys


def place(record: Record, t: Transition) -> str:
    """Where an input error is: the record and the event."""
    return f"{record.ref} {t.event}"


# --- steps 3-5: derive, diff, seal, stage --------------------------------------------------------


def write(
    desk: Desk, tx: Transaction, engine: Engine, ctx: Context, dest: str, plan: Plan | None = None
) -> Staged:
    """Steps 3-5: the new version, its audit event and notifications, staged in ``tx``."""
    record = ctx.record
    changes = derive_version(desk, engine, ctx, dest)
    # The state is one the lifecycle declares (its names are checked when it is built);
    # the version is the stored one plus one, checked here.
    checked = _ENGINE_CHECKED if record.version < MAX_COUNT else "state"
    # One look-up by (record class, changed names) finds the generated derive and
    # diff of this shape (_WRITES): what derive and field_diff would each look up.
    key = (type(record), tuple(changes))
    both = _WRITES.get(key)
    if both is not None and both[0] is checked and type(changes) is dict:
        new = both[1](record, changes)
        changed = field_diff(record, changes, both[2])  # still the step a profiler names
    else:
        new = derive(record, changes, checked=checked)
        changed = field_diff(record, changes)
        if type(changes) is dict:
            remember_write(key, checked)
    event = seal(engine, ctx, record, new, dest, changed, tx.last_hash(record.ref))
    # A transition that tells no one (its plan's recipients: none, whatever the
    # record) has no notifications: not even the call.  The memory store is handed
    # them lazy: it keeps what they are made of and makes none unless one is read.
    notes = (
        ()
        if plan is not None and plan.recipients == ()
        else notifications(
            desk, engine, ctx.transition, record, new, ctx.now, ctx.note, ctx.data, plan,
            lazy=type(tx) is _MemoryTransaction,
        )
    )  # fmt: skip
    stage(tx, engine, record, new, event, notes)
    return new, event, notes


def derive_version(desk: Desk, engine: Engine, ctx: Context, dest: str) -> dict[str, Any]:
    """Step 3: every field the command changes (effects, engine, deadlines)."""
    record = ctx.record
    changes = engine.changes(ctx)
    changes["state"] = dest
    changes["version"] = record.version + 1
    changes["updated_at"] = now = ctx.now
    state = record.state
    if type(dest) is str and type(state) is str:
        if dest == state:
            # deadline_changes' first case (the same state: only the running deadline can
            # change) written here: neither the Desk's deadline view it would not read,
            # nor a dict of at most one change to merge (~1.4k instructions a sign-off).
            # The running deadline is reminders._earliest's, written out here and below
            # (its call was ~1k instructions a command; test_derive8.py compares).
            due, step_due, paused = record.due_at, record.step_due_at, record.paused_since
            if paused is not None or dest in engine.final:
                nxt = None
            elif due is None or step_due is None:
                nxt = step_due if due is None else due
            else:
                nxt = step_due if step_due < due else due
            if nxt != record.next_deadline:
                changes["next_deadline"] = nxt
            return changes
        rules = desk.rules
        hit = _PLAIN_MOVES.get((engine, state, dest))
        move = (
            hit[1]
            if hit is not None and hit[0] is rules
            else plain_move(engine, state, dest, rules)
        )
        if move is not None:
            # A move that neither starts nor ends a pause, into a state without a step
            # deadline or with one of working hours: what deadline_changes gives then
            # (that step, due that long from now, and the stored due time), in the same
            # order, without its look-ups (~3k instructions a command).
            step, hours = move
            step_due = None if hours is None else desk.calendar.add(now, hours)
            if (step, step_due) != (record.step, record.step_due_at):
                changes["step"] = step
                changes["step_due_at"] = step_due
            due, paused = record.due_at, record.paused_since
            if paused is not None or dest in engine.final:
                nxt = None
            elif due is None or step_due is None:
                nxt = step_due if due is None else due
            else:
                nxt = step_due if step_due < due else due
            if nxt != record.next_deadline:
                changes["next_deadline"] = nxt
            return changes
    changes.update(deadline_changes(desk.deadlines(), engine, record, dest, now, changes=changes))
    return changes


#: A plain move's step and its working hours (both ``None``: no step deadline).
Move = tuple[str | None, timedelta | None]
_NO_STEP: Move = (None, None)
#: By (engine, plain str state, another plain str state): the rule set it was decided
#: with (a rule set is kept, not hashed) and the move for :func:`derive_version`
#: (:func:`plain_move`; ``None``: not plain).
_PLAIN_MOVES: dict[tuple[Engine, str, str], tuple[RuleSet, Move | None]] = {}


def plain_move(engine: Engine, state: str, dest: str, rules: RuleSet) -> Move | None:
    """The step and its working hours for a move from ``state`` to ``dest`` (plain,
    different strings) that neither starts nor ends a pause and whose step deadline
    (rule ``step_deadline``, as reminders memoises it) is none or of working hours:
    then :func:`deadline_changes` sets that step, due that long after the command, and
    keeps the due time.  ``None`` for any other move (a pause, a step due on a field),
    and while the rule's answer is not known yet (:func:`deadline_changes` asks it,
    and this is asked again).  tests/unit/test_derive7.py compares derive_version
    with deadline_changes."""
    waiting = engine.waiting
    move: Move | None
    if (state in waiting) != (dest in waiting):
        move = None
    elif "step_deadline" not in rules.tables:
        move = _NO_STEP
    else:
        known, found = step_rule_memo(rules.version, engine.kind, dest)
        if not known:
            return None
        if found is None:
            move = _NO_STEP
        elif found[2] is None and found[1] is not None:
            move = (found[0], found[1])
        else:
            move = None
    if len(_PLAIN_MOVES) >= 4096:
        _PLAIN_MOVES.clear()
    _PLAIN_MOVES[engine, state, dest] = (rules, move)
    return move


#: How :func:`field_diff` writes a field's values: as they are, a time (``iso``),
#: an optional time, items of plain fields and times, or through the field's unstructure hook.
_AS_IS, _TIME, _OPTIONAL_TIME, _ITEMS, _HOOK = 0, 1, 2, 3, 4
_DIFF_WAYS: dict[type[Record], dict[str, tuple[int, Any]]] = {}


def _item_fields(tp: Any) -> tuple[tuple[str, bool], ...] | None:
    """For ``tuple[X, ...]`` of an attrs class ``X`` whose fields are all written
    as they are or by :func:`iso`: (field name, is a time) of ``X``, in order."""
    args: tuple[Any, ...] = tuple(getattr(tp, "__args__", ()))
    if getattr(tp, "__origin__", None) is not tuple or len(args) != 2 or args[1] is not Ellipsis:
        return None
    item = args[0]
    if not attrs.has(item):
        return None
    hooks = field_unstructurer(cast("type[Record]", item))  # any attrs class does
    if not all(h is None or h is iso for h in hooks.values()):
        return None
    return tuple((a.name, hooks[a.name] is iso) for a in attrs.fields(item))


def _items(fields: tuple[tuple[str, bool], ...], values: tuple[Any, ...]) -> list[dict[str, Any]]:
    """What cattrs makes of ``values`` (a tuple of attrs objects): a list of dicts."""
    text = iso
    return [
        {name: text(getattr(v, name)) if time else getattr(v, name) for name, time in fields}
        for v in values
    ]


#: :func:`_items` of one item class's fields, written out (:func:`items_of`).
_ITEMS_OF: dict[
    tuple[tuple[str, bool], ...], Callable[[tuple[Any, ...]], list[dict[str, Any]]]
] = {}


def items_of(
    fields: tuple[tuple[str, bool], ...],
) -> Callable[[tuple[Any, ...]], list[dict[str, Any]]] | None:
    """:func:`_items` for these ``fields``, generated once: one dict display per item
    (each field read and, for a time, written by :func:`iso`, in the fields' order)
    instead of a comprehension over the fields.  ``None`` where a name cannot be
    written as an attribute (:func:`diff_of_shape` then calls :func:`one_change`)."""
    found = _ITEMS_OF.get(fields)
    if found is not None:
        return found
    if not all(n.isidentifier() and not iskeyword(n) for n, _ in fields):
        return None
    namespace: dict[str, Any] = {"_iso_": iso}
    pairs = ", ".join(f"{n!r}: _iso_(v.{n})" if time else f"{n!r}: v.{n}" for n, time in fields)
    exec(f"def items(values):\n    return [{{{pairs}}} for v in values]", namespace)
    made: Callable[[tuple[Any, ...]], list[dict[str, Any]]] = namespace["items"]
    _ITEMS_OF[fields] = made
    return made


def diff_ways(cls: type[Record]) -> dict[str, tuple[int, Any]]:
    """Per field of ``cls``: how :func:`field_diff` writes its values, decided once.

    A ``datetime`` (or ``datetime | None``) field whose hook is :func:`iso`
    (cattrs' optional wrapper around it) is written by :func:`iso` directly,
    without the wrapper's call (the store writing the record later finds the
    same times in ``iso``'s memory); every other
    field keeps :func:`~reqmgmt.serialize.field_unstructurer`'s hook, but for a
    tuple of attrs items with plain and time fields only (sign-offs, plan
    receipts), whose dicts are made here the same way.
    """
    found = _DIFF_WAYS.get(cls)
    if found is not None:
        return found
    hooks = field_unstructurer(cls)  # resolves the types
    found = {}
    for a in attrs.fields(cls):
        hook = hooks[a.name]
        if hook is None:
            found[a.name] = (_AS_IS, None)
        elif a.type is datetime and hook is iso:
            found[a.name] = (_TIME, None)
        elif a.type == datetime | None and converter.get_unstructure_hook(datetime) is iso:
            found[a.name] = (_OPTIONAL_TIME, None)
        elif (items := _item_fields(a.type)) is not None:
            found[a.name] = (_ITEMS, items)
        else:
            found[a.name] = (_HOOK, hook)
    _DIFF_WAYS[cls] = found
    return found


#: The changes of the last :func:`field_diff` and the same changes as the audit
#: event's canonical JSON writes them (``[field, old, new, op]``): :func:`seal`
#: takes them for the diff it is given (the same tuple) instead of reading every
#: change's four attributes again.  One pair, replaced by every diff.
_LAST_ROWS: tuple[tuple[FieldChange, ...], list[Sequence[Any]]] = ((), [])
#: Diff = the changes and their rows; a generated :func:`field_diff` per shape.
Diff = tuple[tuple[FieldChange, ...], list[Sequence[Any]]]
_SHAPES: dict[tuple[type[Record], tuple[str, ...]], Callable[..., Diff]] = {}

#: Per (record class, changed names in order): the ``checked`` of the command path's
#: derive, the generated derive (:func:`~reqmgmt.model.planned_derive`) and the
#: generated diff (:func:`diff_of_shape`) of that shape, for a dict of changes.
_WRITES: dict[
    tuple[type[Record], tuple[str, ...]],
    tuple[str | frozenset[str], Callable[[Record, dict[str, Any]], Record], Callable[..., Diff]],
] = {}


def remember_write(
    key: tuple[type[Record], tuple[str, ...]], checked: str | frozenset[str]
) -> None:
    """Keep the generated derive and diff of ``key``'s shape for :func:`write`, once
    :func:`~reqmgmt.model.derive` and :func:`field_diff` have made both (not for a
    shape either goes the general way with)."""
    made = planned_derive(key[0], key[1], checked)
    shape = _SHAPES.get(key)
    if made is None or shape is None:
        return
    if len(_WRITES) >= 4096:
        _WRITES.clear()
    _WRITES[key] = (checked, made, shape)


def field_diff(
    record: Record, changes: Mapping[str, Any], shape: Callable[..., Diff] | None = None
) -> tuple[FieldChange, ...]:
    """Step 4: old -> new of each field that changed, as the audit event keeps it.

    A command changes the same fields in the same order again and again (a
    handful of shapes per transition): per record class and changed names,
    :func:`diff_of_shape` writes the diff of that shape out once, each
    field's way inline.  Any other mapping, or a name that is no field, goes
    the general way (:func:`general_diff`, which raises as it always did).
    ``shape``: the generated diff of a dict of these changes' names, where
    :func:`write` found it already (``_WRITES``).
    """
    global _LAST_ROWS
    if shape is None and type(changes) is dict:
        key = (type(record), tuple(changes))
        shape = _SHAPES.get(key) or diff_of_shape(*key)
    if shape is not None:
        diff = shape(record, changes)
        _LAST_ROWS = diff
        return diff[0]
    return general_diff(record, changes)


def general_diff(record: Record, changes: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """:func:`field_diff` field by field, the way of each looked up as it comes."""
    ways = _DIFF_WAYS.get(type(record)) or diff_ways(type(record))
    diff = []
    for name, value in changes.items():
        old = getattr(record, name)
        if old == value:
            continue
        way, hook = ways[name]
        diff.append(one_change(name, old, value, way, hook))
    return tuple(diff)


def one_change(name: str, old: Any, value: Any, way: int, hook: Any) -> FieldChange:
    """The change of field ``name`` from ``old`` to ``value`` (not equal), written its ``way``."""
    text = iso
    if way == _AS_IS:
        return _make_change(name, old, value, "set")
    if way == _TIME:
        return _make_change(name, text(old), text(value), "set")
    if way == _OPTIONAL_TIME:
        return _make_change(
            name, None if old is None else text(old), None if value is None else text(value), "set"
        )
    if way == _ITEMS:
        if (
            type(old) is tuple
            and type(value) is tuple
            and len(value) > len(old)
            and value[: len(old)] == old
        ):
            return _make_change(name, len(old), _items(hook, value[len(old) :]), "append")
        return _make_change(name, _items(hook, old), _items(hook, value), "set")
    if hook is None:  # a _HOOK way has its hook: never here
        raise AssertionError(f"no unstructure hook for {name!r}")
    if (
        type(old) is tuple
        and type(value) is tuple
        and len(value) > len(old)
        and value[: len(old)] == old
    ):
        return _make_change(name, len(old), hook(value[len(old) :]), "append")
    return _make_change(name, hook(old), hook(value), "set")


#: A plain field's change from one scalar to another (str, int, bool, None), by
#: (name, old, new, type of old, type of new): the change and its row.  The
#: same few recur (the version, the state, the step): made once, shared by the
#: events that have them (frozen; equal values of one of these types are one JSON).
_PLAIN_CHANGES: dict[tuple[Any, ...], tuple[FieldChange, tuple[Any, ...]]] = {}
_SCALARS = frozenset((str, int, bool, type(None)))


def plain_change(key: tuple[Any, ...]) -> tuple[FieldChange, tuple[Any, ...]]:
    """The change and row of ``key`` (see :data:`_PLAIN_CHANGES`), made, and remembered
    unless a text is longer than :data:`~reqmgmt.model.MAX_ID` (the ones that recur are
    short; a long note or description would only hold memory, up to 4,096 of them)."""
    name, old, new = key[0], key[1], key[2]
    made = (_make_change(name, old, new, "set"), (name, old, new, "set"))
    if (type(old) is not str or len(old) <= MAX_ID) and (
        type(new) is not str or len(new) <= MAX_ID
    ):
        if len(_PLAIN_CHANGES) >= 4096:
            _PLAIN_CHANGES.clear()
        _PLAIN_CHANGES[key] = made
    return made


#: The plain fields of a shape (:func:`diff_of_shape`) by their old and new values:
#: the changes and rows of each run of them (plain fields next to each other in the
#: shape), made once per key by the shape's :func:`plain_runs`.  A key is the shape's
#: tag (a number no other shape has), then each plain field's old and new value; every
#: value a str, an int or None (:data:`_RUN_TYPES`), where two values are equal only if
#: they are of one type and write one JSON, so the key holds no types.  The same few
#: recur (the states, the version, the step): one look-up for all of a command's plain
#: fields instead of one for each that changed.
_RUNS: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = {}
#: The types of the values that may key :data:`_RUNS`: not bool (True is equal to 1,
#: its JSON is not), no subclass (its own ``==``), nothing else.
_RUN_TYPES = frozenset((str, int, type(None)))
#: The field types whose values are keyed in :data:`_RUNS` (a field of another type, a
#: bool one, is diffed on its own: its values would send every key the general way).
_RUN_FIELD_TYPES = (str, int, str | None, int | None)
#: The tag of the next shape that has plain fields (never one used before).
_RUN_TAGS = itertools.count()


def plain_runs(
    runs: tuple[tuple[str, ...], ...],
) -> Callable[[tuple[Any, ...]], tuple[tuple[Any, ...], ...]]:
    """The function making the :data:`_RUNS` entry of a key of one shape, whose plain
    fields, run by run, are ``runs``: for each run its changes and its rows (a change
    per field whose old value is not equal to its new one, as :func:`plain_change`
    makes it), remembered unless a text is longer than :data:`~reqmgmt.model.MAX_ID`
    (see :func:`plain_change`)."""

    def made(key: tuple[Any, ...]) -> tuple[tuple[Any, ...], ...]:
        found: list[tuple[Any, ...]] = []
        at = 1
        for run in runs:
            changes: list[FieldChange] = []
            rows: list[tuple[Any, ...]] = []
            for name in run:
                old, new = key[at], key[at + 1]
                at += 2
                if old != new:  # str, int or None: as ``not old == new``
                    changes.append(_make_change(name, old, new, "set"))
                    rows.append((name, old, new, "set"))
            found += (tuple(changes), tuple(rows))
        hit = tuple(found)
        if all(type(value) is not str or len(value) <= MAX_ID for value in key):
            if len(_RUNS) >= 4096:
                _RUNS.clear()
            _RUNS[key] = hit
        return hit

    return made


def _inline_iso(var: str, indent: int) -> list[str]:
    """Generated lines making ``var`` its :func:`~reqmgmt.serialize.iso` text, iso's
    hit path written out (``iso_seen``): a time written before (the old version's,
    the command's ``now`` a second time) costs a look-up, not a call (~1k a hit)."""
    pad = " " * indent
    return [
        f"{pad}h = _seen_(id({var}), _not_seen_)",
        f"{pad}{var} = h[1] if h[0] is {var} else _iso_({var})",
    ]


def _change_line(namespace: dict[str, Any]) -> Callable[..., str]:
    """``change(field, old, new, op)``: the generated statement appending a new
    :class:`~reqmgmt.model.FieldChange` to ``out``, its globals put in ``namespace``.

    Filled in place (:func:`~reqmgmt.model.fill_line`, whose stand-in is made by
    calling it: :func:`~reqmgmt.model.made_by`); without a stand-in, made by
    :func:`_make_change`."""
    filled = fill_line(FieldChange, "c")
    if filled is None:
        return lambda *values: f"out.append(_make_({', '.join(values)}))"
    line, names = filled
    namespace.update(names)
    return lambda *values: line.format(*values) + "; out.append(c)"


def _item_lines(i: int, fields: tuple[tuple[str, bool], ...], pad: str) -> list[str]:
    """Generated lines making ``v{i}`` the one item ``v{i}[m]`` as :func:`items_of`
    writes it (a list of its dict), iso's hit path inline: each field read once, in
    order, and a time written as it is read (an error leaves the rest unread, as there)."""
    lines = [f"{pad}x = v{i}[m]"]
    for j, (name, time) in enumerate(fields):
        lines.append(f"{pad}a{j} = x.{name}")
        if time:
            lines += _inline_iso(f"a{j}", len(pad))
    pairs = ", ".join(f"{name!r}: a{j}" for j, (name, _) in enumerate(fields))
    return [*lines, f"{pad}v{i} = [{{{pairs}}}]"]


def diff_of_shape(cls: type[Record], names: tuple[str, ...]) -> Callable[..., Diff] | None:
    """The diff of ``cls`` records for changes of ``names`` (in that order), generated once.

    Straight-line code per name: read the old value, compare, and where it
    changed make the change the way :func:`general_diff` would (a plain
    field, a time, an optional time, items of attrs objects (:func:`items_of`; one
    appended item written inline) and a field's hook written inline;
    :func:`one_change` only for items whose names cannot be written), and its row
    for :func:`seal`.  A plain field's change between scalars is taken from
    :data:`_PLAIN_CHANGES`.  ``None`` when a name is not a field of ``cls`` (the
    general way raises as it always did).

    Where the shape has plain fields of str or int types (:data:`_RUN_FIELD_TYPES`)
    and all of their values are str, int or None, their changes and rows come from
    one look-up (:data:`_RUNS`, by their values) and the code runs the other fields
    only; their comparisons, which call nothing of the values' own, are not made
    (the entry was made by making them).  Any other value takes the whole way.
    Every old value is read first, in the shape's order.
    """
    ways = _DIFF_WAYS.get(cls) or diff_ways(cls)
    if not all(
        type(n) is str and n in ways and n.isidentifier() and not iskeyword(n) for n in names
    ):
        return None
    namespace: dict[str, Any] = {
        "_make_": _make_change, "_iso_": iso, "_one_": one_change, "_scalar_": _SCALARS,
        "_plain_get_": _PLAIN_CHANGES.get, "_plain_": plain_change, "_seen_": iso_seen,
        "_not_seen_": ISO_NOT_SEEN, "_run_types_": _RUN_TYPES, "_runs_get_": _RUNS.get,
    }  # fmt: skip
    change = _change_line(namespace)
    declared = attrs.fields_dict(cls)

    def field(i: int, name: str, pad: str) -> list[str]:
        """The lines diffing ``names[i]`` (old value ``o{i}``, new ``v{i}``)."""
        way, hook = ways[name]
        o, v, n = f"o{i}", f"v{i}", repr(name)
        lines = [f"{pad}if not {o} == {v}:"]
        pad += "    "
        if way == _AS_IS:
            return [
                *lines,
                f"{pad}t, u = type({o}), type({v})",
                f"{pad}if t in _scalar_ and u in _scalar_:",
                f"{pad}    hit = _plain_get_(k := ({n}, {o}, {v}, t, u)) or _plain_(k)",
                f"{pad}    out.append(hit[0])",
                f"{pad}    rows.append(hit[1])",
                f"{pad}else:",
                f"{pad}    {change(n, o, v, repr('set'))}",
                f"{pad}    rows.append(({n}, {o}, {v}, 'set'))",
            ]
        if way == _TIME:
            lines += [*_inline_iso(o, len(pad)), *_inline_iso(v, len(pad))]
        elif way == _OPTIONAL_TIME:
            lines += [f"{pad}if {o} is not None:", *_inline_iso(o, len(pad) + 4)]
            lines += [f"{pad}if {v} is not None:", *_inline_iso(v, len(pad) + 4)]
        else:
            # Items of attrs objects (their own generated dicts) or a field's hook:
            # one_change's two cases written out, an appended tail first.
            write_out = items_of(hook) if way == _ITEMS else hook
            if write_out is None:
                namespace[f"_way{i}_"], namespace[f"_hook{i}_"] = way, hook
                return [
                    *lines,
                    f"{pad}c = _one_({n}, {o}, {v}, _way{i}_, _hook{i}_)",
                    f"{pad}out.append(c)",
                    f"{pad}rows.append((c.field, c.old, c.new, c.op))",
                ]
            namespace[f"_out{i}_"] = write_out
            lines.append(
                f"{pad}if type({o}) is tuple and type({v}) is tuple"
                f" and len({v}) > (m := len({o})) and {v}[:m] == {o}:"
            )
            if way == _ITEMS:  # one item appended (a sign-off): its dict written here
                lines += [
                    f"{pad}    if len({v}) == m + 1:",
                    *_item_lines(i, hook, pad + "        "),
                    f"{pad}    else:",
                    f"{pad}        {v} = _out{i}_({v}[m:])",
                ]
            else:
                lines.append(f"{pad}    {v} = _out{i}_({v}[m:])")
            return [
                *lines,
                f"{pad}    {change(n, 'm', v, repr('append'))}",
                f"{pad}    rows.append(({n}, m, {v}, 'append'))",
                f"{pad}else:",
                f"{pad}    {o} = _out{i}_({o})",
                f"{pad}    {v} = _out{i}_({v})",
                f"{pad}    {change(n, o, v, repr('set'))}",
                f"{pad}    rows.append(({n}, {o}, {v}, 'set'))",
            ]
        return [
            *lines,
            f"{pad}{change(n, o, v, repr('set'))}",
            f"{pad}rows.append(({n}, {o}, {v}, 'set'))",
        ]

    lines = ["def diff(record, changes):"]
    if names:
        lines.append(f"    {''.join(f'v{i}, ' for i in range(len(names)))}= changes.values()")
        lines += [f"    o{i} = record.{name}" for i, name in enumerate(names)]
    plain = [ways[n][0] == _AS_IS and declared[n].type in _RUN_FIELD_TYPES for n in names]
    if any(plain):
        # The runs of plain fields, and the fast way: each run's changes and rows from
        # the one entry, the other fields diffed as below.
        runs: list[tuple[str, ...]] = []
        fast: list[str] = []
        for i, name in enumerate(names):
            if not plain[i]:
                fast += field(i, name, "        ")
            elif i and plain[i - 1]:
                runs[-1] += (name,)
            else:
                j = 2 * len(runs)
                runs.append((name,))
                if i:
                    fast += [f"        out += found[{j}]", f"        rows += found[{j + 1}]"]
                else:
                    fast += [f"        out = [*found[{j}]]", f"        rows = [*found[{j + 1}]]"]
        if not plain[0]:
            fast[:0] = ["        out = []", "        rows = []"]
        tag = next(_RUN_TAGS)  # one step: two shapes made at once never share a tag
        namespace["_runs_"] = plain_runs(tuple(runs))
        values = [f"{x}{i}" for i in range(len(names)) if plain[i] for x in "ov"]
        lines += [
            # Each type tested here (a test a value: cheaper than map(type, ...) by ~1k).
            f"    if {' and '.join(f'type({x}) in _run_types_' for x in values)}:",
            f"        found = _runs_get_(key := ({tag}, {', '.join(values)})) or _runs_(key)",
            *fast,
            "        return tuple(out), rows",
        ]
    lines += ["    out = []", "    rows = []"]
    for i, name in enumerate(names):
        lines += field(i, name, "    ")
    lines.append("    return tuple(out), rows")
    exec("\n".join(lines), namespace)
    made: Callable[..., Diff] = namespace["diff"]
    if len(_SHAPES) >= 4096:
        _SHAPES.clear()
    _SHAPES[cls, names] = made
    return made


def seal(
    engine: Engine,
    ctx: Context,
    record: Record,
    new: Record,
    dest: str,
    diff: tuple[FieldChange, ...],
    prev_hash: str | None,
) -> AuditEvent:
    """Step 4: the audit event, hash-chained to the record's last one.

    Given field_diff's rows, the seal keeps the bytes as the last sealed only
    (:data:`~reqmgmt.audit.LAST_SEALED`): :func:`stage` hands the event to the
    store before another command seals."""
    decisions = ctx.decisions
    actor = ctx.actor
    last = _LAST_ROWS  # the rows field_diff made for this diff, if it made them
    return seal_event(
        record.ref, engine.kind, new.version, ctx.event, record.state, dest, actor.id,
        actor.name, ctx.now, ctx.note, ctx.transition.meaning, diff,
        tuple([d.summary() for d in decisions]) if decisions else (), prev_hash or "",
        last[1] if last[0] is diff else None,
    )  # fmt: skip


def stage(
    tx: Transaction,
    engine: Engine,
    old: Record,
    new: Record,
    event: AuditEvent,
    notes: Sequence[Notification],
) -> None:
    """Step 5: the new version, its audit event, its notifications and the report's
    summary rows (:mod:`reqmgmt.summaries`), in ``tx``."""
    tx.update(new, expected_version=old.version)
    tx.append_audit(event)
    if notes:
        tx.enqueue(notes)
    summaries.stage(tx, engine, old, new, event.at)


@overload
def notifications(
    desk: Desk,
    engine: Engine,
    t: Transition,
    old: Record | None,
    new: Record,
    now: datetime,
    note: str | None = None,
    data: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
    *,
    lazy: Literal[False] = False,
) -> tuple[Notification, ...]: ...


@overload
def notifications(
    desk: Desk,
    engine: Engine,
    t: Transition,
    old: Record | None,
    new: Record,
    now: datetime,
    note: str | None = None,
    data: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
    *,
    lazy: bool,
) -> Sequence[Notification]: ...


def notifications(
    desk: Desk,
    engine: Engine,
    t: Transition,
    old: Record | None,
    new: Record,
    now: datetime,
    note: str | None = None,
    data: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
    *,
    lazy: bool = False,
) -> Sequence[Notification]:
    """The notifications of a command (``old`` is ``None`` for a creating one);
    ``plan``: the transition's :class:`Plan`, when the caller has it.

    ``lazy``: not the tuple but a :class:`LazyNotifications` that makes it when first
    read (what :func:`write` hands the memory store, which keeps what they are made
    of and, for a command, reads none of them)."""
    if plan is None:
        plan = plan_of(desk, engine, t)
    to_all = plan.recipients if plan.recipients is not None else recipients(desk, t, new)
    if not to_all:
        return ()
    frm = old.state if old is not None else None
    kept = plan.words
    if kept is not None and kept[0] == frm and kept[1] == new.state:
        words = kept[2]
    else:
        found = _WORDING.get((id(t), frm, new.state))
        words = (
            found
            if found is not None and found[0] is t and found[1] is engine
            else wording(engine, t, old, new)
        )
        plan.words = (frm, new.state, words)
    zh = words[2] + new.ref + words[3]
    en = words[4] + new.ref + words[5]
    if note:
        said = notices.text(note)
        zh += f";说明:{said}"
        en += f"; note: {said}"
    details = notices.details(data) if data else ()
    # One string per kind and event, shared by every notification that has it.
    ref, version, kind, topic = new.ref, new.version, engine.kind, plan.topic
    prefix = f"{ref}:{version}:"
    made: Sequence[Notification]
    if lazy:  # LazyNotifications(args) without the class call
        made = lazy_made = _new(LazyNotifications)
        lazy_made._args = (
            to_all, prefix, ref, kind, version, t.event, topic, zh, en, now, note, details
        )  # fmt: skip
        lazy_made._made = None
    else:
        made = _make_notifications(
            to_all, prefix, ref, kind, version, t.event, topic, zh, en, now, note, details
        )
    # What they are made of, for the memory store (notices.made): read once, here.
    notices.made = (
        made, to_all, prefix, ref, kind, version, t.event, topic, zh, en, now, note, details
    )  # fmt: skip
    return made


#: The fields a command's notifications are made of, besides each one's key and recipient.
_NOTIFICATION_VALUES = (
    "ref", "record_kind", "version", "event", "topic", "text_zh", "text_en", "created_at",
    "note", "details",
)  # fmt: skip


def makes_lazily(tx: Transaction) -> bool:
    """Whether ``tx`` takes a command's notifications as a :class:`LazyNotifications`
    (the memory store's transaction itself: it makes none unless one is read); every
    other store gets the tuple.  :func:`write` asks the same test inline."""
    return type(tx) is _MemoryTransaction


def notifications_maker(fill_in: bool = True) -> Callable[..., tuple[Notification, ...]]:
    """``make(recipients, prefix, ref, record_kind, ..., details)``
    (:data:`_NOTIFICATION_VALUES`): one notification per recipient, keyed ``prefix +
    recipient``, made in one generated loop.  Each is filled in as
    :func:`~reqmgmt.model.fill_line` fills one (a stand-in, then its class: as
    :func:`~reqmgmt.model.maker` makes one, without its call: ~0.7k instructions a
    notification less, and an accepted requirement tells 13); without a stand-in
    (or ``fill_in`` false), through ``object.__setattr__``; a field this does not
    know, through attrs' ``__init__`` by name."""
    names = [a.name for a in attrs.fields(Notification)]
    fill = {"key": "prefix + recipient", "recipient": "recipient"}
    fill.update((name, name) for name in _NOTIFICATION_VALUES)
    namespace: dict[str, Any] = {
        "_new_": _new, "_cls_": Notification, "_put_": object.__setattr__,
    }  # fmt: skip
    filled = fill_line(Notification, "n") if fill_in else None
    if set(names) != fill.keys():
        made = f"n = _cls_({', '.join(f'{k}={v}' for k, v in fill.items())})"
    elif filled is not None:
        made = filled[0].format(*[fill[name] for name in names])
        namespace.update(filled[1])
    else:
        made = "n = _new_(_cls_); " + "; ".join(f"_put_(n, {n!r}, {fill[n]})" for n in names)
    lines = [
        f"def make(recipients, prefix, {', '.join(_NOTIFICATION_VALUES)}):",
        "    out = []",
        "    for recipient in recipients:",
        f"        {made}",
        "        out.append(n)",
        "    return tuple(out)",
    ]
    exec("\n".join(lines), namespace)
    make: Callable[..., tuple[Notification, ...]] = namespace["make"]
    return make


_make_notifications = notifications_maker()


class LazyNotifications(Sequence[Notification]):
    """A command's notifications, made when first read (:func:`notifications`, ``lazy``).

    It holds what they are made of (the arguments of :func:`notifications_maker`'s
    ``make``) and makes the tuple the first time anyone reads it (its length excepted:
    one a recipient), then answers from that tuple: the objects the store staged, if
    it read them, are the ones a later reader gets.  The memory store, handed one by
    a command, keeps the values (:data:`reqmgmt.notices.made`) and reads no
    notification unless someone asks for them before the commit (``outbox``,
    ``pending``, a second ``enqueue``...): a command that only stages and commits
    makes none (~3.6k instructions a notification, 13 for an accepted requirement).
    Never empty: a command that tells no one has ``()``.  Equal to (and hashed as)
    the tuple it stands for.
    """

    __slots__ = ("_args", "_made")
    _args: tuple[Any, ...]
    _made: tuple[Notification, ...] | None

    def __init__(self, args: tuple[Any, ...]) -> None:
        self._args = args
        self._made = None

    def made(self) -> tuple[Notification, ...]:
        """The notifications (made now if no one read them yet)."""
        made = self._made
        if made is None:
            made = self._made = _make_notifications(*self._args)
        return made

    def __len__(self) -> int:
        return len(self._args[0])

    @overload
    def __getitem__(self, index: int) -> Notification: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Notification, ...]: ...

    def __getitem__(self, index: int | slice) -> Notification | tuple[Notification, ...]:
        return self.made()[index]

    def __iter__(self) -> Iterator[Notification]:
        return iter(self.made())

    def __eq__(self, other: object) -> bool:
        if type(other) is LazyNotifications:
            other = other.made()
        return self.made() == other

    def __hash__(self) -> int:
        return hash(self.made())

    def __repr__(self) -> str:
        return repr(self.made())


def recipients(desk: Desk, t: Transition, new: Record) -> list[str]:
    """Who is told of ``t`` leading to ``new``: the declared recipients, those
    ``notify_from`` adds, every department where ``EVERY_DEPARTMENT`` stands."""
    found = list(t.notify)
    if t.notify_from is not None:
        found.extend(r for r in t.notify_from(new) if r not in found)
    return every_department(desk, found)


def every_department(desk: Desk, found: list[str]) -> list[str]:
    """``found`` with ``EVERY_DEPARTMENT`` replaced by each department not in it yet."""
    if EVERY_DEPARTMENT in found:
        at = found.index(EVERY_DEPARTMENT)
        every = [f"department:{d}" for d in desk.rules.vocabulary("departments")]
        found[at : at + 1] = [r for r in every if r not in found]
    return found


#: A notification's text around the record's reference, by (transition, from,
#: to): (transition, engine, zh before, zh after, en before, en after).
_WORDING: dict[tuple[int, str | None, str], tuple[Transition, Engine, str, str, str, str]] = {}


def wording(
    engine: Engine, t: Transition, old: Record | None, new: Record
) -> tuple[Transition, Engine, str, str, str, str]:
    """The labels a notification of ``t`` says around the reference, made once."""
    lc = engine.lifecycle
    to = engine.labels[new.state]
    if old is None:
        zh, en = (f"{lc.zh} ", f":{to.zh}"), (f"{lc.en} ", f": {to.en}")
    else:
        frm = engine.labels[old.state]
        zh = (f"{lc.zh} ", f":{frm.zh} → {to.zh}({t.zh})")
        en = (f"{lc.en} ", f": {frm.en} → {to.en} ({t.en})")
    words = (t, engine, *zh, *en)
    if len(_WORDING) >= 4096:
        _WORDING.clear()
    _WORDING[id(t), old.state if old is not None else None, new.state] = words
    return words


# --- step 6: after commit -------------------------------------------------------------------------

_open_units = hostunit.open_units


def after_commit(
    desk: Desk, record: Record, event: AuditEvent, notes: Sequence[Notification]
) -> None:
    """Step 6: observers, then delivery.  Nothing here can undo the command."""
    # Inside the host's unit_of_work: after the host's commit, never after its rollback.
    # deferred answers False where no unit is open at all: asked first, without its call.
    if _open_units() and hostunit.deferred(desk.store, after_commit, desk, record, event, notes):
        return
    hook = desk.pm.hook
    if hook.reqmgmt_after_transition._hookimpls:  # observe_now, without the call
        observe_now(desk, record, event)  # not deferred here, so not in observe either
    # notes asked last: a LazyNotifications answers by a call (a tuple at no cost).
    if desk.autodispatch and hook.reqmgmt_notify._hookimpls and notes:  # implemented(...)
        # Claimed like any dispatcher would, so a worker running dispatch
        # at the same time does not deliver them too.  Per record, order
        # is kept: behind an earlier notification that is backing off,
        # these wait for the next dispatch.
        deliver_claimed(desk, ref=record.ref)


def observe(desk: Desk, record: Record, event: AuditEvent) -> None:
    """``reqmgmt_after_transition`` observers; a failing one is logged, not raised."""
    if hostunit.deferred(desk.store, observe, desk, record, event):  # after the host's commit
        return
    observe_now(desk, record, event)


def observe_now(desk: Desk, record: Record, event: AuditEvent) -> None:
    """:func:`observe` where no host unit of work is open."""
    if implemented(desk.pm.hook.reqmgmt_after_transition):
        ask_observers(
            desk.pm,
            {"record": record, "audit_event": event},
            f"{record.ref} version {record.version}",
        )
