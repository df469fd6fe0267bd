"""reqmgmt: customer-requirement management for ERPs.

Audited lifecycles for customer requirements, contracts and returns,
countersigned reviews, and pluggy hooks through which the host supplies
storage, people and notifications.  This module is the public API.
"""

from __future__ import annotations

from .audit import HistoryCheck
from .desk import ContractDesk, Desk, DispatchResult, RequirementDesk, ReturnDesk, Verdict
from .errors import (
    ConfigError,
    ConflictError,
    HookError,
    ImportFailed,
    InvalidTransition,
    NoDatabase,
    NotAuthorized,
    NotFound,
    ReqMgmtError,
    RuleError,
    StoreUnavailable,
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
    CreditRecord,
    Customer,
    CustomerConfirmation,
    FieldChange,
    IdentifiedRequirement,
    Money,
    Notification,
    PlanReceipt,
    Record,
    Requirement,
    Return,
    Signoff,
    Survey,
    SurveyAnswer,
)
from .plugins import make_plugin_manager
from .storage import MemoryStore, OutboxEntry, Store, Transaction
from .verification import VerifyReport


def __getattr__(name: str) -> str:
    # __version__ on first use: importlib.metadata costs more to import than
    # most programs spend on reqmgmt's own modules.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("reqmgmt")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found = "0.0.0"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "CreditRecord",
    "Customer",
    "CustomerConfirmation",
    "Desk",
    "DispatchResult",
    "FieldChange",
    "HistoryCheck",
    "HookError",
    "IdentifiedRequirement",
    "ImportFailed",
    "InvalidTransition",
    "Lifecycle",
    "MemoryStore",
    "Money",
    "NoDatabase",
    "NotAuthorized",
    "NotFound",
    "Notification",
    "OutboxEntry",
    "PlanReceipt",
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
    "StoreUnavailable",
    "Survey",
    "SurveyAnswer",
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
