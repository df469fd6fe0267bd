"""The PostgreSQL store: the storage contract suite and append-only audit, on a real server.

The server's URL comes from REQMGMT_TEST_POSTGRES (``.ci/run`` starts a
throwaway server and sets it).  Without it the tests are skipped with the
reason, except under CI=true, where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reqmgmt import Desk, Store
from reqmgmt.storage.sql import SqlStore, metadata
from reqmgmt.testing import FakeClock, StoreContract

from ..conftest import CLERK, receive

URL = os.environ.get("REQMGMT_TEST_POSTGRES", "")


def _require_server() -> str:
    if not URL:
        reason = "REQMGMT_TEST_POSTGRES is not set (.ci/run starts a server and sets it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
        pytest.skip(reason)
    return URL


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    base = _require_server()
    name = f"reqmgmt_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


class TestPostgresStore(StoreContract):
    """The contract suite, unchanged, against PostgreSQL."""

    @pytest.fixture(autouse=True)
    def _url(self, pg_url: str) -> None:
        self.url = pg_url

    def make_store(self) -> Store:
        return SqlStore(self.url)


def test_audit_rows_cannot_be_changed_or_deleted(pg_url: str) -> None:
    """A trigger refuses UPDATE and DELETE on the audit table."""
    with Desk.open(pg_url, clock=FakeClock()) as desk:
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="?")
        assert desk.verify_history(ref)
        store = desk.store
        assert isinstance(store, SqlStore)
        audit = metadata.tables["audit"]
        for statement in (audit.update().values(hash="x"), audit.delete()):
            with (
                pytest.raises(sa.exc.ProgrammingError, match="append-only"),
                store.engine.begin() as conn,
            ):
                conn.execute(statement)
        assert desk.verify_history(ref)
