"""Schema revision 0004: the summary table is created and filled from the audit trail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from reqmgmt import Actor, Customer, Desk
from reqmgmt.reports import recompute
from reqmgmt.storage import migrate
from reqmgmt.testing import FakeClock

CLERK = Actor("clerk", roles={"sales"})


def test_upgrading_from_0003_backfills_the_summaries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    clock = FakeClock(tick=timedelta(minutes=7))
    with Desk.open(url, clock=clock) as desk:
        for i in range(3):
            ref = desk.requirements.receive(
                customer=Customer(f"C{i}", "C"), description="x", actor=CLERK
            ).ref
            desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
            if i:
                desk.fire(ref, "cancel", actor=CLERK, note="withdrawn")
        expected = desk.report()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as reqmgmt 0.2.0 left it: no summary table
        migrate.downgrade(conn, "0003")
        assert "summary" not in sa.inspect(conn).get_table_names()
    with engine.begin() as conn:
        migrate.upgrade(conn)
    engine.dispose()
    with Desk.open(url, clock=clock) as desk:
        backfilled = desk.report()
        assert backfilled == expected
        full = recompute(desk.store, desk.engines)
        for section in ("counts", "outcomes", "dwell", "timeliness", "returns"):
            assert getattr(backfilled, section) == getattr(full, section), section
        assert [c.count for c in backfilled.outcomes] == [2]
