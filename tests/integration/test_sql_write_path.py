"""The SQL stores' write path (issue 15.4): the next document from the last, summary delta rows.

- An update makes the record's document from the version it read, unstructuring
  only the fields ``derive`` replaced; the text written is still, to the byte,
  what unstructuring the whole record gives.
- Commands append their summary rows to ``summary_delta`` (no index); the
  report adds both tables up, and ``compact`` moves the delta rows into
  ``summary`` (revision 0005); downgrading to 0004 keeps them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from reqmgmt import Desk
from reqmgmt.reports import compact
from reqmgmt.serialize import converter
from reqmgmt.storage import migrate, sql
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, ENG, MAT, PRO, receive
from .conftest import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'path.db'}"
        return
    with fresh_database() as pg:
        yield pg


def _walk(desk: Desk) -> str:
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    desk.sign(ref, department="engineering", actor=ENG, opinion="can do")
    desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
    desk.sign(ref, department="production", actor=PRO, opinion="week 12")
    desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots, weeks 12 and 14")
    return ref


def test_an_update_unstructures_only_the_changed_fields_and_writes_the_same_bytes(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole: list[object] = []
    made = sql.document

    def counted(record: object) -> object:
        whole.append(record)
        return made(record)  # type: ignore[arg-type]

    monkeypatch.setattr(sql, "document", counted)
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = _walk(desk)
        # The creation's document was handed over; the five updates were each
        # made from the version before, not from the whole record.
        assert len(whole) == 1
        record = desk.get(ref)
        assert record.version == 6
        assert len(record.signoffs) == 3
        with desk.store.transaction() as tx:
            stored = tx.raw.execute(  # type: ignore[attr-defined]
                tx.sql["GET"].replace("?", "%s") if tx.pg else tx.sql["GET"],  # type: ignore[attr-defined]
                (ref,),
            ).fetchone()[1]
    assert stored == orjson.dumps(converter.unstructure(record)).decode()


def test_a_record_read_from_another_process_is_unstructured_whole(tmp_path: Path) -> None:
    """Nothing known about the version read: the whole record, the same bytes."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    clock = FakeClock()
    with Desk.open(url, clock=clock) as a, Desk.open(url, clock=clock) as b:
        ref = receive(a)
        b.fire(ref, "start_evaluation", actor=CLERK)  # b parsed the row a wrote
        a.sign(ref, department="engineering", actor=ENG, opinion="ok")  # and a b's
        for desk in (a, b):
            assert desk.verify_history(ref)
        record = a.get(ref)
    with sqlite3.connect(tmp_path / "two.db") as con:
        (doc,) = con.execute("SELECT doc FROM records WHERE ref = ?", (ref,)).fetchone()
    assert doc == orjson.dumps(converter.unstructure(record)).decode()


def _counts(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = tuple(
            int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())
            for name in ("summary", "summary_delta")
        )
    engine.dispose()
    return found  # type: ignore[return-value]


def test_commands_append_summary_rows_to_the_delta_table_and_compact_moves_them(
    url: str,
) -> None:
    with Desk.open(url, clock=FakeClock()) as desk:
        _walk(desk)
        before = desk.report()
        summed, deltas = _counts(url)
        assert summed == 0
        assert deltas > 10
        assert compact(desk.store) == deltas
        summed, deltas = _counts(url)
        assert deltas == 0
        assert summed > 0
        assert desk.report() == before
        _walk(desk)  # more deltas on top of compacted rows: the report adds both
        twice = desk.report()
        assert sum(c.count for c in twice.counts) == 2 * sum(c.count for c in before.counts)
        assert compact(desk.store) > 0
        assert desk.report() == twice


def test_revision_0005_keeps_the_rows_both_ways(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Desk.open(url, clock=FakeClock()) as desk:
        _walk(desk)
        expected = desk.report()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the delta rows go back into summary
        migrate.downgrade(conn, "0004")
        assert "summary_delta" not in sa.inspect(conn).get_table_names()
        assert conn.exec_driver_sql("SELECT count(*) FROM summary").scalar_one() > 10
    with engine.begin() as conn:
        migrate.upgrade(conn)
    engine.dispose()
    assert _counts(url)[1] == 0
    with Desk.open(url) as desk:
        assert desk.report() == expected
