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

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_empty",
    "schema_state",
    "upgrade",
    "upgrade_sql",
]

#: The schema revision this reqmgmt needs: the last migration script's.  A
#: test compares it with the scripts, so a new migration must update it.
HEAD_REVISION = "0004"

_LOCATION = Path(__file__).with_name("migrations")

#: Alembic's table of the stored revision (its default name).
_VERSION_TABLE = "alembic_version"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_LOCATION))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The head revision of the migration scripts (reads them with Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's schema revision (``None`` for a database never migrated)."""
    return schema_state(connection)[1]


def schema_state(connection: Connection) -> tuple[bool, str | None]:
    """``(empty, revision)``: whether the database has no table, and its stored revision.

    One look at the table names and, when Alembic's version table is there,
    one query; no Alembic import.
    """
    names = sa.inspect(connection).get_table_names()
    if _VERSION_TABLE not in names:
        return not names, None
    rows = connection.exec_driver_sql(f"SELECT version_num FROM {_VERSION_TABLE}").all()
    # Several rows would be several heads: reqmgmt's history is linear.
    return False, rows[0][0] if len(rows) == 1 else None


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the current one) inside ``connection``."""
    from alembic import command

    command.upgrade(_config(connection), revision)


def upgrade_sql(dialect: str, out: TextIO, start: str | None = None) -> None:
    """Write the SQL that brings a ``dialect`` database from ``start`` to the head.

    Alembic's offline mode: nothing connects; ``start`` ``None`` is an empty
    database.  For a DBA to review and run (``reqmgmt db upgrade URL --sql``).
    """
    from alembic import command

    cfg = _config()
    cfg.attributes["dialect"] = dialect
    cfg.output_buffer = out
    command.upgrade(cfg, f"{start}:head" if start else "head", sql=True)


def downgrade(connection: Connection, revision: str) -> None:
    """Take the schema back to ``revision`` (tests of upgrades; data added since may go)."""
    from alembic import command

    command.downgrade(_config(connection), revision)


def is_empty(connection: Connection) -> bool:
    """No table at all (a new database)."""
    return not sa.inspect(connection).get_table_names()
