"""Requirements through their full path on PostgreSQL, against raw psycopg doing the same writes.

The PostgreSQL counterpart of ``bench_sqlite.py``: in one process, each side
on a fresh database with reqmgmt's schema (its migrations create both):

- commands: receive, start_evaluation, three sign-offs, accept, start,
  complete, close per requirement, each its own transaction; raw psycopg per
  command reads the row, UPDATEs it with the version check, INSERTs the audit
  row and an outbox row, COMMITs; and, "the same writes" of issue 15.4, the
  same rows reqmgmt writes (``run_raw(same_rows=True)``, as
  ``bench_sqlite.run_raw``: the audit row's report columns, the outbox rows
  each command queues, the summary delta rows, each table's rows of a
  command in one ``executemany``);
- import: ``desk.create_many`` against ``executemany`` per table, one
  transaction per batch; and against the same rows reqmgmt's import writes
  (``run_raw_import(same_rows=True)``: due dates, the audit row's report
  columns, summary delta rows, the numbering sequence's row).

Run: ``python benchmarks/bench_postgres.py --url postgresql+psycopg://...``
(or set ``REQMGMT_BENCH_POSTGRES``; the user must be allowed to create
databases); ``--smoke`` for a quick check.  Without a URL it says so and
exits 0.  Figures are printed, never asserted.  ``--only WORKLOAD --n N``
runs one workload and prints how many commands (rows) it ran, for
``benchmarks/instructions.sh --postgres URL`` (the client's instructions
under valgrind; the server's work is not counted).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from bench_lifecycle import run_reqmgmt
from bench_sqlite import EVENTS, OUTBOX_ROWS, SUMMARY_ROWS, _padded

from reqmgmt import Actor, Customer, Desk
from reqmgmt.storage.sql import SqlStore

STATES = ["received", "evaluating", "evaluating", "evaluating", "evaluating", "accepted",
          "in_progress", "completed", "closed"]  # fmt: skip
STAMP = "2026-03-02T09:00:00.000000"


@contextmanager
def fresh_database(base: str) -> Iterator[str]:
    """A new empty database on the server of ``base``, dropped afterwards."""
    name = f"reqmgmt_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        SqlStore(url).close()  # reqmgmt's schema
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def _connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    u = sa.engine.make_url(url)
    return psycopg.connect(
        dbname=u.database, user=u.username, password=u.password, host=u.host or
        u.query.get("host"), port=u.port,
    )  # fmt: skip


def doc_sizes(url: str) -> dict[str, int]:
    """Average JSON document length per table of a reqmgmt run (as bench_sqlite.doc_sizes)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: int(conn.exec_driver_sql(f"SELECT avg(length(doc)) FROM {table}").scalar())
                for table in ("records", "audit", "outbox")
            }
    finally:
        engine.dispose()


#: Document sizes of the raw baseline without ``same_rows`` (as before issue 15.4's third pass).
SIZES = {"records": 1100, "audit": 700, "outbox": 400}


def run_raw(
    url: str, n: int, *, same_rows: bool = False, sizes: dict[str, int] | None = None
) -> int:
    """Raw psycopg; ``same_rows``: every row reqmgmt writes, every column of the
    record, documents of ``sizes`` (see the module docstring)."""
    sizes = sizes or SIZES
    con = _connect(url)
    commands = 0
    for i in range(n):
        ref = f"REQ-{i:06d}"
        prev = ""
        for version, state in enumerate(STATES, start=1):
            with con.transaction():
                body = _padded({"ref": ref, "state": state, "version": version}, sizes["records"])
                if version == 1:
                    con.execute(
                        "INSERT INTO records (ref, kind, state, customer, due_at, version, "
                        "created_at, updated_at, doc) VALUES (%s, 'requirement', %s, 'HK-001', "
                        "%s, 1, %s, %s, %s)",
                        (ref, state, STAMP, STAMP, STAMP, body),
                    )
                else:
                    con.execute(
                        "SELECT doc, version FROM records WHERE ref = %s", (ref,)
                    ).fetchone()
                    if same_rows:  # every column, as reqmgmt's UPDATE
                        cur = con.execute(
                            "UPDATE records SET kind = 'requirement', state = %s, "
                            "customer = 'HK-001', due_at = %s, version = %s, created_at = %s, "
                            "updated_at = %s, doc = %s WHERE ref = %s AND version = %s",
                            (state, STAMP, version, STAMP, STAMP, body, ref, version - 1),
                        )
                    else:
                        cur = con.execute(
                            "UPDATE records SET state = %s, version = %s, updated_at = %s, "
                            "doc = %s WHERE ref = %s AND version = %s",
                            (state, version, STAMP, body, ref, version - 1),
                        )
                    assert cur.rowcount == 1
                event = _padded(
                    {"ref": ref, "version": version, "to": state, "prev": prev}, sizes["audit"]
                )
                prev = hashlib.sha256(event.encode()).hexdigest()
                if same_rows:
                    _same_rows(con, ref, version, prev, event, sizes["outbox"])
                    commands += 1
                    continue
                con.execute(
                    "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, "
                    "to_state, at) VALUES (%s, %s, %s, %s, 'requirement', 'e', NULL, %s, %s)",
                    (ref, version, prev, event, state, STAMP),
                )
                con.execute(
                    "INSERT INTO outbox (key, ref, status, attempts, doc) "
                    "VALUES (%s, %s, 'pending', 0, %s)",
                    (f"{ref}:{version}:role:sales", ref, event[:400]),
                )
            commands += 1
    con.close()
    return commands


def _same_rows(con, ref: str, version: int, digest: str, event: str, outbox: int) -> None:  # type: ignore[no-untyped-def]
    """A command's audit, outbox and summary delta rows as reqmgmt writes them."""
    step = version - 1
    con.execute(
        "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, to_state, at) "
        "VALUES (%s, %s, %s, %s, 'requirement', %s, %s, %s, %s)",
        (ref, version, digest, event, EVENTS[step], STATES[step - 1] if step else None,
         STATES[step], STAMP),
    )  # fmt: skip
    with con.cursor() as cur:
        if OUTBOX_ROWS[step]:
            cur.executemany(
                "INSERT INTO outbox (key, ref, status, attempts, doc) "
                "VALUES (%s, %s, 'pending', 0, %s)",
                [(f"{ref}:{version}:department:{k}", ref, event[:outbox])
                 for k in range(OUTBOX_ROWS[step])],
            )  # fmt: skip
        cur.executemany(
            "INSERT INTO summary_delta (metric, day, kind, a, b, n, amount) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [("count" if k else "dwell", STAMP[:10], "requirement", "state", STATES[step], 1,
              1000 * k) for k in range(SUMMARY_ROWS[step])],
        )  # fmt: skip


def run_import(url: str, n: int, batch: int) -> int:
    clerk = Actor("clerk", roles={"sales"})
    customer = Customer("HK-001", "Hong Kong customer")
    received = datetime(2025, 12, 1, tzinfo=UTC)
    rows = [
        {"customer": customer, "description": f"legacy order {i}", "channel": "email",
         "received_at": received}
        for i in range(n)
    ]  # fmt: skip
    with Desk.open(url, autodispatch=False) as desk:
        return len(desk.create_many("requirement", rows, actor=clerk, batch_size=batch))


def run_raw_import(
    url: str, n: int, batch: int, *, same_rows: bool = False, sizes: dict[str, int] | None = None
) -> int:
    """Raw psycopg: per batch one transaction, ``executemany`` per table.

    ``same_rows``: also what reqmgmt's import writes beyond these (as
    ``bench_sqlite.run_raw_import(same_rows=True)``): the record's due date, the
    audit row's report columns, the summary delta rows (three a record) and the
    numbering sequence's row, with documents of ``sizes`` (those of a reqmgmt import).
    """
    sizes = sizes or {"records": 1100, "audit": 2000, "outbox": 400}
    con = _connect(url)
    for first in range(0, n, batch):
        refs = [f"REQ-2026-{i + 1:06d}" for i in range(first, min(n, first + batch))]
        with con.transaction(), con.cursor() as cur:
            bodies = [(ref, _padded({"ref": ref}, sizes["records"])) for ref in refs]
            events = [(ref, _padded({"ref": ref, "version": 1}, sizes["audit"])) for ref in refs]
            if same_rows:
                cur.executemany(
                    "INSERT INTO records (ref, kind, state, customer, due_at, version, "
                    "created_at, updated_at, doc) VALUES (%s, 'requirement', 'received', "
                    "'HK-001', %s, 1, %s, %s, %s)",
                    [(ref, STAMP, STAMP, STAMP, body) for ref, body in bodies],
                )
            else:
                cur.executemany(
                    "INSERT INTO records (ref, kind, state, customer, version, created_at, "
                    "updated_at, doc) VALUES (%s, 'requirement', 'received', 'HK-001', 1, "
                    "%s, %s, %s)",
                    [(ref, STAMP, STAMP, body) for ref, body in bodies],
                )
            cur.executemany(
                "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, to_state, "
                "at) VALUES (%s, 1, %s, %s, 'requirement', 'receive', NULL, 'received', %s)",
                [(ref, hashlib.sha256(e.encode()).hexdigest(), e, STAMP) for ref, e in events],
            )
            cur.executemany(
                "INSERT INTO outbox (key, ref, status, attempts, doc) "
                "VALUES (%s, %s, 'pending', 0, %s)",
                [(f"{ref}:1:role:sales", ref, e[: sizes["outbox"]]) for ref, e in events],
            )
            if same_rows:
                cur.executemany(
                    "INSERT INTO summary_delta (metric, day, kind, a, b, n, amount) "
                    "VALUES ('count', %s, 'requirement', %s, %s, 1, 0)",
                    [(STAMP[:10], a, b) for _ in refs
                     for a, b in (("state", "received"), ("channel", "email"),
                                  ("category", "general"))],
                )  # fmt: skip
                cur.execute(
                    "INSERT INTO sequences (name, value) VALUES ('requirement:2026', %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (first + len(refs),),
                )
    con.close()
    return n


def import_sizes(base: str, batch: int) -> dict[str, int]:
    """Document sizes of a reqmgmt import (50 rows), for the same-rows import baseline."""
    with fresh_database(base) as url:
        run_import(url, 50, batch)
        return doc_sizes(url)


#: The workloads of ``--only`` (one per valgrind run of instructions.sh --postgres).
ONLY = ("reqmgmt", "raw", "raw-same", "import", "raw-import", "raw-same-import")


def only(base: str, workload: str, n: int, batch: int) -> int:
    """Run one workload on a fresh database; the commands (rows) it ran."""
    if workload == "raw-same":
        with fresh_database(base) as url:
            with Desk.open(url, autodispatch=False) as desk:
                run_reqmgmt(desk, 5)
            sizes = doc_sizes(url)
        with fresh_database(base) as url:
            return run_raw(url, n, same_rows=True, sizes=sizes)
    if workload == "raw-same-import":
        sizes = import_sizes(base, batch)
        with fresh_database(base) as url:
            return run_raw_import(url, n, batch, same_rows=True, sizes=sizes)
    with fresh_database(base) as url:
        if workload == "reqmgmt":
            with Desk.open(url, autodispatch=False) as desk:
                return run_reqmgmt(desk, n)
        if workload == "raw":
            return run_raw(url, n)
        if workload == "import":
            return run_import(url, n, batch)
        return run_raw_import(url, n, batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("REQMGMT_BENCH_POSTGRES"),
                        help="server URL (a database the user may create others from)")  # fmt: skip
    parser.add_argument("--n", type=int, default=1000, help="requirements (default 1,000)")
    parser.add_argument("--imports", type=int, default=10_000, help="rows imported")
    parser.add_argument("--batch", type=int, default=1000, help="rows per import transaction")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=20, 200 rows)")
    parser.add_argument("--only", choices=ONLY, help="one workload, --n requirements (rows)")
    args = parser.parse_args(argv)
    if not args.url:
        print("no PostgreSQL URL (--url or REQMGMT_BENCH_POSTGRES): nothing measured")
        return
    if args.only:
        print(only(args.url, args.only, args.n, args.batch))
        return
    n, imports, rounds = (20, 200, 1) if args.smoke else (args.n, args.imports, args.rounds)
    ours, raw, same, imp, raw_imp, same_imp = [], [], [], [], [], []
    import_doc_sizes = import_sizes(args.url, args.batch)
    for _ in range(rounds):
        with fresh_database(args.url) as url:
            with Desk.open(url, autodispatch=False) as desk:
                start = time.perf_counter()
                done = run_reqmgmt(desk, n)
                ours.append((time.perf_counter() - start) / done)
            sizes = doc_sizes(url)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_raw(url, n)
            raw.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_raw(url, n, same_rows=True, sizes=sizes)
            same.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_import(url, imports, args.batch)
            imp.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_raw_import(url, imports, args.batch)
            raw_imp.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_raw_import(url, imports, args.batch, same_rows=True, sizes=import_doc_sizes)
            same_imp.append((time.perf_counter() - start) / done)
    o, r, sr = statistics.median(ours), statistics.median(raw), statistics.median(same)
    i, ri, si = statistics.median(imp), statistics.median(raw_imp), statistics.median(same_imp)
    print(f"PostgreSQL, median of {rounds} interleaved round(s)")
    print(f"commands: {n:,} requirements x 9 audited commands, each its own transaction")
    print(f"  reqmgmt      {1 / o:10,.0f} commands/s  ({o * 1e6:,.0f} µs)")
    print(f"  raw psycopg  {1 / r:10,.0f} commands/s  ({r * 1e6:,.0f} µs)")
    print(f"  raw, same rows{1 / sr:9,.0f} commands/s  ({sr * 1e6:,.0f} µs)")
    print(f"  ratio reqmgmt / raw psycopg: {o / r:5.2f}x  (one outbox row, no summary rows)")
    print(f"  ratio reqmgmt / raw, same rows: {o / sr:5.2f}x  (target <= 2.0)")
    print(f"import: {imports:,} requirements, {args.batch:,} per transaction")
    print(f"  reqmgmt      {1 / i:10,.0f} records/s  ({i * 1e6:,.0f} µs)")
    print(f"  raw psycopg  {1 / ri:10,.0f} records/s  ({ri * 1e6:,.0f} µs)")
    print(f"  raw, same rows{1 / si:9,.0f} records/s  ({si * 1e6:,.0f} µs)")
    print(f"  ratio reqmgmt / raw psycopg: {i / ri:5.2f}x  (no summary rows, fewer columns)")
    print(f"  ratio reqmgmt / raw, same rows: {i / si:5.2f}x  (target <= 2.0)")


if __name__ == "__main__":
    main()
