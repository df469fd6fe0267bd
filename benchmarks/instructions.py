"""One measured workload of ``instructions.sh``: run it ``n`` times, nothing else.

``instructions.sh`` runs each workload twice under ``valgrind --tool=cachegrind
--cache-sim=no`` (a small and a large ``n``) and divides the difference of the
instruction counts by the difference of the commands: start-up, imports and
warm-up cancel out, what is left is the cost of one command.

Workloads (the same paths as ``bench_lifecycle.py`` and ``bench_sqlite.py``):

- ``memory``: ``run_reqmgmt`` on a ``memory://`` Desk (9 commands per requirement);
- ``sqlite``: the same on SQLite (WAL, ``synchronous=NORMAL``) in a temporary folder;
- ``bare``: ``run_bare``, the 8 triggers on one shared ``transitions`` Machine;
- ``floor``: ``run_floor``, the minimal audited command written inline
  (8 commands per requirement plus a creating insert, which is not counted);
- ``sqlite-nosummary``: ``sqlite`` with the summary rows off (the SQL
  transaction's ``stage_summary`` hidden, so ``reqmgmt.summaries`` neither
  computes nor writes them): ``sqlite`` minus this is what the summaries cost;
- ``raw-sqlite``: ``bench_sqlite.run_raw``, the same writes with ``sqlite3``
  alone (9 commands per requirement; the documents padded to the sizes a
  5-requirement reqmgmt run writes, which cancels out of the difference);
- ``raw-same-sqlite``: ``run_raw(same_rows=True)``: also the outbox and summary
  rows reqmgmt writes (18 and 25 per requirement) and the audit report columns;
- ``import-sqlite`` / ``raw-import-sqlite``: ``bench_sqlite.run_import`` /
  ``run_raw_import``, N rows in batches of 100 (prints rows, not commands);
  ``raw-same-import-sqlite``: ``run_raw_import(same_rows=True)``, also the
  audit report columns, the due date and the summary rows reqmgmt's import writes.

Usage: ``python benchmarks/instructions.py WORKLOAD N``; prints the commands run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_lifecycle as bench
import bench_sqlite

from reqmgmt import Desk

#: Rows per import transaction in the import workloads.
IMPORT_BATCH = 100


def _sizes(folder: str, path: str, run: object) -> dict[str, int]:
    """Document sizes of a small reqmgmt run (the raw workloads write as many bytes)."""
    with Desk.open(f"sqlite:///{folder}/{path}?synchronous=NORMAL", autodispatch=False) as desk:
        run(desk)  # type: ignore[operator]
    return bench_sqlite.doc_sizes(Path(folder) / path)


def main(argv: list[str]) -> int:
    workload, n = argv[0], int(argv[1])
    if workload == "memory":
        with Desk.open("memory://") as desk:
            done = bench.run_reqmgmt(desk, n)
    elif workload == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db?synchronous=NORMAL"
            with Desk.open(url) as desk:
                done = bench.run_reqmgmt(desk, n)
    elif workload == "sqlite-nosummary":
        from reqmgmt.storage import sql

        sql._SqlTransaction.stage_summary = None  # type: ignore[assignment,method-assign]
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db?synchronous=NORMAL"
            with Desk.open(url) as desk:
                done = bench.run_reqmgmt(desk, n)
    elif workload == "raw-sqlite":
        with tempfile.TemporaryDirectory() as folder:
            sizes = _sizes(folder, "sizes.db", lambda desk: bench.run_reqmgmt(desk, 5))
            done = bench_sqlite.run_raw(Path(folder) / "raw.db", n, "NORMAL", sizes)
    elif workload == "raw-same-sqlite":
        with tempfile.TemporaryDirectory() as folder:
            sizes = _sizes(folder, "sizes.db", lambda desk: bench.run_reqmgmt(desk, 5))
            done = bench_sqlite.run_raw(Path(folder) / "raw.db", n, "NORMAL", sizes, same_rows=True)
    elif workload == "import-sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/import.db?synchronous=NORMAL"
            with Desk.open(url, autodispatch=False) as desk:
                done = bench_sqlite.run_import(desk, n, IMPORT_BATCH)
    elif workload in ("raw-import-sqlite", "raw-same-import-sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            sizes = _sizes(
                folder, "sizes.db", lambda desk: bench_sqlite.run_import(desk, 50, IMPORT_BATCH)
            )
            done = bench_sqlite.run_raw_import(
                Path(folder) / "raw.db", n, IMPORT_BATCH, "NORMAL", sizes,
                same_rows=workload == "raw-same-import-sqlite",
            )  # fmt: skip
    elif workload == "bare":
        done = bench.run_bare(bench.bare_machine(), n)
    elif workload == "floor":
        done = bench.run_floor(n)
    else:
        print(f"unknown workload {workload!r}: see the docstring", file=sys.stderr)
        return 2
    print(done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
