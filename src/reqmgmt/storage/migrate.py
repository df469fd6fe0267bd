"""Schema migrations with Alembic, shipped in the package (``reqmgmt db``).

A new, empty database is created at the current schema when a store first
opens it.  An existing database is never changed silently: a store refuses
one whose revision is not the current one and says to run
``reqmgmt db upgrade URL``.

Opening a database already at :data:`HEAD_REVISION` needs neither Alembic
nor Mako (a tenth of a second of imports): :func:`schema_state` reads the
revision with one query, and Alembic is imported only to migrate.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "VERSION_TABLE",
    "check_names_free",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_empty",
    "prefixed",
    "schema_state",
    "upgrade",
    "upgrade_sql",
]

#: The schema revision this reqmgmt needs: the last migration script's.  A
#: test compares it with the scripts, so a new migration must update it.
HEAD_REVISION = "0005"

_LOCATION = Path(__file__).with_name("migrations")

#: Alembic's table of the stored revision (its default name), after the table prefix.
VERSION_TABLE = "alembic_version"
_VERSION_TABLE = VERSION_TABLE


def _config(connection: Connection | None = None, prefix: str = "") -> Config:
    from alembic.config import Config

    from .sql import check_prefix

    cfg = Config()
    cfg.set_main_option("script_location", str(_LOCATION))
    cfg.attributes["table_prefix"] = check_prefix(prefix)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def prefixed(name: str) -> str:
    """``name`` with the table prefix of the migration running now (for migration scripts).

    Every table, index, constraint, trigger and function a migration names
    goes through it, so a store with ``table_prefix="rq_"`` migrates its own
    ``rq_records``, ``rq_alembic_version``... beside the host's tables.
    """
    from alembic import context

    return str(context.config.attributes.get("table_prefix", "")) + name


def head_revision() -> str:
    """The head revision of the migration scripts (reads them with Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection, prefix: str = "") -> str | None:
    """The database's schema revision (``None`` for a database never migrated)."""
    return schema_state(connection, prefix)[1]


def schema_state(
    connection: Connection, prefix: str = "", *, ours: Collection[str] | None = None
) -> tuple[bool, str | None]:
    """``(empty, revision)``: whether the database has no table, and its stored revision.

    ``ours``: the table names reqmgmt uses (with the prefix); given, the
    database is empty when none of them (nor the version table) is there,
    whatever else it holds (a database shared with the host).  One look at
    the table names and, when Alembic's version table is there, one query;
    no Alembic import.
    """
    from .sql import check_prefix

    version_table = check_prefix(prefix) + VERSION_TABLE
    names = sa.inspect(connection).get_table_names()
    if version_table not in names:
        if ours is not None:
            return not set(names) & set(ours), None
        return not names, None
    rows = connection.exec_driver_sql(f"SELECT version_num FROM {version_table}").all()
    # Several rows would be several heads: reqmgmt's history is linear.
    return False, rows[0][0] if len(rows) == 1 else None


def upgrade(connection: Connection, revision: str = "head", *, prefix: str = "") -> None:
    """Bring the schema to ``revision`` (default: the current one) inside ``connection``.

    First :func:`check_names_free`: a name the migration would create that
    the database holds already (a host's index...) is a ConfigError, and
    nothing is created.
    """
    from alembic import command

    check_names_free(connection, revision, prefix=prefix)
    command.upgrade(_config(connection, prefix), revision)


# --- names the migrations create, and the database's own -----------------------------------
# What a migration creates is read from the SQL Alembic writes for it offline (the same
# scripts, no connection), so a new migration is checked without a list to keep up.
_NAME = r'"?([A-Za-z_][A-Za-z0-9_$]*)"?'
_STATEMENT = re.compile(
    r"\b(CREATE|DROP)\s+(?:(OR\s+REPLACE)\s+)?(?:UNIQUE\s+)?"
    r"(TABLE|INDEX|VIEW|SEQUENCE|FUNCTION|TRIGGER)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    + _NAME
    + r"|\bCONSTRAINT\s+"
    + _NAME,
    re.IGNORECASE,
)
_TRIGGER_TABLE = re.compile(r"\s+ON\s+" + _NAME, re.IGNORECASE)
#: Kinds that share one namespace with tables and indexes (pg_class; SQLite's schema).
_RELATIONS = frozenset({"table", "index", "view", "sequence", "constraint"})


@functools.lru_cache(maxsize=32)
def planned_names(
    dialect: str, start: str | None, revision: str, prefix: str
) -> tuple[tuple[str, str, str, bool], ...]:
    """``(kind, name, on_table, replaces)`` of each object the migration from ``start`` to
    ``revision`` creates on ``dialect`` (lower-case kinds; ``on_table`` for a trigger).

    An object of an earlier revision the migration drops and makes again (a trigger
    re-created) is left out: its name is reqmgmt's.
    ``replaces``: ``CREATE OR REPLACE`` (a function).
    """
    from alembic import command

    if start is not None and start == revision:
        return ()
    out = io.StringIO()
    cfg = _config(prefix=prefix)
    cfg.attributes["dialect"] = dialect
    cfg.output_buffer = out
    command.upgrade(cfg, f"{start}:{revision}" if start else revision, sql=True)
    text = out.getvalue()
    created: dict[tuple[str, str], tuple[str, str, str, bool]] = {}
    dropped: set[tuple[str, str]] = set()
    for m in _STATEMENT.finditer(text):
        if m.group(5) is not None:  # CONSTRAINT name
            kind, name, verb = "constraint", m.group(5), "CREATE"
        else:
            verb, kind, name = m.group(1).upper(), m.group(3).lower(), m.group(4)
        key = (kind, name.lower())
        if verb == "DROP":
            if key not in created:  # an earlier revision's: the database's own name, gone
                dropped.add(key)
            continue
        if key in dropped or key in created:  # made again after a drop
            continue
        on = ""
        if kind == "trigger":
            found = _TRIGGER_TABLE.search(text, m.end())
            on = found.group(1) if found else ""
        created[key] = (kind, name, on, bool(m.group(2)))
    # Alembic's version table is written first offline: checked like the others.
    return tuple(created.values())


def _existing(connection: Connection) -> dict[str, set[str]]:
    """The database's names by namespace: ``relations`` (tables, indexes, views, sequences;
    on PostgreSQL types too), ``functions``, ``triggers`` (``table.trigger`` on PostgreSQL,
    where a trigger belongs to its table)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        in_schema = "n.nspname = current_schema()"
        relations = connection.exec_driver_sql(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {in_schema} "
            "UNION SELECT t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = t.typnamespace WHERE {in_schema}"
        ).scalars()
        functions = connection.exec_driver_sql(
            "SELECT p.proname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = p.pronamespace WHERE {in_schema}"
        ).scalars()
        triggers = connection.exec_driver_sql(
            "SELECT c.relname || '.' || t.tgname FROM pg_catalog.pg_trigger t "
            "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE NOT t.tgisinternal AND {in_schema}"
        ).scalars()
        return {
            "relations": {str(n).lower() for n in relations},
            "functions": {str(n).lower() for n in functions},
            "triggers": {str(n).lower() for n in triggers},
        }
    if dialect == "sqlite":
        rows = connection.exec_driver_sql("SELECT type, name FROM sqlite_master").all()
        return {
            "relations": {str(n).lower() for t, n in rows if t != "trigger"},
            "functions": set(),
            "triggers": {str(n).lower() for t, n in rows if t == "trigger"},
        }
    # Another database: its own names from SQLAlchemy's inspector (tables, views, indexes).
    inspector = sa.inspect(connection)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    for table in inspector.get_table_names():
        names |= {str(i["name"]) for i in inspector.get_indexes(table) if i.get("name")}
    return {"relations": {n.lower() for n in names}, "functions": set(), "triggers": set()}


def check_names_free(connection: Connection, revision: str = "head", *, prefix: str = "") -> None:
    """ConfigError if a table, index, constraint, trigger or function the migration to
    ``revision`` creates has a name the database holds already (a host's own, in a
    database shared through ``Desk.open(engine=..., table_prefix=...)``).

    The database's driver would refuse the migration half-way (or, for a
    PostgreSQL function, replace the host's silently): this says which
    names clash and what to do, before anything is created.
    """
    from ..errors import ConfigError
    from .sql import check_prefix

    prefix = check_prefix(prefix)
    dialect = connection.dialect.name
    start = schema_state(connection, prefix)[1]
    existing = _existing(connection)
    postgres = dialect == "postgresql"
    clashes = []
    for kind, name, on, replaces in planned_names(dialect, start, revision, prefix):
        key = name.lower()
        if kind in _RELATIONS:
            if kind == "constraint" and not postgres:
                continue  # SQLite: a constraint's name is its table's own
            taken = key in existing["relations"]
        elif kind == "function":
            # Replacing reqmgmt's own function of an earlier revision is the point.
            taken = key in existing["functions"] and not (replaces and start is not None)
        else:  # a trigger: of its table on PostgreSQL, of the database on SQLite
            taken = (f"{on.lower()}.{key}" if postgres else key) in existing["triggers"]
        if taken:
            where = f" on {on}" if kind == "trigger" and postgres else ""
            clashes.append(f"{kind} {name!r}{where}")
    if clashes:
        suggestion = (
            f"a table_prefix other than {prefix!r} (e.g. {prefix.rstrip('_') + '2_'!r})"
            if prefix
            else "a table_prefix (e.g. 'rq_'), or a database of reqmgmt's own"
        )
        raise ConfigError(
            f"database schema (table_prefix {prefix!r})",
            f"reqmgmt would create {', '.join(clashes)}, but the database has "
            f"{'that name' if len(clashes) == 1 else 'those names'} already (not reqmgmt's); "
            f"nothing was created: choose {suggestion}, or rename the database's own",
        )


def upgrade_sql(dialect: str, out: TextIO, start: str | None = None, *, prefix: str = "") -> None:
    """Write the SQL that brings a ``dialect`` database from ``start`` to the head.

    Alembic's offline mode: nothing connects; ``start`` ``None`` is an empty
    database.  For a DBA to review and run (``reqmgmt db upgrade URL --sql``).
    """
    from alembic import command

    cfg = _config(prefix=prefix)
    cfg.attributes["dialect"] = dialect
    cfg.output_buffer = out
    command.upgrade(cfg, f"{start}:head" if start else "head", sql=True)


def downgrade(connection: Connection, revision: str, *, prefix: str = "") -> None:
    """Take the schema back to ``revision`` (tests of upgrades; data added since may go)."""
    from alembic import command

    command.downgrade(_config(connection, prefix), revision)


def is_empty(connection: Connection) -> bool:
    """No table at all (a new database)."""
    return not sa.inspect(connection).get_table_names()
