"""Several processes on one database: no lost update, gap-free audit, only the expected errors."""

from __future__ import annotations

import multiprocessing
import os
import random
from collections import Counter
from pathlib import Path

from reqmgmt import Actor, ConflictError, Customer, Desk, InvalidTransition

CLERK = Actor("clerk", roles={"sales"})
PROCESSES = 4
COMMANDS = int(os.environ.get("REQMGMT_STRESS_COMMANDS", "150"))
RECORDS = 5


def worker(url: str, seed: int, commands: int, refs: list[str]) -> dict[str, int]:
    """Toggle clarify/clarified on random records; count what happened."""
    rnd = random.Random(seed)
    counts: Counter[str] = Counter()
    with Desk.open(url) as desk:
        for _ in range(commands):
            ref = rnd.choice(refs)
            state = desk.get(ref).state
            event, note = ("clarify", "q") if state == "received" else ("clarified", "a")
            try:
                desk.fire(ref, event, actor=CLERK, note=note)
            except ConflictError:
                counts["conflict"] += 1
            except InvalidTransition:
                counts["stale"] += 1  # the state changed between reading and firing
            else:
                counts["success"] += 1
    return dict(counts)


def run_workers(url: str, refs: list[str]) -> Counter[str]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(worker, [(url, seed, COMMANDS, refs) for seed in range(PROCESSES)])
    total: Counter[str] = Counter()
    for r in results:
        total.update(r)
    return total


def check_invariants(url: str, refs: list[str], total: Counter[str]) -> None:
    assert sum(total.values()) == PROCESSES * COMMANDS, total
    with Desk.open(url) as desk:
        committed = 0
        for ref in refs:
            record = desk.get(ref)
            events = desk.history(ref)
            assert [e.version for e in events] == list(range(1, record.version + 1))
            check = desk.verify_history(ref)
            assert check, check.problem
            committed += record.version - 1
    assert committed == total["success"], (committed, total)


def make_records(url: str) -> list[str]:
    with Desk.open(url) as desk:
        return [
            desk.requirements.receive(
                customer=Customer("C1", "C"), description=f"order {i}", actor=CLERK
            ).ref
            for i in range(RECORDS)
        ]


def test_sqlite_processes_lose_no_update(tmp_path: Path) -> None:
    """4 processes on one SQLite file: successes + conflicts = attempts, audit gap-free."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    refs = make_records(url)
    total = run_workers(url, refs)
    check_invariants(url, refs, total)


def test_postgres_processes_lose_no_update(pg_url: str) -> None:
    """4 processes on one PostgreSQL database: the same invariants."""
    refs = make_records(pg_url)
    total = run_workers(pg_url, refs)
    check_invariants(pg_url, refs, total)
