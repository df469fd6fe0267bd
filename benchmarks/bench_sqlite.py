"""Requirements through their full path on SQLite, against raw sqlite3 doing the same writes.

In one process, on files in a temporary directory with the same pragmas
(WAL, synchronous=FULL, every command its own ``BEGIN IMMEDIATE``):

- reqmgmt: receive, start_evaluation, three sign-offs, accept, start,
  complete, close per requirement (9 audited commands);
- raw sqlite3: per command, read the row, then UPDATE with the version check,
  INSERT the audit row and an outbox row, COMMIT (an INSERT for the first);
- raw sqlite3, the same rows: as above, but every row reqmgmt writes: the
  audit row with its report columns, the outbox rows each command queues
  (:data:`OUTBOX_ROWS`: 18 per requirement, not 9) and the report's summary
  rows (:data:`SUMMARY_ROWS`, issue 15.3; into ``summary_delta`` where it
  exists, as reqmgmt's commands since revision 0005), each table's rows of a command in
  one ``executemany`` as reqmgmt does.  The run checks that reqmgmt wrote
  exactly these numbers of rows.

Run: ``python benchmarks/bench_sqlite.py [--n 2000]``; ``--smoke`` for a quick
check.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_lifecycle import run_reqmgmt

from reqmgmt import Actor, Customer, Desk
from reqmgmt.storage.sql import SqlStore

STATES = ["received", "evaluating", "evaluating", "evaluating", "evaluating", "accepted",
          "in_progress", "completed", "closed"]  # fmt: skip
EVENTS = ["receive", "start_evaluation", "sign", "sign", "sign", "accept", "start", "complete",
          "close"]  # fmt: skip
#: Outbox rows each of the 9 commands queues (receive: the clerk; start_evaluation: the three
#: departments asked to sign; accept: the countersign departments, the VP and the customer; ...).
OUTBOX_ROWS = [1, 3, 0, 0, 0, 13, 0, 1, 0]
#: Summary rows each command stages: receive 3 counts; a state change a dwell row and two
#: counts (start_evaluation also "first"); a sign a dwell row; close also outcome, cycle, ontime.
SUMMARY_ROWS = [3, 4, 1, 1, 1, 3, 3, 3, 6]


def doc_sizes(path: Path) -> dict[str, int]:
    """Average JSON document length per table, so the baseline writes as many bytes."""
    with sqlite3.connect(path) as con:
        return {
            table: int(con.execute(f"SELECT avg(length(doc)) FROM {table}").fetchone()[0])
            for table in ("records", "audit", "outbox")
        }


def _padded(doc: dict[str, object], size: int) -> str:
    text = json.dumps(doc)
    return json.dumps({**doc, "pad": "x" * max(0, size - len(text) - 10)})


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table of a reqmgmt run (to check :data:`OUTBOX_ROWS` and :data:`SUMMARY_ROWS`)."""
    with sqlite3.connect(path) as con:
        found = {
            table: int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("records", "audit", "outbox", "summary")
        }
        if _summary_table(con) == "summary_delta":  # revision 0005: commands write there
            found["summary"] += int(con.execute("SELECT count(*) FROM summary_delta").fetchone()[0])
        return found


def _summary_table(con: sqlite3.Connection) -> str:
    """Where commands write their summary rows: ``summary_delta`` (no index) since 0005."""
    found = con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'summary_delta'"
    ).fetchone()
    return "summary" if found is None else "summary_delta"


def check_same_rows(path: Path, n: int) -> None:
    """reqmgmt wrote, for ``n`` requirements, the rows the same-rows baseline writes."""
    found = row_counts(path)
    expected = {"records": n, "audit": 9 * n, "outbox": sum(OUTBOX_ROWS) * n,
                "summary": sum(SUMMARY_ROWS) * n}  # fmt: skip
    if found != expected:
        raise SystemExit(f"reqmgmt wrote {found}, the raw baseline writes {expected}: update "
                         "OUTBOX_ROWS / SUMMARY_ROWS")  # fmt: skip


def run_raw(
    path: Path, n: int, synchronous: str, sizes: dict[str, int], *, same_rows: bool = False
) -> int:
    """The same writes with sqlite3 alone: what a hand-written ERP module would do.

    ``same_rows``: also the outbox and summary rows reqmgmt writes and the
    audit row's report columns (see the module docstring).
    """
    # The same tables and indexes as reqmgmt's (its migrations create them),
    # so both write the same pages; only the code in between differs.
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    table = _summary_table(con)  # where reqmgmt's commands write them
    stamp = "2026-03-02T09:00:00.000000"
    doc = {"customer": {"id": "HK-001", "name": "Hong Kong customer"}, "description": "x" * 40}
    commands = 0
    for i in range(n):
        ref = f"REQ-{i:06d}"
        prev = ""
        for version, state in enumerate(STATES, start=1):
            con.execute("BEGIN IMMEDIATE")
            body = _padded(
                {**doc, "ref": ref, "state": state, "version": version}, sizes["records"]
            )
            if version == 1:
                con.execute(
                    "INSERT INTO records (ref, kind, state, customer, due_at, version, "
                    "created_at, updated_at, doc) VALUES (?, 'requirement', ?, 'HK-001', ?, 1, "
                    "?, ?, ?)",
                    (ref, state, stamp, stamp, stamp, body),
                )
            else:
                con.execute("SELECT doc, version FROM records WHERE ref = ?", (ref,)).fetchone()
                cur = con.execute(
                    "UPDATE records SET kind = 'requirement', state = ?, customer = 'HK-001', "
                    "due_at = ?, version = ?, created_at = ?, updated_at = ?, doc = ? "
                    "WHERE ref = ? AND version = ?",
                    (state, stamp, version, stamp, stamp, body, ref, version - 1),
                )
                assert cur.rowcount == 1
            event = _padded(
                {"ref": ref, "version": version, "to": state, "prev": prev}, sizes["audit"]
            )
            prev = hashlib.sha256(event.encode()).hexdigest()
            if not same_rows:
                con.execute(
                    "INSERT INTO audit (ref, version, hash, doc) VALUES (?, ?, ?, ?)",
                    (ref, version, prev, event),
                )
                con.execute(
                    "INSERT INTO outbox (key, ref, status, attempts, doc) "
                    "VALUES (?, ?, 'pending', 0, ?)",
                    (f"{ref}:{version}:role:sales", ref, event[: sizes["outbox"]]),
                )
            else:
                _same_rows(con, ref, version, prev, event, stamp, sizes, table)
            con.execute("COMMIT")
            commands += 1
    con.close()
    return commands


def _same_rows(
    con: sqlite3.Connection,
    ref: str,
    version: int,
    digest: str,
    event: str,
    stamp: str,
    sizes: dict[str, int],
    table: str,
) -> None:
    """A command's audit, outbox and summary rows as reqmgmt writes them (summary rows
    into ``table``)."""
    step = version - 1
    con.execute(
        "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, to_state, at) "
        "VALUES (?, ?, ?, ?, 'requirement', ?, ?, ?, ?)",
        (ref, version, digest, event, EVENTS[step], STATES[step - 1] if step else None,
         STATES[step], stamp),
    )  # fmt: skip
    if OUTBOX_ROWS[step]:
        con.executemany(
            "INSERT INTO outbox (key, ref, status, attempts, doc) VALUES (?, ?, 'pending', 0, ?)",
            [(f"{ref}:{version}:department:{k}", ref, event[: sizes["outbox"]])
             for k in range(OUTBOX_ROWS[step])],
        )  # fmt: skip
    day = stamp[:10]
    con.executemany(
        f"INSERT INTO {table} (metric, day, kind, a, b, n, amount) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [("count" if k else "dwell", day, "requirement", "state", STATES[step], 1, 1000 * k)
         for k in range(SUMMARY_ROWS[step])],
    )  # fmt: skip


def import_rows(n: int) -> list[dict[str, object]]:
    received = datetime(2025, 12, 1, tzinfo=UTC)
    customer = Customer("HK-001", "Hong Kong customer")
    return [
        {"customer": customer, "description": f"legacy order {i}", "channel": "email",
         "received_at": received}
        for i in range(n)
    ]  # fmt: skip


def run_import(desk: Desk, n: int, batch: int) -> int:
    rows = import_rows(n)
    clerk = Actor("clerk", roles={"sales"})
    return len(desk.create_many("requirement", rows, actor=clerk, batch_size=batch))


#: Summary rows an imported requirement stages (counts by state, channel, category).
IMPORT_SUMMARY_ROWS = 3


def check_import_rows(path: Path, n: int) -> None:
    """reqmgmt's import of ``n`` rows wrote the rows ``run_raw_import(same_rows=True)`` writes."""
    found = row_counts(path)
    expected = {"records": n, "audit": n, "outbox": n, "summary": IMPORT_SUMMARY_ROWS * n}
    if found != expected:
        raise SystemExit(f"reqmgmt's import wrote {found}, the raw baseline writes {expected}: "
                         "update IMPORT_SUMMARY_ROWS")  # fmt: skip


def run_raw_import(
    path: Path,
    n: int,
    batch: int,
    synchronous: str,
    sizes: dict[str, int],
    *,
    same_rows: bool = False,
) -> int:
    """The same rows with sqlite3 alone: per batch one transaction, executemany per table.

    ``same_rows``: also what reqmgmt's import writes beyond these: the audit
    row's report columns, the record's due date and the summary delta rows
    (:data:`IMPORT_SUMMARY_ROWS` a record), each table's rows in one ``executemany``.
    """
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    stamp = "2026-03-02T09:00:00.000000"
    for first in range(0, n, batch):
        refs = [f"REQ-2026-{i + 1:06d}" for i in range(first, min(n, first + batch))]
        con.execute("BEGIN IMMEDIATE")
        records, events, notes = [], [], []
        for ref in refs:
            body = _padded({"ref": ref, "state": "received"}, sizes["records"])
            event = _padded({"ref": ref, "version": 1}, sizes["audit"])
            digest = hashlib.sha256(event.encode()).hexdigest()
            records.append((ref, body, stamp, stamp))
            events.append((ref, digest, event))
            notes.append((f"{ref}:1:role:sales", ref, event[: sizes["outbox"]]))
        if same_rows:
            _same_import_rows(con, records, events, stamp)
        else:
            con.executemany(
                "INSERT INTO records (ref, kind, state, customer, version, created_at, "
                "updated_at, doc) VALUES (?, 'requirement', 'received', 'HK-001', 1, ?, ?, ?)",
                [(ref, c, u, body) for ref, body, c, u in records],
            )
            con.executemany(
                "INSERT INTO audit (ref, version, hash, doc) VALUES (?, 1, ?, ?)", events
            )
        con.executemany(
            "INSERT INTO outbox (key, ref, status, attempts, doc) VALUES (?, ?, 'pending', 0, ?)",
            notes,
        )
        con.execute(
            "INSERT INTO sequences (name, value) VALUES ('requirement:2026', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (first + len(refs),),
        )
        con.execute("COMMIT")
    con.close()
    return n


def _same_import_rows(
    con: sqlite3.Connection,
    records: list[tuple[str, str, str, str]],
    events: list[tuple[str, str, str]],
    stamp: str,
) -> None:
    """An import batch's records, audit rows and summary rows as reqmgmt writes them."""
    con.executemany(
        "INSERT INTO records (ref, kind, state, customer, due_at, version, created_at, "
        "updated_at, doc) VALUES (?, 'requirement', 'received', 'HK-001', ?, 1, ?, ?, ?)",
        [(ref, stamp, c, u, body) for ref, body, c, u in records],
    )
    con.executemany(
        "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, to_state, at) "
        "VALUES (?, 1, ?, ?, 'requirement', 'receive', NULL, 'received', ?)",
        [(*e, stamp) for e in events],
    )
    day = stamp[:10]
    con.executemany(
        "INSERT INTO summary_delta (metric, day, kind, a, b, n, amount) "
        "VALUES ('count', ?, 'requirement', ?, ?, 1, 0)",
        [(day, a, b) for _ in records
         for a, b in (("state", "received"), ("channel", "email"), ("category", "general"))],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requirements (default 2,000)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--imports", type=int, default=20_000, help="rows imported")
    parser.add_argument("--batch", type=int, default=1000, help="rows per import transaction")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=30, 300 rows)")
    args = parser.parse_args(argv)
    n, imports, rounds = (30, 300, 1) if args.smoke else (args.n, args.imports, args.rounds)
    sync = args.synchronous
    t_ours, t_raw, t_same, t_imp, t_raw_imp, t_same_imp = [], [], [], [], [], []
    for _ in range(rounds):  # interleaved, each on fresh files: the machine's noise hits both
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'reqmgmt.db'}?synchronous={sync}"
            with Desk.open(url, autodispatch=False) as desk:
                start = time.perf_counter()
                ours = run_reqmgmt(desk, n)
                t_ours.append((time.perf_counter() - start) / ours)
            sizes = doc_sizes(Path(tmp) / "reqmgmt.db")
            check_same_rows(Path(tmp) / "reqmgmt.db", n)
            start = time.perf_counter()
            raw = run_raw(Path(tmp) / "raw.db", n, sync, sizes)
            t_raw.append((time.perf_counter() - start) / raw)
            start = time.perf_counter()
            raw = run_raw(Path(tmp) / "same.db", n, sync, sizes, same_rows=True)
            t_same.append((time.perf_counter() - start) / raw)
            with Desk.open(f"sqlite:///{Path(tmp) / 'import.db'}?synchronous={sync}",
                           autodispatch=False) as desk:  # fmt: skip
                start = time.perf_counter()
                done = run_import(desk, imports, args.batch)
                t_imp.append((time.perf_counter() - start) / done)
            sizes = doc_sizes(Path(tmp) / "import.db")  # a creation lists every field
            check_import_rows(Path(tmp) / "import.db", imports)
            start = time.perf_counter()
            done = run_raw_import(Path(tmp) / "raw_import.db", imports, args.batch, sync, sizes)
            t_raw_imp.append((time.perf_counter() - start) / done)
            start = time.perf_counter()
            done = run_raw_import(
                Path(tmp) / "same_import.db", imports, args.batch, sync, sizes, same_rows=True
            )
            t_same_imp.append((time.perf_counter() - start) / done)
    ours_t, raw_t = statistics.median(t_ours), statistics.median(t_raw)
    same_t = statistics.median(t_same)
    imp_t, raw_imp_t = statistics.median(t_imp), statistics.median(t_raw_imp)
    same_imp_t = statistics.median(t_same_imp)
    print(f"SQLite, synchronous={sync}, median of {rounds} interleaved round(s)")
    print(f"commands: {n:,} requirements x 9 audited commands, each its own transaction")
    print(f"  reqmgmt       {1 / ours_t:10,.0f} commands/s  ({ours_t * 1e6:,.0f} µs)")
    print(f"  raw sqlite3   {1 / raw_t:10,.0f} commands/s  ({raw_t * 1e6:,.0f} µs)")
    print(f"  raw, same rows{1 / same_t:10,.0f} commands/s  ({same_t * 1e6:,.0f} µs)")
    print(f"  ratio reqmgmt / raw sqlite3: {ours_t / raw_t:5.2f}x  (one outbox row, no summary)")
    print(f"  ratio reqmgmt / raw, same rows: {ours_t / same_t:5.2f}x  (target <= 2.0)")
    print(f"import: {imports:,} requirements, {args.batch:,} per transaction")
    print(f"  reqmgmt       {1 / imp_t:10,.0f} records/s  ({imp_t * 1e6:,.0f} µs)")
    print(f"  raw sqlite3   {1 / raw_imp_t:10,.0f} records/s  ({raw_imp_t * 1e6:,.0f} µs)")
    print(f"  raw, same rows{1 / same_imp_t:10,.0f} records/s  ({same_imp_t * 1e6:,.0f} µs)")
    print(f"  ratio reqmgmt / raw sqlite3: {imp_t / raw_imp_t:5.2f}x  (no summary rows)")
    print(f"  ratio reqmgmt / raw, same rows: {imp_t / same_imp_t:5.2f}x  (target <= 2.0)")


if __name__ == "__main__":
    main()
