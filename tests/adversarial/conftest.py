"""Adversarial suite set-up: a fresh store per example on memory, SQLite and PostgreSQL.

PostgreSQL follows tests/integration/conftest.py: one database per test
function (dropped afterwards), skipped with the reason when no server is
given and failed under CI=true.  Within it each hypothesis example gets its
own schema, which is much cheaper than a database per example.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reqmgmt import Desk
from tests.conftest import FIGURE
from tests.integration.conftest import fresh_database

BACKENDS = ("memory", "sqlite", "postgresql")


class Stores:
    """Hands out the URL of a new, empty store of one backend for each example."""

    def __init__(self, backend: str, tmp_path: Path, pg_base: str | None = None) -> None:
        self.backend = backend
        self._tmp = tmp_path
        self._pg_base = pg_base
        self._count = itertools.count()
        self._template: Path | None = None

    def fresh(self) -> str:
        """The URL of an empty store nobody else uses."""
        n = next(self._count)
        if self.backend == "memory":
            return "memory://"
        if self.backend == "sqlite":
            path = self._tmp / f"example-{n}.db"
            if self._template is None:
                # Created (and migrated) once by the library, then copied.
                self._template = self._tmp / "template.db"
                Desk.open(f"sqlite:///{self._template}").close()
            shutil.copyfile(self._template, path)
            # Durability is not under test here: no fsync per commit.
            return f"sqlite:///{path}?synchronous=NORMAL"
        assert self._pg_base is not None
        schema = f"example_{n}"
        engine = sa.create_engine(self._pg_base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine.dispose()
        url = sa.engine.make_url(self._pg_base)
        query = {**url.query, "options": f"-csearch_path={schema}"}
        return url.set(query=query).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """New empty stores of one backend (memory, a SQLite file, a PostgreSQL schema)."""
    if request.param != "postgresql":
        yield Stores(request.param, tmp_path)
        return
    with fresh_database("reqmgmt_adv") as url:
        yield Stores("postgresql", tmp_path, url)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines for the end-of-run summary (calls tried, refusals, escapes).

    Handed on as the test's user properties, which reach the main process
    when the suite runs on several workers (pytest-xdist); tests/conftest.py
    prints them at the end of the run.
    """
    lines: list[str] = []
    yield lines
    request.node.user_properties.extend((FIGURE, line) for line in lines)
