"""The SQL stores' lean path (issue 15.4, third pass), on SQLite and PostgreSQL.

- An outbox row's document is made from the notification's fields directly,
  not by cattrs's walk; the text is the one cattrs's form gives.
- A SQLite command on the store's own connection takes its transaction
  through a small class, not a ``contextlib`` generator; the generator stays
  for units of work, PostgreSQL and a host's engine.
- Records are kept parsed by ref with their exact text: a read compares the
  stored text with the one kept (no look-up by hashing the whole document),
  and parses again whenever the text differs.
- On PostgreSQL a transaction runs its statements on one psycopg cursor.
- SQLite: the audit and outbox documents are bound as the encoder's UTF-8
  bytes and stored as text (``CAST(? AS TEXT)``), not decoded to be encoded again.
- Every row written is the same, to the byte, as on the slower paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from reqmgmt import Desk
from reqmgmt.model import Notification
from reqmgmt.serialize import converter
from reqmgmt.storage import sql
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, CUSTOMER, ENG, MAT, PRO, receive
from .conftest import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lean.db'}"
        return
    with fresh_database() as pg:
        yield pg


def _walk(desk: Desk) -> str:
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)  # three departments asked: 3 outbox rows
    desk.sign(ref, department="engineering", actor=ENG, opinion="可以 can do")
    desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
    desk.sign(ref, department="production", actor=PRO, opinion="week 12")
    desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots, weeks 12 and 14")
    return ref


def _cattrs_json(n: Notification) -> str:
    return sql._json(converter.unstructure(n))  # cattrs's form, JSON as the store writes it


# --- outbox documents ----------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        Notification,
        key=_text,
        ref=_text,
        record_kind=_text,
        version=st.integers(-(2**70), 2**70),
        event=_text,
        recipient=_text,
        topic=_text,
        text_zh=st.sampled_from(["客户需求 REQ-1:已接收", "", '\u2028 \x00 \\ "']),
        text_en=_text,
        created_at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))])),
        note=st.none() | _text,
        details=st.lists(st.tuples(_text, _text), max_size=3).map(tuple),
    )
)
def test_an_outbox_document_is_the_text_cattrs_gives(n: Notification) -> None:
    assert sql._notification_json(n) == _cattrs_json(n)


def test_commands_write_outbox_documents_without_cattrs(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[object] = []
    made = sql._dumps

    def counted(value: object) -> str:
        walked.append(value)
        return made(value)

    monkeypatch.setattr(sql, "_dumps", counted)
    with Desk.open(url, clock=FakeClock(), autodispatch=False) as desk:
        ref = _walk(desk)
        with desk.store.engine.connect() as conn:  # type: ignore[attr-defined]
            docs = [d for (d,) in conn.execute(sa.text("SELECT doc FROM outbox ORDER BY seq"))]
    assert [v for v in walked if isinstance(v, Notification)] == []
    # receive (the clerk), start_evaluation (three departments), accept (many)
    assert len(docs) >= 5
    for doc in docs:
        n = converter.structure(json.loads(doc), Notification)
        assert n.ref == ref
        assert doc == _cattrs_json(n)


# --- the SQLite transaction ------------------------------------------------------------------


def test_a_sqlite_command_takes_its_transaction_without_the_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks: list[object] = []
    block = sql.SqlStore._transaction_block

    def counted(self: sql.SqlStore) -> Any:
        blocks.append(self)
        return block(self)

    monkeypatch.setattr(sql.SqlStore, "_transaction_block", counted)
    url = f"sqlite:///{tmp_path / 'own.db'}"
    with Desk.open(url, clock=FakeClock(), autodispatch=False) as desk:
        ref = _walk(desk)
        assert blocks == []
        store = desk.store
        assert isinstance(store, sql.SqlStore)
        # On a host's engine the generator runs (the connection is the host's pool's).
        host = sa.create_engine(url)
        with Desk.open(engine=host, clock=FakeClock(), autodispatch=False) as hosted:
            assert hosted.get(ref).version == 6
        host.dispose()
        assert len(blocks) == 1
        # A failing block rolls back and gives up the writer's turn: the next one runs.
        with pytest.raises(RuntimeError, match="refused"):
            _enqueue_then_fail(store, ref)
        with store.transaction() as tx:
            assert (
                tx.raw.execute("SELECT count(*) FROM outbox WHERE key = 'k:1'").fetchone()[0] == 0
            )
        assert store._writers._busy is False
        assert desk.get(ref).version == 6


def _enqueue_then_fail(store: sql.SqlStore, ref: str) -> None:
    with store.transaction() as tx:
        tx.enqueue([_notification(ref)])
        raise RuntimeError("refused")


def _notification(ref: str) -> Notification:
    return Notification(
        key="k:1", ref=ref, record_kind="requirement", version=1, event="e", recipient="r",
        topic="t", text_zh="中", text_en="en", created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


# --- records kept parsed -------------------------------------------------------------------


def test_records_are_kept_by_ref_and_parsed_again_when_the_text_differs(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Desk.open(url, clock=FakeClock(), autodispatch=False) as desk:
        ref = _walk(desk)
        other = receive(desk, customer=CUSTOMER)
        store = desk.store
        assert isinstance(store, sql.SqlStore)
        assert set(store._cache) == {ref, other}  # by ref, not by document text
        parsed: list[str] = []
        parse = sql._SqlTransaction._parse

        def counted(self: sql._SqlTransaction, kind: str, doc: str) -> Any:
            parsed.append(doc)
            return parse(self, kind, doc)

        monkeypatch.setattr(sql._SqlTransaction, "_parse", counted)
        before = desk.get(ref)
        assert parsed == []  # the text read is the text this store wrote
        # The same content written as other text (another program, another encoder).
        with store.engine.begin() as conn:
            (doc,) = conn.execute(
                sa.text("SELECT doc FROM records WHERE ref = :r"), {"r": ref}
            ).one()
            spaced = json.dumps(json.loads(doc), ensure_ascii=False)
            assert spaced != doc
            conn.execute(
                sa.text("UPDATE records SET doc = :d WHERE ref = :r"), {"d": spaced, "r": ref}
            )
        assert desk.get(ref) == before
        assert parsed == [spaced]
        assert desk.get(ref) == before
        assert parsed == [spaced]  # kept again, with the new text
        # A listing reads the same way.
        assert {r.ref for r in desk.query(kind="requirement")} == {ref, other}
        assert parsed == [spaced]
        # A command on the record read from the other text still writes a clean chain.
        desk.fire(ref, "start", actor=CLERK)
        assert desk.get(ref).version == 7
        assert desk.verify_history(ref).ok


# --- the same rows as the slower paths -------------------------------------------------------


def _rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    with engine.connect() as conn:
        for table, key in (
            ("records", "ref"), ("audit", "id"), ("outbox", "seq"), ("summary_delta", "id"),
            ("sequences", "name"),
        ):  # fmt: skip
            found[table] = [
                tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {key}"))
            ]
    return found


def _run(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with Desk.open(url, clock=FakeClock(), autodispatch=False) as desk:
        ref = _walk(desk)
        desk.fire(ref, "start", actor=CLERK)
        desk.create_many(
            "requirement",
            [{"customer": CUSTOMER, "description": f"legacy 旧单 {i}", "channel": "email",
              "received_at": datetime(2026, 1, 5, tzinfo=UTC)}
             for i in range(5)],
            actor=CLERK,
            batch_size=2,
        )  # fmt: skip
        return _rows(desk.store.engine)  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fast.db'}", f"sqlite:///{tmp_path / 'slow.db'}"
        return
    with fresh_database() as one, fresh_database() as two:
        yield one, two


def test_the_rows_are_those_of_the_slower_paths(
    two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _run(two_urls[0])
    with monkeypatch.context() as m:
        # cattrs for the outbox, the generator for every transaction.
        m.setattr(sql, "_NOTE_DIRECT", False)
        m.setattr(sql, "_DOC_BYTES", False)
        m.setattr(sql.SqlStore, "transaction", sql.SqlStore._transaction_block)
        slow = _run(two_urls[1])
    assert fast == slow
    assert len(fast["outbox"]) >= 10
    assert len(fast["summary_delta"]) >= 10


# --- PostgreSQL: one cursor a transaction -----------------------------------------------------


def test_a_postgresql_command_runs_its_statements_on_one_cursor(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    made: list[object] = []
    cursor = psycopg.Connection.cursor

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(self)
        return cursor(self, *args, **kwargs)

    with Desk.open(pg_url, clock=FakeClock(), autodispatch=False) as desk:
        ref = receive(desk)
        monkeypatch.setattr(psycopg.Connection, "cursor", counted)
        # read, UPDATE, audit INSERT, three outbox rows, summary rows: one cursor
        # (and the pool's ping takes one of its own)
        desk.fire(ref, "start_evaluation", actor=CLERK)
        assert len(made) <= 2
        made.clear()
        desk.sign(ref, department="engineering", actor=ENG, opinion="ok")
        assert len(made) <= 2
        assert desk.get(ref).version == 3


# --- SQLite: documents bound as bytes, stored as text ----------------------------------------


def test_sqlite_binds_audit_and_outbox_documents_as_bytes_stored_as_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bytes.db'}"
    with Desk.open(url, clock=FakeClock(), autodispatch=False) as desk:
        ref = receive(desk)
        store = desk.store
        assert isinstance(store, sql.SqlStore)
        statements: list[str] = []
        with store.transaction() as tx:
            tx.raw.set_trace_callback(statements.append)
        try:
            desk.fire(ref, "start_evaluation", actor=CLERK)
        finally:
            with store.transaction() as tx:
                tx.raw.set_trace_callback(None)
        written = [
            t for t in statements if t.startswith(("INSERT INTO audit", "INSERT INTO outbox"))
        ]
        assert len(written) == 4  # the audit row, three outbox rows
        for text in written:
            assert "CAST(" in text  # the bytes parameter stored as TEXT
        with store.engine.connect() as conn:
            types = {
                table: {t for (t,) in conn.execute(sa.text(f"SELECT typeof(doc) FROM {table}"))}
                for table in ("audit", "outbox", "records")
            }
        assert types == {"audit": {"text"}, "outbox": {"text"}, "records": {"text"}}
        history = desk.verify_history(ref)
        assert history.ok
