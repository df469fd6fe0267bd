"""Alembic environment for reqmgmt's SQL schema (run through ``reqmgmt db``)."""

from __future__ import annotations

from alembic import context

from reqmgmt.storage.sql import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - reqmgmt always passes a connection
    raise RuntimeError("run migrations through `reqmgmt db upgrade URL`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
