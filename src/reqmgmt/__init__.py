"""reqmgmt: customer-requirement management for ERPs.

Audited lifecycles for customer requirements, contracts and returns,
countersigned reviews, and pluggy hooks through which the host supplies
storage, people and notifications.  This module is the public API.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .audit import HistoryCheck
from .desk import ContractDesk, Desk, DispatchResult, RequirementDesk, ReturnDesk, Verdict
from .errors import (
    ConfigError,
    ConflictError,
    HookError,
    ImportFailed,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    ReqMgmtError,
    RuleError,
    TamperedRecord,
    TransitionBlocked,
    ValidationError,
)
from .hookspecs import hookimpl, hookspec
from .lifecycle import (
    BUILTIN_LIFECYCLES,
    CreationInput,
    Lifecycle,
    SignoffStep,
    State,
    Transition,
)
from .model import (
    Actor,
    AuditEvent,
    Contract,
    ContractLine,
    Customer,
    FieldChange,
    Money,
    Notification,
    Record,
    Requirement,
    Return,
    Signoff,
)
from .plugins import make_plugin_manager
from .storage import MemoryStore, OutboxEntry, Store, Transaction
from .verification import VerifyReport

try:
    __version__ = version("reqmgmt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BUILTIN_LIFECYCLES",
    "Actor",
    "AuditEvent",
    "ConfigError",
    "ConflictError",
    "Contract",
    "ContractDesk",
    "ContractLine",
    "CreationInput",
    "Customer",
    "Desk",
    "DispatchResult",
    "FieldChange",
    "HistoryCheck",
    "HookError",
    "ImportFailed",
    "InvalidTransition",
    "Lifecycle",
    "MemoryStore",
    "Money",
    "NotAuthorized",
    "NotFound",
    "Notification",
    "OutboxEntry",
    "Record",
    "ReqMgmtError",
    "Requirement",
    "RequirementDesk",
    "Return",
    "ReturnDesk",
    "RuleError",
    "Signoff",
    "SignoffStep",
    "State",
    "Store",
    "TamperedRecord",
    "Transaction",
    "Transition",
    "TransitionBlocked",
    "ValidationError",
    "Verdict",
    "VerifyReport",
    "__version__",
    "hookimpl",
    "hookspec",
    "make_plugin_manager",
]
