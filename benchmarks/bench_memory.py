"""Memory and garbage-collector pauses of the memory store at scale.

Drives ``n`` requirements through the full path of ``bench_lifecycle.py``
(9 audited commands each, notifications left in the outbox as no plugin
delivers them) on a ``memory://`` Desk, then reports:

- bytes per requirement, its 9 audit events and its outbox included: the
  growth of the process's resident memory (RSS) over the run, divided by ``n``;
- the pause of a full collection (``gc.collect()``), the median of 5, in wall
  time and in this process's CPU time (which other processes do not inflate);
- how many objects the collector tracks (what a full collection walks);
- the same pause before the run (imports, 20 requirements): the part of the
  pause that is the process's own modules and classes, not the store's.

Run: ``python benchmarks/bench_memory.py [--n 100000]``; ``--smoke`` for a
quick check.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lifecycle import run_reqmgmt

from reqmgmt import Desk


def rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096


def collection_pauses() -> tuple[list[float], list[float]]:
    """Five full collections: their wall and CPU times in seconds."""
    pauses, cpu = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        gc.collect()
        pauses.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return pauses, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="requirements (default 100,000)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=300)")
    args = parser.parse_args(argv)
    n = 300 if args.smoke else args.n

    desk = Desk.open("memory://")
    run_reqmgmt(desk, 20)  # imports, caches and first calls stay out
    gc.collect()
    floor = collection_pauses()
    before = rss()
    start = time.perf_counter()
    run_reqmgmt(desk, n)
    took = time.perf_counter() - start
    gc.collect()
    grown = rss() - before
    pauses, cpu = collection_pauses()
    print(f"requirements: {n:,} through the full path ({n * 9:,} commands in {took:.1f} s)")
    print(f"memory per requirement (RSS growth, 9 audit events and outbox included): "
          f"{grown / n:,.0f} B  (target <= 10,240)")  # fmt: skip
    print(f"full collection: {statistics.median(pauses) * 1000:.1f} ms wall, "
          f"{statistics.median(cpu) * 1000:.1f} ms CPU "
          "(median of 5; target < 50 ms at 100,000)")  # fmt: skip
    print(f"objects tracked by the collector: {len(gc.get_objects()):,}")
    print(f"full collection before the run (20 requirements): "
          f"{statistics.median(floor[0]) * 1000:.1f} ms wall, "
          f"{statistics.median(floor[1]) * 1000:.1f} ms CPU")  # fmt: skip


if __name__ == "__main__":
    main()
