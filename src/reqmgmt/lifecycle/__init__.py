"""Lifecycle declarations and the engine that runs them."""

from __future__ import annotations

from .base import Context, CreationInput, Engine, Lifecycle, SignoffStep, State, Transition
from .contract import CONTRACT
from .requirement import REQUIREMENT
from .returns import RETURNS
from .survey import SURVEY

__all__ = [
    "BUILTIN_LIFECYCLES",
    "CONTRACT",
    "REQUIREMENT",
    "RETURNS",
    "SURVEY",
    "Context",
    "CreationInput",
    "Engine",
    "Lifecycle",
    "SignoffStep",
    "State",
    "Transition",
]

#: The lifecycles a Desk runs unless told otherwise, by record kind.
BUILTIN_LIFECYCLES: dict[str, Lifecycle] = {
    REQUIREMENT.kind: REQUIREMENT,
    CONTRACT.kind: CONTRACT,
    RETURNS.kind: RETURNS,
    SURVEY.kind: SURVEY,
}
