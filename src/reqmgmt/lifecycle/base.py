"""Lifecycle declarations and the engine that runs them.

A lifecycle is data: states with zh-CN and English labels, transitions with
the event, the roles allowed to fire it, guards, effects and whether a note is
required, and sign-off steps (会签).  :meth:`Lifecycle.build` checks the
declaration and builds ONE ``transitions.Machine`` for the whole kind
(``model=None``); every command drives it through a throwaway cursor, so
records stay frozen and nothing is kept per record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from attrs import field, frozen
from transitions import Machine

from ..errors import ConfigError, TransitionBlocked, ValidationError
from ..i18n import Text, reason
from ..model import (
    FAST_NAMES,
    SIGNATURE_MEANINGS,
    Actor,
    Record,
    Signoff,
    _generated,
    _stand_in,
    fast_pass,
    text_problem,
)

if TYPE_CHECKING:
    import pluggy

    from ..rules.model import Decision
    from ..rules.vocabulary import Vocabulary

__all__ = [
    "COMMON_DATA",
    "EVERY_DEPARTMENT",
    "PARTIES",
    "Context",
    "CreationInput",
    "Effect",
    "Engine",
    "Guard",
    "Lifecycle",
    "Party",
    "SignoffStep",
    "State",
    "Transition",
    "all_signed",
    "append_note_to",
    "department_open",
    "note_as_reason",
    "refuses",
    "set_from_data",
    "staying",
    "with_transitions",
]

#: A guard returns ``None`` when the transition may go ahead, or the reason it may not:
#: a :class:`reqmgmt.i18n.Reason` (code, English and Chinese text) from
#: :func:`reqmgmt.i18n.reason`; a plain string becomes one with the code ``text``.
Guard = Callable[["Context"], str | None]

#: A recipient that stands for every department of the rule set's ``departments``
#: vocabulary: the Desk writes one notification per department.
EVERY_DEPARTMENT = "department:*"
_G = TypeVar("_G", bound=Callable[..., Any])


def refuses(*codes: str) -> Callable[[_G], _G]:
    """Declare the reason codes a guard may answer (``guard.reason_codes``).

    The library's guards all declare theirs; a test checks each code is in
    the catalogue with an English and a Chinese text.
    """

    def mark(guard: _G) -> _G:
        guard.reason_codes = codes  # type: ignore[attr-defined]
        return guard

    return mark


#: An effect returns the fields the transition changes (name → new value).
Effect = Callable[["Context"], Mapping[str, Any]]


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _roles(value: Iterable[str]) -> frozenset[str]:
    return frozenset((value,)) if isinstance(value, str) else frozenset(value)


def _pairs(value: Iterable[tuple[str, str]] | Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), str(v)) for k, v in items)


def _guards(value: Iterable[Guard]) -> tuple[Guard, ...]:
    return tuple(value)


def _effects(value: Iterable[Effect]) -> tuple[Effect, ...]:
    return tuple(value)


def _states(value: Iterable[State]) -> tuple[State, ...]:
    return tuple(value)


def _transitions(value: Iterable[Transition]) -> tuple[Transition, ...]:
    return tuple(value)


def _steps(value: Iterable[SignoffStep]) -> tuple[SignoffStep, ...]:
    return tuple(value)


def _inputs(value: Iterable[CreationInput]) -> tuple[CreationInput, ...]:
    return tuple(value)


def _parties(value: Iterable[Party]) -> tuple[Party, ...]:
    return tuple(value)


@frozen
class CreationInput:
    """A field the caller gives when a record is created (the lifecycle's allow-list).

    ``required``: creation is refused without it.  ``vocabulary``: the rule
    set's vocabulary its value (or, for a collection, each item) comes from.
    Every other field of the record (state, version, sign-offs, review round,
    submitter, a contract's class and route, ...) is the engine's to set.
    """

    name: str
    required: bool = False
    vocabulary: str | None = None


@frozen
class Party:
    """Someone an approval must be independent of (separation of duties).

    ``ids(record)`` gives the ids of the people in that part (``None`` items
    are skipped); ``says`` completes "<actor> ... and may not approve it",
    with ``{ref}`` and ``{round}`` filled in from the record; ``zh`` says the
    same in Chinese (``says`` when not given).
    """

    name: str
    ids: Callable[[Record], Iterable[str | None]]
    says: str
    zh: str = ""

    def told(self, record: Record) -> Text:
        """What ``says`` (and ``zh``) say about ``record``."""
        en = self.says.format(ref=record.ref, round=record.review_round)
        zh = self.zh.format(ref=record.ref, round=record.review_round) if self.zh else en
        return Text(en, zh)


def _round_signers(record: Record) -> Iterable[str]:
    return [s.actor_id for s in record.round_signoffs()]


#: The parties every lifecycle knows; a lifecycle adds its own in ``Lifecycle.parties``.
PARTIES: dict[str, Party] = {
    p.name: p
    for p in (
        Party("drafter", lambda r: (r.created_by,), "drafted {ref}", "起草了 {ref}"),
        Party(
            "submitter",
            lambda r: (r.submitted_by,),
            "submitted this review (round {round})",
            "提交了本次评审（第 {round} 轮）",
        ),
        Party(
            "signers",
            _round_signers,
            "signed for a department in this review",
            "已在本次评审中代表某部门会签",
        ),
        Party(
            "requester",
            lambda r: (r.requested_by,),
            "requested this approval",
            "提出了本次审批申请",
        ),
    )
}

#: What ``Transition.independent=True`` stands for.
STANDARD_INDEPENDENCE = ("drafter", "submitter", "signers")


@attrs.define(slots=True)
class Context:
    """What guards and effects see of the command being run."""

    record: Record
    actor: Actor
    event: str
    note: str | None
    data: Mapping[str, Any]
    now: datetime
    transition: Transition
    lifecycle: Lifecycle
    decide: Callable[[str, Mapping[str, Any], str | None], Decision] | None = None
    decisions: list[Decision] = attrs.Factory(list)
    #: Reads other records in the command's transaction (set while writing).
    find: Callable[..., list[Record]] | None = None
    #: The rule set's vocabularies (departments...), set by the Desk.
    vocabularies: Mapping[str, Vocabulary] | None = None
    #: The Desk's plugin manager, for effects that ask the host (checked answers:
    #: :mod:`reqmgmt.hookcalls`).
    pm: pluggy.PluginManager | None = None

    def departments(self) -> tuple[str, ...]:
        """Every department of the rule set's ``departments`` vocabulary."""
        if self.vocabularies is None or "departments" not in self.vocabularies:
            raise ValidationError("vocabularies", None, "a Desk with a rule set", where="Context")
        return tuple(self.vocabularies["departments"])

    def classify(
        self, table: str, facts: Mapping[str, Any], version: str | None = None
    ) -> Decision:
        """Decide with the Desk's rule set (or the one of ``version``).

        The decision goes into the command's audit event.
        """
        if self.decide is None:
            raise ValidationError("rules", None, "a Desk with a rule set", where="Context")
        decision = self.decide(table, facts, version)
        self.decisions.append(decision)
        return decision


@frozen
class State:
    """A state with the labels users read on their forms.

    ``waiting`` marks states where the record waits on the customer (the
    deadline clock pauses there); ``final`` states have no way out.
    """

    name: str
    zh: str
    en: str
    final: bool = False
    waiting: bool = False


@frozen
class Transition:
    """An event that moves a record from one of ``sources`` to ``dest``.

    ``roles``: the actor must hold one of them (empty: anyone).
    ``note_required``: the command must carry a note (the reason of a
    rejection, cancellation, the customer's answer...).
    ``requires``: data keys the command must carry.
    ``opens_review``: entering a new review round; the actor becomes the
    submitter, who may not sign in that round.
    ``meaning``: what the actor's name on this event means (review, approval,
    responsibility), kept in the audit.
    ``independent_of``: the parties (:data:`PARTIES`: ``drafter``,
    ``submitter``, ``signers``, ``requester``, or the lifecycle's own) the
    actor may not be; the engine refuses them with :class:`NotAuthorized`.
    A transition whose ``meaning`` is ``"approval"`` must declare it, or
    waive it with ``independence_waived`` saying why (checked by
    :meth:`Lifecycle.problems`).
    ``requests_approval``: the actor asks for an approval; they are kept as
    the record's ``requested_by`` (the ``requester`` party) until the next
    review round opens.
    """

    event: str
    sources: tuple[str, ...] = field(converter=_names)
    dest: str
    zh: str = ""
    en: str = ""
    roles: frozenset[str] = field(factory=frozenset, converter=_roles)
    note_required: bool = False
    requires: tuple[str, ...] = field(default=(), converter=_names)
    guards: tuple[Guard, ...] = field(default=(), converter=_guards)
    effects: tuple[Effect, ...] = field(default=(), converter=_effects)
    notify: tuple[str, ...] = field(default=(), converter=_names)
    opens_review: bool = False
    meaning: str | None = None
    signoff: bool = False
    #: Roles decided per record (e.g. the approver its review route names);
    #: used instead of ``roles`` when set.
    roles_from: Callable[[Record], frozenset[str]] | None = None
    #: Shorthand for ``independent_of=("drafter", "submitter", "signers")``.
    independent: bool = False
    #: Parties the actor may not be (separation of duties), by name.
    independent_of: tuple[str, ...] = field(default=(), converter=_names)
    #: Why this approval needs no independence (an explicit opt-out).
    independence_waived: str | None = None
    #: The actor asks for an approval: kept as ``requested_by``.
    requests_approval: bool = False
    #: Data keys the command may carry besides ``requires``.
    optional: tuple[str, ...] = field(default=(), converter=_names)
    #: Recipients decided per record (on the new version), added to ``notify``.
    notify_from: Callable[[Record], Sequence[str]] | None = None
    #: Who ``notify_from`` names, for the recipient table of docs/hooks.md
    #: (e.g. ``"department:<each department of the review route>"``).
    notify_from_says: str = ""
    #: The Desk method that fires this event as part of a larger command;
    #: ``desk.fire`` refuses it and names that method instead.
    via: str | None = None
    #: Data keys whose value must be a word of a rule-set vocabulary:
    #: ``(("kind", "identified_kinds"),)``; the Desk refuses any other value
    #: with a ValidationError listing the allowed ones, before anything runs.
    vocabularies: tuple[tuple[str, str], ...] = field(default=(), converter=_pairs)


@frozen
class SignoffStep:
    """A countersign step (会签) held in ``state``.

    Each department in ``departments`` (or returned by it, for a route the
    rules chose per record) signs once per review round.  Approving keeps the
    record in ``state``; declining sends it back to ``rework`` with the
    opinion kept as the reason.  The step adds the events ``sign_event`` and
    ``decline_event`` to the lifecycle.
    """

    state: str
    departments: tuple[str, ...] | Callable[[Record], Sequence[str]]
    #: Where a decline sends the record; ``None``: it stays where it is.
    rework: str | None
    meaning: str = "review"
    sign_event: str = "sign"
    decline_event: str = "decline"
    roles: frozenset[str] = field(factory=frozenset, converter=_roles)
    #: Further states the step is held in (an amendment review runs in each
    #: state a contract may be amended in).
    also_in: tuple[str, ...] = field(default=(), converter=_names)
    #: Effects of a decline besides keeping the opinion as the reason.
    decline_effects: tuple[Effect, ...] = field(default=(), converter=_effects)
    #: Parties a signer may not be (besides signing once per round).
    independent_of: tuple[str, ...] = field(default=("drafter", "submitter"), converter=_names)

    @property
    def states(self) -> tuple[str, ...]:
        """Every state the step is held in."""
        return (self.state, *self.also_in)

    def required(self, record: Record) -> tuple[str, ...]:
        """The departments that must sign ``record`` in this step."""
        if callable(self.departments):
            return tuple(self.departments(record))
        return self.departments

    def missing(self, record: Record) -> tuple[str, ...]:
        """Departments that have not yet approved in the current round."""
        approved = {s.department for s in record.round_signoffs() if s.approve}
        return tuple(d for d in self.required(record) if d not in approved)


# --- reusable guards and effects -------------------------------------------------------


#: Where no sign-off step is held (a key of :data:`_STEP_TABLES`' tables).
_NO_STEP = object()
#: The sign-off step held in each state, by lifecycle (kept with it, so an id never
#: stands for another object): what the guards ask ``Lifecycle.signoff_step``.
_STEP_TABLES: dict[int, tuple[Lifecycle, dict[str, SignoffStep | None]]] = {}


def step_table(lc: Lifecycle) -> dict[str, SignoffStep | None]:
    """``lc.signoff_step(state)`` of each state ``lc`` declares, asked once (a Lifecycle
    of its own class: a subclass's answer may change, so it is asked every time: {})."""
    if type(lc) is not Lifecycle:
        return {}
    found = _STEP_TABLES.get(id(lc))
    if found is not None and found[0] is lc:
        return found[1]
    table = {s.name: lc.signoff_step(s.name) for s in lc.states if type(s.name) is str}
    if len(_STEP_TABLES) >= 4096:
        _STEP_TABLES.clear()
    _STEP_TABLES[id(lc)] = (lc, table)
    return table


def _step_of(lc: Lifecycle, state: str) -> Any:
    """``lc.signoff_step(state)``, from the lifecycle's table (:func:`step_table`) where
    it holds the state, a plain str; else asked."""
    if type(state) is str:
        hit = _STEP_TABLES.get(id(lc))
        step = (hit[1] if hit is not None and hit[0] is lc else step_table(lc)).get(state, _NO_STEP)
        if step is not _NO_STEP:
            return step
    return lc.signoff_step(state)


@refuses("signoff.incomplete")
def all_signed(ctx: Context) -> str | None:
    """Guard: every department of the current state's sign-off step has approved."""
    record = ctx.record
    step = _step_of(ctx.lifecycle, record.state)
    if step is None:
        return None
    if type(step) is SignoffStep and type(record).round_signoffs is _ROUND_SIGNOFFS:
        # SignoffStep.missing (with required) and Record.round_signoffs written out: the
        # step's departments without an approval in the current round, in its order
        # (three calls and two comprehensions' frames fewer).
        current = record.review_round
        approved = set()
        for s in record.signoffs:
            if s.round == current and s.approve:
                approved.add(s.department)
        departments = step.departments
        unsigned: list[str] = []
        for d in tuple(departments(record)) if callable(departments) else departments:
            if d not in approved:
                unsigned.append(d)
        missing: Sequence[str] = unsigned
    else:
        missing = step.missing(record)
    if missing:
        return reason("signoff.incomplete", round=record.review_round, missing=", ".join(missing))
    return None


_ROUND_SIGNOFFS = Record.round_signoffs


@refuses("signoff.no_review", "signoff.department_not_in_step", "signoff.already_signed")
def department_open(ctx: Context) -> str | None:
    """Guard of sign-off events: the department signs in this step and has not yet."""
    record = ctx.record
    state = record.state
    step = _step_of(ctx.lifecycle, state)
    if step is None:
        return None
    department = ctx.data.get("department")
    if type(step) is SignoffStep:  # SignoffStep.required written out
        departments = step.departments
        required = tuple(departments(record)) if callable(departments) else departments
    else:
        required = step.required(record)
    if not required:
        return reason("signoff.no_review", state=record.state)
    if department not in required:
        return reason(
            "signoff.department_not_in_step",
            department=department,
            state=record.state,
            required=", ".join(required),
        )
    # Record.round_signoffs written out where the class keeps it (as the signer's check
    # does): the current round's sign-offs, in order, without the call and its tuple.
    if type(record).round_signoffs is _ROUND_SIGNOFFS:
        current = record.review_round
        for s in record.signoffs:
            if s.round == current and s.department == department:
                return reason(
                    "signoff.already_signed", department=department, round=s.round, actor=s.actor_id
                )
        return None
    for s in record.round_signoffs():
        if s.department == department:
            return reason(
                "signoff.already_signed", department=department, round=s.round, actor=s.actor_id
            )
    return None


def note_as_reason(ctx: Context) -> Mapping[str, Any]:
    """Effect: keep the command's note as the record's reason (rejection, cancellation)."""
    return {"reason": ctx.note}


def append_note_to(name: str) -> Effect:
    """Effect: append the command's note to the tuple field ``name`` (remarks...)."""

    def effect(ctx: Context) -> Mapping[str, Any]:
        return {name: (*getattr(ctx.record, name), ctx.note)}

    effect.__name__ = f"append_note_to_{name}"
    return effect


def set_from_data(name: str, key: str | None = None) -> Effect:
    """Effect: set field ``name`` from the command's data ``key`` (default: same name)."""
    source = key or name

    def effect(ctx: Context) -> Mapping[str, Any]:
        return {name: ctx.data[source]}

    effect.__name__ = f"set_{name}"
    return effect


def staying(states: Iterable[str], **declared: Any) -> tuple[Transition, ...]:
    """``Transition(**declared)`` once per state of ``states``, keeping the record there.

    For events that change no state (a remark, a receipt, an amendment): one
    self-loop per state, as the machine needs them.
    """
    return tuple(Transition(sources=(s,), dest=s, **declared) for s in states)


def with_transitions(lc: Lifecycle, *more: Transition) -> Lifecycle:
    """``lc`` with ``more`` transitions declared after its own."""
    return attrs.evolve(lc, transitions=(*lc.transitions, *more))


# --- the declaration ----------------------------------------------------------------------


#: Event data every lifecycle with a sign-off step takes.
COMMON_DATA: dict[str, str] = {
    "department": (
        "the department signing or declining (a word of the rule set's `departments` "
        "vocabulary); the actor must belong to it or be named by `reqmgmt_approvers`"
    ),
}


@frozen
class Lifecycle:
    """A lifecycle declaration; :meth:`build` checks it and returns its :class:`Engine`."""

    kind: str
    record_type: type[Record]
    initial: str
    states: tuple[State, ...] = field(converter=_states)
    transitions: tuple[Transition, ...] = field(converter=_transitions)
    signoffs: tuple[SignoffStep, ...] = field(default=(), converter=_steps)
    create_event: str = "create"
    create_roles: frozenset[str] = field(factory=frozenset, converter=_roles)
    create_notify: tuple[str, ...] = field(default=(), converter=_names)
    number_prefix: str = "REC"
    zh: str = ""
    en: str = ""
    #: The fields a caller may give at creation; anything else is refused.
    inputs: tuple[CreationInput, ...] = field(default=(), converter=_inputs)
    #: Fields the engine derives from the inputs at creation (a contract's
    #: amount from its lines); runs after the inputs were checked.
    derived: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    #: Checks the inputs against other records, inside the creating
    #: transaction and before a number is drawn (a return against its
    #: contract): ``(inputs, transaction)``; raises a ReqMgmtError to refuse.
    against_store: Callable[[Mapping[str, Any], Any], None] | None = None
    #: Recipients of the creating event computed from the new record, besides
    #: ``create_notify`` (materials hears of a return with goods, not of a complaint).
    create_notify_from: Callable[[Record], Sequence[str]] | None = None
    #: Who ``create_notify_from`` names (for the recipient table of docs/hooks.md).
    create_notify_from_says: str = ""

    @property
    def input_names(self) -> frozenset[str]:
        """The names of the creation inputs."""
        return frozenset(i.name for i in self.inputs)

    #: Parties of this lifecycle an approval may be declared independent of,
    #: besides :data:`PARTIES`.
    parties: tuple[Party, ...] = field(default=(), converter=_parties)
    #: What each key of the events' data is (``requires`` / ``optional``): type,
    #: allowed values, meaning; shown on the generated lifecycle page.  Keys the
    #: engine itself adds (a sign-off's ``department``) are in :data:`COMMON_DATA`.
    data_help: tuple[tuple[str, str], ...] = field(default=(), converter=_pairs)

    def describe_data(self, key: str) -> str | None:
        """What the data key ``key`` of an event is, or ``None`` when undescribed."""
        for name, text in self.data_help:
            if name == key:
                return text
        return COMMON_DATA.get(key)

    def party(self, name: str) -> Party | None:
        """The party ``name`` (the lifecycle's own first, then :data:`PARTIES`)."""
        for p in self.parties:
            if p.name == name:
                return p
        return PARTIES.get(name)

    def independence(self, t: Transition) -> tuple[Party, ...]:
        """The parties the actor of ``t`` may not be (unknown names are left out)."""
        names = t.independent_of or (STANDARD_INDEPENDENCE if t.independent else ())
        return tuple(p for p in map(self.party, names) if p is not None)

    def creation(self) -> Transition:
        """The event that creates a record, as a transition into the initial state."""
        return Transition(
            event=self.create_event,
            sources=(),
            dest=self.initial,
            zh="登记",
            en="register",
            roles=self.create_roles,
            notify=self.create_notify,
            notify_from=self.create_notify_from,
            notify_from_says=self.create_notify_from_says,
        )

    def state(self, name: str) -> State:
        """The declared state ``name``."""
        for s in self.states:
            if s.name == name:
                return s
        raise ValidationError(
            "state", name, "one of " + ", ".join(s.name for s in self.states), where=self.kind
        )

    def signoff_step(self, state: str) -> SignoffStep | None:
        """The sign-off step held in ``state``, if any."""
        for step in self.signoffs:
            # step.states without building the tuple on every guard call
            if state == step.state or state in step.also_in:
                return step
        return None

    def all_transitions(self) -> tuple[Transition, ...]:
        """Declared transitions plus the sign and decline events of the sign-off steps."""
        generated: list[Transition] = []
        for step in self.signoffs:
            for state in step.states:
                generated.extend(self._step_transitions(step, state))
        return (*self.transitions, *generated)

    def _step_transitions(self, step: SignoffStep, state: str) -> list[Transition]:
        return [
            Transition(
                event=step.sign_event,
                sources=(state,),
                dest=state,
                zh="会签",
                en="sign",
                roles=step.roles,
                requires=("department",),
                guards=(department_open,),
                meaning=step.meaning,
                signoff=True,
                independent_of=step.independent_of,
            ),
            Transition(
                event=step.decline_event,
                sources=(state,),
                dest=step.rework or state,
                zh="会签不同意,退回" if step.rework else "会签不同意",
                en="decline, back for rework" if step.rework else "decline",
                roles=step.roles,
                requires=("department",),
                guards=(department_open,),
                note_required=True,
                meaning=step.meaning,
                signoff=True,
                independent_of=step.independent_of,
            ),
        ]

    def problems(self) -> list[str]:
        """Every mistake in the declaration (empty when it is sound)."""
        out: list[str] = []
        names = [s.name for s in self.states]
        known = set(names)
        for n in sorted({n for n in names if names.count(n) > 1}):
            out.append(f"state {n!r} is declared more than once")
        for s in self.states:
            if not s.zh or not s.en:
                out.append(f"state {s.name!r} needs both a zh-CN and an English label")
        if self.initial not in known:
            out.append(f"initial state {self.initial!r} is not a declared state")
        seen: dict[tuple[str, str], str] = {}
        for t in self.all_transitions():
            where = f"transition {t.event!r}"
            if not t.sources:
                out.append(f"{where} has no source state")
            for src in t.sources:
                if src not in known:
                    out.append(f"{where}: unknown source state {src!r}")
                key = (src, t.event)
                if key in seen:
                    out.append(f"{where}: event {t.event!r} is declared twice from state {src!r}")
                seen[key] = t.dest
            if t.dest not in known:
                out.append(f"{where}: unknown destination state {t.dest!r}")
            if t.meaning is not None and t.meaning not in SIGNATURE_MEANINGS:
                out.append(
                    f"{where}: meaning {t.meaning!r} is not one of " + ", ".join(SIGNATURE_MEANINGS)
                )
            for data_key, _ in t.vocabularies:
                if data_key not in t.requires and data_key not in t.optional:
                    out.append(f"{where}: vocabulary for {data_key!r}, which it takes no data for")
            if t.event == self.create_event:
                out.append(f"{where}: {t.event!r} is reserved for creating the record")
            out.extend(self._independence_problems(t, where))
        fields = {a.name for a in attrs.fields(self.record_type)}
        engine_set = {a.name for a in attrs.fields(Record)} - {"due_at"}
        seen_inputs: set[str] = set()
        for i in self.inputs:
            if i.name in seen_inputs:
                out.append(f"creation input {i.name!r} is declared more than once")
            seen_inputs.add(i.name)
            if i.name not in fields:
                out.append(
                    f"creation input {i.name!r} is not a field of {self.record_type.__name__}"
                )
            elif i.name in engine_set:
                out.append(f"creation input {i.name!r} is set by the engine, not by a caller")
        for step in self.signoffs:
            for state in step.states:
                if state not in known:
                    out.append(f"sign-off step: unknown state {state!r}")
            if step.rework is not None and step.rework not in known:
                out.append(f"sign-off step in {step.state!r}: unknown rework state {step.rework!r}")
            if step.meaning not in SIGNATURE_MEANINGS:
                out.append(f"sign-off step in {step.state!r}: unknown meaning {step.meaning!r}")
        for s in self.states:
            outgoing = [t for t in self.all_transitions() if s.name in t.sources]
            if s.final and outgoing:
                out.append(f"final state {s.name!r} has outgoing transitions")
        if self.initial in known:
            reachable = self._reachable()
            for n in names:
                if n not in reachable:
                    out.append(f"state {n!r} cannot be reached from {self.initial!r}")
        out.extend(_name_problems(self))
        return out

    def _independence_problems(self, t: Transition, where: str) -> list[str]:
        out = []
        declared = bool(t.independent_of or t.independent)
        for name in t.independent_of:
            if self.party(name) is None:
                known = sorted({*PARTIES, *(p.name for p in self.parties)})
                out.append(f"{where}: unknown party {name!r}; known: " + ", ".join(known))
        if "requester" in t.independent_of and not any(
            x.requests_approval for x in self.all_transitions()
        ):
            out.append(
                f"{where}: independent of the requester, but no transition requests "
                "approval (requests_approval=True)"
            )
        waived = t.independence_waived
        if waived is not None and (not isinstance(waived, str) or not waived.strip()):
            out.append(f"{where}: independence_waived must say why")
        if declared and waived is not None:
            out.append(f"{where}: declares independence and waives it; choose one")
        if t.meaning == "approval" and not declared and waived is None:
            out.append(
                f"{where} means approval but declares no independence: name the parties its "
                "actor may not be (independent_of=('submitter', 'requester', ...)) or say why "
                "none is needed (independence_waived='...')"
            )
        return out

    def _reachable(self) -> set[str]:
        edges: dict[str, set[str]] = {}
        for t in self.all_transitions():
            for src in t.sources:
                edges.setdefault(src, set()).add(t.dest)
        seen = {self.initial}
        todo = deque([self.initial])
        while todo:
            for nxt in edges.get(todo.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def build(self) -> Engine:
        """Check the declaration and build its engine; raises :class:`ConfigError`."""
        problems = self.problems()
        if problems:
            raise ConfigError(f"lifecycle {self.kind!r}", problems)
        return Engine(self)


# --- the engine -------------------------------------------------------------------------


#: Tests of a sign-off's value ``v`` that, when true, mean the field's validator
#: passes it, besides :func:`~reqmgmt.model.fast_pass`'s: ``approve``'s
#: ``instance_of(bool)`` and ``meaning``'s ``one of SIGNATURE_MEANINGS``.
_SIGNOFF_PASSES = {
    "approve": "v.__class__ is bool",
    "meaning": "(v.__class__ is str and v in _meanings_)",
}


def _subclass_stand_in(cls: type) -> type | None:
    """A subclass of ``cls`` adding no slot, with plain attribute stores: an instance
    filled as one can become a ``cls`` (the same layout), where
    :func:`~reqmgmt.model._stand_in` finds none (a class with a ``__weakref__``
    slot of its own: ``Signoff``); ``None`` where CPython refuses even that."""
    found = type(
        f"_Filling{cls.__name__}",
        (cls,),
        {"__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__},
    )
    try:
        probe: Any = object.__new__(found)
        probe.__class__ = cls
    except TypeError:
        return None
    return found


def signoff_maker() -> Callable[..., Signoff]:
    """``Signoff(...)`` from every field's value, positionally, as a generated function.

    What attrs' ``__init__`` does (each field set, then, unless attrs'
    validators are disabled, each validator in order), but a validator is
    called only where its cheapest passing case (:func:`~reqmgmt.model.fast_pass`,
    :data:`_SIGNOFF_PASSES`) misses: every refusal is still the validator's own.
    A sign-off command makes one; attrs' ``__init__`` costs ~20k instructions.
    tests/unit/test_steps2_signoff.py compares the two.
    """
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(Signoff)
    stand_in = _stand_in(Signoff) or _subclass_stand_in(Signoff)
    if stand_in is None or hasattr(Signoff, "__attrs_post_init__"):
        return lambda *values: Signoff(*values)
    namespace: dict[str, Any] = {
        **FAST_NAMES,
        "_disabled_": attrs.validators.get_disabled,
        "_meanings_": frozenset(SIGNATURE_MEANINGS),
    }
    names = [a.name for a in fields]
    checks = ["    if not _disabled_():"]
    for i, a in enumerate(fields):
        if a.validator is None:
            continue
        namespace[f"_v{i}_"], namespace[f"_a{i}_"] = a.validator, a
        call = f"_v{i}_(n, _a{i}_, {a.name})"
        fast = fast_pass(a.validator, a) or _SIGNOFF_PASSES.get(a.name)
        if fast is None:
            checks.append(f"        {call}")
        else:
            checks += [f"        v = {a.name}", f"        if not {fast}:", f"            {call}"]
    made: Callable[..., Signoff] = _generated(
        Signoff,
        f"make({', '.join(names)})",
        [(name, name) for name in names],
        after=checks,
        names=namespace,
        stand_in=stand_in,
    )
    return made


_make_signoff = signoff_maker()


class _Cursor:
    """Stands in for a record while the shared Machine moves it; thrown away after.

    Made by :meth:`Engine.run` as ``_Cursor()`` with its three slots set there: the
    class has no ``__init__`` of its own (a class call running one costs ~0.7k
    instructions more), and its call costs ~0.3k less than ``object.__new__(_Cursor)``
    (which checks its argument and makes a tuple of the rest).
    """

    __slots__ = ("ctx", "reasons", "state")

    state: str
    ctx: Context
    reasons: list[str]


class Engine:
    """A built lifecycle: one shared ``transitions.Machine`` and lookup tables."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.kind = lifecycle.kind
        self.creation = lifecycle.creation()
        transitions = lifecycle.all_transitions()
        self._table: dict[tuple[str, str], Transition] = {}
        events: dict[str, list[str]] = {s.name: [] for s in lifecycle.states}
        for t in transitions:
            for src in t.sources:
                self._table[(src, t.event)] = t
                events[src].append(t.event)
        self._events = {s: tuple(sorted(e)) for s, e in events.items()}
        # By identity: the transitions in the table are these very objects.
        self._independence = {id(t): lifecycle.independence(t) for t in transitions}
        self.events: tuple[str, ...] = tuple(sorted({t.event for t in transitions}))
        self.machine = Machine(
            model=None,
            states=[s.name for s in lifecycle.states],
            transitions=[
                {
                    "trigger": t.event,
                    "source": list(t.sources),
                    "dest": t.dest,
                    # No condition at all where there is no guard: cheaper to trigger.
                    "conditions": [_check_guards] if t.guards else [],
                }
                for t in transitions
            ],
            initial=lifecycle.initial,
            auto_transitions=False,
            send_event=True,
        )
        self._triggers = {name: ev.trigger for name, ev in self.machine.events.items()}
        # A guarded transition's one condition answers what Condition.check would:
        # resolve_callable hands a callable back as it is, send_event is on, and
        # ``_check_guards(event_data) == True`` is _check_guards' own bool.  Kept as
        # the condition's ``check``, the Machine's _eval_conditions calls it without
        # those steps (~2.4k instructions a guarded command, 1.1k a command of the
        # benchmark's mix); the Machine, its classes and its triggers are the same
        # (tests/unit/test_path7.py compares the answers with Condition.check's).
        for event in self.machine.events.values():
            for found in event.transitions.values():
                for way in found:
                    for condition in way.conditions:
                        if condition.func is _check_guards and condition.target is True:
                            condition.check = _check_guards  # type: ignore[method-assign,assignment]
        self.labels: dict[str, State] = {s.name: s for s in lifecycle.states}
        #: States where the deadline clock stops (waiting on the customer).
        self.waiting = frozenset(s.name for s in lifecycle.states if s.waiting)
        self.final = frozenset(s.name for s in lifecycle.states if s.final)
        # The sign-off step held in each state, looked up once (a sign-off command needs it).
        self._signoff_steps = {s.name: lifecycle.signoff_step(s.name) for s in lifecycle.states}

    def transition(self, state: str, event: str) -> Transition | None:
        """The transition ``event`` takes from ``state``, or ``None``."""
        return self._table.get((state, event))

    def independence(self, t: Transition) -> tuple[Party, ...]:
        """The parties the actor of ``t`` may not be (precomputed)."""
        found = self._independence.get(id(t))
        return self.lifecycle.independence(t) if found is None else found

    def events_from(self, state: str) -> tuple[str, ...]:
        """Every event declared from ``state`` (whoever may fire it)."""
        return self._events.get(state, ())

    def run(self, ctx: Context) -> str:
        """Evaluate the guards and move a cursor; return the destination state.

        Raises :class:`TransitionBlocked` with every failing guard's reason.
        """
        cursor = _Cursor()
        cursor.state = ctx.record.state
        cursor.ctx = ctx
        cursor.reasons = []
        if not self._triggers[ctx.event](cursor):
            raise TransitionBlocked(
                cursor.reasons or [reason("guard.refused")],
                ref=ctx.record.ref,
                event=ctx.event,
                state=ctx.record.state,
            )
        return cursor.state

    def changes(self, ctx: Context) -> dict[str, Any]:
        """The fields the transition's effects change (state and version excluded)."""
        t = ctx.transition
        out: dict[str, Any] = {}
        if t.opens_review:
            out["review_round"] = ctx.record.review_round + 1
            out["submitted_by"] = ctx.actor.id
            out["requested_by"] = None
        if t.requests_approval:
            out["requested_by"] = ctx.actor.id
        if t.signoff:
            state = ctx.record.state
            step = (
                self._signoff_steps[state]
                if state in self._signoff_steps
                else self.lifecycle.signoff_step(state)
            )
            assert step is not None  # declared by the step itself
            approve = t.event == step.sign_event
            signoff = _make_signoff(
                ctx.data["department"],
                ctx.actor.id,
                approve,
                ctx.note or "",
                step.meaning,
                ctx.record.review_round,
                ctx.now,
            )
            out["signoffs"] = (*ctx.record.signoffs, signoff)
            if not approve:
                out["reason"] = ctx.note
                for effect in step.decline_effects:
                    out.update(effect(ctx))
        for effect in t.effects:
            out.update(effect(ctx))
        return out


def _check_guards(event_data: Any) -> bool:
    cursor: _Cursor = event_data.model
    ctx = cursor.ctx
    for guard in ctx.transition.guards:
        reason = guard(ctx)
        if reason:
            cursor.reasons.append(reason)
    return not cursor.reasons


#: The SQL columns that hold a lifecycle's names: records.kind and .state,
#: audit.kind, .from_state, .to_state (32 characters), audit.event (64).
_NAME_LIMITS = {"kind": 32, "state": 32, "event": 64}


def _name_problems(lc: Lifecycle) -> list[str]:
    """Names every backend can store alike (the input policy, docs/concepts.md)."""
    named = [("kind", lc.kind)]
    named += [("state", s.name) for s in lc.states]
    named += [("event", t.event) for t in lc.all_transitions()]
    out = []
    for what, name in named:
        problem = text_problem(name, _NAME_LIMITS[what], False) if isinstance(name, str) else None
        if problem is not None:
            out.append(f"{what} {name!r}: {problem}")
    return out
