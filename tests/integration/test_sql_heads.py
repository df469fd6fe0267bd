"""The SQL store remembers each record's newest audit hash after its own commits.

A command then chains its event without reading the audit table.  Two desks
on one database stand for two processes: each writes between the other's
commands, so each must notice that the record it remembers is not the one
stored and read the hash, or the chain breaks.  Rolled-back transactions and
units of work must not leave a remembered hash behind either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa

from reqmgmt import Desk
from reqmgmt.storage.sql import SqlStore
from reqmgmt.testing import FakeClock
from reqmgmt.testing.contract import make_event

from ..conftest import CLERK, ENG, MAT, PRO, receive
from .conftest import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'heads.db'}"
        return
    with fresh_database() as pg:
        yield pg


def test_two_writers_taking_turns_keep_one_unbroken_chain(url: str) -> None:
    clock = FakeClock()
    with Desk.open(url, clock=clock) as a, Desk.open(url, clock=clock) as b:
        ref = receive(a)
        a.fire(ref, "start_evaluation", actor=CLERK)  # a remembers version 2's hash
        b.sign(ref, department="engineering", actor=ENG, opinion="ok")  # b reads it
        a.sign(ref, department="materials", actor=MAT, opinion="ok")  # a's memory is stale
        b.sign(ref, department="production", actor=PRO, opinion="ok")
        for desk in (a, b):
            assert desk.verify_history(ref)
            assert [e.version for e in desk.history(ref)] == [1, 2, 3, 4, 5]


def _write_then_fail(store: SqlStore, ref: str) -> None:
    """A command's writes, then a failure before the commit."""
    with store.transaction() as tx:
        record = tx.get(ref)
        assert record is not None
        tx.update(attrs.evolve(record, version=2), expected_version=1)
        tx.append_audit(make_event(ref, 2, tx.last_hash(ref) or ""))
        assert tx.new_heads
        raise RuntimeError("boom")


def test_a_rolled_back_transaction_leaves_nothing_remembered(url: str) -> None:
    with Desk.open(url, clock=FakeClock()) as desk:
        store = desk.store
        assert isinstance(store, SqlStore)
        ref = receive(desk)
        remembered = dict(store._heads)
        with pytest.raises(RuntimeError, match="boom"):
            _write_then_fail(store, ref)
        assert store._heads == remembered
        # A unit of work commits with the host: nothing is remembered from it.
        with store.engine.begin() as conn, desk.unit_of_work(connection=conn):
            desk.fire(ref, "start_evaluation", actor=CLERK)
        assert store._heads == remembered
        desk.sign(ref, department="engineering", actor=ENG, opinion="ok")
        assert desk.verify_history(ref)
        with store.engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM audit")).scalar_one()
        assert count == 3
