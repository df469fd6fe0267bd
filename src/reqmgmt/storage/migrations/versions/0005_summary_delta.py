"""The commands' summary rows in a table of their own, without an index (issue 15.4).

Commands append their delta rows to ``summary_delta`` (a row-id B-tree
only); ``reqmgmt compact`` (and every ``reqmgmt remind`` pass) moves them
into ``summary``, summed, whose covering index the report reads.  Writing
into ``summary`` itself cost a SQLite command about 5 % of its instructions
for that index.  The rows already in ``summary`` stay where they are (the
report sums both tables); downgrading moves the delta rows back into
``summary``.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reqmgmt.storage.migrate import prefixed as _p

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = "metric, day, kind, a, b, n, amount"


def upgrade() -> None:
    op.create_table(
        _p("summary_delta"),
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


def downgrade() -> None:
    # The prefix passed check_prefix: letters, digits and "_" only.
    op.execute(
        f"INSERT INTO {_p('summary')} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_p('summary_delta')}"
    )
    op.drop_table(_p("summary_delta"))
