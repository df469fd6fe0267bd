"""The management report at 100,000 and 1,000,000 audit events on SQLite: O(groups).

Builds, for each size, a reqmgmt database (schema from reqmgmt's migrations)
holding that many audit events, created over one year: requirements walking received → evaluating
(three sign-offs) → accepted → in_progress → completed → closed, ten events
each, written straight with sqlite3 (records, audit rows and the summary rows
the commands would have staged, made by ``reqmgmt.summaries.trail_rows``), so
the set-up takes seconds, not the hours a million audited commands would.
The summary rows are compacted as ``reqmgmt compact`` leaves them.  Then
``desk.report()`` is timed (median of ``--rounds``), and the ratio of the
large to the small (target: report at 1M events ≤ 100 ms, 10× the events
≤ 1.5× the time).

Run: ``python benchmarks/bench_reports.py [--events 1000000]`` (the small
size is a tenth); ``--smoke`` for a quick check.  Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from reqmgmt import Desk
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
from reqmgmt.reports import compact
from reqmgmt.storage.sql import SqlStore
from reqmgmt.summaries import trail_rows

PATH = [
    ("receive", None, "received"),
    ("start_evaluation", "received", "evaluating"),
    ("sign", "evaluating", "evaluating"),
    ("sign", "evaluating", "evaluating"),
    ("sign", "evaluating", "evaluating"),
    ("accept", "evaluating", "accepted"),
    ("start", "accepted", "in_progress"),
    ("complete", "in_progress", "completed"),
    ("close", "completed", "closed"),
    ("note", "closed", "closed"),
]
START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
SPAN = 365 * 86_400  # seconds over which the requirements are created


def _text(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")


_ENGINE = BUILTIN_LIFECYCLES["requirement"].build()


Trail = list[tuple[str, str | None, str, datetime]]


def _summary_rows(
    ref: str, created: datetime, trail: Trail, channel: str, customer: str, due: datetime
) -> list[tuple[object, ...]]:
    """The summary rows the commands of this trail would have staged."""
    record = SimpleNamespace(
        RECORD_KIND="requirement", ref=ref, state="closed", channel=channel,
        customer=SimpleNamespace(id=customer, category="general"), created_at=created,
        updated_at=trail[-1][3], due_at=due,
    )  # fmt: skip
    events = [
        SimpleNamespace(event=e, from_state=f, to_state=t, at=at, changes=())
        for e, f, t, at in trail
    ]
    return list(trail_rows(record, events, _ENGINE.final, _ENGINE.lifecycle.initial))


def build(path: Path, events: int) -> int:
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    records = events // len(PATH)
    batch_records, batch_audit, batch_summary = [], [], []
    for i in range(records):
        ref = f"REQ-2026-{i + 1:07d}"
        # A year of business, busier with more events: the days (groups) stay.
        at = START + timedelta(seconds=i * SPAN // records)
        created = at
        trail = []
        for version, (event, frm, to) in enumerate(PATH, start=1):
            if version > 1:  # the creating event is at the record's creation
                at += timedelta(hours=(version * 37 + i) % 29 + 1)
            trail.append((event, frm, to, at))
            batch_audit.append((ref, version, f"{i:064d}", "{}", "requirement", event, frm, to,
                                _text(at)))  # fmt: skip
        channel, customer = ["fax", "email", "phone"][i % 3], f"C{i % 50}"
        due = created + timedelta(days=5)
        batch_summary.extend(_summary_rows(ref, created, trail, channel, customer, due))
        doc = {
            "ref": ref, "state": "closed", "channel": channel,
            "customer": {"id": customer, "name": "C", "category": "general"},
            "due_at": due.isoformat(),
        }  # fmt: skip
        batch_records.append((ref, "requirement", "closed", customer, None, len(PATH),
                              _text(created), _text(at), json.dumps(doc)))  # fmt: skip
        if len(batch_audit) >= 100_000 or i == records - 1:
            con.executemany(
                "INSERT INTO records (ref, kind, state, customer, due_at, version, created_at, "
                "updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch_records,
            )
            con.executemany(
                "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, to_state, "
                "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch_audit,
            )
            con.executemany(
                "INSERT INTO summary (metric, day, kind, a, b, n, amount) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch_summary,
            )
            con.commit()
            batch_records, batch_audit, batch_summary = [], [], []
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return records * len(PATH)


def measure(events: int, rounds: int) -> tuple[int, float, float, int]:
    """Build a database of ``events`` audit events; (events, build s, report s, summary rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.db"
        start = time.perf_counter()
        written = build(path, events)
        with Desk.open(f"sqlite:///{path}") as desk:
            compact(desk.store)  # as the worker leaves it
            t_build = time.perf_counter() - start
            con = sqlite3.connect(path)
            (rows,) = con.execute("SELECT count(*) FROM summary").fetchone()
            con.close()
            desk.report()  # warm: the first query reads the table from disk
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                report = desk.report()
                times.append(time.perf_counter() - start)
    cycle = report.cycle_times[0]
    assert cycle.finished == written // len(PATH), (cycle, written)
    return written, t_build, statistics.median(times), int(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events (large)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (median)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (2,000/20,000 events)")
    args = parser.parse_args(argv)
    large, rounds = (20_000, 1) if args.smoke else (args.events, args.rounds)
    figures = [measure(size, rounds) for size in (large // 10, large)]
    print(f"desk.report() on SQLite from the summary rows (compacted), median of {rounds}:")
    for written, t_build, t_report, rows in figures:
        print(f"  {written:>10,} audit events ({written // len(PATH):,} requirements, "
              f"{rows:,} summary rows): {t_report * 1000:8.1f} ms  "
              f"(built in {t_build:.1f} s)")  # fmt: skip
    ratio = figures[1][2] / figures[0][2]
    print(f"  10x the events: {ratio:.2f}x the time (target <= 1.5x; "
          f"<= 100 ms at 1,000,000 events)")  # fmt: skip
    print(json.dumps({"events": [f[0] for f in figures], "ms": [round(f[2] * 1000, 2)
                      for f in figures], "ratio": round(ratio, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
