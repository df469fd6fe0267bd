"""Requirements through their full path in the memory store, against baselines.

Measured in one process, one after the other:

- reqmgmt: receive, start_evaluation, three sign-offs, accept, start,
  complete, close: 9 audited commands per requirement (each its own
  transaction, hash-chained audit event, outbox);
- bare: the same 8 transitions triggered on ONE shared ``transitions``
  Machine built from the same declaration, no guards, no audit, no store;
- python-statemachine: the same path with one machine per object;
- floor: the least an audited command can do, written inline (transaction,
  load, role check, the bare trigger, next version, three field changes, the
  sealed hash-chained event, write): what the 4x target leaves for
  everything else (hooks, guards, sign-off rules, deadlines, notifications);
- memory: bytes per stored record and per audit event (tracemalloc).

Run: ``python benchmarks/bench_lifecycle.py [--n 100000]``; ``--smoke`` for a
quick check.  Figures are printed, never asserted: this is not a timed test.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from transitions import Machine

from reqmgmt import Actor, Customer, Desk, FieldChange, MemoryStore, Requirement
from reqmgmt.audit import seal
from reqmgmt.lifecycle import REQUIREMENT
from reqmgmt.lifecycle.base import Engine
from reqmgmt.model import _copier
from reqmgmt.serialize import iso

PATH = [
    "start_evaluation",
    "sign",
    "sign",
    "sign",
    "accept",
    "start",
    "complete",
    "close",
]

CLERK = Actor("clerk", "Clerk", roles={"sales"})
ENG = Actor("eng", "Engineer", departments={"engineering"})
MAT = Actor("mat", "Warehouse", departments={"materials"})
PRO = Actor("pro", "Production", departments={"production"}, roles={"production"})
CUSTOMER = Customer("HK-001", "Hong Kong customer", category="important")


def run_reqmgmt(desk: Desk, n: int) -> int:
    """Drive ``n`` requirements through the full path; return commands run."""
    fire, sign, receive = desk.fire, desk.sign, desk.requirements.receive
    for _ in range(n):
        ref = receive(
            customer=CUSTOMER, description="10,000 brackets, zinc plated", actor=CLERK
        ).ref
        fire(ref, "start_evaluation", actor=CLERK)
        sign(ref, department="engineering", actor=ENG, opinion="can do")
        sign(ref, department="materials", actor=MAT, opinion="in stock")
        sign(ref, department="production", actor=PRO, opinion="week 12")
        fire(ref, "accept", actor=CLERK, delivery_plan="2 lots, weeks 12 and 14")
        fire(ref, "start", actor=PRO)
        fire(ref, "complete", actor=PRO, note="shipped complete")
        fire(ref, "close", actor=CLERK)
    return n * 9


class _Cursor:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def bare_machine() -> Machine:
    """A shared Machine of the requirement declaration, without guards."""
    return Machine(
        model=None,
        states=[s.name for s in REQUIREMENT.states],
        transitions=[
            {"trigger": t.event, "source": list(t.sources), "dest": t.dest}
            for t in REQUIREMENT.all_transitions()
        ],
        initial=REQUIREMENT.initial,
        auto_transitions=False,
        send_event=True,
    )


def run_bare(machine: Machine, n: int) -> int:
    triggers = [machine.events[e].trigger for e in PATH]
    for _ in range(n):
        cursor = _Cursor("received")
        for trigger in triggers:
            trigger(cursor)
    return n * len(PATH)


def run_floor(n: int) -> int:
    """The minimal audited command, inline, on the same path: a lower bound, not a contender.

    No hooks, guards, sign-off rules, rules, deadlines or notifications; the
    creating insert of each requirement is timed too but not counted.
    """
    store = MemoryStore()
    engine = Engine(REQUIREMENT)
    machine = bare_machine()
    steps = [(e, machine.events[e].trigger) for e in PATH]
    copy = _copier(Requirement)
    put = object.__setattr__
    t0 = datetime.now(UTC)
    for i in range(n):
        ref = f"REQ-{i:06d}"
        first = Requirement(
            ref=ref, state="received", created_at=t0, updated_at=t0, created_by="clerk",
            customer=CUSTOMER, description="10,000 brackets", received_at=t0,
        )  # fmt: skip
        with store.transaction() as tx:
            tx.insert(first)
        prev = ""
        for event, trigger in steps:
            with store.transaction() as tx:
                old = tx.get(ref)
                assert old is not None
                t = engine.transition(old.state, event)
                assert t is not None
                allowed = not t.roles or bool(CLERK.roles & t.roles)
                cursor = _Cursor(old.state)
                trigger(cursor)
                at = datetime.now(UTC)
                new = copy(old)
                put(new, "state", cursor.state)
                put(new, "version", old.version + 1)
                put(new, "updated_at", at)
                changes = (
                    FieldChange("state", old.state, cursor.state),
                    FieldChange("version", old.version, new.version),
                    FieldChange("updated_at", iso(old.updated_at), iso(at)),
                )
                # audit.seal with the rows the canonical JSON writes, as the command
                # path seals: sealed_event's keyword form and the 256 events it keeps
                # for an import cost ~16k instructions more (docs/performance.md).
                sealed = seal(
                    ref, "requirement", new.version, event, old.state, cursor.state,
                    CLERK.id, CLERK.name, at, None if allowed else "-", None, changes, (),
                    prev, [[c.field, c.old, c.new, c.op] for c in changes],
                )  # fmt: skip
                prev = sealed.hash
                tx.update(new, expected_version=old.version)
                tx.append_audit(sealed)
    return n * len(PATH)


def statemachine_class() -> Any:
    from statemachine import State, StateMachine

    class RequirementMachine(StateMachine):  # type: ignore[misc]
        received = State(initial=True)
        evaluating = State()
        accepted = State()
        in_progress = State()
        completed = State()
        closed = State(final=True)

        start_evaluation = received.to(evaluating)
        sign = evaluating.to.itself()
        accept = evaluating.to(accepted)
        start = accepted.to(in_progress)
        complete = in_progress.to(completed)
        close = completed.to(closed)

    return RequirementMachine


def run_statemachine(cls: Any, n: int) -> int:
    for _ in range(n):
        sm = cls()
        for event in PATH:
            sm.send(event)
    return n * len(PATH)


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    count = fn()
    return time.perf_counter() - start, count


def memory_per_record(n: int) -> tuple[float, float, int]:
    """Bytes per stored record and per audit event, outbox excluded."""
    gc.collect()
    tracemalloc.start()
    desk = Desk.open("memory://")
    store: Any = desk.store
    base = tracemalloc.get_traced_memory()[0]
    run_reqmgmt(desk, n)
    store._outbox.clear()
    store._outbox_keys.clear()
    gc.collect()
    with_audit = tracemalloc.get_traced_memory()[0]
    events = n * 9
    store._audit.clear()
    gc.collect()
    records_only = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (records_only - base) / n, (with_audit - records_only) / events, events


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="requirements (default 100,000)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=300)")
    args = parser.parse_args(argv)
    n = 300 if args.smoke else args.n

    desk = Desk.open("memory://")
    machine = bare_machine()
    sm_cls = statemachine_class()
    # Warm up every contender once so import and first-call costs stay out.
    run_reqmgmt(Desk.open("memory://"), 50)
    run_bare(machine, 50)
    run_statemachine(sm_cls, 50)
    run_floor(50)

    # Interleaved rounds, so a slow spell of the machine hits every contender;
    # the median round of each is reported.
    rounds = 5
    chunk = max(1, n // rounds)
    per: dict[str, list[float]] = {"req": [], "bare": [], "sm": [], "floor": []}
    c_req = 0
    t_req = 0.0
    for _ in range(rounds):
        t, c = timed(lambda: run_reqmgmt(desk, chunk))
        per["req"].append(t / c * 1e6)
        t_req += t
        c_req += c
        t, c = timed(lambda: run_bare(machine, chunk))
        per["bare"].append(t / c * 1e6)
        t, c = timed(lambda: run_statemachine(sm_cls, chunk))
        per["sm"].append(t / c * 1e6)
        t, c = timed(lambda: run_floor(chunk))
        per["floor"].append(t / c * 1e6)
    per_cmd = statistics.median(per["req"])
    per_bare = statistics.median(per["bare"])
    per_sm = statistics.median(per["sm"])
    per_floor = statistics.median(per["floor"])
    mem_n = min(n, 20_000)
    rec_bytes, event_bytes, events = memory_per_record(mem_n)

    print(f"requirements: {chunk * rounds:,} through the full path ({c_req:,} audited commands)")
    print(
        f"reqmgmt, memory store      {per_cmd:8.1f} µs/command  "
        f"({c_req / t_req:,.0f} commands/s overall)"
    )
    print(f"bare shared Machine        {per_bare:8.1f} µs/trigger")
    print(f"python-statemachine/object {per_sm:8.1f} µs/transition (machine created per object)")
    print(f"floor: minimal audited command {per_floor:8.1f} µs (inline; see run_floor)")
    print(f"ratio reqmgmt / bare trigger:           {per_cmd / per_bare:5.2f}x  (target <= 4)")
    print(f"ratio floor / bare trigger:             {per_floor / per_bare:5.2f}x")
    print(f"ratio reqmgmt / python-statemachine:    {per_cmd / per_sm:5.2f}x  (target < 1)")
    print(f"memory per stored record: {rec_bytes:,.0f} B  (target <= 2,048; {mem_n:,} records)")
    print(f"memory per audit event:   {event_bytes:,.0f} B  ({events:,} events)")


if __name__ == "__main__":
    main()
