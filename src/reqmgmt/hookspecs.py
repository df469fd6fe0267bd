"""Every hook reqmgmt calls, typed and documented (project name ``reqmgmt``).

A host implements any of them in a plugin (an object or module with
functions marked ``@reqmgmt.hookimpl``) and passes it to ``Desk.open(...,
plugins=[...])`` or publishes it under the ``reqmgmt`` entry-point group.
The built-in defaults are a plugin too (:mod:`reqmgmt.plugins`), registered
first, so a host's implementation is called before them.

docs/hooks.md documents each hook with an example; a test fails when one is
missing there.

Every answer is checked against the type documented here
(:mod:`reqmgmt.hookcalls`): a wrong answer, or an exception other than a
documented veto, raises :class:`reqmgmt.HookError` naming the plugin and
the hook, and the command writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .model import Actor, AuditEvent, CreditRecord, Customer, Money, Notification, Record
    from .reminders import Calendar, Deadline
    from .storage.base import Store

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name: hooks are ``reqmgmt_*``, entry points the ``reqmgmt`` group.
PROJECT = "reqmgmt"
#: Marks the hook specifications below (reqmgmt's own use).
hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a plugin's implementation of a hook: ``@reqmgmt.hookimpl`` (pluggy's
#: ``tryfirst``/``trylast`` options apply).
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------
# Storage and numbering
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def reqmgmt_open_store(url: str, create: bool) -> Store | None:
    """Open the store for ``url``.

    Called once by ``Desk.open(url, create=...)``.  Return a
    :class:`reqmgmt.storage.Store` if you handle this URL, else ``None``.
    Stops at first non-None result.  ``create`` false asks for an existing
    store only: raise :class:`reqmgmt.NoDatabase` rather than create one (the
    reading ``reqmgmt`` commands ask so).  The default plugin handles
    ``memory://``, ``sqlite:`` and ``postgresql:`` URLs.
    """


@hookspec(firstresult=True)
def reqmgmt_next_number(kind: str, year: int) -> str | None:
    """Give the number (and reference) of a new record of ``kind`` in ``year``.

    Called inside the creating command's transaction.  Return the ERP's own
    number, or ``None`` to let reqmgmt number it from a store sequence
    (``REQ-2026-000001``).  Stops at first non-None result.  The number must be
    unique: a taken one raises :class:`reqmgmt.ConflictError`.  A number is a
    ``str`` of 1 to 64 printable characters without surrounding spaces.
    """


# -------------------------------------------------------------------------------------
# People and permissions
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def reqmgmt_approvers(
    records: Sequence[Record], department: str
) -> Sequence[Collection[str]] | None:
    """Say who may sign for ``department``, for each of ``records``.

    Called before a sign-off is accepted (and by ``desk.can``).  Return a
    list or tuple with one collection (set, frozenset, list, tuple; never a
    bare string) of actor ids per record, in the order of ``records``, or
    ``None`` to let reqmgmt accept anyone whose ``Actor.departments`` holds
    ``department``.  Ids are normalised like ``Actor.id``.  Stops at first
    non-None result.
    """


@hookspec
def reqmgmt_authorize(actor: Actor, record: Record, event: str) -> bool | None:
    """Veto: may ``actor`` fire ``event`` on ``record``?

    Called after the actor's role was checked, before guards, inside the
    command (and by ``desk.can``, which writes nothing).  Return ``False`` to
    refuse, ``True`` or ``None`` to let it pass; any other answer is a
    :class:`reqmgmt.HookError`, never a pass.  Every implementation is
    called; any ``False`` refuses with :class:`reqmgmt.NotAuthorized` naming
    the plugin.  Must not write anything.
    """


@hookspec
def reqmgmt_before_transition(record: Record, event: str, actor: Actor) -> None:
    """Veto by raising :class:`reqmgmt.TransitionBlocked` (e.g. a credit check).

    Called after authorization, before guards and before anything is
    written.  Any other exception, or an answer other than ``None``
    (returning ``False`` is no veto), aborts the command with a
    :class:`reqmgmt.HookError`; nothing is written.
    """


# -------------------------------------------------------------------------------------
# Intake: what the host knows of customers, subcontractors and design projects
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def reqmgmt_customer_credit(customer: Customer) -> CreditRecord | None:
    """Give ``customer``'s past integrity and credit record (信用记录).

    Called inside the command that receives a requirement
    (``desk.requirements.receive``, ``create`` and ``create_many`` of
    requirements), before anything is written.  Return a
    :class:`reqmgmt.CreditRecord` whose ``customer_id`` is ``customer.id``;
    it is kept on the requirement (``Requirement.credit``).  ``None``: no
    record (the requirement keeps ``credit=None``).  Stops at first non-None
    result.  To refuse a customer, veto in ``reqmgmt_before_transition``.
    """


@hookspec(firstresult=True)
def reqmgmt_subcontractors(record: Record) -> Sequence[str] | None:
    """Give the approved subcontractors (外包加工商清单) ``record`` may be outsourced to.

    Called inside ``request_outsourcing`` on a requirement, before anything is
    written.  Return a list or tuple of subcontractor ids (1 to 64 printable
    characters, no surrounding spaces); the one the command names must be
    among them.  ``None`` (no plugin keeps a list): outsourcing is refused.
    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def reqmgmt_design_project(record: Record, novelty: str, note: str) -> str | None:
    """Open the design and development project for a new product or process.

    Called inside ``hand_to_design`` on a requirement (the engineering
    opinion found a new product or process, 新产品/新工艺), before anything
    is written.  ``novelty`` is ``"new_product"`` or ``"new_process"``,
    ``note`` what is new.  Return the reference of the host's design project
    (1 to 64 printable characters without surrounding spaces); the
    requirement keeps it and waits in ``in_design`` until ``design_done``
    brings it back with the result.  ``None``: no plugin runs a design
    procedure, and the hand-over is refused.  If the command fails after
    your answer, nothing is written: key your project by ``record.ref`` so a
    repeated hand-over finds it again.  Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------
# After the fact
# -------------------------------------------------------------------------------------


@hookspec
def reqmgmt_after_transition(record: Record, audit_event: AuditEvent) -> None:
    """Observe a committed command (e.g. mirror the record into ERP tables).

    Called after the transaction committed, once per command, with the new
    version of the record and its audit event.  An exception here (or an
    answer other than ``None``) is logged and does not undo the command,
    which is already committed; the other observers still run.
    """


@hookspec
def reqmgmt_notify(notification: Notification) -> None:
    """Deliver one notification (mail, IM, the ERP inbox...).

    Called by the outbox dispatcher after the command committed.  Raise to
    report a failure: the notification stays in the outbox for a retry (an
    answer other than ``None`` counts as a failure too).  The
    same notification may be delivered more than once (after a failure or a
    restart): use ``notification.key`` to drop duplicates.
    """


# -------------------------------------------------------------------------------------
# Rules
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def reqmgmt_convert_money(money: Money, currency: str, on: date) -> Money | None:
    """Convert ``money`` into ``currency`` at the rate of ``on``.

    Called when a rule compares amounts in different currencies.  Return the
    converted :class:`reqmgmt.Money` in ``currency``, or ``None`` if you have
    no rate.  Stops
    at first non-None result.  The default plugin converts only a currency
    into itself.
    """


@hookspec
def reqmgmt_rule_functions() -> Mapping[str, Callable[..., Any]] | None:
    """Named predicates usable in rule conditions.

    Called once when a Desk is opened.  Return a mapping of name (an
    identifier) → callable;
    the mappings of all plugins are merged (a name given twice is a
    :class:`reqmgmt.ConfigError`).
    """


# -------------------------------------------------------------------------------------
# Deadlines and escalation
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def reqmgmt_calendar() -> Calendar | None:
    """Give the working calendar deadlines are counted on.

    Called once by ``Desk.open``.  Return an object with ``add(start, amount)``
    and ``working_time(start, end)`` (see :class:`reqmgmt.reminders.Calendar`),
    e.g. ``WorkCalendar(country="DE", timezone="Europe/Berlin")`` or the
    ERP's own factory calendar; ``None`` to leave it to others.  Stops at
    first non-None result.  The default: China's working days with make-up
    workdays (调休), Asia/Shanghai, 08:30-12:00 and 13:00-17:30.
    """


@hookspec(firstresult=True)
def reqmgmt_escalation_contacts(
    record: Record, deadline: Deadline, level: int
) -> Sequence[str] | None:
    """Who hears of an overdue ``deadline`` of ``record`` at escalation ``level`` (1, 2, ...).

    Called by ``desk.run_reminders`` when a deadline is overdue by ``level``
    escalation intervals.  Return recipients (``"role:sales_manager"``,
    ``"user:wang"``, ...), or ``None`` for the default: the route's approver
    at level 1, then the rule table ``escalation``'s ``levels``.  An empty
    list sends nothing; a bare string is refused.  Stops at first non-None
    result.
    """
