"""Run a state machine over a deliberately broken lifecycle until an invariant fails."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test


def run_broken(machine: type[RuleBasedStateMachine], *, examples: int, steps: int) -> None:
    """Generate runs only (finding one failure is enough; shrinking it is slow)."""
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            phases=[Phase.generate],
        ),
    )
