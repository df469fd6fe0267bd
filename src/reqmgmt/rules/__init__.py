"""Rules as data: decision tables, safe conditions, explained and versioned decisions."""

from __future__ import annotations

from .expr import (
    MAX_CONDITION_LENGTH,
    MAX_DEPTH,
    MAX_REPEAT,
    Compiled,
    ExpressionError,
    compile_condition,
)
from .loader import DEFAULT_RULES, MAX_NESTING, default_rules, load_rules
from .model import HIT_POLICIES, INPUT_TYPES, Decision, Row, RowResult, RuleSet, Table
from .vocabulary import VOCABULARY_NAMES, Vocabulary

__all__ = [
    "DEFAULT_RULES",
    "HIT_POLICIES",
    "INPUT_TYPES",
    "MAX_CONDITION_LENGTH",
    "MAX_DEPTH",
    "MAX_NESTING",
    "MAX_REPEAT",
    "VOCABULARY_NAMES",
    "Compiled",
    "Decision",
    "ExpressionError",
    "Row",
    "RowResult",
    "RuleSet",
    "Table",
    "Vocabulary",
    "compile_condition",
    "default_rules",
    "load_rules",
]
