"""The summary tables of the management report on SQL stores (issue 15.3).

Two narrow tables of the rows of :mod:`reqmgmt.summaries`:

- ``summary_delta``: what commands write.  INSERT only, so concurrent
  commands never wait for each other on a summary row (no hot-row UPDATE),
  and no index but the row id, so a command's rows are appended to one
  B-tree (the covering index of ``summary`` cost a SQLite command about 5 %
  of its instructions when commands wrote into ``summary``);
- ``summary``: the compacted rows, one per key and day after
  :func:`compact` (``reqmgmt compact``, from cron beside ``reqmgmt remind``),
  with a covering index in the report's ``GROUP BY`` order, so the report
  reads it without sorting.

The report sums both (the delta rows not compacted yet are read by a table
scan and a sort: few when a worker compacts).  :func:`compact` moves the
delta rows into ``summary``, summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["define", "define_delta", "statements"]

#: The tables' names (after the store's prefix).
NAME = "summary"
DELTA = "summary_delta"
_COLUMNS = ("metric", "day", "kind", "a", "b", "n", "amount")


def _columns() -> list[sa.Column[Any]]:
    return [
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
    ]


def define(metadata: sa.MetaData, prefix: str = "") -> sa.Table:
    """The compacted summary table in ``metadata`` (named ``prefix + "summary"``)."""
    name = prefix + NAME
    return sa.Table(
        name,
        metadata,
        *_columns(),
        # Covering, in GROUP BY order: the report scans it without sorting.
        sa.Index(f"{prefix}ix_{NAME}_group", "metric", "kind", "a", "b", "day", "n", "amount"),
    )


def define_delta(metadata: sa.MetaData, prefix: str = "") -> sa.Table:
    """The commands' delta rows (``prefix + "summary_delta"``): no index (revision 0005)."""
    return sa.Table(prefix + DELTA, metadata, *_columns())


def statements(backend: str, prefix: str = "") -> dict[str, str]:
    """The driver-level statements on the summary tables (``?`` or ``%s`` placeholders).

    ``INSERT``: a command's rows, into the delta table; ``INSERT_SUMMED``:
    rows straight into ``summary`` (a rebuild).
    """
    t = prefix + NAME
    d = prefix + DELTA
    cols = ", ".join(_COLUMNS)
    keys = "metric, day, kind, a, b"
    # Sums that cancel out are dropped, except dwell: a state entered and
    # left within the same microsecond is still a state the report lists.
    keep = "metric = 'dwell' OR SUM(n) <> 0 OR SUM(amount) <> 0"
    values = "VALUES (?, ?, ?, ?, ?, ?, ?)"
    texts = {
        "INSERT": f"INSERT INTO {d} ({cols}) {values}",
        "INSERT_SUMMED": f"INSERT INTO {t} ({cols}) {values}",
        "DELETE_ALL": f"DELETE FROM {t}",
        "DELETE_DELTAS": f"DELETE FROM {d}",
        "MAX_ID": f"SELECT MAX(id), COUNT(*) FROM {t}",
        "MAX_DELTA": f"SELECT MAX(id), COUNT(*) FROM {d}",
    }
    both = f"SELECT {cols} FROM {{old}} UNION ALL SELECT {cols} FROM {{new}}"
    if backend == "postgresql":
        # One statement: the rows summed are exactly the rows deleted, even
        # while commands insert more (their rows keep waiting for the next pass).
        texts["COMPACT"] = (
            f"WITH old AS (DELETE FROM {t} WHERE id <= ? RETURNING {cols}), "
            f"new AS (DELETE FROM {d} WHERE id <= ? RETURNING {cols}) "
            f"INSERT INTO {t} ({cols}) SELECT {keys}, SUM(n), SUM(amount) "
            f"FROM ({both.format(old='old', new='new')}) AS gone "
            f"GROUP BY {keys} HAVING {keep}"
        )
        texts = {k: v.replace("?", "%s") for k, v in texts.items()}
    else:
        # SQLite has one writer at a time: the three statements see the same rows.
        old = f"{t} WHERE id <= ?"
        new = f"{d} WHERE id <= ?"
        texts["COMPACT"] = (
            f"INSERT INTO {t} ({cols}) SELECT {keys}, SUM(n), SUM(amount) "
            f"FROM ({both.format(old=old, new=new)}) GROUP BY {keys} HAVING {keep}"
        )
        texts["COMPACT_DELETE"] = f"DELETE FROM {t} WHERE id <= ?"
        texts["COMPACT_DELETE_DELTAS"] = f"DELETE FROM {d} WHERE id <= ?"
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
    """Replace the rows of both tables by their sums in ``summary``; how many rows were there?"""
    top, before = raw.execute(texts["MAX_ID"]).fetchone()
    top_delta, deltas = raw.execute(texts["MAX_DELTA"]).fetchone()
    if top is None and top_delta is None:
        return 0
    top, top_delta = top or 0, top_delta or 0
    raw.execute(texts["COMPACT"], (top, top_delta))
    if not pg:
        raw.execute(texts["COMPACT_DELETE"], (top,))
        raw.execute(texts["COMPACT_DELETE_DELTAS"], (top_delta,))
    return int(before) + int(deltas)


def replace(
    raw: Any, pg: bool, texts: dict[str, str], rows: Iterable[Sequence[Any]], *, deltas: bool = True
) -> None:
    """Replace every summary row by ``rows`` (written into ``summary``, in batches).

    ``deltas`` false: the delta table is left alone (revision 0004's
    backfill runs before revision 0005 creates it).
    """
    raw.execute(texts["DELETE_ALL"])
    if deltas:
        raw.execute(texts["DELETE_DELTAS"])
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 10_000:
            run_many(raw, pg, texts["INSERT_SUMMED"], batch)
            batch = []
    if batch:
        run_many(raw, pg, texts["INSERT_SUMMED"], batch)


def rows_of(result: Iterable[Sequence[Any]]) -> list[tuple[str, str, str, str, str, int, int]]:
    return [(m, mo, k, a, b, int(n), int(x)) for m, mo, k, a, b, n, x in result]
