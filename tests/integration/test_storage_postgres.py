"""The PostgreSQL store: the storage contract suite and append-only audit, on a real server.

The server's URL comes from REQMGMT_TEST_POSTGRES (``.ci/run`` starts a
throwaway server and sets it).  Without it the tests are skipped with the
reason, except under CI=true, where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reqmgmt import Desk, Store
from reqmgmt.storage.sql import SqlStore, metadata
from reqmgmt.testing import FakeClock, StoreContract

from ..conftest import CLERK, receive


class TestPostgresStore(StoreContract):
    """The contract suite, unchanged, against PostgreSQL."""

    @pytest.fixture(autouse=True)
    def _url(self, pg_url: str) -> None:
        self.url = pg_url

    def make_store(self) -> Store:
        return SqlStore(self.url)


def test_audit_rows_cannot_be_changed_deleted_or_truncated(pg_url: str) -> None:
    """Triggers refuse UPDATE, DELETE and TRUNCATE on the audit table."""
    with Desk.open(pg_url, clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="?")
        assert desk.verify_history(ref)
        store = desk.store
        assert isinstance(store, SqlStore)
        audit = metadata.tables["audit"]
        refused = (audit.update().values(hash="x"), audit.delete(), sa.text("TRUNCATE audit"))
        for statement in refused:
            with (
                pytest.raises(sa.exc.ProgrammingError, match="append-only"),
                store.engine.begin() as conn,
            ):
                conn.execute(statement)
        assert desk.verify_history(ref)


def test_workers_opening_a_new_database_at_once_all_succeed(pg_url: str) -> None:
    """Eight stores open one empty database together: one creates the schema, none fails."""
    import threading

    from reqmgmt.storage.sql import SqlStore

    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            barrier.wait()
            SqlStore(pg_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not [t for t in threads if t.is_alive()], "stores still waiting on each other"
    assert errors == []


def test_each_audit_document_is_the_canonical_json_its_hash_covers(pg_url: str) -> None:
    """sha256(doc) = hash, checked by PostgreSQL itself: the chain is auditable in SQL."""
    with Desk.open(pg_url, clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="哪种表面处理? which finish?")
        store = desk.store
        assert isinstance(store, SqlStore)
        with store.engine.begin() as conn:
            rows = conn.exec_driver_sql(
                "SELECT version, encode(sha256(convert_to(doc, 'UTF8')), 'hex') = hash "
                "FROM audit ORDER BY version"
            ).all()
        assert [tuple(r) for r in rows] == [(1, True), (2, True)]
        assert desk.verify_history(ref)
