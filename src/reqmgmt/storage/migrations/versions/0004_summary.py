"""The report's summary table (issue 15.3), filled from the records and audit trails.

Commands add delta rows to it in their own transaction; the report sums
them (O(groups) instead of O(events)).  The backfill reads every record and
its audit trail with the built-in lifecycles' final and initial states; a
host with lifecycles of its own runs ``reqmgmt report --rebuild`` (with its
plugins) after upgrading.  Offline (``--sql``) the table is created empty:
run ``reqmgmt report --rebuild`` once the script has run.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import context, op

from reqmgmt.storage.migrate import prefixed as _p

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("reqmgmt")


def upgrade() -> None:
    op.create_table(
        _p("summary"),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("a", sa.String(200), nullable=False),
        sa.Column("b", sa.String(200), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_index(
        _p("ix_summary_group"),
        _p("summary"),
        ["metric", "kind", "a", "b", "day", "n", "amount"],
    )
    if not context.is_offline_mode():
        _backfill(op.get_bind())


def _backfill(bind: sa.engine.Connection) -> None:
    from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
    from reqmgmt.model import record_classes
    from reqmgmt.storage import summary_tables
    from reqmgmt.storage.sql import _fast, _SqlTransaction, build_metadata
    from reqmgmt.summaries import rebuild_rows

    engines = {kind: lc.build() for kind, lc in BUILTIN_LIFECYCLES.items()}
    prefix = _p("")
    backend = bind.dialect.name
    tx = _SqlTransaction(
        bind, record_classes(), backend, {}, _fast(backend, prefix), build_metadata(prefix), {}
    )
    failed: list[tuple[str, str]] = []
    tx.unreadable = failed
    # Into the summary table only: the delta table comes with revision 0005.
    texts = summary_tables.statements(backend, prefix)
    summary_tables.replace(tx.raw, tx.pg, texts, rebuild_rows(tx, engines, failed), deltas=False)
    for ref, reason in failed:
        log.error("summary backfill: left out %s: %s", ref, reason)


def downgrade() -> None:
    op.drop_index(_p("ix_summary_group"), _p("summary"))
    op.drop_table(_p("summary"))
