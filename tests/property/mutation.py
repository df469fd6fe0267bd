"""Run a state machine over a deliberately broken lifecycle until an invariant fails."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test


def run_broken(machine: type[RuleBasedStateMachine], *, examples: int, steps: int) -> None:
    """Generate runs only (finding one failure is enough; shrinking it is slow).

    Derandomized: the search draws the same runs every time, so a test that
    expects it to find the broken rule passes or fails the same way on every
    machine (a random search found some breaks in only most runs).
    """
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            phases=[Phase.generate],
        ),
    )
