"""Forced interleaving: for every transition of every lifecycle, on every backend.

Two commands load the same version of a record; one commits; the other must
get :class:`ConflictError` and write nothing (record, audit, outbox, other
records).  The interleaving is forced, not hoped for: the losing command runs
on a snapshot of the record taken before the winner committed, exactly what
it would have loaded had it started first, and then writes through the real
store.  So the store's ``UPDATE ... WHERE version = ?`` is what catches it,
on SQLite (where ``BEGIN IMMEDIATE`` otherwise keeps the window closed) as
on memory and PostgreSQL.  On memory and PostgreSQL a second test opens the
window for real: the winner commits from inside the loser's transaction.

The transitions are reached by a breadth-first walk of each lifecycle from a
few starting records, choosing at each step every event some actor may fire;
the test fails when a declared transition was never raced.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from reqmgmt import (
    Actor,
    ConflictError,
    Contract,
    ContractLine,
    Customer,
    Desk,
    Money,
    Record,
    Requirement,
    hookimpl,
)
from reqmgmt.reading import verdict
from reqmgmt.storage.base import Store, Transaction
from reqmgmt.testing import ApprovedSubcontractors, DesignProjects, FakeClock

ACTORS = (
    Actor("s1", roles={"sales"}, departments={"sales"}),
    Actor("s2", roles={"sales"}, departments={"sales"}),
    Actor("s3", roles={"sales"}),
    Actor("eng", departments={"engineering"}),
    Actor("mat", departments={"materials"}, roles={"materials"}),
    Actor("pro", departments={"production"}, roles={"production"}),
    Actor("qa", departments={"quality"}, roles={"quality"}),
    Actor("qm", roles={"quality_manager"}),
    Actor("qm2", roles={"quality_manager", "quality"}),
    Actor("sm", roles={"sales_manager"}),
    Actor("gm", roles={"general_manager"}),
    Actor("fh", roles={"factory_head"}),
    Actor("vp", roles={"vp"}),
    Actor("ship", roles={"shipping"}),
    Actor("chief", departments={"section_chief"}),
)
CLERK = ACTORS[0]
MAT, QA, QM = (next(a for a in ACTORS if a.id == i) for i in ("mat", "qa", "qm"))
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VIA = {"convert_to_order", "dispose"}  # fired by a desk verb, not desk.fire
ONLY_VIA_ANOTHER_RECORD = {("contract", "replace_goods")}  # raced in its own test below


class StaleReads:
    """A Store whose next ``get`` of a planted ref returns the planted (old) version."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.planted: dict[str, Record] = {}

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.inner.transaction() as tx:
            yield _StaleTx(tx, self.planted)

    def close(self) -> None:
        self.inner.close()


class _StaleTx:
    def __init__(self, tx: Transaction, planted: dict[str, Record]) -> None:
        self._tx = tx
        self._planted = planted

    def get(self, ref: str) -> Record | None:
        if ref in self._planted:
            return self._planted.pop(ref)
        return self._tx.get(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


# --- what a command looks like -----------------------------------------------------------

Command = Callable[[Desk], Record]


@attrs.frozen
class Move:
    kind: str
    source: str
    event: str
    actor: Actor
    candidate: int  # which of _candidates(...)

    def command(self, desk: Desk, ref: str) -> Command:
        """The command, its arguments made for the record as it is now."""
        record = desk.get(ref)
        kwargs = _candidates(record, self.event, desk)[self.candidate]
        return _command(ref, self.event, self.actor, kwargs)

    def run(self, desk: Desk, ref: str) -> Record:
        return self.command(desk, ref)(desk)


_DEFECTS = itertools.count()


def _candidates(record: Record, event: str, desk: Desk) -> list[dict[str, Any]]:
    """Keyword arguments worth trying for ``event`` on ``record``."""
    note = {"note": "ok"}
    engine = desk.engine(record.RECORD_KIND)
    t = engine.transition(record.state, event)
    assert t is not None
    if t.signoff:
        step = engine.lifecycle.signoff_step(record.state)
        assert step is not None
        return [{"department": d, **note} for d in step.missing(record)]
    if event == "identify":
        return [{"kind": "implied", "text": "outdoor use", **note}]
    if event == "request_outsourcing":
        return [{"subcontractor": "hongda", **note}]
    if event == "hand_to_design":
        return [{"novelty": "new_product", **note}]
    if event == "acknowledge_plan":
        assert isinstance(record, Requirement)
        return [{"department": d, **note} for d in record.plan_unsigned]
    if event == "approve_outsourcing":
        return [{"outsourcing": "外协 supplier X", **note}]
    if event == "accept":
        return [{"delivery_plan": "plan A", **note}]
    if event == "confirm":
        return [{"confirmation": "signed copy", "read_back": True, **note}]
    if event == "ship":
        assert isinstance(record, Contract)
        return [{"shipment": {x.line_no: x.open_quantity for x in record.lines}, **note}]
    if event in ("amend", "revise"):
        assert isinstance(record, Contract)
        first = record.lines[0]
        bigger = attrs.evolve(first, quantity=first.quantity * 1000)
        return [
            {"changes": {"packaging": "木箱"}, **note},
            {"changes": {"lines": (bigger, *record.lines[1:])}, **note},
        ]
    if event == "receive_goods":
        return [{"receipt_no": "WL-1", "quantity": 1, **note}]
    if event in ("judge_valid", "judge_invalid"):
        # A new defect category each time: three of one kind in 90 days would
        # call for a CAPA on every return and hide the close without one.
        defect = f"defect {next(_DEFECTS)}"
        facts = {"findings": "f", "defect_category": defect, "cause": "c", **note}
        out = [{**facts, "safety_related": False}, {**facts, "safety_related": True}]
        if event == "judge_valid":
            out.append({**facts, "safety_related": False, "override_reason": "quality accepts"})
        return out
    if event == "settle":
        return [{"outcome": "customer_accepts", **note}]
    if event == "grant_goodwill":
        return [{"credit": Money(100, "CNY"), **note}]
    if event == "dispose":
        return [{"disposition": "rework", **note}]
    if event == "open_capa":
        return [{"owner": "qm", "due_on": date(2026, 6, 1), "actions": "fix", **note}]
    return [note]


def _command(ref: str, event: str, actor: Actor, kwargs: dict[str, Any]) -> Command:
    if event == "convert_to_order":
        return lambda d: d.contracts.order_from_quotation(ref, actor=actor, note=kwargs["note"])
    if event == "dispose":
        return lambda d: d.returns.dispose(ref, kwargs["disposition"], actor=actor)
    return lambda d: d.fire(ref, event, actor=actor, **kwargs)


def moves(desk: Desk, ref: str) -> Iterator[Move]:
    """Every (event, arguments) some actor may fire on ``ref`` now, one actor each."""
    record = desk.get(ref)
    engine = desk.engine(record.RECORD_KIND)
    now = desk.now()
    for event in engine.events_from(record.state):
        if (record.RECORD_KIND, event) in ONLY_VIA_ANOTHER_RECORD:
            continue
        for j, kwargs in enumerate(_candidates(record, event, desk)):
            probe = {k: v for k, v in kwargs.items() if k != "note"}
            for actor in ACTORS:
                # desk.can without loading the record once per actor.
                if verdict(desk, record, event, actor, probe, now):
                    yield Move(record.RECORD_KIND, record.state, event, actor, j)
                    break


def fingerprint(desk: Desk, ref: str) -> tuple[Any, ...]:
    record = desk.get(ref)
    signed = len(record.round_signoffs())
    pending = getattr(record, "amendment", None) is not None
    return (record.state, signed, pending, tuple(sorted(m.event for m in moves(desk, ref))))


# --- the race ------------------------------------------------------------------------------


def snapshot(desk: Desk, customer: str) -> tuple[Any, ...]:
    """Everything a command on a record of ``customer`` could have written.

    Each starting record has a customer of its own, and records a command
    creates (an order from a quotation) inherit it.
    """
    records = tuple(desk.query(customer=customer))
    trails = tuple(len(desk.history(r.ref)) for r in records)
    with desk.store.transaction() as tx:
        outbox = tuple(
            e.notification.key
            for r in records
            for e in tx.pending(now=NOW + timedelta(days=3650), ref=r.ref)
        )
    return records, trails, outbox


def race(desk: Desk, stale: StaleReads, ref: str, loser: Command, winner: Command) -> None:
    """``winner`` commits; ``loser``, which loaded the version before, must conflict."""
    before = desk.get(ref)
    customer = before.customer.id  # type: ignore[attr-defined]
    winner(desk)
    after_winner = snapshot(desk, customer)
    stale.planted[ref] = before
    with pytest.raises(ConflictError) as info:
        loser(desk)
    assert not stale.planted, "the losing command did not load the record"
    assert info.value.ref == ref
    assert info.value.expected == before.version
    assert info.value.actual == before.version + 1
    assert snapshot(desk, customer) == after_winner, "the losing command wrote something"


# --- starting records ----------------------------------------------------------------------


_CUSTOMERS = itertools.count(1)


def _customer() -> Customer:
    return Customer(f"C{next(_CUSTOMERS)}", "Customer")


def _lines(quantity: int) -> list[ContractLine]:
    return [
        ContractLine(
            line_no=1,
            product="bracket",
            quantity=quantity,
            unit_price=Money("2.50", "CNY"),
            delivery_date=date(2026, 6, 1),
        )
    ]


def _contract(desk: Desk, *, document: str = "contract", big: bool = False) -> str:
    return desk.contracts.draft(
        customer=_customer(),
        lines=_lines(100_000 if big else 10),
        currency="CNY",
        document=document,
        flags=("first_order",) if big else (),
        actor=CLERK,
    ).ref


ROOTS: dict[str, list[Callable[[Desk], str]]] = {
    "requirement": [
        lambda d: (
            d.requirements.receive(customer=_customer(), description="brackets", actor=CLERK).ref
        )
    ],
    "contract": [
        _contract,
        lambda d: _contract(d, big=True),
        lambda d: _contract(d, document="quotation"),
        lambda d: _contract(d, document="verbal"),  # self_review (自行评审)
    ],
    "return": [
        lambda d, kind=kind, days=days: (
            d.returns.report(  # type: ignore[misc]
                customer=Customer("C1", "Customer"),
                product="bracket",
                reason_code="quality",
                reason_text="cracked",
                kind=kind,
                shipped_on=NOW.date() - timedelta(days=days),
                actor=CLERK,
            ).ref
        )
        for kind, days in (("return", 10), ("complaint", 10), ("return", 400))
    ],
}


def declared(desk: Desk, kind: str) -> set[tuple[str, str, str]]:
    lc = desk.engine(kind).lifecycle
    return {
        (kind, source, t.event)
        for t in lc.transitions
        for source in t.sources
        if (kind, t.event) not in ONLY_VIA_ANOTHER_RECORD
    }


def walk_and_race(desk: Desk, stale: StaleReads, kind: str, real: bool = False) -> None:
    """Breadth-first over the lifecycle, racing every move from every new situation."""
    raced: set[tuple[str, str, str]] = set()
    seen: set[tuple[Any, ...]] = set()
    # A node is the list of commands that leads from a root to a situation.
    queue: list[tuple[Callable[[Desk], str], tuple[Move, ...]]] = [
        (root, ()) for root in ROOTS[kind]
    ]

    def replay(root: Callable[[Desk], str], path: tuple[Move, ...]) -> str:
        ref = root(desk)
        for move in path:
            move.run(desk, ref)
        return ref

    while queue:
        root, path = queue.pop(0)
        ref = replay(root, path)
        key = (root, *fingerprint(desk, ref))
        if key in seen:
            continue
        seen.add(key)
        for i, move in enumerate(list(moves(desk, ref))):
            if i:  # a fresh record in the same situation for each further move
                ref = replay(root, path)
            command = move.command(desk, ref)
            if real:
                real_race(desk, ref, move.event, command)
            else:
                race(desk, stale, ref, command, command)
            raced.add((move.kind, move.source, move.event))
            queue.append((root, (*path, move)))
    missing = declared(desk, kind) - raced
    assert not missing, f"never raced: {sorted(missing)}"


def open_desk(url: str, *plugins: object) -> tuple[Desk, StaleReads]:
    plugins = (*plugins, ApprovedSubcontractors(), DesignProjects())
    desk = Desk.open(url, clock=FakeClock(NOW), plugins=plugins, autodispatch=False)
    stale = StaleReads(desk.store)
    desk.store = stale
    return desk, stale


KINDS = ["requirement", "contract", "return"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_transition_conflicts_on_memory(kind: str) -> None:
    desk, stale = open_desk("memory://")
    with desk:
        walk_and_race(desk, stale, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_transition_conflicts_on_sqlite(kind: str, tmp_path: Path) -> None:
    desk, stale = open_desk(f"sqlite:///{tmp_path / 'race.db'}?synchronous=NORMAL")
    with desk:
        walk_and_race(desk, stale, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_transition_conflicts_on_postgres(kind: str, pg_url: str) -> None:
    desk, stale = open_desk(pg_url)
    with desk:
        walk_and_race(desk, stale, kind)


# --- replace_goods: the contract side of a return's disposition ------------------------------


def drive(desk: Desk, ref: str, *events: str) -> Record:
    """Fire ``events`` in turn, each by someone allowed to; ``sign`` until all have signed."""
    for event in events:
        while True:
            options = [m for m in moves(desk, ref) if m.event == event]
            assert options, f"{event} not possible on {desk.get(ref).state}"
            options[0].run(desk, ref)
            if event != "sign" or not any(m.event == "sign" for m in moves(desk, ref)):
                break
    return desk.get(ref)


def _shipped_contract(desk: Desk) -> str:
    ref = _contract(desk)
    drive(desk, ref, "submit", "sign", "approve", "send", "confirm", "start_fulfilment", "ship",
          "mark_shipped")  # fmt: skip
    assert desk.get(ref).state == "shipped"
    return ref


def test_the_verbs_take_expected_version_too() -> None:
    """amend, order_from_quotation and dispose refuse a stale version like fire does."""
    desk, _ = open_desk("memory://")
    general = _contract(desk)
    drive(desk, general, "submit", "sign", "approve")
    with pytest.raises(ConflictError):
        desk.contracts.amend(general, {"packaging": "木箱"}, actor=CLERK, reason="r",
                             expected_version=2)  # fmt: skip
    quotation = _contract(desk, document="quotation")
    seen = drive(desk, quotation, "submit", "sign", "approve", "send", "confirm")
    with pytest.raises(ConflictError):
        desk.contracts.order_from_quotation(quotation, actor=CLERK, expected_version=2)
    order = desk.contracts.order_from_quotation(
        quotation, actor=CLERK, expected_version=seen.version
    )
    assert order.quotation_ref == quotation
    ret = ROOTS["return"][0](desk)
    seen = drive(desk, ret, "receive_goods", "to_quality", "judge_valid")
    with pytest.raises(ConflictError):
        desk.returns.dispose(ret, "rework", actor=QM, expected_version=seen.version - 1)
    assert desk.returns.dispose(ret, "rework", actor=QM, expected_version=seen.version).version == (
        seen.version + 1
    )


@pytest.mark.parametrize(("state", "other"), [("shipped", "complete"), ("completed", "close")])
@pytest.mark.parametrize("url_kind", ["memory", "sqlite", "postgres"])
def test_replace_goods_conflict_rolls_back_the_return_too(
    state: str, other: str, url_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The return's disposition and the contract's replace_goods are one transaction."""
    url = {
        "memory": lambda: "memory://",
        "sqlite": lambda: f"sqlite:///{tmp_path / 'race.db'}",
        "postgres": lambda: request.getfixturevalue("pg_url"),
    }[url_kind]()
    desk, stale = open_desk(url)
    with desk:
        contract = _shipped_contract(desk)
        if state == "completed":
            desk.fire(contract, "complete", actor=CLERK)
        ret = desk.returns.report(
            customer=desk.get(contract).customer,  # type: ignore[attr-defined]
            product="bracket",
            reason_code="quality",
            reason_text="cracked",
            quantity=2,
            contract_ref=contract,
            line_no=1,
            actor=CLERK,
        ).ref
        desk.fire(ret, "receive_goods", actor=MAT, receipt_no="WL-1", quantity=2)
        desk.fire(ret, "to_quality", actor=MAT)
        desk.fire(ret, "judge_valid", actor=QA, findings="f", defect_category="plating",
                  cause="c")  # fmt: skip

        def winner(d: Desk) -> Record:
            return d.fire(contract, other, actor=CLERK)

        def loser(d: Desk) -> Record:
            return d.returns.dispose(ret, "replace", actor=QM)

        race(desk, stale, contract, loser, winner)
        assert desk.get(ret).state == "dispositioning"


# --- the real race on memory and PostgreSQL ------------------------------------------------------


class CommitFirst:
    """During the loser's command, after it loaded the record: the winner commits."""

    def __init__(self) -> None:
        self.desk: Desk | None = None
        self.ref = ""
        self.winner: Command | None = None

    @hookimpl
    def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
        if record.ref == self.ref and self.winner is not None and self.desk is not None:
            winner, self.winner = self.winner, None
            winner(self.desk)


def real_race(desk: Desk, ref: str, event: str, command: Command) -> None:
    plugin: CommitFirst = desk.pm.get_plugin("commit-first")  # type: ignore[assignment]
    before = desk.get(ref)
    plugin.desk, plugin.ref, plugin.winner = desk, ref, command
    with pytest.raises(ConflictError) as info:
        command(desk)
    assert plugin.winner is None, f"{event}: the winner never ran"
    assert (info.value.expected, info.value.actual) == (before.version, before.version + 1)
    after = desk.get(ref)
    assert after.version == before.version + 1
    assert [e.version for e in desk.history(ref)] == list(range(1, after.version + 1))
    assert desk.verify_history(ref)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("url_kind", ["memory", "postgres"])
def test_every_transition_conflicts_in_a_real_race(
    kind: str, url_kind: str, request: pytest.FixtureRequest
) -> None:
    """The winner commits from inside the loser's transaction; the loser's write is refused."""
    url = "memory://" if url_kind == "memory" else request.getfixturevalue("pg_url")
    plugin = CommitFirst()
    desk = Desk.open(
        url,
        clock=FakeClock(NOW),
        autodispatch=False,
        plugins=[ApprovedSubcontractors(), DesignProjects()],
    )
    desk.pm.register(plugin, name="commit-first")
    with desk:
        walk_and_race(desk, StaleReads(desk.store), kind, real=True)
