"""What the forms do: each command with the form's values, typed and allow-listed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from flask import abort, request

from reqmgmt import Actor, Contract, ContractLine, Desk, Money, Record, ValidationError
from reqmgmt.model import CONTRACT_TERMS, REQUIREMENT_PRIORITIES, RETURN_KINDS

from .fields import CURRENCIES, day, fields_for, money, read_fields, whole
from .pages import INTERNAL_EVENTS
from .people import CUSTOMERS
from .words import lang, one_of


# --8<-- [start:version]
def expected_version() -> int:
    """The version the page showed (every command form carries it)."""
    raw = request.form.get("expected_version", "")
    return whole("expected_version", raw.strip(), "form")


# --8<-- [end:version]


# --- writing --------------------------------------------------------------------------------


# --8<-- [start:fire]
def fire_event(desk: Desk, record: Record, event: str, actor: Actor) -> Record:
    """Fire ``event`` (allow-listed by the record's lifecycle) with the form's typed data."""
    engine = desk.engine(record.RECORD_KIND)
    if event not in engine.events or event in INTERNAL_EVENTS:
        abort(404)
    t = engine.transition(record.state, event)
    version = expected_version()
    if t is None:  # not from this state: the library says so, with what is allowed
        return desk.fire(record.ref, event, actor=actor, expected_version=version)
    where = f"{record.ref} {event}"
    data = read_fields(fields_for(desk, record, t, actor, lang()), request.form, where)
    note = request.form.get("note", "").strip() or None
    if event == "dispose":
        disposition = data.get("disposition")
        return desk.returns.dispose(
            record.ref, str(disposition or ""), actor=actor, note=note, expected_version=version
        )
    if event == "convert_to_order":
        return desk.contracts.order_from_quotation(
            record.ref, actor=actor, note=note, expected_version=version
        )
    return desk.fire(record.ref, event, actor=actor, note=note, expected_version=version, **data)


# --8<-- [end:fire]


def amend_contract(desk: Desk, record: Record, actor: Actor) -> Record:
    """The amendment form: changed terms and line quantities / prices only."""
    if not isinstance(record, Contract):
        abort(404)
    where = f"{record.ref} amend"
    form = request.form
    changes: dict[str, Any] = {}
    for key in CONTRACT_TERMS:
        if key not in form:  # a term the form did not send is kept, not blanked
            continue
        value = form[key].strip()
        if value != getattr(record, key):
            changes[key] = value
    lines = []
    for line in record.lines:
        if line.kind != "goods":
            lines.append(line)
            continue
        quantity = whole(
            f"quantity.{line.line_no}", form.get(f"quantity.{line.line_no}", "").strip(), where
        )
        price = read_money(form, f"unit_price.{line.line_no}", line.unit_price.currency, where)
        lines.append(attrs.evolve(line, quantity=quantity, unit_price=price))
    if tuple(lines) != record.lines:
        changes["lines"] = tuple(lines)
    return desk.contracts.amend(
        record.ref,
        changes,
        actor=actor,
        reason=form.get("reason", "").strip(),
        expected_version=expected_version(),
    )


def read_money(form: Mapping[str, str], key: str, currency: str, where: str) -> Money:
    """The amount field ``key`` in ``currency``."""
    return money(key, form.get(key, "").strip(), currency, where)


def create_record(desk: Desk, kind: str, actor: Actor) -> Record:
    """The intake forms: a requirement received, a contract drafted, a return reported."""
    form = request.form
    where = f"new {kind}"
    customer = CUSTOMERS.get(form.get("customer", ""))
    if customer is None:
        raise ValidationError("customer", form.get("customer"), one_of(CUSTOMERS), where=where)

    def choice(key: str, allowed: Any, default: str) -> str:
        value = form.get(key, default)
        if value not in allowed:
            raise ValidationError(key, value, one_of(allowed), where=where)
        return value

    if kind == "requirement":
        return desk.requirements.receive(
            customer=customer,
            description=form.get("description", "").strip(),
            actor=actor,
            channel=choice("channel", list(desk.rules.vocabulary("requirement_channels")), "fax"),
            kind=choice("kind", list(desk.rules.vocabulary("requirement_kinds")), "order"),
            priority=choice("priority", list(REQUIREMENT_PRIORITIES), "normal"),
        )
    if kind == "contract":
        currency = choice("currency", CURRENCIES, "CNY")
        delivery = form.get("delivery_date", "").strip()
        line = ContractLine(
            line_no=1,
            product=form.get("product", "").strip(),
            specification=form.get("specification", "").strip(),
            quantity=whole("quantity", form.get("quantity", "").strip(), where),
            unit_price=read_money(form, "unit_price", currency, where),
            delivery_date=day("delivery_date", delivery, where) if delivery else None,
        )
        flags_allowed = list(desk.rules.vocabulary("contract_flags"))
        flags = form.getlist("flags")
        for flag in flags:
            if flag not in flags_allowed:
                raise ValidationError("flags", flag, one_of(flags_allowed), where=where)
        return desk.contracts.draft(
            customer=customer,
            lines=[line],
            currency=currency,
            actor=actor,
            flags=flags,
            document=choice(
                "document", list(desk.rules.vocabulary("contract_documents")), "contract"
            ),
            channel=choice("channel", list(desk.rules.vocabulary("contract_channels")), "domestic"),
            payment_terms=form.get("payment_terms", "").strip(),
        )
    return desk.returns.report(
        customer=customer,
        product=form.get("product", "").strip(),
        actor=actor,
        kind=choice("kind", list(RETURN_KINDS), "return"),
        reason_code=choice("reason_code", list(desk.returns.reasons), "quality"),
        reason_text=form.get("reason_text", "").strip(),
        quantity=whole("quantity", form.get("quantity", "1").strip() or "1", where),
    )
