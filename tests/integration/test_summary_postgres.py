"""The report's summary rows on PostgreSQL: delta rows, no hot row, compaction loses nothing."""

from __future__ import annotations

import threading
import time

from reqmgmt import Actor, Customer, Desk
from reqmgmt.reports import compact

CLERK = Actor("clerk", roles={"sales"})
ROW = ("count", "2026-03-02", "requirement", "state", "received", 1, 0)


def _sum(desk: Desk) -> int:
    with desk.store.transaction() as tx:
        rows = tx.summary()  # type: ignore[attr-defined]
    # (metric, month, kind, a, b, n, amount): the requirements counted as received
    return sum(r[5] for r in rows if r[0] == "count" and r[3] == "state" and r[4] == "received")


def test_concurrent_commands_never_wait_on_a_summary_row(pg_url: str) -> None:
    """Two open transactions add to the same key; the second commits while the first is open."""
    with Desk.open(pg_url) as desk:
        first_open, second_done = threading.Event(), threading.Event()
        waited: list[float] = []

        def first() -> None:
            with desk.store.transaction() as tx:
                tx.stage_summary([ROW])  # type: ignore[attr-defined]
                first_open.set()
                second_done.wait(10)

        worker = threading.Thread(target=first)
        worker.start()
        assert first_open.wait(10)
        start = time.perf_counter()
        with desk.store.transaction() as tx:
            tx.stage_summary([ROW])  # type: ignore[attr-defined]
        waited.append(time.perf_counter() - start)
        second_done.set()
        worker.join(10)
        # An UPDATE of one counter row would have waited for the first to end (10 s).
        assert waited[0] < 5
        assert _sum(desk) == 2


def test_compaction_keeps_rows_committed_meanwhile(pg_url: str) -> None:
    """Rows of a transaction still open while the worker compacts are summed by the next pass."""
    with Desk.open(pg_url) as desk:
        for _ in range(3):
            desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
        before = desk.report()
        opened, compacted = threading.Event(), threading.Event()

        def late() -> None:
            with desk.store.transaction() as tx:
                tx.stage_summary([ROW])  # type: ignore[attr-defined]
                opened.set()
                compacted.wait(10)

        worker = threading.Thread(target=late)
        worker.start()
        assert opened.wait(10)
        rows = compact(desk.store)
        compacted.set()
        worker.join(10)
        assert rows > 3  # the commands' delta rows, summed
        assert _sum(desk) == 3 + 1
        assert compact(desk.store) >= 2  # the compacted row and the late one
        assert _sum(desk) == 4
        assert desk.report().counts != before.counts
