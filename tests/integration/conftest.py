"""Integration fixtures: a fresh PostgreSQL database per test when a server is given."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

URL = os.environ.get("REQMGMT_TEST_POSTGRES", "")


def _require_server() -> str:
    if not URL:
        reason = "REQMGMT_TEST_POSTGRES is not set (.ci/run starts a server and sets it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
        pytest.skip(reason)
    return URL


@contextmanager
def fresh_database(prefix: str = "reqmgmt") -> Iterator[str]:
    """The URL of a new database on the test server, dropped when the block ends.

    Skipped with the reason when no server is given; failed under CI=true.
    """
    base = _require_server()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards (see :func:`fresh_database`)."""
    with fresh_database() as url:
        yield url
