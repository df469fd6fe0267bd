"""Schema migrations with Alembic, shipped in the package (``reqmgmt db``).

A new, empty database is created at the current schema when a store first
opens it.  An existing database is never changed silently: a store refuses
one whose revision is not the current one and says to run
``reqmgmt db upgrade URL``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

__all__ = ["current_revision", "downgrade", "head_revision", "is_empty", "upgrade"]

_LOCATION = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_LOCATION))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The schema revision this reqmgmt needs."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's schema revision (``None`` for a database never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the current one) inside ``connection``."""
    command.upgrade(_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Take the schema back to ``revision`` (tests of upgrades; data added since may go)."""
    command.downgrade(_config(connection), revision)


def is_empty(connection: Connection) -> bool:
    """No table at all (a new database)."""
    return not sa.inspect(connection).get_table_names()
