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
    """Bring the schema to ``revision`` (default: the current one) inside ``connection``."""
    from alembic import command

    command.upgrade(_config(connection, prefix), revision)


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
