"""The report from the summary rows equals the full computation from the audit trail.

Random (and hostile) commands, creations, clock jumps, reminder and dispatch
passes (the adversarial state machine of test_stateful.py), on memory,
SQLite and PostgreSQL.  After every step, for open and whole-day windows:
``desk.report()`` (summary rows, O(groups)) equals ``reports.recompute()``
(every record and audit event, O(events)) — exactly, but for cycle and
first-response percentiles, which the summaries keep in buckets of
``summaries.BUCKET_HOURS`` (within half a bucket), and dwell hours summed
in another order (within 0.001 h).  Compacting the delta rows and
rebuilding them from the audit trail change nothing either.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from reqmgmt import summaries
from reqmgmt.model import EARLIEST, LATEST
from reqmgmt.reports import Report, compact, rebuild, recompute
from tests.adversarial.conftest import Stores
from tests.adversarial.test_stateful import Adversary

HALF_BUCKET = summaries.BUCKET_HOURS / 2 + 1e-9


def _close(fast: Any, full: Any, where: str, tolerance: float) -> None:
    if isinstance(full, float) and isinstance(fast, float | int):
        assert math.isclose(fast, full, abs_tol=tolerance), f"{where}: {fast} != {full}"
    elif isinstance(full, dict):
        assert isinstance(fast, dict), f"{where}: {fast} != {full}"
        assert fast.keys() == full.keys(), f"{where}: {fast} != {full}"
        for key in full:
            _close(fast[key], full[key], f"{where}.{key}", tolerance)
    elif isinstance(full, list | tuple):
        assert isinstance(fast, list | tuple), f"{where}: {fast} != {full}"
        assert len(fast) == len(full), f"{where}: {fast} != {full}"
        for i, (a, b) in enumerate(zip(fast, full, strict=True)):
            _close(a, b, f"{where}[{i}]", tolerance)
    else:
        assert fast == full, f"{where}: {fast!r} != {full!r}"


def same_figures(fast: Report, full: Report) -> None:
    """``fast`` (summaries) against ``full`` (the audit trail), within the documented bounds."""
    assert full.failed == (), f"the reference could not read {full.failed}"
    a, b = fast.to_data(), full.to_data()
    for section, tolerance in (
        ("cycle_times", HALF_BUCKET),
        ("first_response", HALF_BUCKET),
        ("dwell", 1e-3),
    ):
        _close(a.pop(section), b.pop(section), section, tolerance)
    assert a == b


def windows(now: datetime) -> list[tuple[datetime | None, datetime | None]]:
    """Open, and whole UTC days around ``now`` (the summaries answer those)."""
    day = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    if not EARLIEST + timedelta(days=3) <= day < LATEST:  # the clock jumped to an edge
        return [(None, None)]
    return [(None, None), (day, None), (None, day), (day - timedelta(days=3), day)]


class SummaryAdversary(Adversary):
    @invariant()
    def summaries_match(self) -> None:
        desk = self.desk
        for since, until in windows(self.clock.now):
            fast = desk.report(since=since, until=until)
            full = recompute(desk.store, desk.engines, since, until)
            same_figures(fast, full)

    @rule()
    def compact_summaries(self) -> None:
        """The worker's pass: delta rows summed (the report must not move)."""
        before = self.desk.report()
        compact(self.desk.store)
        same_figures(self.desk.report(), before)

    @rule()
    def rebuild_summaries(self) -> None:
        """`reqmgmt report --rebuild`: the rows made again from the audit trail."""
        assert rebuild(self.desk.store, self.desk.engines) == []
        self.summaries_match()


#: Split like test_stateful's shards, so a parallel run spreads this (the suite's
#: slowest test) over its workers instead of finishing on it.
SHARDS = 2


def summary_examples(backend: str) -> int:
    """Examples per shard: every step recomputes the whole report from the audit trail.

    Memory and SQLite run half the profile's examples in all (ci: 100 x 50 steps);
    PostgreSQL a quarter (ci: 50 x 50 steps), as its SQL is SQLite's but for the
    dialect and costs twice the time a step (it took 233 s of a 14-minute run at 100).
    """
    share = 4 if backend == "postgresql" else 2
    return -(-settings().max_examples // (share * SHARDS))


@pytest.mark.parametrize("shard", range(SHARDS))
def test_the_summary_report_equals_the_full_computation(stores: Stores, shard: int) -> None:
    machine = type("SummaryAdversary", (SummaryAdversary,), {"stores": stores})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=summary_examples(stores.backend),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
