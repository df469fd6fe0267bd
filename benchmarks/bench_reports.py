"""A report over 1,000,000 audit events on SQLite, against its bare SQL.

Builds a reqmgmt database (schema from reqmgmt's migrations) holding
``--events`` audit events: requirements walking received → evaluating (three
sign-offs) → accepted → in_progress → completed → closed, ten events each,
written straight with sqlite3 so the set-up takes seconds, not the hours a
million audited commands would.  Then, in the same process, interleaved:

- ``desk.report()``: the report as a host gets it (SQLAlchemy, Python
  assembly, percentiles);
- the bare SQL: the same statements (``reqmgmt.reports.report_sql``) run
  with sqlite3 and fetched, nothing else.

Run: ``python benchmarks/bench_reports.py [--events 1000000]``; ``--smoke``
for a quick check.  Figures are printed, never asserted.
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

from reqmgmt import Desk
from reqmgmt.reports import report_sql
from reqmgmt.storage.sql import SqlStore

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


def _text(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")


def build(path: Path, events: int) -> int:
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    records = events // len(PATH)
    batch_records, batch_audit = [], []
    for i in range(records):
        ref = f"REQ-2026-{i + 1:07d}"
        at = START + timedelta(minutes=7 * i)
        created = at
        for version, (event, frm, to) in enumerate(PATH, start=1):
            at += timedelta(hours=(version * 37 + i) % 29 + 1)
            batch_audit.append((ref, version, f"{i:064d}", "{}", "requirement", event, frm, to,
                                _text(at)))  # fmt: skip
        doc = {
            "ref": ref, "state": "closed", "channel": ["fax", "email", "phone"][i % 3],
            "customer": {"id": f"C{i % 50}", "name": "C", "category": "general"},
            "due_at": (created + timedelta(days=5)).isoformat(),
        }  # fmt: skip
        batch_records.append((ref, "requirement", "closed", f"C{i % 50}", None, len(PATH),
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
            con.commit()
            batch_records, batch_audit = [], []
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return records * len(PATH)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (20,000 events)")
    args = parser.parse_args(argv)
    events, rounds = (20_000, 1) if args.smoke else (args.events, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.db"
        start = time.perf_counter()
        written = build(path, events)
        t_build = time.perf_counter() - start
        ours, bare = [], []
        with Desk.open(f"sqlite:///{path}") as desk:
            statements, params = report_sql(desk, None, None)
            for _ in range(rounds):
                start = time.perf_counter()
                report = desk.report()
                ours.append(time.perf_counter() - start)
                con = sqlite3.connect(path)
                start = time.perf_counter()
                for statement in statements.values():
                    con.execute(statement, params).fetchall()
                bare.append(time.perf_counter() - start)
                con.close()
    t_ours, t_bare = statistics.median(ours), statistics.median(bare)
    cycle = report.cycle_times[0]
    print(f"audit events: {written:,} ({written // len(PATH):,} requirements), "
          f"built in {t_build:.1f} s; median of {rounds} interleaved round(s)")  # fmt: skip
    print(f"  desk.report()          {t_ours:8.3f} s")
    print(f"  bare SQL with sqlite3  {t_bare:8.3f} s")
    print(f"  ratio report / bare SQL: {t_ours / t_bare:5.2f}x  (target <= 3)")
    print(f"  (median cycle {cycle.median_hours:.1f} h, p90 {cycle.p90_hours:.1f} h over "
          f"{cycle.finished:,} closed requirements)")  # fmt: skip


if __name__ == "__main__":
    main()
