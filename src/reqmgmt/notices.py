"""What a notification says: the command's note and its key data, as text.

A notification is read by a person (mail, the ERP's inbox) and often stored by
a host that knows nothing of reqmgmt's types, so its content is plain text:
``note`` is the command's note (the question put to the customer, the reason of
a decline) and ``details`` the event's data as ``(key, text)`` pairs (the
delivery plan, the amendment's changes, the disposition...).  Values are
rendered here, bounded in length, never by calling a host object's own
``__str__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .model import ContractLine, Money

__all__ = ["MAX_DETAIL", "details", "made", "text"]

#: The longest text one detail (or a note inside a notification's text) keeps.
MAX_DETAIL = 500

#: The notifications the last command made (:func:`reqmgmt.command.notifications`,
#: that tuple itself, or the LazyNotifications it handed the memory store) and what
#: it made them of: ``(notifications, recipients, key prefix, ref, record kind,
#: version, event, topic, text_zh, text_en, created at, note, details)``, each
#: notification keyed ``prefix + recipient`` and holding these very objects.  The
#: memory store's ``enqueue``, handed that sequence, takes the values from here
#: instead of reading them off every notification (or making them) again.
#: One slot, replaced by every command (of any thread): handed another sequence,
#: a store reads the notifications.
made: tuple[Any, ...] = ((),)


def _clip(value: str) -> str:
    return value if len(value) <= MAX_DETAIL else value[: MAX_DETAIL - 1] + "…"


def text(value: Any, depth: int = 0) -> str:
    """``value`` as one line of text (data from a command: bounded, plain)."""
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: ""}[value]
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, ContractLine):
        kind = "" if value.kind == "goods" else f" ({value.kind})"
        return _clip(
            f"line {value.line_no}{kind}: {text(value.product)} × {value.quantity} "
            f"@ {value.unit_price}"
        )
    if depth >= 3:
        return "…"
    if isinstance(value, Mapping):
        return _clip(
            ", ".join(f"{text(k, depth + 1)}: {text(v, depth + 1)}" for k, v in value.items())
        )
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return _clip("; ".join(text(v, depth + 1) for v in items))
    return type(value).__name__


def details(data: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The event's data as ``(key, text)`` pairs, in the order given."""
    if not data:
        return ()
    if type(data) is dict:
        # A dict of str to str no longer than a detail (as a command's data usually
        # is): its items are those pairs already, the very objects (str and text
        # give each back as it is).
        for key, value in data.items():
            if type(key) is not str or type(value) is not str or len(value) > MAX_DETAIL:
                break
        else:
            return tuple(data.items())
    return tuple((str(k), text(v)) for k, v in data.items())
