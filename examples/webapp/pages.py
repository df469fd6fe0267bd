"""What the pages show: the inbox, a record's position, fields and forms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from reqmgmt import Actor, Contract, Desk, Money, Record, ValidationError
from reqmgmt.diagram import mermaid
from reqmgmt.model import CONTRACT_TERMS

from .fields import Field, fields_for
from .words import both, label, lang

#: Events fired as part of a larger command, never from a button of their own.
INTERNAL_EVENTS = frozenset({"replace_goods"})
#: Events anyone of the company may fire on any open record (a remark 备注, a requirement
#: identified): they alone do not put a record in a person's inbox.
ANYONE_EVENTS = frozenset({"remark", "identify"})


# --- reading: deadlines, rows, the diagram ------------------------------------------------


#: The longest span whose working time a page computes (a day at a time in the calendar):
#: a deadline further away shows calendar days, so a date decades off costs nothing.
WORKING_TIME_SPAN = timedelta(days=92)


def deadline(desk: Desk, record: Record, now: datetime) -> dict[str, Any] | None:
    """The next deadline of ``record`` with the working time left or overdue (calendar
    days instead beyond :data:`WORKING_TIME_SPAN`)."""
    if record.paused_since is not None:
        return {"paused": True}
    due = record.step_due_at or record.due_at
    if due is None:
        return None
    overdue = due <= now
    start, end = (due, now) if overdue else (now, due)
    if end - start > WORKING_TIME_SPAN:
        return {"at": due, "overdue": overdue, "days": (end - start).days}
    span = desk.calendar.working_time(start, end)
    return {"at": due, "overdue": overdue, "hours": round(span / timedelta(hours=1), 1)}


# --8<-- [start:inbox]
#: Open records an inbox page looks at (each asks the library what the person may do).
PAGE_SIZE = 50


def inbox_candidates(desk: Desk) -> list[Record]:
    """The open records from whose states someone can act, most urgent first.

    Cheap (no rule, no calendar): the records of one inbox page are then
    asked :meth:`Desk.allowed_events`, which is what costs.
    """
    never = datetime.max.replace(tzinfo=desk.now().tzinfo)
    out = []
    for record in desk.query():
        engine = desk.engine(record.RECORD_KIND)
        if record.state in engine.final:
            continue
        if set(engine.events_from(record.state)) <= ANYONE_EVENTS | INTERNAL_EVENTS:
            continue
        out.append(record)
    # a paused clock (waiting on the customer) has no deadline now: last
    out.sort(key=lambda r: (None if r.paused_since else r.step_due_at or r.due_at) or never)
    return out


def inbox_rows(
    desk: Desk, actor: Actor, records: Sequence[Record] | None = None
) -> list[dict[str, Any]]:
    """Of ``records`` (default: every candidate), those where ``actor`` may fire an event
    now, with the events, in the given order (most urgent first)."""
    now = desk.now()
    rows: list[dict[str, Any]] = []
    for record in inbox_candidates(desk) if records is None else records:
        engine = desk.engine(record.RECORD_KIND)
        events = [
            e for e in desk.allowed_events(record.ref, actor=actor) if e not in INTERNAL_EVENTS
        ]
        if not events or set(events) <= ANYONE_EVENTS:
            continue
        labels = [label(engine.transition(record.state, e)) for e in events]
        due = deadline(desk, record, now)
        rows.append(
            {
                "record": record,
                "events": labels,
                "due": due,
                "state": label(engine.labels[record.state]),
            }
        )
    return rows


def page_number(raw: str, pages: int) -> int:
    """The ``page`` query parameter: digits only, 1 to ``pages`` (a later one: the last)."""
    if raw == "":
        return 1
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise ValidationError("page", raw, both("x_page", pages=pages), where="inbox")
    return min(int(raw), pages)


# --8<-- [end:inbox]


def position(desk: Desk, record: Record) -> dict[str, Any]:
    """The lifecycle's states with the current one marked, its ways out, and the
    Mermaid diagram (reqmgmt.diagram) with the current state highlighted."""
    engine = desk.engine(record.RECORD_KIND)
    lifecycle = engine.lifecycle
    ways = []
    for event in engine.events_from(record.state):
        t = engine.transition(record.state, event)
        if t is not None and event not in INTERNAL_EVENTS:
            ways.append((label(t), label(engine.labels[t.dest])))
    diagram = mermaid(lifecycle) + (
        "    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px\n"
        f"    class {record.state} current\n"
    )
    dests = {
        t.dest
        for e in engine.events_from(record.state)
        if (t := engine.transition(record.state, e))
    }
    return {
        "states": [(s.name, label(s), s.final) for s in lifecycle.states],
        "current": record.state,
        "next": dests,
        "ways": ways,
        "mermaid": diagram,
    }


def details(record: Record) -> list[tuple[str, str]]:
    """The record's own fields worth a line each (text, numbers, money, dates)."""
    skip = {"ref", "state", "version", "signoffs", "lines", "rules_version", "paused_seconds"}
    out = []
    for a in attrs.fields(type(record)):
        value = getattr(record, a.name)
        if a.name in skip or value in (None, "", (), frozenset()):
            continue
        if isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M} UTC"
        elif hasattr(value, "name") and hasattr(value, "id"):  # a customer snapshot
            value = f"{value.name} ({value.id})"
        elif isinstance(value, frozenset):
            value = ", ".join(sorted(map(str, value)))
        elif not isinstance(value, str | int | date | Money):
            continue
        out.append((a.name, str(value)))
    return out


def actions(desk: Desk, record: Record, actor: Actor) -> dict[str, Any]:
    """The forms of the record page: one per allowed event, the sign-off, the amendment."""
    engine = desk.engine(record.RECORD_KIND)
    allowed = [e for e in desk.allowed_events(record.ref, actor=actor) if e not in INTERNAL_EVENTS]
    step = engine.lifecycle.signoff_step(record.state)
    signing = None
    events: list[dict[str, Any]] = []
    for event in allowed:
        t = engine.transition(record.state, event)
        assert t is not None
        if step is not None and event in (step.sign_event, step.decline_event):
            if signing is None:
                mine = [
                    d
                    for d in step.missing(record)
                    if desk.can(record.ref, step.sign_event, actor=actor, department=d)
                ]
                signing = {"departments": mine or list(step.missing(record))}
            continue
        if event in ("amend", "revise"):
            continue  # the amendment form below
        fields: list[Field] = fields_for(desk, record, t, actor, lang())
        events.append(
            {"event": event, "label": label(t), "note_required": t.note_required, "fields": fields}
        )
    amend = None
    if isinstance(record, Contract) and {"amend", "revise"} & set(allowed):
        amend = {
            "terms": [(k, getattr(record, k)) for k in CONTRACT_TERMS],
            "lines": [x for x in record.lines if x.kind == "goods"],
        }
    return {"events": events, "signing": signing, "amend": amend}
