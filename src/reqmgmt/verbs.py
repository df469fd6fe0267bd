"""The verbs of a Desk: ``desk.requirements``, ``desk.contracts``, ``desk.returns``.

Each turns a domain action (receive a requirement, draft a contract, report
a return...) into the Desk's generic commands (:meth:`reqmgmt.Desk.create`,
:meth:`reqmgmt.Desk.fire`), adding what the action itself decides: a
requirement's deadline from the rules, an order drafted from a quotation in
the quotation's transaction, a replacement reopening its contract.
:func:`sign` is :meth:`reqmgmt.Desk.sign`'s: the review step's sign or
decline event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from . import command, creation
from .errors import InvalidTransition, ValidationError
from .model import (
    CONTRACT_TERMS,
    Actor,
    Contract,
    ContractLine,
    Customer,
    Record,
    Requirement,
    Return,
    check_time,
)
from .rules import Decision
from .rules.model import RuleSet
from .rules.vocabulary import Vocabulary

if TYPE_CHECKING:
    from .desk import Desk
    from .lifecycle.base import Engine

__all__ = ["ContractDesk", "RequirementDesk", "ReturnDesk", "sign"]


def sign(
    desk: Desk,
    ref: str,
    department: str,
    actor: Actor,
    approve: bool,
    opinion: str,
    expected_version: int | None,
) -> Record:
    """:meth:`reqmgmt.Desk.sign`: fire the sign (or decline) event of the record's review step.

    The event is chosen inside the command's transaction, from the state
    it reads; a state with no review step is :class:`InvalidTransition`
    for ``"sign"``.  A department outside the rule set's ``departments``
    vocabulary is a :class:`ValidationError` before anything is read.
    """
    # A department outside the vocabulary is a typo, named as one.  RuleSet.vocabulary
    # and Vocabulary.check written out where they are the classes' own and the
    # department a str of the vocabulary (the check's passing case): ~0.8k instructions.
    rules = desk.rules
    words = rules.vocabularies.get("departments") if type(rules) is RuleSet else None
    if not (type(words) is Vocabulary and type(department) is str and department in words.labels):
        rules.vocabulary("departments").check(department, "department", ref)
    # The chooser names the ref it was given (a store may answer a record whose ref
    # reads otherwise): one per command, not one shared that names record.ref.
    choose = chooser(approve, ref)
    return command.run(
        desk, ref, choose, actor, opinion or None, {"department": department}, False,
        expected_version,
    )  # fmt: skip


def chooser(approve: object, ref: str) -> Callable[[Record, Engine], str]:
    """sign's choice of the event: the review step's sign event (``approve`` true) or
    its decline event; a state without a step is :class:`InvalidTransition` for
    ``"sign"`` on ``ref``."""

    def choose(record: Record, engine: Engine) -> str:
        # The engine's table of steps by state (Engine.changes reads it too), else the
        # lifecycle's own answer for a state the table does not hold.
        steps = engine._signoff_steps
        state = record.state
        step = steps[state] if state in steps else engine.lifecycle.signoff_step(state)
        if step is None:
            raise InvalidTransition(
                ref, engine.kind, record.state, "sign", engine.events_from(record.state)
            )
        return step.sign_event if approve else step.decline_event

    return choose


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
            decision = creation.classified(desk, "requirement_deadline", {"priority": priority})
            hours = decision.outcome.get("hours")
            if hours is not None:
                due_at = desk.calendar.add(received, _hours(hours))
                decisions.append(decision)
        # Desk.create's work with the inputs as the one dict it would make of them.
        record = creation.create_with(
            desk,
            "requirement",
            actor,
            note,
            decisions,
            {
                "customer": customer,
                "description": description,
                "channel": channel,
                "kind": kind,
                "priority": priority,
                "due_at": due_at,
                "received_at": received,
            },
        )
        return cast(Requirement, record)


#: A deadline table's hours (a plain int or float) as the timedelta they make: the
#: same few priorities every time, each span made once (a keyword call of timedelta).
_SPANS: dict[int | float, timedelta] = {}


def _hours(hours: Any) -> timedelta:
    """``timedelta(hours=float(hours))``; kept for a plain ``int`` or ``float``."""
    if type(hours) is int or type(hours) is float:
        span = _SPANS.get(hours)
        if span is None:
            span = timedelta(hours=float(hours))  # raises for nan or a huge value: not kept
            if len(_SPANS) >= 256:
                _SPANS.clear()
            _SPANS[hours] = span
        return span
    return timedelta(hours=float(hours))


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
            quotation, q_event, q_notes = command.fire_in(
                desk,
                tx,
                ref,
                "convert_to_order",
                actor,
                note,
                {},
                expected_version=expected_version,
            )
            assert isinstance(quotation, Contract)
            fields: dict[str, Any] = {
                name: getattr(quotation, name)
                for name in (
                    "customer", "channel", "currency", "lines", "flags",
                    "requirement_refs", *CONTRACT_TERMS,
                )
            }  # fmt: skip
            order, o_event, o_notes = creation.create_in(
                desk,
                tx,
                "contract",
                actor=actor,
                note=note or f"from quotation {ref}",
                decisions=(),
                fields={**fields, "document": "order"},
                engine_fields={"quotation_ref": ref},
            )
        command.after_commit(desk, quotation, q_event, q_notes)
        command.after_commit(desk, order, o_event, o_notes)
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
            ret, r_event, r_notes = command.fire_in(
                desk,
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
                linked = command.fire_in(
                    desk,
                    tx,
                    ret.contract_ref,
                    "replace_goods",
                    actor,
                    f"换货 replacement for {ref}",
                    {"return_ref": ref, "product": ret.product, "quantity": ret.quantity},
                )
        command.after_commit(desk, ret, r_event, r_notes)
        if linked is not None:
            command.after_commit(desk, *linked)
        return ret
