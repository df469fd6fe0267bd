"""Hook answers are checked; HookError says which plugin, which hook, what it returned."""

from __future__ import annotations

import types
from collections.abc import Generator, Sequence
from typing import Any

import pytest

from reqmgmt import Actor, Desk, HookError, ReqMgmtError, hookimpl
from reqmgmt.testing import FakeClock, ScriptedApprovers

from ..conftest import CLERK, receive, to_evaluating


def test_hook_error_is_a_reqmgmt_error_with_its_context() -> None:
    """plugin, hook, answer and expected are kept and all in the message."""
    err = HookError("erp", "reqmgmt_authorize", "returned 'no'", "exactly True, False or None")
    assert isinstance(err, ReqMgmtError)
    assert (err.plugin, err.hook, err.answer) == ("erp", "reqmgmt_authorize", "returned 'no'")
    assert str(err) == (
        "plugin 'erp', hook reqmgmt_authorize: returned 'no'; expected exactly True, False or None"
    )


def test_short_cuts_long_answers_and_survives_a_broken_repr() -> None:
    """A huge answer is cut; a repr that raises does not hide the problem."""

    class Broken:
        def __repr__(self) -> str:
            raise ValueError("boom")

    assert len(HookError.short("x" * 10_000)) == HookError.MAX_REPR
    assert HookError.short(Broken()) == "<Broken whose repr raised ValueError>"


def test_a_module_plugin_is_named_after_its_module() -> None:
    """An unnamed module plugin is named by its __name__, not by pluggy's id()."""
    module = types.ModuleType("erp_plugin")

    @hookimpl
    def reqmgmt_authorize(actor: Actor, record: Any, event: str) -> object:
        return "no"

    module.reqmgmt_authorize = reqmgmt_authorize  # type: ignore[attr-defined]
    with Desk.open(clock=FakeClock(), plugins=[module]) as desk:
        with pytest.raises(HookError, match="plugin 'erp_plugin', hook reqmgmt_authorize"):
            receive(desk)
        assert desk.query() == []


class Wrapper:
    """A new-style hook wrapper: answers then go through pluggy."""

    @hookimpl(wrapper=True)
    def reqmgmt_authorize(self, actor: Actor, record: Any, event: str) -> Generator[None]:
        return (yield)


class SaysNo:
    @hookimpl
    def reqmgmt_authorize(self, actor: Actor, record: Any, event: str) -> object:
        return "no"


class Crashes:
    @hookimpl
    def reqmgmt_authorize(self, actor: Actor, record: Any, event: str) -> object:
        raise RuntimeError("erp down")


def test_with_a_hook_wrapper_a_wrong_answer_is_still_refused() -> None:
    """Through pluggy (a wrapper is registered) the answer is checked all the same."""
    with Desk.open(clock=FakeClock(), plugins=[SaysNo(), Wrapper()]) as desk:
        with pytest.raises(HookError, match=r"one of .*SaysNo.*returned 'no'"):
            receive(desk)
        assert desk.query() == []


def test_with_a_hook_wrapper_an_exception_is_traced_to_its_plugin() -> None:
    """The plugin whose code raised is found in the traceback."""
    with Desk.open(clock=FakeClock(), plugins=[Crashes(), Wrapper()]) as desk:
        with pytest.raises(HookError, match=r"plugin 'Crashes'.*erp down") as info:
            receive(desk)
        assert isinstance(info.value.__cause__, RuntimeError)


def test_scripted_approvers_take_a_bare_string_as_one_id() -> None:
    """ScriptedApprovers({"engineering": "li.na"}) means li.na, not the letters l, i, n, a."""
    approvers = ScriptedApprovers({"engineering": "li.na"})
    with Desk.open(clock=FakeClock(), plugins=[approvers]) as desk:
        ref = to_evaluating(desk)
        for letter in ("l", "i", "n", "a"):
            assert not desk.can(ref, "sign", actor=Actor(letter), department="engineering")
        assert desk.can(ref, "sign", actor=Actor("li.na"), department="engineering")


class Quiet:
    @hookimpl
    def reqmgmt_approvers(self, records: Sequence[Any], department: str) -> object:
        return None


def test_a_hook_answering_none_leaves_the_default() -> None:
    """None from reqmgmt_approvers: the actor's departments decide, as documented."""
    with Desk.open(clock=FakeClock(), plugins=[Quiet()]) as desk:
        ref = to_evaluating(desk)
        assert desk.can(ref, "sign", actor=Actor("e", departments={"engineering"}))
        assert not desk.can(ref, "sign", actor=CLERK, department="engineering")
