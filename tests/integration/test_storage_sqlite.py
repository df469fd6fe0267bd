"""The SQLite store: the storage contract suite, durability settings, append-only audit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reqmgmt import ConfigError, Desk, Store
from reqmgmt.storage.sql import SqlStore
from reqmgmt.testing import FakeClock, StoreContract

from ..conftest import CLERK, ENG, MAT, PRO, receive


class TestSqliteStore(StoreContract):
    """The contract suite, unchanged, against SQLite files."""

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "contract.db"

    def make_store(self) -> Store:
        return SqlStore(f"sqlite:///{self.path}")


def test_a_full_requirement_path_survives_reopening(tmp_path: Path) -> None:
    """Commands on a SQLite file; a new Desk on the same file reads and verifies them."""
    url = f"sqlite:///{tmp_path / 'reqmgmt.db'}"
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        for dept, actor in (("engineering", ENG), ("materials", MAT), ("production", PRO)):
            desk.sign(ref, department=dept, actor=actor, opinion="ok")
        desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
    with Desk.open(url, clock=FakeClock()) as desk:
        record = desk.get(ref)
        assert record.state == "accepted"
        assert record.version == 6
        assert desk.verify_history(ref)
        assert desk.get(ref, version=2).state == "evaluating"
        assert [r.ref for r in desk.query(kind="requirement", state="accepted")] == [ref]


def test_audit_rows_cannot_be_changed_or_deleted(tmp_path: Path) -> None:
    """Triggers refuse UPDATE and DELETE on the audit table."""
    path = tmp_path / "a.db"
    with Desk.open(f"sqlite:///{path}", clock=FakeClock()) as desk:
        receive(desk)
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE audit SET hash = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM audit")
    con.close()


def test_pragmas_are_wal_and_full_sync_by_default(tmp_path: Path) -> None:
    """WAL journal, synchronous=FULL unless the URL asks for NORMAL."""
    store = SqlStore(f"sqlite:///{tmp_path / 'p.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()
    normal = SqlStore(f"sqlite:///{tmp_path / 'n.db'}?synchronous=NORMAL")
    with normal.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    normal.close()
    with pytest.raises(ConfigError, match="synchronous must be"):
        SqlStore(f"sqlite:///{tmp_path / 'x.db'}?synchronous=OFF")


def test_a_database_with_another_schema_is_refused(tmp_path: Path) -> None:
    """Never migrate silently: an older schema version is refused with what to do."""
    path = tmp_path / "old.db"
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("UPDATE reqmgmt_schema SET version = 0")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="schema version 0 but this reqmgmt needs 1"):
        SqlStore(f"sqlite:///{path}")
