"""Alembic environment for reqmgmt's SQL schema (run through ``reqmgmt db``).

Online, reqmgmt passes the connection to migrate; offline (``reqmgmt db
upgrade URL --sql``) it passes the dialect's name and Alembic writes the SQL.
"""

from __future__ import annotations

from alembic import context

from reqmgmt.storage.migrate import VERSION_TABLE
from reqmgmt.storage.sql import build_metadata

config = context.config
connection = config.attributes.get("connection")
# Desk.open(..., table_prefix="rq_"): every name the scripts use goes
# through migrate.prefixed, and the version table is rq_alembic_version.
prefix = config.attributes.get("table_prefix", "")
metadata = build_metadata(prefix)
version_table = prefix + VERSION_TABLE
if context.is_offline_mode():
    context.configure(
        dialect_name=config.attributes["dialect"],
        target_metadata=metadata,
        literal_binds=True,
        version_table=version_table,
    )
elif connection is None:  # pragma: no cover - reqmgmt always passes a connection
    raise RuntimeError("run migrations through `reqmgmt db upgrade URL`")
else:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        version_table=version_table,
    )
with context.begin_transaction():
    context.run_migrations()
