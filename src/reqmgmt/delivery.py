"""Outbox delivery: dispatch, retry, dead letters (docs/hooks.md "Notifications").

Notifications are written in the command's transaction (the outbox) and
delivered after it commits, at least once, through ``reqmgmt_notify``:
:func:`dispatch` claims due entries for the Desk's lease, delivers each on
its own, and writes its bookkeeping back (delivered, or pending with the
error and a doubled retry delay, or dead after ``max_attempts``).  Per
record, a later notification is not delivered before an earlier one that
failed.  Every function takes the :class:`~reqmgmt.desk.Desk` it works for
(its store, plugin manager, clock and delivery settings).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs
from attrs import frozen

from .errors import ConfigError, ValidationError
from .hookcalls import ask_notify
from .storage import hostunit
from .storage.base import Lenient, OutboxEntry

if TYPE_CHECKING:
    from .desk import Desk

__all__ = ["DispatchResult", "dead_letters", "deliver_claimed", "dispatch", "retry"]

log = logging.getLogger("reqmgmt")


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


def dispatch(desk: Desk, *, limit: int | None = None) -> DispatchResult:
    """One delivery pass (:meth:`reqmgmt.Desk.dispatch`)."""
    check_limit(limit, "dispatch")
    if hostunit.current(desk.store) is not None:
        raise ConfigError(
            "dispatch", "not inside unit_of_work: delivery runs after the host's commit"
        )
    if not desk.pm.hook.reqmgmt_notify.get_hookimpls():
        return DispatchResult()
    failed: list[tuple[str, str]] = []
    entries = claim(desk, failed, limit=limit)
    return deliver(desk, entries, failed)


def deliver_claimed(desk: Desk, *, ref: str) -> DispatchResult:
    """Claim and deliver what is due of record ``ref`` (a command's own notifications)."""
    failed: list[tuple[str, str]] = []
    return deliver(desk, claim(desk, failed, ref=ref), failed)


def claim(
    desk: Desk,
    unreadable: list[tuple[str, str]],
    *,
    limit: int | None = None,
    ref: str | None = None,
) -> Sequence[OutboxEntry]:
    """Claim due entries; an entry that cannot be read goes to ``unreadable``, logged."""
    now = desk.now()
    with desk.store.transaction() as tx:
        if isinstance(tx, Lenient):
            tx.unreadable = unreadable
        entries = tx.claim(now=now, lease_until=now + desk.lease, limit=limit, ref=ref)
    for key, why in unreadable:
        log.error("dispatch: skipped %s: %s", key, why)
    return entries


def dead_letters(desk: Desk, *, limit: int | None = None) -> Sequence[OutboxEntry]:
    """Notifications given up after ``max_attempts``, oldest first (:meth:`Desk.dead_letters`)."""
    check_limit(limit, "dead_letters")
    with desk.store.transaction() as tx:
        return tx.entries(status="dead", limit=limit)


def retry(desk: Desk, keys: Iterable[str] | None = None) -> int:
    """Put dead letters back in the queue; return how many (:meth:`reqmgmt.Desk.retry`)."""
    with desk.store.transaction() as tx:
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
            tx.save_outbox(attrs.evolve(entry, status="pending", attempts=0, next_attempt_at=None))
    return len(chosen)


def deliver(
    desk: Desk, entries: Sequence[OutboxEntry], failed: list[tuple[str, str]]
) -> DispatchResult:
    """Deliver claimed entries, each on its own: a failing one is logged and listed."""
    delivered = dead = 0
    blocked: set[str] = set()
    for entry in entries:
        n = entry.notification
        if n.ref in blocked:
            # Behind a failed one: give the claim back, keep the order.
            save_entry(desk, attrs.evolve(entry, next_attempt_at=None), failed)
            continue
        try:
            ask_notify(desk.pm, n)
        except Exception as exc:
            attempts = entry.attempts + 1
            now = desk.now()
            gone = attempts >= desk.max_attempts
            error = error_text(exc)
            updated = attrs.evolve(
                entry,
                status="dead" if gone else "pending",
                attempts=attempts,
                last_error=error,
                next_attempt_at=now + desk.retry_base * (2 ** (attempts - 1)),
            )
            log.warning("delivering %s failed (attempt %d): %s", n.key, attempts, error)
            blocked.add(n.ref)
            failed.append((n.ref, f"delivering {n.key!r} failed: {error}"))
            dead += gone
        else:
            updated = attrs.evolve(
                entry, status="delivered", attempts=entry.attempts + 1, delivered_at=desk.now()
            )
            delivered += 1
        if not save_entry(desk, updated, failed):
            blocked.add(n.ref)
    return DispatchResult(delivered, tuple(failed), dead)


def save_entry(desk: Desk, entry: OutboxEntry, failed: list[tuple[str, str]]) -> bool:
    """Write back one entry's bookkeeping; a failure is logged and listed, not raised.

    The entry stays claimed until its lease runs out, then comes back:
    at least once, as for a worker that died.
    """
    try:
        with desk.store.transaction() as tx:
            tx.save_outbox(entry)
    except Exception as exc:
        n = entry.notification
        log.error("dispatch: could not save the outbox entry %s: %s", n.key, exc)
        failed.append((n.ref, f"saving outbox entry {n.key!r} failed: {error_text(exc)}"))
        return False
    return True


def check_limit(limit: object, where: str) -> None:
    """``limit``: None (no limit) or a positive whole number, alike on every backend."""
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValidationError(
            "limit", limit, "None (no limit) or a whole number from 1", where=where
        )


def error_text(exc: BaseException) -> str:
    """An exception as one storable line: the input policy's text, at most 1,000 characters."""
    text = f"{type(exc).__name__}: {exc}"
    # A plugin's message may hold anything; PostgreSQL's text refuses NUL.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= 1000 else text[:999] + "…"
