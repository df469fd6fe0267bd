"""PostgreSQL refuses TRUNCATE of the audit table, as it refuses UPDATE and DELETE.

A row trigger does not fire on ``TRUNCATE``; a statement trigger ``BEFORE
TRUNCATE`` does, and raises through the same function.  SQLite has no
``TRUNCATE`` (its ``DELETE FROM audit`` meets the row trigger already).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION reqmgmt_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_no_truncate ON audit")
