"""The summary table of the management report on SQL stores (issue 15.3).

One narrow table of delta rows (see :mod:`reqmgmt.summaries`): commands only
INSERT into it, so concurrent commands never wait for each other on a
summary row (no hot-row UPDATE); the report sums the rows of its window
grouped by metric, month, kind and keys; :func:`compact` (``reqmgmt
compact``, and every ``reqmgmt remind`` pass) replaces the delta rows by
their sums, one row per key and day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["define", "statements"]

#: The table's name (after the store's prefix).
NAME = "summary"
_COLUMNS = ("metric", "day", "kind", "a", "b", "n", "amount")


def define(metadata: sa.MetaData, prefix: str = "") -> sa.Table:
    """The summary table in ``metadata`` (named ``prefix + "summary"``)."""
    name = prefix + NAME
    return sa.Table(
        name,
        metadata,
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
        # Covering, in GROUP BY order: the report scans it without sorting.
        sa.Index(f"{prefix}ix_{NAME}_group", "metric", "kind", "a", "b", "day", "n", "amount"),
    )


def statements(backend: str, prefix: str = "") -> dict[str, str]:
    """The driver-level statements on the summary table (``?`` or ``%s`` placeholders)."""
    t = prefix + NAME
    cols = ", ".join(_COLUMNS)
    keys = "metric, day, kind, a, b"
    # Sums that cancel out are dropped, except dwell: a state entered and
    # left within the same microsecond is still a state the report lists.
    keep = "metric = 'dwell' OR SUM(n) <> 0 OR SUM(amount) <> 0"
    texts = {
        "INSERT": f"INSERT INTO {t} ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        "DELETE_ALL": f"DELETE FROM {t}",
        "MAX_ID": f"SELECT MAX(id), COUNT(*) FROM {t}",
    }
    if backend == "postgresql":
        # One statement: the rows summed are exactly the rows deleted, even
        # while commands insert more (their rows keep waiting for the next pass).
        texts["COMPACT"] = (
            f"WITH gone AS (DELETE FROM {t} WHERE id <= ? RETURNING {cols}) "
            f"INSERT INTO {t} ({cols}) SELECT {keys}, SUM(n), SUM(amount) FROM gone "
            f"GROUP BY {keys} HAVING {keep}"
        )
        texts = {k: v.replace("?", "%s") for k, v in texts.items()}
    else:
        # SQLite has one writer at a time: the two statements see the same rows.
        texts["COMPACT"] = (
            f"INSERT INTO {t} ({cols}) SELECT {keys}, SUM(n), SUM(amount) FROM {t} "
            f"WHERE id <= ? GROUP BY {keys} HAVING {keep}"
        )
        texts["COMPACT_DELETE"] = f"DELETE FROM {t} WHERE id <= ?"
    return texts


#: The metrics whose rows the report also needs by month (the others: over the window).
BY_MONTH = ("returns", "shipped", "survey")


def select_sums(table: sa.Table, since: str | None, until: str | None) -> list[sa.Select[Any]]:
    """Sums of the rows with ``since <= day < until``, by metric, kind, a and b.

    Two queries: the metrics the report sums over the whole window, read
    along the covering index without a sort (month ``""``); and those it
    also needs by month (:data:`BY_MONTH`), grouped by month too.
    """
    c = table.c
    month = sa.func.substr(c.day, 1, 7)
    keys = (c.metric, c.kind, c.a, c.b)
    sums = (sa.func.sum(c.n), sa.func.sum(c.amount))
    window = []
    if since is not None:
        window.append(c.day >= since)
    if until is not None:
        window.append(c.day < until)
    whole = (
        sa.select(c.metric, sa.literal(""), c.kind, c.a, c.b, *sums)
        .where(c.metric.not_in(BY_MONTH), *window)
        .group_by(*keys)
    )
    monthly = (
        sa.select(c.metric, month, c.kind, c.a, c.b, *sums)
        .where(c.metric.in_(BY_MONTH), *window)
        .group_by(*keys, month)
    )
    return [whole, monthly]


def run_many(raw: Any, pg: bool, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany`` on the driver's connection (psycopg needs a cursor)."""
    if pg:
        with raw.cursor() as cursor:
            cursor.executemany(statement, rows)
    else:
        raw.executemany(statement, rows)


def compact(raw: Any, pg: bool, texts: dict[str, str]) -> int:
    """Replace the delta rows by their sums; how many rows were there before?"""
    cursor = raw.execute(texts["MAX_ID"])
    top, before = cursor.fetchone()
    if top is None:
        return 0
    raw.execute(texts["COMPACT"], (top,))
    if not pg:
        raw.execute(texts["COMPACT_DELETE"], (top,))
    return int(before)


def rows_of(result: Iterable[Sequence[Any]]) -> list[tuple[str, str, str, str, str, int, int]]:
    return [(m, mo, k, a, b, int(n), int(x)) for m, mo, k, a, b, n, x in result]
