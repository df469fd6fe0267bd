"""Requirements through their full path on PostgreSQL, against raw psycopg doing the same writes.

The PostgreSQL counterpart of ``bench_sqlite.py``: in one process, each side
on a fresh database with reqmgmt's schema (its migrations create both):

- commands: receive, start_evaluation, three sign-offs, accept, start,
  complete, close per requirement, each its own transaction; raw psycopg per
  command reads the row, UPDATEs it with the version check, INSERTs the audit
  row and an outbox row, COMMITs;
- import: ``desk.create_many`` against ``executemany`` per table, one
  transaction per batch.

Run: ``python benchmarks/bench_postgres.py --url postgresql+psycopg://...``
(or set ``REQMGMT_BENCH_POSTGRES``; the user must be allowed to create
databases); ``--smoke`` for a quick check.  Without a URL it says so and
exits 0.  Figures are printed, never asserted.
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
from bench_sqlite import _padded

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


def run_raw(url: str, n: int) -> int:
    con = _connect(url)
    commands = 0
    for i in range(n):
        ref = f"REQ-{i:06d}"
        prev = ""
        for version, state in enumerate(STATES, start=1):
            with con.transaction():
                body = _padded({"ref": ref, "state": state, "version": version}, 1100)
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
                    cur = con.execute(
                        "UPDATE records SET state = %s, version = %s, updated_at = %s, doc = %s "
                        "WHERE ref = %s AND version = %s",
                        (state, version, STAMP, body, ref, version - 1),
                    )
                    assert cur.rowcount == 1
                event = _padded({"ref": ref, "version": version, "to": state, "prev": prev}, 700)
                prev = hashlib.sha256(event.encode()).hexdigest()
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


def run_raw_import(url: str, n: int, batch: int) -> int:
    con = _connect(url)
    for first in range(0, n, batch):
        refs = [f"REQ-2026-{i + 1:06d}" for i in range(first, min(n, first + batch))]
        with con.transaction(), con.cursor() as cur:
            cur.executemany(
                "INSERT INTO records (ref, kind, state, customer, version, created_at, "
                "updated_at, doc) VALUES (%s, 'requirement', 'received', 'HK-001', 1, %s, %s, %s)",
                [(ref, STAMP, STAMP, _padded({"ref": ref}, 1100)) for ref in refs],
            )
            events = [(ref, _padded({"ref": ref, "version": 1}, 2000)) for ref in refs]
            cur.executemany(
                "INSERT INTO audit (ref, version, hash, doc, kind, event, to_state, at) "
                "VALUES (%s, 1, %s, %s, 'requirement', 'receive', 'received', %s)",
                [(ref, hashlib.sha256(e.encode()).hexdigest(), e, STAMP) for ref, e in events],
            )
            cur.executemany(
                "INSERT INTO outbox (key, ref, status, attempts, doc) "
                "VALUES (%s, %s, 'pending', 0, %s)",
                [(f"{ref}:1:role:sales", ref, e[:400]) for ref, e in events],
            )
    con.close()
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("REQMGMT_BENCH_POSTGRES"),
                        help="server URL (a database the user may create others from)")  # fmt: skip
    parser.add_argument("--n", type=int, default=1000, help="requirements (default 1,000)")
    parser.add_argument("--imports", type=int, default=10_000, help="rows imported")
    parser.add_argument("--batch", type=int, default=1000, help="rows per import transaction")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=20, 200 rows)")
    args = parser.parse_args(argv)
    if not args.url:
        print("no PostgreSQL URL (--url or REQMGMT_BENCH_POSTGRES): nothing measured")
        return
    n, imports, rounds = (20, 200, 1) if args.smoke else (args.n, args.imports, args.rounds)
    ours, raw, imp, raw_imp = [], [], [], []
    for _ in range(rounds):
        with fresh_database(args.url) as url, Desk.open(url, autodispatch=False) as desk:
            start = time.perf_counter()
            done = run_reqmgmt(desk, n)
            ours.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_raw(url, n)
            raw.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_import(url, imports, args.batch)
            imp.append((time.perf_counter() - start) / done)
        with fresh_database(args.url) as url:
            start = time.perf_counter()
            done = run_raw_import(url, imports, args.batch)
            raw_imp.append((time.perf_counter() - start) / done)
    o, r = statistics.median(ours), statistics.median(raw)
    i, ri = statistics.median(imp), statistics.median(raw_imp)
    print(f"PostgreSQL, median of {rounds} interleaved round(s)")
    print(f"commands: {n:,} requirements x 9 audited commands, each its own transaction")
    print(f"  reqmgmt      {1 / o:10,.0f} commands/s  ({o * 1e6:,.0f} µs)")
    print(f"  raw psycopg  {1 / r:10,.0f} commands/s  ({r * 1e6:,.0f} µs)")
    print(f"  ratio reqmgmt / raw psycopg: {o / r:5.2f}x")
    print(f"import: {imports:,} requirements, {args.batch:,} per transaction")
    print(f"  reqmgmt      {1 / i:10,.0f} records/s  ({i * 1e6:,.0f} µs)")
    print(f"  raw psycopg  {1 / ri:10,.0f} records/s  ({ri * 1e6:,.0f} µs)")
    print(f"  ratio reqmgmt / raw psycopg: {i / ri:5.2f}x")


if __name__ == "__main__":
    main()
