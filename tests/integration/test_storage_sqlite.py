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


def test_a_database_of_another_revision_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """Never migrate silently: another schema revision is refused, naming the command."""
    path = tmp_path / "old.db"
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '0000'")
    con.commit()
    con.close()
    with pytest.raises(
        ConfigError, match=r"schema revision 0000 but this reqmgmt needs 0005.*reqmgmt db upgrade"
    ):
        SqlStore(f"sqlite:///{path}")


def test_a_database_of_someone_else_is_not_touched(tmp_path: Path) -> None:
    """A database with other tables and no revision is refused, not migrated."""
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="schema revision None but this reqmgmt needs 0005"):
        SqlStore(f"sqlite:///{path}")
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [
        ("invoices",)
    ]


def test_db_cli_upgrades_and_reports_the_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reqmgmt db current URL` and `reqmgmt db upgrade URL`."""
    from reqmgmt.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "current", url]) == 1
    assert "there is no reqmgmt database at" in capsys.readouterr().err
    assert not (tmp_path / "cli.db").exists()
    assert main(["db", "upgrade", url]) == 0
    assert "at revision 0005 (current)" in capsys.readouterr().out
    assert main(["db", "current", url]) == 0
    assert "0005 (current)" in capsys.readouterr().out
    with Desk.open(url, clock=FakeClock()) as desk:
        receive(desk)


def test_the_migrations_create_exactly_the_tables_the_queries_use(tmp_path: Path) -> None:
    """Alembic's comparison of the migrated database with the code's tables finds nothing."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from reqmgmt.storage.sql import metadata

    store = SqlStore(f"sqlite:///{tmp_path / 'cmp.db'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_upgrading_from_0001_fills_the_audit_columns_and_keeps_it_append_only(
    tmp_path: Path,
) -> None:
    """A database written at revision 0001 is refused, upgraded, then reads and reports."""
    import sqlalchemy as sa

    from reqmgmt.storage import migrate

    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # back to 0001: as an older reqmgmt left it
        migrate.downgrade(conn, "0001")
    with pytest.raises(ConfigError, match="schema revision 0001 but this reqmgmt needs 0005"):
        Desk.open(url)
    with engine.begin() as conn:
        migrate.upgrade(conn)
        rows = conn.exec_driver_sql(
            "SELECT version, kind, event, from_state, to_state, at FROM audit ORDER BY version"
        ).all()
    engine.dispose()
    assert [tuple(r)[:5] for r in rows] == [
        (1, "requirement", "receive", None, "received"),
        (2, "requirement", "clarify", "received", "clarifying"),
    ]
    assert rows[0][5].startswith("2026-03-02T09:00:0")  # UTC text, sortable
    with Desk.open(url) as desk:
        assert desk.verify_history(ref)
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET event = 'x'")


def test_each_audit_document_is_the_canonical_json_its_hash_covers(tmp_path: Path) -> None:
    """sha256(doc) = hash for every row: an auditor checks the chain with the database alone."""
    import hashlib

    path = tmp_path / "a.db"
    with Desk.open(f"sqlite:///{path}", clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        desk.sign(ref, department="engineering", actor=ENG, opinion="可以 can do")
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT doc, hash FROM audit ORDER BY ref, version").fetchall()
    assert len(rows) == 3
    for doc, digest in rows:
        assert hashlib.sha256(doc.encode()).hexdigest() == digest


def test_audit_documents_written_by_0_1_0_still_read(tmp_path: Path) -> None:
    """reqmgmt 0.1.0 stored cattrs's form of the event (hash inside): read and verified alike."""
    import json

    from reqmgmt.serialize import unstructure

    path = tmp_path / "old.db"
    with Desk.open(f"sqlite:///{path}", clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        events = desk.history(ref)
    old_docs = [json.dumps(unstructure(e), ensure_ascii=False) for e in events]
    assert all('"hash"' in doc for doc in old_docs)
    with sqlite3.connect(path) as con:  # as 0.1.0 wrote them (the triggers guard only the app)
        # The time column as revision 0002 fills it in (verification compares it).
        ats = [at for (at,) in con.execute("SELECT at FROM audit ORDER BY version")]
        con.execute("DROP TRIGGER audit_no_delete")
        con.execute("DELETE FROM audit")
        con.executemany(
            "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, to_state, at) "
            "VALUES (?, ?, ?, ?, 'requirement', ?, ?, ?, ?)",
            [
                (e.ref, e.version, e.hash, doc, e.event, e.from_state, e.to_state, at)
                for e, doc, at in zip(events, old_docs, ats, strict=True)
            ],
        )
    with Desk.open(f"sqlite:///{path}", clock=FakeClock()) as desk:
        assert desk.history(ref) == events
        assert desk.verify_history(ref)


def test_big_integers_read_back_exactly_after_reopening(tmp_path: Path) -> None:
    """Parsed from the file (no cache): an integer beyond 64 bits stays an exact integer.

    Records hold whole numbers up to 2**53 - 1 (the input policy); the rule
    facts an audit event keeps may be any integer.
    """
    import attrs

    from reqmgmt.testing import make_requirement
    from reqmgmt.testing.contract import make_event

    url = f"sqlite:///{tmp_path / 'big.db'}"
    store = SqlStore(url)
    event = attrs.evolve(make_event("REQ-2026-000001", 1), decisions=({"n": 2**70 + 1},))
    with store.transaction() as tx:
        tx.insert(make_requirement(paused_seconds=2**53 - 1))
        tx.append_audit(event)
    store.close()
    store = SqlStore(url)
    with store.transaction() as tx:
        got = tx.get("REQ-2026-000001")
        trail = tx.audit("REQ-2026-000001")
    store.close()
    assert got is not None
    assert got.paused_seconds == 2**53 - 1
    assert trail[0].decisions == ({"n": 2**70 + 1},)


def test_threads_take_turns_at_the_write_lock_in_arrival_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A release hands the turn to the oldest waiter (no barging, no starving); waits end."""
    import threading
    import time

    from reqmgmt.storage import sql

    queue = sql._WriterQueue()
    order: list[str] = []
    with queue.turn():
        threads = []
        for name in ("first", "second", "third"):

            def wait_turn(name: str = name) -> None:
                with queue.turn():
                    order.append(name)

            t = threading.Thread(target=wait_turn)
            t.start()
            threads.append(t)
            while len(queue._waiting) < len(threads):  # queued before the next one starts
                time.sleep(0.001)
    for t in threads:
        t.join()
    assert order == ["first", "second", "third"]
    assert not queue._busy
    monkeypatch.setattr(sql, "_BUSY_SECONDS", 0.05)
    with queue.turn():
        failed: list[BaseException] = []

        def too_late() -> None:
            try:
                with queue.turn():
                    pass
            except sqlite3.OperationalError as exc:
                failed.append(exc)

        t = threading.Thread(target=too_late)
        t.start()
        t.join()
    assert len(failed) == 1
    assert "database is locked" in str(failed[0])
    assert not queue._busy
    assert len(queue._waiting) == 0


def test_a_thread_that_ends_gives_its_connection_back(tmp_path: Path) -> None:
    """A server with a thread per request (``flask run``) must not use up the pool.

    Each thread keeps its own SQLite connection while it lives; when it ends,
    the connection goes back.  Before, the 16th thread waited for the pool
    (5 + 10 overflow) and failed after its timeout (found by the web app's
    browser test).
    """
    import threading

    with Desk.open(f"sqlite:///{tmp_path / 'threads.db'}") as desk:
        store = desk.store
        assert isinstance(store, SqlStore)
        refs: list[str] = []
        for _ in range(20):
            worker = threading.Thread(target=lambda: refs.append(receive(desk)))
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive()
            assert store.engine.pool.checkedout() <= 1  # type: ignore[attr-defined]
        assert len(refs) == 20
        assert len(desk.query()) == 20
