"""What a creating command accepts: the lifecycle's declared inputs, in their vocabularies.

A record is created from the inputs its lifecycle declares
(:class:`~reqmgmt.lifecycle.base.CreationInput`) and nothing else: its state,
version, review rounds, sign-offs, submitter, a contract's class, route and
amendment are the engine's, always.  :class:`CreationCheck` is built once per
lifecycle; :meth:`CreationCheck.fields` runs before a number is drawn, so a
refused creation writes nothing and uses up no sequence number.

:func:`create` (``Desk.create`` and the verbs ``desk.requirements.receive``,
``desk.contracts.draft``, ``desk.returns.report``), :func:`create_many` (an
import, a batch per transaction) and :func:`create_in` (a creating command
inside a caller's transaction) follow the command path of
:mod:`reqmgmt.command`: check, number, build, seal, stage, after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from . import summaries
from .audit import seal
from .building import first_document, first_version, set_fields
from .command import (
    after_commit,
    before,
    implemented,
    makes_lazily,
    notifications,
    observe,
    require_actor,
    role_problems,
)
from .command import vetoes as _vetoes
from .errors import (
    ConfigError,
    ConflictError,
    ImportFailed,
    NotAuthorized,
    ReqMgmtError,
    ValidationError,
)
from .hookcalls import ask_credit, ask_next_number
from .i18n import Text
from .lifecycle.base import Engine, Lifecycle
from .model import (
    Actor,
    AuditEvent,
    Customer,
    FieldChange,
    Notification,
    Record,
    Requirement,
    maker,
)
from .reminders import deadline_changes
from .rules.model import Decision, RuleSet
from .rules.vocabulary import Vocabulary
from .serialize import ByIdentity, hand_over
from .storage import hostunit
from .storage.base import BulkInsert, Transaction

if TYPE_CHECKING:
    from .desk import Desk

__all__ = ["CreationCheck", "classified", "create", "create_in", "create_many", "create_with"]


class CreationCheck:
    """The allow-list of one lifecycle's creation, precomputed."""

    __slots__ = (
        "_allowed",
        "_customer",
        "_customer_of",
        "_defaults",
        "_listing",
        "_record_fields",
        "_required",
        "_vocabularies",
        "_words",
        "_words_of",
        "kind",
        "where",
    )

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.kind = lifecycle.kind
        self.where = f"creating a {lifecycle.kind}"
        self._allowed = lifecycle.input_names
        self._required = tuple(i.name for i in lifecycle.inputs if i.required)
        self._vocabularies = tuple(
            (i.name, i.vocabulary) for i in lifecycle.inputs if i.vocabulary is not None
        )
        fields = {a.name: a for a in attrs.fields(lifecycle.record_type)}
        self._record_fields = frozenset(fields)
        # A default outside the vocabulary (a host removed it) is refused too.
        self._defaults = {
            name: fields[name].default
            for name, _ in self._vocabularies
            if name in fields and isinstance(fields[name].default, str)
        }
        # The vocabularies resolved in the rule set last seen (fields).
        self._words: tuple[tuple[str, Vocabulary, Any], ...] = ()
        self._words_of: RuleSet | None = None
        self._customer: tuple[Vocabulary, Vocabulary] | None = None
        self._customer_of: RuleSet | None = None
        listed = [f"{i.name} (required)" if i.required else i.name for i in lifecycle.inputs]
        self._listing = ", ".join(listed) if listed else "none (the lifecycle declares no inputs)"

    def fields(self, given: Mapping[str, Any], rules: RuleSet) -> None:
        """Refuse anything but the declared inputs, a missing required one, an unknown word.

        Raises :class:`ValidationError` naming the field, with the inputs (or
        the vocabulary's values and a "did you mean") it accepts instead.
        """
        # A plain dict iterates its keys: no set of the unknown ones is made
        # when there are none (the usual case).
        if not (type(given) is dict and self._allowed.issuperset(given)):
            if not isinstance(given, Mapping):
                raise ValidationError(
                    "fields", given, "a mapping of input name to value", where=self.where
                )
            unknown = given.keys() - self._allowed
            if unknown:
                name = sorted(unknown)[0]
                self._refuse(name, given[name])
        for name in self._required:
            if given.get(name) is None:
                raise ValidationError(
                    name, None, f"a value: a {self.kind} needs {name}", where=self.where
                )
        vocabularies = self._words if self._words_of is rules else self._resolve(rules)
        if vocabularies is None:  # a vocabulary is missing: refused where it is needed
            self._check_words(given, rules)
            return
        for name, words, labels in vocabularies:
            value = given.get(name)
            if value.__class__ is str and value in labels:
                continue  # a word of the vocabulary: nothing more to check
            self._check_word(words, name, given)
        customer = given.get("customer")
        if isinstance(customer, Customer):
            found = self._customer_words(rules)
            if found is None:
                self._check_customer(customer, rules)
                return
            categories, flags = found
            category = customer.category
            if not (category.__class__ is str and category in categories.labels):
                categories.check(category, "customer.category", self.where)
            given_flags = customer.flags
            if given_flags.__class__ is not frozenset:
                flags.check_all(given_flags, "customer.flags", self.where)
                return
            labels = flags.labels
            for flag in given_flags:
                if not (flag.__class__ is str and flag in labels):
                    flags.check_all(given_flags, "customer.flags", self.where)
                    return  # all of them checked

    def _resolve(self, rules: RuleSet) -> tuple[tuple[str, Vocabulary, Any], ...] | None:
        """The vocabularies of the inputs in ``rules`` (looked up once per rule set);
        ``None`` when one is missing."""
        try:
            words = tuple((n, rules.vocabulary(v)) for n, v in self._vocabularies)
        except ConfigError:
            return None
        resolved = tuple((name, found, found.labels) for name, found in words)
        self._words, self._words_of = resolved, rules
        return resolved

    def _customer_words(self, rules: RuleSet) -> tuple[Vocabulary, Vocabulary] | None:
        if self._customer_of is not rules:
            try:
                self._customer = (
                    rules.vocabulary("customer_categories"),
                    rules.vocabulary("customer_flags"),
                )
            except ConfigError:
                return None
            self._customer_of = rules
        return self._customer

    def _check_words(self, given: Mapping[str, Any], rules: RuleSet) -> None:
        """The vocabulary checks one by one, each vocabulary looked up where it is needed."""
        for name, vocabulary in self._vocabularies:
            self._check_word(rules.vocabulary(vocabulary), name, given)
        customer = given.get("customer")
        if isinstance(customer, Customer):
            self._check_customer(customer, rules)

    def _check_word(self, words: Vocabulary, name: str, given: Mapping[str, Any]) -> None:
        """The input ``name`` (or its default when not given) checked against ``words``."""
        if name in given:
            value = given[name]
            if isinstance(value, str):
                words.check(value, name, self.where)
            else:
                words.check_all(value, name, self.where)
        elif name in self._defaults:
            words.check(self._defaults[name], name, self.where)

    def _check_customer(self, customer: Customer, rules: RuleSet) -> None:
        rules.vocabulary("customer_categories").check(
            customer.category, "customer.category", self.where
        )
        rules.vocabulary("customer_flags").check_all(customer.flags, "customer.flags", self.where)

    def _refuse(self, name: str, value: object) -> None:
        what = (
            f"no value: the engine sets {name}"
            if name in self._record_fields
            else f"no {name!r} (not a field of a {self.kind})"
        )
        raise ValidationError(
            name,
            value,
            f"{what}; a {self.kind} is created from its inputs: {self._listing}",
            where=self.where,
        )


#: FieldChange(field, old, new, op) without attrs' __init__ setting each field
#: through object.__setattr__ (it has no converter or validator to run).
_make_change = maker(FieldChange)

#: "creating a <kind>" (新建...), the action named in a refusal, per record kind.
_CREATING: dict[tuple[str, str], Text] = {}


def create(
    desk: Desk,
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
    return create_with(desk, record_kind, actor, note, decisions, fields)


def create_with(
    desk: Desk,
    kind: str,
    actor: Actor,
    note: str | None,
    decisions: Sequence[Decision],
    fields: Mapping[str, Any],
) -> Record:
    """:func:`create` with the inputs as one mapping, every argument in its place.

    ``Desk.create`` and the verbs (``desk.requirements.receive``) call this:
    their inputs are a dict already, which ``**fields`` would unpack into
    keywords and pack into a new dict again at each of two calls.
    """
    with desk.store.transaction() as tx:
        record, event, notes = create_in(
            desk, tx, kind, actor=actor, note=note, decisions=decisions, fields=fields
        )
    after_commit(desk, record, event, notes)
    return record


def create_many(
    desk: Desk,
    record_kind: str,
    rows: Iterable[Mapping[str, Any]],
    /,
    *,
    actor: Actor,
    note: str | None = None,
    batch_size: int = 500,
) -> list[str]:
    """Create many records (an import) for :meth:`reqmgmt.Desk.create_many`; how batches,
    checks and failures work is on docs/api/desk.md ("Creating and importing")."""
    require_actor(actor)
    if batch_size < 1:
        raise ValidationError("batch_size", batch_size, "a positive number", where="import")
    done: list[str] = []
    batch: list[Mapping[str, Any]] = []
    start = 0
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            done.extend(_create_batch(desk, record_kind, batch, start, actor, note, done))
            start += len(batch)
            batch = []
    if batch:
        done.extend(_create_batch(desk, record_kind, batch, start, actor, note, done))
    return done


def _create_batch(
    desk: Desk,
    kind: str,
    rows: Sequence[Mapping[str, Any]],
    start: int,
    actor: Actor,
    note: str | None,
    committed: list[str],
) -> list[str]:
    # Every row's inputs first: a refused row uses up no sequence number.
    check = desk._creation_check(kind)
    for i, row in enumerate(rows):
        try:
            check.fields(row, desk.rules)
        except ReqMgmtError as exc:
            raise ImportFailed(kind, start + i, exc, committed) from exc
    # The observers run after commit, with each record and its event: only
    # for them are the events kept (and in a host's unit of work, which
    # calls them after its own commit).
    watched = implemented(desk.pm.hook.reqmgmt_after_transition) or hostunit.any_open()
    records: list[Record] = []
    events: list[AuditEvent] = []
    with desk.store.transaction() as tx:
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
        at_once = desk.engine(kind).lifecycle.against_store is None
        # The SQL stores take each record's rows as it is made (storage.sql._ImportRows).
        making: Callable[[], _Rows] | None = getattr(tx, "import_rows", None) if at_once else None
        staged = making() if making is not None else None
        bulk = tx.insert_many if staged is None and at_once and isinstance(tx, BulkInsert) else None
        notes: list[Notification] = []
        for i, row in enumerate(rows):
            try:
                record, event, made = create_in(
                    desk,
                    tx,
                    kind,
                    actor=actor,
                    note=note,
                    decisions=(),
                    fields=row,
                    number=number,
                    write=staged is None and bulk is None,
                    checked=True,
                )
            except (ReqMgmtError, TypeError) as exc:
                raise ImportFailed(kind, start + i, exc, committed) from exc
            records.append(record)
            if staged is not None:
                staged.add(record, event, made)
                if watched:
                    events.append(event)
                continue
            events.append(event)
            if bulk is not None:  # else _create_in queued them already
                notes.extend(made)
        if staged is not None or bulk is not None:
            try:
                if staged is not None:
                    staged.write()  # the records, their events and notifications
                else:
                    assert bulk is not None
                    bulk(records, events)
            except ConflictError as exc:
                i = next((i for i, r in enumerate(records) if r.ref == exc.ref), 0)
                raise ImportFailed(kind, start + i, exc, committed) from exc
            if bulk is not None:
                tx.enqueue(notes)
            summaries.stage_created(tx, desk.engine(kind), records)
    for record, event in zip(records, events, strict=False):  # no events: nothing observes
        observe(desk, record, event)
    return [record.ref for record in records]


class _Rows(Protocol):
    """An import batch's rows as a store makes them (``storage.sql._ImportRows``)."""

    def add(self, record: Record, event: AuditEvent, notes: Sequence[Notification]) -> None:
        """The rows of one new record, its creating event and notifications."""

    def write(self) -> None:
        """Write the rows (:class:`ConflictError` for a taken ref)."""


def create_in(
    desk: Desk,
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
) -> tuple[Record, AuditEvent, Sequence[Notification]]:
    """A creating command inside ``tx`` (the caller commits, then runs step 6).

    ``fields`` are the caller's, checked against the lifecycle's creation
    inputs; ``engine_fields`` are set by the library itself (an order's
    ``quotation_ref``); ``checked``: the caller checked ``fields`` already
    (an import checks a batch's rows first).  ``number`` hands out sequence numbers (an import
    reserves a batch's at once); with ``write=False`` the caller writes
    what is returned (an import writes a batch at once).
    """
    require_actor(actor)
    engine = desk.engine(kind)
    lc = engine.lifecycle
    t = engine.creation
    what = _CREATING.get((kind, lc.zh))
    if what is None:
        what = _CREATING[kind, lc.zh] = Text(f"creating a {kind}", f"新建{lc.zh}")
    refusals = role_problems(t, actor, what, None)
    if refusals:
        raise NotAuthorized("(new)", lc.create_event, actor.id, refusals)
    # Only the declared inputs, in their vocabularies; refused before a
    # number is drawn for it.
    if not checked:
        desk._creation_check(kind).fields(fields, desk.rules)
    if lc.against_store is not None:
        # Against other records, in this transaction (a return against its contract).
        lc.against_store(fields, tx)
    if lc.derived is not None:
        fields = {**fields, **lc.derived(fields)}
    if engine_fields:
        fields = {**fields, **engine_fields}
    if lc.record_type is Requirement:
        fields = _with_credit(desk, fields)
    now = desk.now()
    # No host numbering (the usual case): no hook call, no arguments made for one.
    hook = desk.pm.hook.reqmgmt_next_number
    ref = ask_next_number(desk.pm, kind, now.year) if implemented(hook) else None
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
        "rules_version": desk.rules.version if decisions else None,
        **fields,
    }
    if fields.get("due_at") is None:
        # No due date to count from: the deadline fields go straight in.
        values.update(deadline_changes(desk.deadlines(), engine, None, lc.initial, now))
        record = first_version(lc.record_type)(values)
    else:
        # The due date is validated by the record before it is counted on;
        # the deadlines go into the new record, checked as derive checks them.
        record = first_version(lc.record_type)(values)
        timing = deadline_changes(desk.deadlines(), engine, None, lc.initial, now, created=record)
        if timing:
            set_fields(record, timing)
    refusals = _vetoes(desk, actor, record, lc.create_event)
    if refusals:
        raise NotAuthorized(ref, lc.create_event, actor.id, refusals)
    before(desk, record, lc.create_event, actor, "(new)")
    # One change holding the whole first version (op "create"), rather
    # than one per field: the same content at a fraction of the objects.
    first = first_document(record)
    if getattr(tx, "takes_documents", False):
        hand_over(record, first)  # the store writes the same document
    diff = (_make_change("*", None, first, "create"),)
    # seal is sealed_event with its fields in order: no keyword dict to
    # build and take apart again per record.  Written here and now (``write``),
    # the event's bytes are kept as the last sealed only (its rows handed over, as
    # a command hands its diff's): an import batch's events, written together
    # later, stay among the 256 kept (~1.4k instructions a command of the
    # benchmark, whose creations' documents the collector no longer walks).
    event = seal(
        ref, kind, 1, lc.create_event, None, lc.initial, actor.id, actor.name, now,
        note, None, diff, _summaries(decisions) if decisions else (), "",
        [["*", None, first, "create"]] if write else None,
    )  # fmt: skip
    # Written now on the memory store: made only when read, as a command's (command.write).
    notes = notifications(desk, engine, t, None, record, now, note, lazy=write and makes_lazily(tx))
    if write:
        stage_created(tx, engine, record, event, notes)
    return record, event, notes


def stage_created(
    tx: Transaction,
    engine: Engine,
    record: Record,
    event: AuditEvent,
    notes: Sequence[Notification],
) -> None:
    """A new record, its creating audit event, its notifications and the report's
    summary rows, in ``tx``."""
    tx.insert(record)
    tx.append_audit(event)
    if notes:
        tx.enqueue(notes)
    summaries.stage_created(tx, engine, (record,))


#: (rule set, table, facts) -> (rule set, decision): a decision on plain facts
#: (strings, whole numbers, booleans) is a function of them and the rule set alone.
_DECIDED: dict[tuple[int, str, tuple[tuple[str, Any], ...]], tuple[RuleSet, Decision]] = {}
#: A kept decision's summary (the audit event's record of it), made once.
_SUMMARIES: ByIdentity[Decision, dict[str, Any]] = ByIdentity(1024)
#: The kinds of inputs whose decisions are kept (money converts at a date's rate: never kept).
_PLAIN_INPUTS = frozenset({"str", "int", "bool"})
_PLAIN_FACTS = frozenset({str, int, bool})


def classified(desk: Desk, table: str, facts: dict[str, Any]) -> Decision:
    """``desk.classify(table, facts)``, kept per rule set for plain facts (a creation's
    deadline by priority): the same rows, outcome and facts every time.

    Facts of other types, tables with other inputs and refusals are decided
    (and raised) every time, as ``desk.classify`` does.
    """
    rules = desk.rules
    try:
        key = (id(rules), table, tuple(facts.items()))
        hit = _DECIDED.get(key)
    except TypeError:  # an unhashable fact: decided (and refused) as usual
        return desk.classify(table, facts)
    if hit is not None and hit[0] is rules:
        # desk.classify reads the clock (the day money converts at): so does
        # this, so a clock that moves per reading (a simulation's) moves alike.
        desk.now()
        return hit[1]
    decision = desk.classify(table, facts)
    spec = rules.tables.get(table)
    if (
        spec is not None
        and all(k in _PLAIN_INPUTS for k in spec.inputs.values())
        and all(v.__class__ in _PLAIN_FACTS for v in facts.values())
    ):
        if len(_DECIDED) >= 1024:
            _DECIDED.clear()
        _DECIDED[key] = (rules, decision)
        _SUMMARIES.put(decision, decision.summary())
    return decision


def _summaries(decisions: Sequence[Decision]) -> tuple[Any, ...]:
    """Each decision's summary; those :func:`classified` kept, made once."""
    if len(decisions) == 1:  # a requirement's deadline: no generator for one item
        decision = decisions[0]
        return (_SUMMARIES.get(decision) or decision.summary(),)
    return tuple(_SUMMARIES.get(d) or d.summary() for d in decisions)


def _with_credit(desk: Desk, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """A requirement's fields with its customer's credit record (reqmgmt_customer_credit)."""
    customer = fields.get("customer")
    if not isinstance(customer, Customer):
        return fields  # the record refuses it, naming the field
    if not implemented(desk.pm.hook.reqmgmt_customer_credit):
        return fields
    credit = ask_credit(desk.pm, customer)
    return fields if credit is None else {**fields, "credit": credit}
