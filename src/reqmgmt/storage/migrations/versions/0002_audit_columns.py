"""Audit events get indexed columns for reports: kind, event, from/to state, time.

Existing rows are filled in from their JSON documents.  The append-only
triggers are lifted for that one update and put back at once, inside the
migration's transaction.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

from reqmgmt.storage.migrate import prefixed as _p

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("kind", sa.String(32)),
    ("event", sa.String(64)),
    ("from_state", sa.String(32)),
    ("to_state", sa.String(32)),
    ("at", sa.String(32)),
)
_TRIGGERS = {
    "postgresql": (
        ("DROP TRIGGER audit_append_only ON {p}audit",),
        (
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {p}audit "
            "FOR EACH ROW EXECUTE FUNCTION {p}reqmgmt_audit_append_only()",
        ),
    ),
    "sqlite": (
        ("DROP TRIGGER {p}audit_no_update", "DROP TRIGGER {p}audit_no_delete"),
        (
            "CREATE TRIGGER {p}audit_no_update BEFORE UPDATE ON {p}audit "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
            "CREATE TRIGGER {p}audit_no_delete BEFORE DELETE ON {p}audit "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
        ),
    ),
}


def _utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


# Offline (``reqmgmt db upgrade URL --sql``) the rows are filled by SQL, to
# the same values as _utc gives: fixed-width UTC text with microseconds.
_FILL = {
    "postgresql": (
        "UPDATE {p}audit SET kind = doc::json->>'record_kind', event = doc::json->>'event', "
        "from_state = doc::json->>'from_state', to_state = doc::json->>'to_state', "
        "at = to_char((doc::json->>'at')::timestamptz AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    ),
    "sqlite": (
        "UPDATE {p}audit SET kind = json_extract(doc, '$.record_kind'), "
        "event = json_extract(doc, '$.event'), "
        "from_state = json_extract(doc, '$.from_state'), "
        "to_state = json_extract(doc, '$.to_state'), "
        "at = strftime('%Y-%m-%dT%H:%M:%S', json_extract(doc, '$.at')) || '.' || "
        "CASE WHEN substr(json_extract(doc, '$.at'), 20, 1) = '.' "
        "THEN substr(json_extract(doc, '$.at'), 21, 6) ELSE '000000' END"
    ),
}


def upgrade() -> None:
    for name, type_ in _COLUMNS:
        op.add_column(_p("audit"), sa.Column(name, type_))
    bind = op.get_bind()
    drop, create = _TRIGGERS[bind.dialect.name]
    for statement in drop:
        op.execute(statement.replace("{p}", _p("")))
    if context.is_offline_mode():
        op.execute(_FILL[bind.dialect.name].replace("{p}", _p("")))
        _finish(create)
        return
    audit = sa.table(
        _p("audit"), sa.column("id"), sa.column("doc"), *(sa.column(n) for n, _ in _COLUMNS)
    )
    rows = bind.execute(sa.select(audit.c.id, audit.c.doc)).all()
    for row_id, doc in rows:
        event = json.loads(doc)
        bind.execute(
            audit.update()
            .where(audit.c.id == row_id)
            .values(
                kind=event["record_kind"],
                event=event["event"],
                from_state=event["from_state"],
                to_state=event["to_state"],
                at=_utc(event["at"]),
            )
        )
    _finish(create)


def _finish(create: tuple[str, ...]) -> None:
    for statement in create:
        op.execute(statement.replace("{p}", _p("")))
    op.create_index(_p("ix_audit_kind_to_state"), _p("audit"), ["kind", "to_state"])
    op.create_index(_p("ix_audit_at"), _p("audit"), ["at"])


def downgrade() -> None:
    op.drop_index(_p("ix_audit_at"), _p("audit"))
    op.drop_index(_p("ix_audit_kind_to_state"), _p("audit"))
    for name, _ in reversed(_COLUMNS):
        op.drop_column(_p("audit"), name)
