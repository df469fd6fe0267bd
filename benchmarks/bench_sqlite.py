"""Requirements through their full path on SQLite, against raw sqlite3 doing the same writes.

In one process, on files in a temporary directory with the same pragmas
(WAL, synchronous=FULL, every command its own ``BEGIN IMMEDIATE``):

- reqmgmt: receive, start_evaluation, three sign-offs, accept, start,
  complete, close per requirement (9 audited commands);
- raw sqlite3: per command, read the row, then UPDATE with the version check,
  INSERT the audit row and an outbox row, COMMIT (an INSERT for the first).

Run: ``python benchmarks/bench_sqlite.py [--n 2000]``; ``--smoke`` for a quick
check.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from bench_lifecycle import run_reqmgmt

from reqmgmt import Desk

SCHEMA = """
CREATE TABLE records (ref TEXT PRIMARY KEY, kind TEXT, state TEXT, version INTEGER, doc TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, ref TEXT, version INTEGER, hash TEXT, doc TEXT,
                    UNIQUE (ref, version));
CREATE TABLE outbox (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, ref TEXT, status TEXT, doc TEXT);
"""
STATES = ["received", "evaluating", "evaluating", "evaluating", "evaluating", "accepted",
          "in_progress", "completed", "closed"]  # fmt: skip


def run_raw(path: Path, n: int, synchronous: str) -> int:
    """The same writes with sqlite3 alone: what a hand-written ERP module would do."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.executescript(SCHEMA)
    doc = {"customer": {"id": "HK-001", "name": "Hong Kong customer"}, "description": "x" * 40}
    commands = 0
    for i in range(n):
        ref = f"REQ-{i:06d}"
        prev = ""
        for version, state in enumerate(STATES, start=1):
            con.execute("BEGIN IMMEDIATE")
            body = json.dumps({**doc, "ref": ref, "state": state, "version": version})
            if version == 1:
                con.execute(
                    "INSERT INTO records VALUES (?, 'requirement', ?, 1, ?)", (ref, state, body)
                )
            else:
                con.execute("SELECT doc, version FROM records WHERE ref = ?", (ref,)).fetchone()
                cur = con.execute(
                    "UPDATE records SET state = ?, version = ?, doc = ? "
                    "WHERE ref = ? AND version = ?",
                    (state, version, body, ref, version - 1),
                )
                assert cur.rowcount == 1
            event = json.dumps({"ref": ref, "version": version, "to": state, "prev": prev})
            prev = hashlib.sha256(event.encode()).hexdigest()
            con.execute(
                "INSERT INTO audit (ref, version, hash, doc) VALUES (?, ?, ?, ?)",
                (ref, version, prev, event),
            )
            con.execute(
                "INSERT INTO outbox (key, ref, status, doc) VALUES (?, ?, 'pending', ?)",
                (f"{ref}:{version}:role:sales", ref, event),
            )
            con.execute("COMMIT")
            commands += 1
    con.close()
    return commands


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requirements (default 2,000)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=30)")
    args = parser.parse_args(argv)
    n = 30 if args.smoke else args.n
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'reqmgmt.db'}?synchronous={args.synchronous}"
        with Desk.open(url, autodispatch=False) as desk:
            start = time.perf_counter()
            ours = run_reqmgmt(desk, n)
            t_ours = time.perf_counter() - start
        start = time.perf_counter()
        raw = run_raw(Path(tmp) / "raw.db", n, args.synchronous)
        t_raw = time.perf_counter() - start
    print(f"requirements: {n:,} through the full path, synchronous={args.synchronous}")
    print(f"reqmgmt on SQLite   {ours / t_ours:10,.0f} commands/s  ({t_ours / ours * 1e6:,.0f} µs)")
    print(f"raw sqlite3         {raw / t_raw:10,.0f} commands/s  ({t_raw / raw * 1e6:,.0f} µs)")
    print(f"ratio reqmgmt / raw sqlite3: {t_ours / ours / (t_raw / raw):5.2f}x  (target <= 2.5)")


if __name__ == "__main__":
    main()
