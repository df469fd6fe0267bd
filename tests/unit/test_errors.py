"""Errors carry their context and say what is allowed instead."""

from __future__ import annotations

import pytest

from reqmgmt import (
    ConfigError,
    ConflictError,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    ReqMgmtError,
    TransitionBlocked,
    ValidationError,
)


def test_every_error_is_a_reqmgmt_error() -> None:
    """All errors share the root class."""
    for cls in (
        ConfigError,
        ConflictError,
        InvalidTransition,
        NotAuthorized,
        NotFound,
        TransitionBlocked,
        ValidationError,
    ):
        assert issubclass(cls, ReqMgmtError)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ValidationError, ValueError),
        (ConfigError, ValueError),
        (InvalidTransition, ValueError),
        (NotAuthorized, PermissionError),
        (NotFound, LookupError),
    ],
)
def test_errors_subclass_the_matching_builtin(cls: type, builtin: type) -> None:
    """Hosts catching builtins keep working."""
    assert issubclass(cls, builtin)


def test_invalid_transition_names_state_and_allowed_events() -> None:
    """The message names the state, the event and what is allowed there."""
    err = InvalidTransition("REQ-1", "requirement", "received", "close", ["cancel", "clarify"])
    assert err.allowed == ("cancel", "clarify")
    assert "'close' is not allowed in state 'received'" in str(err)
    assert "'cancel', 'clarify'" in str(err)


def test_invalid_transition_with_no_allowed_events_says_none() -> None:
    """A final state says no events are allowed."""
    assert "allowed there: none" in str(InvalidTransition("R", "k", "closed", "x", []))


def test_conflict_error_messages_cover_each_case() -> None:
    """Stale, missing and duplicate records each get their own message."""
    assert "expected version 2 but the stored version is 3" in str(ConflictError("R", 2, 3))
    assert "does not exist" in str(ConflictError("R", 2, None))
    assert "already exists" in str(ConflictError("R", None, 1))


def test_config_error_lists_every_problem() -> None:
    """Several problems are listed one per line."""
    err = ConfigError("lifecycle 'x'", ["a is wrong", "b is wrong"])
    assert err.problems == ("a is wrong", "b is wrong")
    assert "2 problems" in str(err)
    assert "  - b is wrong" in str(err)


def test_validation_error_names_field_value_and_expectation() -> None:
    """Field, received value and what is expected are all in the message."""
    err = ValidationError("currency", "usd", "an ISO code", where="Money")
    assert str(err) == "Money.currency: got 'usd'; expected an ISO code"


def test_transition_blocked_can_be_located_after_the_fact() -> None:
    """A plugin's bare TransitionBlocked gets ref, event and state filled in."""
    err = TransitionBlocked("credit limit exceeded").locate("REQ-1", "accept", "evaluating")
    assert err.reasons == ("credit limit exceeded",)
    assert str(err) == "REQ-1: 'accept' in state 'evaluating' blocked: credit limit exceeded"


def test_not_found_mentions_version_and_hint() -> None:
    """A missing version says which versions exist."""
    err = NotFound("REQ-1", version=9, hint="versions 1 to 3 exist")
    assert str(err) == "version 9 of record 'REQ-1' not found; versions 1 to 3 exist"
