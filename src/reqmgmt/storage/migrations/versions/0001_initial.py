"""The first schema: records, audit (append-only), outbox, sequences.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reqmgmt.storage.migrate import prefixed as _p

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written with {p}: the table prefix (migrate.prefixed; "" by default).  Trigger
# names are per table on PostgreSQL, per database on SQLite.
_POSTGRES = (
    "CREATE OR REPLACE FUNCTION {p}reqmgmt_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {p}audit "
    "FOR EACH ROW EXECUTE FUNCTION {p}reqmgmt_audit_append_only()",
)
_SQLITE = (
    "CREATE TRIGGER {p}audit_no_update BEFORE UPDATE ON {p}audit "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER {p}audit_no_delete BEFORE DELETE ON {p}audit "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
)


def upgrade() -> None:
    op.create_table(
        _p("records"),
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("customer", sa.String(64)),
        sa.Column("due_at", sa.String(32)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
    )
    op.create_index(_p("ix_records_kind_state"), _p("records"), ["kind", "state"])
    op.create_index(_p("ix_records_customer"), _p("records"), ["customer"])
    op.create_index(_p("ix_records_due_at"), _p("records"), ["due_at"])
    op.create_table(
        _p("audit"),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.UniqueConstraint("ref", "version", name=_p("uq_audit_ref_version")),
    )
    op.create_table(
        _p("outbox"),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.String(32)),
        sa.Column("delivered_at", sa.String(32)),
        sa.Column("doc", sa.Text, nullable=False),
    )
    op.create_index(_p("ix_outbox_status_next"), _p("outbox"), ["status", "next_attempt_at"])
    op.create_index(_p("ix_outbox_ref"), _p("outbox"), ["ref"])
    op.create_table(
        _p("sequences"),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES if dialect == "postgresql" else _SQLITE:
        op.execute(statement.replace("{p}", _p("")))


def downgrade() -> None:
    for table in ("sequences", "outbox", "audit", "records"):
        op.drop_table(_p(table))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_p('reqmgmt_audit_append_only')}()")
