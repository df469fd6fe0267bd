"""Shared test set-up: hypothesis profiles and Desk fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from reqmgmt import Actor, Customer, Desk
from reqmgmt.testing import ApprovedSubcontractors, FakeClock, RecordingNotifier

# default: fast, for every local run.  ci: more examples, selected by .ci/run; no
# example database (a fresh clone has none to replay, and the workers of a
# parallel run would otherwise all write to one .hypothesis directory).
settings.register_profile("default", max_examples=30, stateful_step_count=25, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The user-property name under which tests/adversarial reports its figures.
FIGURE = "adversarial figure"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The adversarial figures, from each test's teardown report.

    Reports reach this (main) process from the workers of a parallel run
    too, so the figures are printed however the suite runs.
    """
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        for name, value in report.user_properties
        if name == FIGURE
    ]
    if lines:
        terminalreporter.section("adversarial figures")
        for line in lines:
            terminalreporter.write_line(line)


CLERK = Actor("clerk", "张伟 Clerk", departments={"shipping"}, roles={"sales"})
CLERK2 = Actor("clerk2", "Second clerk", departments={"engineering"}, roles={"sales"})
ENG = Actor("eng", "李娜 Engineer", departments={"engineering"})
MAT = Actor("mat", "王芳 Warehouse", departments={"materials"})
PRO = Actor("pro", "刘洋 Production", departments={"production"}, roles={"production"})
VP = Actor("vp", "Vice president", roles={"vp"})
OUTSIDER = Actor("nobody", "Visitor")
CUSTOMER = Customer("HK-001", "Hong Kong Trading Ltd", category="important")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def desk(clock: FakeClock, notifier: RecordingNotifier) -> Iterator[Desk]:
    with Desk.open("memory://", clock=clock, plugins=[notifier, ApprovedSubcontractors()]) as d:
        yield d


def receive(desk: Desk, **kw: object) -> str:
    """A new requirement's ref."""
    values: dict[str, object] = {
        "customer": CUSTOMER,
        "description": "冲压支架 10,000 pcs",
        "actor": CLERK,
    }
    values.update(kw)
    return desk.requirements.receive(**values).ref  # type: ignore[arg-type]


def to_evaluating(desk: Desk) -> str:
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    return ref


def sign_all(desk: Desk, ref: str) -> None:
    desk.sign(ref, department="engineering", actor=ENG, opinion="can do")
    desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
    desk.sign(ref, department="production", actor=PRO, opinion="week 12")


def to_accepted(desk: Desk) -> str:
    """A requirement through its review: evaluated, signed by all three, accepted."""
    ref = to_evaluating(desk)
    sign_all(desk, ref)
    desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
    return ref


def to_closed(desk: Desk) -> str:
    """A requirement along the benchmark's whole path (9 audited commands)."""
    ref = to_accepted(desk)
    desk.fire(ref, "start", actor=PRO)
    desk.fire(ref, "complete", actor=PRO, note="shipped")
    desk.fire(ref, "close", actor=CLERK)
    return ref
