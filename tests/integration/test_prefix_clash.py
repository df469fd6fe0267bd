"""A table prefix whose names clash with the host's own objects is a ConfigError, nothing made.

In a database shared with the host (``Desk.open(engine=..., table_prefix=...)``)
the names of the indexes, constraints, triggers and functions reqmgmt's schema
creates are checked against the database before anything is created: the
driver's error half-way (PostgreSQL: ``relation ... already exists``; SQLite:
``index ... already exists``, which came out as StoreUnavailable) or, worse, a
host's PostgreSQL function silently replaced, becomes one ConfigError that
names the clash and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reqmgmt import ConfigError, Desk
from reqmgmt.storage import migrate

from ..conftest import CLERK, CUSTOMER
from .conftest import fresh_database

HOST_TABLE = "CREATE TABLE orders (id INTEGER PRIMARY KEY, due TEXT, n INTEGER)"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        made = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
        yield made
        made.dispose()
        return
    with fresh_database("reqmgmt_clash") as url:
        made = sa.create_engine(url)
        yield made
        made.dispose()


def host_objects(engine: sa.Engine) -> set[str]:
    """Every table and index name of the database."""
    inspector = sa.inspect(engine)
    names = set(inspector.get_table_names())
    for table in list(names):
        names |= {str(i["name"]) for i in inspector.get_indexes(table)}
    return names


def refused(engine: sa.Engine, prefix: str, *names: str) -> ConfigError:
    """Desk.open refuses with a ConfigError naming ``names``; the database is as it was."""
    before = host_objects(engine)
    with pytest.raises(ConfigError) as info:
        Desk.open(engine=engine, table_prefix=prefix)
    err = info.value
    for name in names:
        assert repr(name) in str(err)
    assert "already (not reqmgmt's)" in str(err)
    assert "nothing was created" in str(err)
    assert "choose a table_prefix other than" in str(err) or "choose a table_prefix (" in str(err)
    assert host_objects(engine) == before
    return err


def works_with(engine: sa.Engine, prefix: str) -> None:
    """Another prefix beside the host's objects works, and opens again."""
    with Desk.open(engine=engine, table_prefix=prefix) as desk:
        ref = desk.requirements.receive(customer=CUSTOMER, description="支架", actor=CLERK).ref
    with Desk.open(engine=engine, table_prefix=prefix, create=False) as desk:
        assert desk.get(ref).version == 1


def test_a_host_index_with_one_of_reqmgmts_index_names(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(HOST_TABLE)
        conn.exec_driver_sql("CREATE INDEX rq_ix_records_due_at ON orders (due)")
    refused(engine, "rq_", "rq_ix_records_due_at")
    works_with(engine, "rq2_")


def test_a_host_index_with_the_name_of_a_unique_constraint(engine: sa.Engine) -> None:
    """PostgreSQL keeps a UNIQUE constraint as an index of its name; SQLite keeps
    constraint names per table (no clash there)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(HOST_TABLE)
        conn.exec_driver_sql("CREATE INDEX rq_uq_audit_ref_version ON orders (n)")
    if engine.dialect.name == "postgresql":
        refused(engine, "rq_", "rq_uq_audit_ref_version")
    else:
        works_with(engine, "rq_")


def test_every_clash_is_named_at_once_without_a_prefix(engine: sa.Engine) -> None:
    """No prefix: the host's index names of reqmgmt's plain schema; the advice is a prefix."""
    with engine.begin() as conn:
        conn.exec_driver_sql(HOST_TABLE)
        conn.exec_driver_sql("CREATE INDEX ix_outbox_ref ON orders (n)")
        conn.exec_driver_sql("CREATE INDEX ix_summary_group ON orders (due)")
    err = refused(engine, "", "ix_outbox_ref", "ix_summary_group")
    assert "choose a table_prefix (e.g. 'rq_')" in str(err)
    works_with(engine, "rq_")


def test_a_host_function_of_the_prefixed_name_is_not_replaced(pg_url: str) -> None:
    """PostgreSQL: CREATE OR REPLACE FUNCTION would have replaced the host's silently."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION rq_reqmgmt_audit_append_only() RETURNS integer AS $$ "
            "SELECT 42 $$ LANGUAGE sql"
        )
    refused(engine, "rq_", "rq_reqmgmt_audit_append_only")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT rq_reqmgmt_audit_append_only()").scalar() == 42
    works_with(engine, "rq2_")
    engine.dispose()


def test_a_host_trigger_of_the_prefixed_name(tmp_path: Path) -> None:
    """SQLite: trigger names are the database's, not the table's (on PostgreSQL a
    trigger belongs to its table, reqmgmt's own)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(HOST_TABLE)
        conn.exec_driver_sql(
            "CREATE TRIGGER rq_audit_no_update BEFORE UPDATE ON orders "
            "BEGIN SELECT RAISE(ABORT, 'the host''s'); END"
        )
    refused(engine, "rq_", "rq_audit_no_update")
    works_with(engine, "rq2_")
    engine.dispose()


def test_a_host_view_or_sequence_takes_an_index_name(engine: sa.Engine) -> None:
    """A view (and on PostgreSQL a sequence) shares the namespace of tables and indexes."""
    with engine.begin() as conn:
        conn.exec_driver_sql(HOST_TABLE)
        conn.exec_driver_sql("CREATE VIEW rq_ix_outbox_ref AS SELECT id FROM orders")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("CREATE SEQUENCE rq_ix_audit_at")
    names = ["rq_ix_outbox_ref"]
    if engine.dialect.name == "postgresql":
        names.append("rq_ix_audit_at")
    refused(engine, "rq_", *names)


def test_an_upgrade_of_reqmgmts_own_schema_finds_no_clash(engine: sa.Engine) -> None:
    """Names of an earlier revision (a trigger re-created, the function) are reqmgmt's own:
    a database taken back to 0001 upgrades to the head."""
    with engine.begin() as conn:
        conn.exec_driver_sql(HOST_TABLE)
    works_with(engine, "rq_")
    with engine.begin() as conn:
        migrate.downgrade(conn, "0001", prefix="rq_")
    with engine.begin() as conn:
        assert migrate.current_revision(conn, "rq_") == "0001"
        migrate.upgrade(conn, prefix="rq_")
        assert migrate.current_revision(conn, "rq_") == migrate.HEAD_REVISION


def test_the_planned_names_are_read_from_the_migrations() -> None:
    """Every table, index and named constraint of the prefixed schema is planned, with the
    PostgreSQL function and triggers (on reqmgmt's audit table) and SQLite's triggers."""
    from reqmgmt.storage.sql import build_metadata

    metadata = build_metadata("rq_")
    expected = set(metadata.tables) | {
        str(i.name) for t in metadata.tables.values() for i in t.indexes
    }
    for dialect, extra in (
        ("postgresql", {("function", "rq_reqmgmt_audit_append_only"),
                        ("trigger", "audit_append_only"), ("trigger", "audit_no_truncate")}),
        ("sqlite", {("trigger", "rq_audit_no_update"), ("trigger", "rq_audit_no_delete")}),
    ):  # fmt: skip
        planned = migrate.planned_names(dialect, None, "head", "rq_")
        names = {name for kind, name, _, _ in planned if kind in ("table", "index")}
        assert expected <= names | {"rq_alembic_version"}
        assert extra <= {(kind, name) for kind, name, _, _ in planned}
