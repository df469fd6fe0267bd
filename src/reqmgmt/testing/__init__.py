"""Helpers for hosts testing their plugins, rules and stores with reqmgmt.

Needs the ``test`` extra (pytest and hypothesis)::

    from reqmgmt.testing import (
        FakeClock, RecordingNotifier, ScriptedApprovers, StoreContract, LifecycleMachine,
    )
    from reqmgmt.testing import strategies
"""

from __future__ import annotations

from ..storage.memory import MemoryStore
from . import strategies
from .contract import StoreContract, make_notification, make_requirement
from .plugins import (
    ApprovedSubcontractors,
    DesignProjects,
    FailingNotifier,
    FakeClock,
    RecordingNotifier,
    ScriptedApprovers,
)
from .stateful import REFUSALS, LifecycleMachine, signed_departments

__all__ = [
    "REFUSALS",
    "ApprovedSubcontractors",
    "DesignProjects",
    "FailingNotifier",
    "FakeClock",
    "LifecycleMachine",
    "MemoryStore",
    "RecordingNotifier",
    "ScriptedApprovers",
    "StoreContract",
    "make_notification",
    "make_requirement",
    "signed_departments",
    "strategies",
]
