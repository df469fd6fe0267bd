"""PostgreSQL refuses TRUNCATE of the audit table, as it refuses UPDATE and DELETE.

A row trigger does not fire on ``TRUNCATE``; a statement trigger ``BEFORE
TRUNCATE`` does, and raises through the same function.  SQLite has no
``TRUNCATE`` (its ``DELETE FROM audit`` meets the row trigger already).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from reqmgmt.storage.migrate import prefixed as _p

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {_p('audit')} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_p('reqmgmt_audit_append_only')}()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER audit_no_truncate ON {_p('audit')}")
