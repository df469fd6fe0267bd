"""One input policy: memory, SQLite and PostgreSQL accept and refuse exactly the same inputs.

The same battery of odd inputs goes through the public API on each backend.
Each case is either refused with a :class:`ValidationError` naming the field
(and nothing is written), or accepted; what is accepted reads back, from a
fresh store with no cache, exactly as the command returned it, and the same
on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import Actor, ContractLine, Customer, Desk, Money, NotFound, ValidationError
from reqmgmt.serialize import unstructure
from reqmgmt.testing import FakeClock

CLERK = Actor("clerk", "Clerk", roles={"sales"})
ENG = Actor("eng", "Engineer", departments={"engineering"})
GOOD = Customer("HK-001", "Hong Kong Trading Ltd", category="important")
LONG = "x" * 10_000


def _req(desk: Desk, **kw: Any) -> Any:
    values: dict[str, Any] = {"customer": GOOD, "description": "brackets", "actor": CLERK}
    values.update(kw)
    return desk.requirements.receive(**values)


def _customer(**kw: Any) -> Callable[[Desk], Any]:
    def run(desk: Desk) -> Any:
        fields = {"id": "C-1", "name": "Customer", "category": "general"}
        fields.update(kw)
        return _req(desk, customer=Customer(**fields))

    return run


def _line(**kw: Any) -> Callable[[Desk], Any]:
    def run(desk: Desk) -> Any:
        fields: dict[str, Any] = {
            "line_no": 1,
            "product": "bracket",
            "quantity": 10,
            "unit_price": Money("2.50", "CNY"),
        }
        fields.update(kw)
        return desk.contracts.draft(
            customer=GOOD, lines=[ContractLine(**fields)], currency="CNY", actor=CLERK
        )

    return run


def _return(**kw: Any) -> Callable[[Desk], Any]:
    def run(desk: Desk) -> Any:
        fields: dict[str, Any] = {
            "customer": GOOD,
            "product": "bracket",
            "reason_code": "quality",
            "reason_text": "cracked",
            "actor": CLERK,
        }
        fields.update(kw)
        return desk.returns.report(**fields)

    return run


class _Then:
    """A case that prepares a record first; what is written counts from then on."""

    def __init__(self, prepare: Callable[[Desk], str], act: Callable[[Desk, str], Any]) -> None:
        self.prepare = prepare
        self.act = act


def _note(note: str) -> _Then:
    return _Then(
        lambda d: _req(d).ref, lambda d, ref: d.fire(ref, "clarify", actor=CLERK, note=note)
    )


def _evaluating(desk: Desk) -> str:
    ref: str = _req(desk).ref
    desk.fire(ref, "start_evaluation", actor=CLERK)
    return ref


def _opinion(opinion: str) -> _Then:
    return _Then(
        _evaluating,
        lambda d, ref: d.sign(ref, department="engineering", actor=ENG, opinion=opinion),
    )


def _at(year: int, month: int = 6, day: int = 1, tz: timezone | None = UTC) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=tz)


# name -> (what it does, the field a ValidationError must name, "NotFound", or None: accepted)
CASES: dict[str, tuple[Callable[[Desk], Any] | _Then, str | None]] = {
    # text: control characters, lone surrogates, lengths
    "plain CJK and emoji": (lambda d: _req(d, description="冲压支架\u3000规格 😀"), None),
    "description over lines": (lambda d: _req(d, description="a\n\tb\r\nc"), None),
    "description NUL": (lambda d: _req(d, description="brackets\x00"), "description"),
    "description ESC": (lambda d: _req(d, description="\x1b[31mred"), "description"),
    "description DEL": (lambda d: _req(d, description="a\x7fb"), "description"),
    "description lone surrogate": (lambda d: _req(d, description="a\ud800b"), "description"),
    "description 10,000 chars": (lambda d: _req(d, description=LONG), None),
    "description 20,001 chars": (lambda d: _req(d, description="y" * 20_001), "description"),
    "customer id NUL": (_customer(id="C\x001"), "id"),
    "customer id 64 chars": (_customer(id="C" * 64), None),
    "customer id 65 chars": (_customer(id="C" * 65), "id"),
    "customer id 10,000 chars": (_customer(id=LONG), "id"),
    "customer id newline": (_customer(id="C\n1"), "id"),
    "customer id surrogate": (_customer(id="C\udfff"), "id"),
    "customer name NUL": (_customer(name="Name\x00Ltd"), "name"),
    "customer name tab": (_customer(name="Name\tLtd"), "name"),
    "customer name 200 chars": (_customer(name="N" * 200), None),
    "customer name 201 chars": (_customer(name="N" * 201), "name"),
    "customer flag NUL": (_customer(flags={"new\x00"}), "flags"),
    "note NUL": (_note("why\x00"), "note"),
    "note over lines": (_note("which finish?\nmatte or gloss"), None),
    "note surrogate": (_note("\ud83d"), "note"),
    "opinion NUL": (_opinion("can do\x00"), "opinion"),
    "opinion 10,000 chars": (_opinion(LONG), None),
    "line product NUL": (_line(product="brack\x00et"), "product"),
    "line specification over lines": (_line(specification="M8\nzinc"), None),
    "line quantity 2**53-1": (_line(quantity=2**53 - 1, unit_price=Money("1", "CNY")), None),
    "line quantity 10**20": (_line(quantity=10**20), "quantity"),
    "line delivery 0001-01-01": (_line(delivery_date=date(1, 1, 1)), "delivery_date"),
    "line delivery 1899-12-31": (_line(delivery_date=date(1899, 12, 31)), "delivery_date"),
    "line delivery 2199-12-31": (_line(delivery_date=date(2199, 12, 31)), None),
    "line delivery 9999-12-31": (_line(delivery_date=date(9999, 12, 31)), "delivery_date"),
    "line delivery a datetime": (_line(delivery_date=_at(2026)), "delivery_date"),
    "return reason NUL": (_return(reason_text="cracked\x00"), "reason_text"),
    "return shipped 0001-01-01": (_return(shipped_on=date(1, 1, 1)), "shipped_on"),
    "return quantity 10**20": (_return(quantity=10**20), "quantity"),
    "return contract ref NUL": (_return(contract_ref="CON\x00"), "NotFound"),
    # times: 1900 <= t < 2200, timezone-aware
    "received year 1": (lambda d: _req(d, received_at=_at(1, 1, 2)), "received_at"),
    "received 1899": (lambda d: _req(d, received_at=_at(1899)), "received_at"),
    "received 1900": (lambda d: _req(d, received_at=_at(1900)), None),
    "received 2199": (lambda d: _req(d, received_at=_at(2199)), None),
    "received 2201": (lambda d: _req(d, received_at=_at(2201)), "received_at"),
    "received 9999": (lambda d: _req(d, received_at=_at(9999)), "received_at"),
    "received naive": (lambda d: _req(d, received_at=_at(2026, tz=None)), "received_at"),
    "due year 1": (lambda d: _req(d, due_at=_at(1, 1, 2)), "due_at"),
    "due 9999": (lambda d: _req(d, due_at=_at(9999)), "due_at"),
    "due naive": (lambda d: _req(d, due_at=_at(2026, tz=None)), "due_at"),
    "due +14:00": (lambda d: _req(d, due_at=_at(2026, tz=timezone(timedelta(hours=14)))), None),
}


def _written(desk: Desk) -> list[tuple[str, int, int]]:
    """Every record's ref, version and audit trail length."""
    return [(r.ref, r.version, len(desk.history(r.ref))) for r in desk.query()]


def _outcomes(url: str, tmp_path: Path) -> dict[str, Any]:
    """Each case's outcome on the store at ``url``: the refusal, or the record read back."""
    clock = FakeClock()
    out: dict[str, Any] = {}
    first = Desk.open(url, clock=clock)
    with first as desk:
        for name, (run, _) in CASES.items():
            ref = run.prepare(desk) if isinstance(run, _Then) else None
            before = _written(desk)
            try:
                record = run.act(desk, ref) if isinstance(run, _Then) else run(desk)  # type: ignore[arg-type]
            except ValidationError as exc:
                where = re.sub(r"[A-Z]+-\d{4}-\d{6}", "<ref>", exc.where)  # numbers may differ
                out[name] = ("refused", exc.field, where)
                assert _written(desk) == before, f"{name}: written although refused"
                continue
            except NotFound:
                out[name] = ("refused", "NotFound", "")
                assert _written(desk) == before, f"{name}: written although refused"
                continue
            out[name] = ("accepted", record.ref, record)
        # A ref or customer no record can have is not found (PostgreSQL would
        # raise for NUL, SQLite for a lone surrogate).
        for ref in ("REQ\x00", "REQ\ud800", "R" * 10_000):
            try:
                desk.get(ref)
            except Exception as exc:
                out[f"get {ref[:5]!r}"] = type(exc).__name__
        out["query customer NUL"] = list(desk.query(customer="C\x00"))
        # Nothing odd got in, so the workers have nothing to skip.
        assert desk.report().failed == ()
        assert desk.run_reminders(clock.now + timedelta(days=400)).failed == ()
    # Read back through a new store (SQL: parsed from what was stored, no
    # cache); the memory store keeps the objects themselves.
    with first if url == "memory://" else Desk.open(url, clock=clock) as desk:
        for name in CASES:
            outcome = out[name]
            if outcome[0] == "accepted":
                stored = desk.get(outcome[1])
                assert stored == outcome[2], f"{name}: reads back differently"
                # Refs may differ: a refused creation leaves a gap in the
                # memory store's numbers, not in a rolled-back SQL sequence.
                doc = unstructure(stored)
                del doc["ref"]
                out[name] = ("accepted", doc)
    return out


def _check(outcomes: dict[str, Any]) -> None:
    assert outcomes["query customer NUL"] == []
    assert [v for k, v in outcomes.items() if k.startswith("get ")] == ["NotFound"] * 3
    for name, (_, field) in CASES.items():
        outcome = outcomes[name]
        if field is None:
            assert outcome[0] == "accepted", f"{name}: {outcome}"
        else:
            assert outcome[:2] == ("refused", field), f"{name}: {outcome}"


@pytest.fixture(scope="module")
def memory_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _outcomes("memory://", tmp_path_factory.mktemp("memory"))


def test_memory_accepts_and_refuses_by_the_policy(memory_outcomes: dict[str, Any]) -> None:
    """Every odd input is refused naming its field, or accepted, as the policy says."""
    _check(memory_outcomes)


def test_sqlite_accepts_and_refuses_exactly_as_memory(
    memory_outcomes: dict[str, Any], tmp_path: Path
) -> None:
    """SQLite: the same refusals, and what it accepts reads back as memory holds it."""
    outcomes = _outcomes(f"sqlite:///{tmp_path / 'inputs.db'}", tmp_path)
    _check(outcomes)
    assert outcomes == memory_outcomes


def test_postgres_accepts_and_refuses_exactly_as_memory(
    memory_outcomes: dict[str, Any], pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: the same refusals, and what it accepts reads back as memory holds it."""
    outcomes = _outcomes(pg_url, tmp_path)
    _check(outcomes)
    assert outcomes == memory_outcomes
