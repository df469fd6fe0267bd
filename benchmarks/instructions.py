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
  (8 commands per requirement plus a creating insert, which is not counted).

Usage: ``python benchmarks/instructions.py WORKLOAD N``; prints the commands run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_lifecycle as bench

from reqmgmt import Desk


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
    elif workload == "bare":
        done = bench.run_bare(bench.bare_machine(), n)
    elif workload == "floor":
        done = bench.run_floor(n)
    else:
        print(f"unknown workload {workload!r}: memory, sqlite, bare or floor", file=sys.stderr)
        return 2
    print(done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
