"""Plugins and a clock for hosts testing their own plugins and rules."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ..hookspecs import hookimpl
from ..model import Notification, Record

__all__ = [
    "ApprovedSubcontractors",
    "DesignProjects",
    "FailingNotifier",
    "FakeClock",
    "RecordingNotifier",
    "ScriptedApprovers",
]


class FakeClock:
    """A clock for ``Desk.open(clock=...)`` that moves only when told.

    Each call returns the current time and then moves it by ``tick`` (default
    one second), so consecutive events get distinct times.
    """

    def __init__(
        self, start: datetime | None = None, *, tick: timedelta = timedelta(seconds=1)
    ) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        if self.now.utcoffset() is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self.tick = tick
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            current = self.now
            self.now = current + self.tick
            return current

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move the clock forward by ``delta`` or ``timedelta(**kwargs)``."""
        with self._lock:
            self.now += delta if delta is not None else timedelta(**kwargs)
            return self.now


class RecordingNotifier:
    """Collects every delivered notification in ``sent`` (thread-safe)."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        with self._lock:
            self.sent.append(notification)

    def keys(self) -> list[str]:
        """The idempotency keys delivered, in order."""
        return [n.key for n in self.sent]


class FailingNotifier:
    """Raises on delivery while ``failing`` is true; counts the attempts."""

    def __init__(self, failing: bool = True, error: type[Exception] = ConnectionError) -> None:
        self.failing = failing
        self.error = error
        self.attempts = 0

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        self.attempts += 1
        if self.failing:
            raise self.error(f"mail server down while sending {notification.key}")


class ScriptedApprovers:
    """Answers ``reqmgmt_approvers`` from a fixed map of department → actor ids."""

    def __init__(self, signers: Mapping[str, Collection[str]]) -> None:
        # A bare string is one id, not a set of its letters.
        self.signers = {
            d: frozenset((ids,)) if isinstance(ids, str) else frozenset(ids)
            for d, ids in signers.items()
        }
        self.calls = 0

    @hookimpl
    def reqmgmt_approvers(
        self, records: Sequence[Record], department: str
    ) -> Sequence[Collection[str]] | None:
        self.calls += 1
        eligible = self.signers.get(department, frozenset())
        return [eligible for _ in records]


class ApprovedSubcontractors:
    """A host's approved subcontractor list (外包加工商清单) for ``reqmgmt_subcontractors``."""

    def __init__(self, ids: Sequence[str] = ("hongda", "xinhua")) -> None:
        self.ids = tuple(ids)

    @hookimpl
    def reqmgmt_subcontractors(self, record: Record) -> tuple[str, ...]:
        return self.ids


class DesignProjects:
    """A host's design procedure for ``reqmgmt_design_project``: ``DP-<ref>`` per requirement.

    ``opened`` lists ``(ref, novelty, note)`` of each hand-over.
    """

    def __init__(self) -> None:
        self.opened: list[tuple[str, str, str]] = []

    @hookimpl
    def reqmgmt_design_project(self, record: Record, novelty: str, note: str) -> str:
        self.opened.append((record.ref, novelty, note))
        return f"DP-{record.ref}"
