"""One reminder pass over many open requirements on SQLite.

Imports ``--n`` open requirements (default 100,000) with deadlines spread
over the next 100 working days, then times one ``desk.run_reminders`` pass,
which finds the 1-2 % near a deadline, and prints the
query plan of the pass's query (it must search the due-date index, not scan
the table) and, as a baseline in the same run, the bare indexed SELECT of the
same rows with sqlite3.

Run: ``python benchmarks/bench_reminders.py [--n 100000]``; ``--smoke`` for a
quick check.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reqmgmt import Actor, Customer, Desk
from reqmgmt.testing import FakeClock

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="open requirements")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=2,000)")
    args = parser.parse_args(argv)
    n = 2_000 if args.smoke else args.n
    clerk = Actor("clerk", roles={"sales"})
    customer = Customer("HK-001", "Hong Kong customer")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "remind.db"
        url = f"sqlite:///{path}?synchronous=NORMAL"
        # A backlog: deadlines spread over 100 working days from now; the
        # host measures no first response (that step would put every record
        # in the pass at once), so a pass reads only what is near.
        rules = {"tables": {"step_deadline": {"remove": ["requirement-first-response"]}}}
        clock = FakeClock(START, tick=timedelta(0))
        with Desk.open(url, clock=clock, autodispatch=False, rules=rules) as desk:
            cal = desk.calendar
            rows = [
                {
                    "customer": customer,
                    "description": f"order {i}",
                    "received_at": START,
                    "due_at": cal.add(START, timedelta(hours=800 * i / n)),
                }
                for i in range(n)
            ]
            start = time.perf_counter()
            desk.create_many("requirement", rows, actor=clerk, batch_size=2000)
            imported = time.perf_counter() - start
            now = START
            start = time.perf_counter()
            result = desk.run_reminders(now)
            t_pass = time.perf_counter() - start
            horizon = desk.calendar.add(now, timedelta(hours=16))
        con = sqlite3.connect(path)
        horizon_text = horizon.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        query = "SELECT kind, doc FROM records WHERE due_at < ? ORDER BY due_at, ref"
        plan = con.execute("EXPLAIN QUERY PLAN " + query, (horizon_text,)).fetchall()
        start = time.perf_counter()
        bare = len(con.execute(query, (horizon_text,)).fetchall())
        t_bare = time.perf_counter() - start
        con.close()
    print(f"open requirements: {n:,} (imported in {imported:.1f} s)")
    print(f"reminder pass: {t_pass * 1000:,.0f} ms; checked {result.checked:,}, "
          f"queued {result.queued:,}")  # fmt: skip
    print(f"bare indexed SELECT of {bare:,} near rows with sqlite3: {t_bare * 1000:,.1f} ms")
    print("query plan: " + "; ".join(str(row[-1]) for row in plan))


if __name__ == "__main__":
    main()
