"""Form fields of the events' data, and their typed, allow-listed conversion.

Every value a browser sends is hostile: only the keys an event declares are
read (``Transition.requires`` / ``optional``), each is converted to the type
the lifecycle documents (whole numbers, dates, ``Money``, yes/no, a word of a
closed list), and anything else is refused with a :class:`reqmgmt.ValidationError`
that names the field, what was received and what is allowed, in both languages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import attrs

from reqmgmt import Actor, Contract, Desk, Money, Record, Transition, ValidationError
from reqmgmt.model import DISPOSITIONS, INVALID_OUTCOMES

from .people import PEOPLE
from .words import both, one_of

#: Longest text a form field takes (the library checks the content itself).
TEXT_MAX = 4000
CURRENCIES = ("CNY", "USD", "EUR", "HKD")
_WHOLE = re.compile(r"[0-9]{1,9}")
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
_BOOLS = frozenset({"safety_related", "read_back", "current_rules"})
_WHOLES = frozenset({"quantity"})
_DATES = frozenset({"due_on"})
_LONG_TEXT = frozenset(
    {"findings", "actions", "text", "delivery_plan", "outsourcing", "confirmation"}
)
_CHOICES: dict[str, dict[str, tuple[str, str]]] = {
    "novelty": {"new_product": ("新产品", "new product"), "new_process": ("新工艺", "new process")},
    # A goodwill credit is its own event (grant_goodwill).
    "outcome": {k: v for k, v in INVALID_OUTCOMES.items() if k != "goodwill_credit"},
    "disposition": DISPOSITIONS,
    "owner": {p.id: (p.name, p.name) for p in PEOPLE.values()},
}


@attrs.frozen
class Field:
    """One input of an event's form: ``widget`` is text, textarea, whole, date, yes_no,
    choice, money or shipment; ``choices`` are ``(value, label)`` pairs."""

    key: str
    widget: str
    required: bool
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""


def fields_for(desk: Desk, record: Record, t: Transition, actor: Actor, lang: str) -> list[Field]:
    """The inputs of event ``t`` on ``record``, in declaration order."""
    vocabularies = dict(t.vocabularies)
    lifecycle = desk.engine(record.RECORD_KIND).lifecycle
    out = []
    for key in (*t.requires, *t.optional):
        required = key in t.requires
        help = lifecycle.describe_data(key) or ""
        if key in vocabularies:
            words = list(desk.rules.vocabulary(vocabularies[key]))
            if key == "department":  # the actor's own departments first
                words.sort(key=lambda w: w not in actor.departments)
            out.append(Field(key, "choice", required, tuple((w, w) for w in words), help))
        elif key in _CHOICES:
            labels = _CHOICES[key]
            choices = tuple((k, v[0] if lang == "zh" else v[1]) for k, v in labels.items())
            out.append(Field(key, "choice", required, choices, help))
        elif key in _BOOLS:
            out.append(Field(key, "yes_no", required, help=help))
        elif key in _WHOLES:
            out.append(Field(key, "whole", required, help=help))
        elif key in _DATES:
            out.append(Field(key, "date", required, help=help))
        elif key == "credit":
            out.append(Field(key, "money", required, tuple((c, c) for c in CURRENCIES), help))
        elif key == "shipment" and isinstance(record, Contract):
            open_lines = tuple(
                (str(x.line_no), f"{x.line_no}: {x.product} ({x.quantity - x.shipped})")
                for x in record.lines
                if x.kind == "goods" and x.quantity > x.shipped
            )
            out.append(Field(key, "shipment", required, open_lines, help))
        else:
            long = key in _LONG_TEXT
            out.append(Field(key, "textarea" if long else "text", required, help=help))
    return out


def read_fields(fields: Sequence[Field], form: Mapping[str, str], where: str) -> dict[str, Any]:
    """The typed values of ``fields`` from the submitted ``form``; raises ValidationError.

    An empty optional field is left out; an empty required one is passed on as
    ``None`` so the library refuses it with its own reason.
    """
    data: dict[str, Any] = {}
    for f in fields:
        if f.widget == "shipment":
            data[f.key] = read_shipment(f, form, where) or None
            continue
        raw = form.get(f.key, "")
        if f.widget == "yes_no":
            if raw not in ("", "yes"):
                raise ValidationError(f.key, raw, both("x_ticked"), where=where)
            if raw or f.required:
                data[f.key] = raw == "yes"
            continue
        raw = raw.strip()
        if not raw:
            if f.required:
                data[f.key] = None
            continue
        data[f.key] = read_value(f, raw, form.get(f"{f.key}.currency", ""), where)
    return data


def read_value(f: Field, raw: str, currency: str, where: str) -> object:
    """One non-empty value of ``f`` converted to its type."""
    if len(raw) > TEXT_MAX:
        raise ValidationError(f.key, raw[:40] + "…", both("x_max_chars", n=TEXT_MAX), where=where)
    if f.widget == "choice":
        allowed = [value for value, _ in f.choices]
        if raw not in allowed:
            raise ValidationError(f.key, raw, one_of(allowed), where=where)
        return raw
    if f.widget == "whole":
        return whole(f.key, raw, where)
    if f.widget == "date":
        return day(f.key, raw, where)
    if f.widget == "money":
        return money(f.key, raw, currency, where)
    return raw


def whole(key: str, raw: str, where: str) -> int:
    """A whole number from 0 to 999,999,999 written in digits only."""
    if not _WHOLE.fullmatch(raw):
        raise ValidationError(key, raw, both("x_whole"), where=where)
    return int(raw)


def day(key: str, raw: str, where: str) -> date:
    """A date written YYYY-MM-DD."""
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(key, raw, both("x_date"), where=where) from None


def money(key: str, raw: str, currency: str, where: str) -> Money:
    """An amount with at most two decimals in one of :data:`CURRENCIES`."""
    if not _AMOUNT.fullmatch(raw):
        raise ValidationError(key, raw, both("x_amount"), where=where)
    if currency not in CURRENCIES:
        raise ValidationError(f"{key}.currency", currency, one_of(CURRENCIES), where=where)
    return Money(raw, currency)


def read_shipment(f: Field, form: Mapping[str, str], where: str) -> dict[int, int]:
    """``{line_no: quantity}`` for the open lines given a quantity above zero."""
    shipment: dict[int, int] = {}
    for line_no, _ in f.choices:  # the record's lines, never the form's keys
        raw = form.get(f"shipment.{line_no}", "").strip()
        if raw:
            quantity = whole(f"shipment.{line_no}", raw, where)
            if quantity:
                shipment[int(line_no)] = quantity
    return shipment
