"""Commands inside the host's own transaction: Desk.open(engine=...) and desk.unit_of_work.

Every test runs on SQLite and on PostgreSQL (REQMGMT_TEST_POSTGRES; under
CI=true a missing server fails the PostgreSQL half, see conftest.py).  The
host's engine is a plain SQLAlchemy engine, as an ERP makes it, with a table
of its own (``orders``) written in the same transaction as the commands.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reqmgmt import AuditEvent, ConfigError, ConflictError, Desk, InvalidTransition, Record
from reqmgmt.plugins import hookimpl
from reqmgmt.testing import FakeClock, RecordingNotifier

from ..conftest import CLERK, receive
from .conftest import fresh_database

HOST = sa.MetaData()
ORDERS = sa.Table(
    "orders",
    HOST,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("requirement", sa.String(64), nullable=False),
)


class Observer:
    """Records every ``reqmgmt_after_transition`` call."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    @hookimpl
    def reqmgmt_after_transition(self, record: Record, audit_event: AuditEvent) -> None:
        self.seen.append((record.ref, record.version))


@pytest.fixture(params=["sqlite", "postgresql"])
def host_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The host's engine (its own settings, nothing of reqmgmt's), with its ``orders`` table."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
        HOST.create_all(engine)
        yield engine
        engine.dispose()
        return
    with fresh_database("reqmgmt_host") as url:
        engine = sa.create_engine(url)
        HOST.create_all(engine)
        yield engine
        engine.dispose()


class Host:
    def __init__(self, engine: sa.Engine, prefix: str = "") -> None:
        self.engine = engine
        self.prefix = prefix
        self.notifier = RecordingNotifier()
        self.observer = Observer()
        self.desk = Desk.open(
            engine=engine,
            table_prefix=prefix,
            clock=FakeClock(),
            plugins=[self.notifier, self.observer],
        )

    def heard(self) -> tuple[list[str], list[tuple[str, int]]]:
        """The notifications delivered and the observer calls so far."""
        return self.notifier.keys(), self.observer.seen

    def counts(self) -> dict[str, int]:
        """Rows of every table the unit writes (reqmgmt's and the host's)."""
        names = ("records", "audit", "outbox")
        with self.engine.connect() as conn:
            found = {
                name: conn.execute(
                    sa.text(f"SELECT count(*) FROM {self.prefix}{name}")
                ).scalar_one()
                for name in names
            }
            found["orders"] = conn.execute(
                sa.select(sa.func.count()).select_from(ORDERS)
            ).scalar_one()
        return found


NOTHING = {"records": 0, "audit": 0, "outbox": 0, "orders": 0}


@pytest.fixture
def host(host_engine: sa.Engine) -> Iterator[Host]:
    h = Host(host_engine, "rq_")
    yield h
    h.desk.close()


def _unit(host: Host, conn: sa.Connection) -> tuple[str, Any]:
    """A host write and two commands (receive, clarify) in the unit on ``conn``."""
    with host.desk.unit_of_work(connection=conn) as unit:
        ref = receive(host.desk)
        conn.execute(ORDERS.insert().values(id=1, requirement=ref))
        host.desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
    return ref, unit


class Stop(Exception):
    pass


def _rolled_back(host: Host) -> None:
    with host.engine.begin() as conn:
        _unit(host, conn)
        assert host.heard() == ([], [])
        raise Stop


def test_rolled_back_leaves_nothing_and_delivers_nothing(host: Host) -> None:
    with pytest.raises(Stop):
        _rolled_back(host)
    assert host.counts() == NOTHING
    assert host.heard() == ([], [])
    # What a worker would deliver later: nothing either.
    assert host.desk.dispatch().delivered == 0


def test_committed_all_three_are_there_verified_and_delivered_once(host: Host) -> None:
    with host.engine.begin() as conn:
        ref, unit = _unit(host, conn)
        # Still inside the host's transaction: nothing observed or delivered yet.
        assert host.heard() == ([], [])
        assert unit.pending == 2
    counts = host.counts()
    assert (counts["records"], counts["audit"], counts["orders"]) == (1, 2, 1)
    assert counts["outbox"] >= 1
    assert host.desk.verify_history(ref)
    assert host.desk.get(ref).state == "clarifying"
    assert host.observer.seen == [(ref, 1), (ref, 2)]
    sent = host.notifier.keys()
    assert len(sent) == len(set(sent)) == counts["outbox"]
    assert host.desk.dispatch().delivered == 0  # delivered after the commit, once


def test_a_failing_host_write_after_the_commands_leaves_nothing(host: Host) -> None:
    with host.engine.begin() as conn:
        conn.execute(ORDERS.insert().values(id=1, requirement="older order"))
    with pytest.raises(sa.exc.IntegrityError), host.engine.begin() as conn:
        _unit(host, conn)  # its order 1 is taken
    assert host.counts() == {**NOTHING, "orders": 1}
    assert host.heard() == ([], [])


def test_a_failing_command_leaves_the_unit_as_before_it(host: Host) -> None:
    with host.engine.begin() as conn, host.desk.unit_of_work(connection=conn):
        ref = receive(host.desk)
        with pytest.raises(InvalidTransition):
            host.desk.fire(ref, "no_such_event", actor=CLERK)
        with pytest.raises(ConflictError):
            host.desk.fire(ref, "clarify", actor=CLERK, note="?", expected_version=7)
        host.desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        conn.execute(ORDERS.insert().values(id=1, requirement=ref))
    assert host.desk.get(ref).version == 2
    assert host.desk.verify_history(ref)
    assert host.observer.seen == [(ref, 1), (ref, 2)]


def test_a_host_savepoint_rolled_back_drops_its_commands_and_their_steps(host: Host) -> None:
    with host.engine.begin() as conn, host.desk.unit_of_work(connection=conn):
        ref = receive(host.desk)
        savepoint = conn.begin_nested()
        host.desk.fire(ref, "clarify", actor=CLERK, note="?")
        savepoint.rollback()
    assert host.desk.get(ref).version == 1
    assert host.observer.seen == [(ref, 1)]
    assert host.desk.verify_history(ref)


def test_a_host_savepoint_taken_before_the_unit_and_rolled_back_drops_everything(
    host: Host,
) -> None:
    """The host's savepoint predates the unit: all its commands go, and nothing is observed."""
    with host.engine.begin() as conn:
        conn.execute(ORDERS.insert().values(id=1, requirement="kept"))
        savepoint = conn.begin_nested()
        with host.desk.unit_of_work(connection=conn):
            ref = receive(host.desk)
            host.desk.fire(ref, "clarify", actor=CLERK, note="?")
        savepoint.rollback()
    assert host.counts() == {**NOTHING, "orders": 1}
    assert host.heard() == ([], [])


def test_a_command_from_another_thread_is_refused_inside_a_unit(host: Host) -> None:
    """asyncio.to_thread copies the context (and the open unit) into a worker thread: refused."""
    import contextvars
    import threading

    errors: list[BaseException] = []
    with host.engine.begin() as conn, host.desk.unit_of_work(connection=conn):
        ref = receive(host.desk)
        context = contextvars.copy_context()

        def worker() -> None:
            try:
                context.run(host.desk.fire, ref, "clarify", actor=CLERK, note="?")
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert isinstance(errors[0], ConfigError)
    assert "another thread" in str(errors[0])
    assert host.desk.get(ref).version == 1
    assert host.desk.verify_history(ref)


def test_commands_outside_a_unit_run_in_their_own_transactions(host: Host) -> None:
    ref = receive(host.desk)
    host.desk.fire(ref, "clarify", actor=CLERK, note="?")
    assert host.desk.verify_history(ref)
    assert host.observer.seen == [(ref, 1), (ref, 2)]
    assert host.counts()["records"] == 1


def test_misuse_is_refused_and_writes_nothing(host: Host, tmp_path: Path) -> None:
    desk = host.desk
    with host.engine.connect() as conn:
        if host.engine.dialect.name == "sqlite":  # autobegin: a statement begins one
            with pytest.raises(ConfigError, match="no transaction begun"):
                desk.unit_of_work(connection=conn).__enter__()
    with pytest.raises(ConfigError, match="a SQLAlchemy Connection is needed"):
        desk.unit_of_work(connection=host.engine).__enter__()  # type: ignore[arg-type]
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.begin() as conn, pytest.raises(ConfigError, match="of another engine"):
        desk.unit_of_work(connection=conn).__enter__()
    other.dispose()
    with host.engine.begin() as conn, desk.unit_of_work(connection=conn):
        with pytest.raises(ConfigError, match="units do not nest"):
            desk.unit_of_work(connection=conn).__enter__()
        with pytest.raises(ConfigError, match="delivery runs after the host's commit"):
            desk.dispatch()
        conn.commit()  # the host ends its transaction inside the block
        with pytest.raises(ConfigError, match="has committed already"):
            receive(desk)
    assert host.counts() == NOTHING
    with Desk.open("memory://") as memory, pytest.raises(ConfigError, match="cannot join"):
        memory.unit_of_work(connection=conn).__enter__()


def test_the_table_prefix_keeps_reqmgmt_beside_the_hosts_own_tables(
    host_engine: sa.Engine,
) -> None:
    """With ``rq_``, a host table named ``records`` is neither used nor touched."""
    with host_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE records (id INTEGER PRIMARY KEY, what TEXT)")
        conn.exec_driver_sql("INSERT INTO records VALUES (1, 'the host''s')")
    host = Host(host_engine, "rq_")
    ref = receive(host.desk)
    assert host.desk.verify_history(ref)
    names = set(sa.inspect(host_engine).get_table_names())
    assert {"rq_records", "rq_audit", "rq_outbox", "rq_sequences", "rq_alembic_version"} <= names
    assert "alembic_version" not in names
    with host_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT what FROM records").all() == [("the host's",)]
    # The audit rows stay append-only under their prefixed name; the report reads them.
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), host_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE rq_audit SET hash = 'x'")
    assert host.desk.report().counts
    host.desk.close()
    # Opened again: found at the current revision, not created twice.
    again = Host(host_engine, "rq_")
    assert again.desk.get(ref).ref == ref
    again.desk.close()
    # Without the prefix the host's own ``records`` table is not taken for reqmgmt's.
    with pytest.raises(ConfigError, match="schema revision None"):
        Desk.open(engine=host_engine)


@pytest.mark.parametrize(
    "prefix",
    ["RQ_", "rq-", "1rq", "rq_; drop table x", "r" * 21, " rq", "rq\n", 5, "sqlite_rq_"],
)
def test_a_table_prefix_outside_the_allow_list_is_refused(prefix: Any, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    with pytest.raises(ConfigError, match="lower-case ASCII letters"):
        Desk.open(engine=engine, table_prefix=prefix)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


def test_engine_and_url_together_are_refused(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    with pytest.raises(ConfigError, match="not both"):
        Desk.open(f"sqlite:///{tmp_path / 'x.db'}", engine=engine)
    with pytest.raises(ConfigError, match="needs a SQL store"):
        Desk.open("memory://", table_prefix="rq_")
    engine.dispose()


def test_a_commit_that_fails_in_the_database_delivers_nothing(tmp_path: Path) -> None:
    """PostgreSQL: a deferred constraint fails at COMMIT, after the commands ran."""
    with fresh_database("reqmgmt_host") as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql(
                "CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES "
                "parents (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        HOST.create_all(engine)
        host = Host(engine)

        def unit_then_orphan() -> None:
            with engine.begin() as conn:
                _unit(host, conn)
                conn.exec_driver_sql("INSERT INTO children VALUES (1, 42)")  # no parent 42

        with pytest.raises(sa.exc.IntegrityError):
            unit_then_orphan()
        assert host.counts() == NOTHING
        assert host.heard() == ([], [])
        host.desk.close()
        engine.dispose()


def test_the_prefixed_migrations_make_exactly_the_prefixed_tables(tmp_path: Path) -> None:
    """A database migrated with ``rq_`` and build_metadata("rq_"): Alembic finds no difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from reqmgmt.storage.sql import build_metadata

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    Desk.open(engine=engine, table_prefix="rq_").close()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "rq_alembic_version"})
        assert compare_metadata(context, build_metadata("rq_")) == []
    engine.dispose()


def test_a_host_engine_in_autocommit_is_refused(tmp_path: Path) -> None:
    """Each statement its own transaction would leave a refused import half written."""
    for n, engine in enumerate(
        (
            sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", isolation_level="AUTOCOMMIT"),
            sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}").execution_options(
                isolation_level="AUTOCOMMIT"
            ),
        )
    ):
        with pytest.raises(ConfigError, match="isolation_level 'AUTOCOMMIT'"):
            Desk.open(engine=engine, table_prefix="rq_")
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == [], n  # nothing created
        engine.dispose()
