"""An import on the SQL stores makes each record's rows as it is built (issue 15.4).

``Desk.create_many`` on a SQL transaction hands every new record, its
creating event and its notifications to ``storage.sql._ImportRows`` at once,
which keeps only the rows (tuples of str, int and bytes), not the objects,
until the batch is written.  These tests hold it to the two slower paths,
``insert_many`` with the objects kept and ``insert`` row by row:

- the rows of every table are the same to the byte (and of the same SQL
  type), over hostile inputs (hypothesis), whatever row is refused;
- a refused row, a ref given twice by the host's numbering, a ref that is
  taken: the same :class:`ImportFailed` (row, cause), nothing of the batch written;
- the observers see the same records and events, also in a host's unit of work;
- the cost: each event is encoded once, and a batch's rows keep few objects
  alive until commit (what young collections scan and promote).
"""

from __future__ import annotations

import gc
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqmgmt import Actor, AuditEvent, Customer, Desk, ImportFailed, Record, audit, creation
from reqmgmt import summaries as summaries_module
from reqmgmt.plugins import hookimpl
from reqmgmt.storage import sql
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, CUSTOMER

#: The three ways an import writes: rows made at once, insert_many, row by row.
PATHS = ("rows", "insert_many", "row_by_row")

TABLES = {"records": "ref", "audit": "id", "outbox": "seq", "summary_delta": "id",
          "sequences": "name"}  # fmt: skip


class _NoBulk:
    """No transaction is one of these: ``create_many`` goes row by row."""


@contextmanager
def _path(name: str) -> Iterator[None]:
    """The import path ``name`` for the block (the rows path is the default)."""
    with pytest.MonkeyPatch.context() as m:
        if name != "rows":
            m.delattr(sql._SqlTransaction, "import_rows")
        if name == "row_by_row":
            m.setattr(creation, "BulkInsert", _NoBulk)
        yield


def _table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the import writes, text as its bytes, with each value's type."""
    con = sqlite3.connect(path)
    con.text_factory = bytes
    try:
        found = {}
        for table, key in TABLES.items():
            names = [r[1].decode() for r in con.execute(f"PRAGMA table_info({table})")]
            columns = ", ".join(f"{n}, typeof({n})" for n in names)
            found[table] = list(con.execute(f"SELECT {columns} FROM {table} ORDER BY {key}"))
        return found
    finally:
        con.close()


def _import(
    folder: str,
    path: str,
    batches: Sequence[Sequence[Mapping[str, Any]]],
    batch_size: int,
    plugins: Sequence[object] = (),
) -> tuple[list[Any], dict[str, list[tuple[Any, ...]]]]:
    """Import each of ``batches`` (a call of create_many each) on the path ``path``:
    what each call returned or raised, and the rows written."""
    db = Path(folder) / f"{path}.db"
    outcomes: list[Any] = []
    with (
        _path(path),
        Desk.open(
            f"sqlite:///{db}", clock=FakeClock(), autodispatch=False, plugins=list(plugins)
        ) as desk,
    ):
        for rows in batches:
            try:
                outcomes.append(
                    desk.create_many("requirement", rows, actor=CLERK, batch_size=batch_size)
                )
            except ImportFailed as exc:
                cause = exc.cause
                outcomes.append(("failed", exc.row, exc.committed, type(cause), str(cause)))
    return outcomes, _table_rows(db)


def _same_on_every_path(
    batches: Sequence[Sequence[Mapping[str, Any]]],
    batch_size: int,
    plugins: Any = lambda: (),
    paths: Sequence[str] = PATHS,
) -> list[Any]:
    with tempfile.TemporaryDirectory() as folder:
        found = [_import(folder, p, batches, batch_size, plugins()) for p in paths]
    assert all(f == found[0] for f in found[1:])
    return found[0][0]


def _row(i: int, **kw: Any) -> dict[str, Any]:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    return {"customer": CUSTOMER, "description": f"legacy 旧单 {i}", "channel": "email",
            "received_at": at, **kw}  # fmt: skip


# Hostile text: controls, NUL, lone surrogates, bidi marks, CJK, astral, long runs.
_TEXT = st.text(
    st.characters(codec=None, categories=None) | st.sampled_from('\x00\u202e\ud800中𝕏\n\t"\\'),
    max_size=40,
)


def _customer(id: str, name: str, category: str) -> Customer:
    """A customer with these fields if it takes them, else :data:`CUSTOMER` (it checks its own)."""
    try:
        return Customer(id, name, category=category)
    except ValueError:
        return CUSTOMER


_ROW = st.fixed_dictionaries(
    {
        "customer": st.builds(
            _customer,
            st.sampled_from(["HK-001", "C-中", "x" * 64]) | _TEXT,
            _TEXT,
            st.sampled_from(["general", "important", "nosuch"]),
        ),
        "description": _TEXT,
        "received_at": st.sampled_from(
            [datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 5, 8, 30, 0, 7, tzinfo=UTC)]
        ),
    },
    optional={
        "channel": st.sampled_from(["email", "phone", "pigeon", 7]),
        "priority": st.sampled_from(["normal", "urgent", "low", None, "nosuch"]),
        "due_at": st.sampled_from(
            [None, datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 1, 9, 0, 0, 1, tzinfo=UTC)]
        ),
        "note": _TEXT,
    },
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_ROW, min_size=1, max_size=5), min_size=1, max_size=3), st.integers(1, 3))
def test_the_rows_are_those_of_the_slower_paths(
    batches: list[list[dict[str, Any]]], batch_size: int
) -> None:
    """Hostile rows: every table's rows and every outcome the same on the three paths."""
    _same_on_every_path(batches, batch_size)


def test_a_plain_import_and_a_refused_row() -> None:
    """Written rows the same; a refused row in the second batch leaves the first written."""
    good = [_row(i) for i in range(7)]
    bad = [*good[:4], _row(4, channel="pigeon"), *good[5:]]
    outcomes = _same_on_every_path([good, bad], 3)
    assert len(outcomes[0]) == 7
    assert outcomes[1][:3] == ("failed", 4, tuple(outcomes[1][2]))
    assert len(outcomes[1][2]) == 3  # the first batch of the second call


class _Numbers:
    """The host's numbering: the refs ``given`` in turn."""

    def __init__(self, given: Sequence[str]) -> None:
        self.given = list(given)

    @hookimpl
    def reqmgmt_next_number(self, kind: str, year: int) -> str | None:
        return self.given.pop(0) if self.given else None


@pytest.mark.parametrize(
    "refs",
    [
        ["R-1", "R-2", "R-1", "R-3"],  # a ref given twice in a batch: the second one refused
        ["R-1", "R-2", "R-3", "R-4", "R-2", "R-5"],  # the second import meets a taken ref
    ],
)
def test_a_taken_ref_fails_the_same_row(refs: list[str]) -> None:
    """As insert_many: the first row with the ref named (row by row names the second,
    after fewer numbers were drawn: that path differs here, as it did before)."""
    rows = [_row(i) for i in range(4)]
    outcomes = _same_on_every_path(
        [rows, rows[:2]], 4, plugins=lambda: [_Numbers(refs)], paths=PATHS[:2]
    )
    failed = [o for o in outcomes if isinstance(o, tuple)]
    assert len(failed) == 1
    assert "already exists" in failed[0][4]


class _Observer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str, str]] = []

    @hookimpl
    def reqmgmt_after_transition(self, record: Record, audit_event: AuditEvent) -> None:
        self.seen.append((record.ref, record.version, audit_event.event, audit_event.hash))


def test_observers_see_the_same_records_and_events() -> None:
    rows = [_row(i) for i in range(5)]
    heard = []
    for path in PATHS:
        observer = _Observer()
        with tempfile.TemporaryDirectory() as folder:
            _import(folder, path, [rows], 2, [observer])
        heard.append(observer.seen)
    assert heard[0] == heard[1] == heard[2]
    assert [ref for ref, *_ in heard[0]] == [f"REQ-2026-{i:06d}" for i in range(1, 6)]


def test_in_a_host_unit_the_observers_run_after_its_commit(tmp_path: Path) -> None:
    """Observers implemented or not, inside a unit of work the objects are kept for them."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    observer = _Observer()
    try:
        with Desk.open(engine=engine, clock=FakeClock(), plugins=[observer]) as desk:
            with engine.begin() as conn, desk.unit_of_work(connection=conn):
                refs = desk.create_many("requirement", [_row(i) for i in range(3)], actor=CLERK)
                assert observer.seen == []  # not before the host's commit
            assert [ref for ref, *_ in observer.seen] == refs
    finally:
        engine.dispose()


# --- the cost ------------------------------------------------------------------------------


def test_each_event_is_encoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch past the seal's cache (256 events) took each event's bytes from it:
    no event was encoded a second time for its audit row."""
    encoded: list[int] = []
    encode, dumps = audit._encode, audit._dumps

    def counted(payload: dict[str, Any]) -> bytes:
        encoded.append(1)
        return encode(payload)

    def counted_dumps(payload: dict[str, Any], **options: Any) -> bytes:
        encoded.append(1)
        return dumps(payload, **options)

    # seal encodes with _dumps (its _encode written inline), canonical with _encode.
    monkeypatch.setattr(audit, "_encode", counted)
    monkeypatch.setattr(audit, "_dumps", counted_dumps)
    audit._SEALED.clear()
    with Desk.open(f"sqlite:///{tmp_path / 'i.db'}", autodispatch=False) as desk:
        desk.create_many("requirement", [_row(i) for i in range(600)], actor=CLERK,
                         batch_size=600)  # fmt: skip
    assert len(encoded) == 600
    assert len(audit._SEALED) == 0  # each event's bytes taken out of the seal's cache


def test_a_batch_keeps_few_objects_alive_until_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects the collector tracks, made in a batch and alive when it is written: the
    record kept parsed and its cache entry, little else (18 a row when the events,
    notifications and the records' documents were kept until commit, and the seal's
    cache kept the last 256 events)."""
    per_row: list[float] = []
    before: set[int] = set()
    stage = summaries_module.stage_created

    def counted(tx: Any, engine: Any, records: Sequence[Any]) -> None:
        stage(tx, engine, records)
        if before:
            gc.collect()  # what only cycles kept goes; tuples of atomics are untracked
            new = [o for o in gc.get_objects() if id(o) not in before]
            per_row.append(len(new) / len(records))

    monkeypatch.setattr(summaries_module, "stage_created", counted)
    clerk = Actor("clerk", roles={"sales"})
    with Desk.open(f"sqlite:///{tmp_path / 'i.db'}", autodispatch=False) as desk:
        desk.create_many("requirement", [_row(i) for i in range(300)], actor=clerk)
        gc.collect()
        kept = gc.get_objects()  # held, so no id of these is taken by a new object
        before.update(id(o) for o in kept)
        audit._SEALED.clear()  # it keeps the last 256 events (and starts over then)
        desk.create_many("requirement", [_row(i) for i in range(1000)], actor=clerk,
                         batch_size=1000)  # fmt: skip
        del kept
    assert len(per_row) == 1
    assert per_row[0] < 5, per_row


def test_the_imported_records_are_kept_parsed_not_their_documents(tmp_path: Path) -> None:
    """A read finds an imported record parsed; its JSON-ready document is not kept."""
    with Desk.open(f"sqlite:///{tmp_path / 'i.db'}", autodispatch=False) as desk:
        refs = desk.create_many("requirement", [_row(i) for i in range(4)], actor=CLERK)
        store = desk.store
        assert isinstance(store, sql.SqlStore)
        assert list(store._cache)[-4:] == refs
        assert len(store._docs) == 0
        ref = refs[0]
        desk.fire(ref, "start_evaluation", actor=CLERK)
        assert desk.get(ref).version == 2
        assert desk.verify_history(ref).ok


def test_time_fields_keep_their_text(tmp_path: Path) -> None:
    """A clock in another zone: the stored columns are UTC text, as on the other paths."""
    zone = datetime(2026, 3, 2, 17, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=8)))
    outcomes = []
    for path in PATHS:
        db = tmp_path / f"{path}.db"
        with (
            _path(path),
            Desk.open(f"sqlite:///{db}", clock=FakeClock(zone), autodispatch=False) as desk,
        ):
            outcomes.append(desk.create_many("requirement", [_row(1), _row(2)], actor=CLERK))
        outcomes.append(_table_rows(db))
    assert outcomes[0:2] == outcomes[2:4] == outcomes[4:6]


class _Later(datetime):
    """A datetime subclass: the text comes from isoformat itself."""


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(
        [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
    ),
    st.booleans(),
    st.booleans(),
)
def test_a_time_column_is_isoformat_in_utc(
    naive: datetime, zone: timezone, whole_second: bool, subclass: bool
) -> None:
    """_utc_text, its shortcut through the document's text included (whole seconds too),
    is the first 26 characters of isoformat in UTC with microseconds."""
    value = naive.replace(tzinfo=zone, microsecond=0 if whole_second else naive.microsecond)
    if subclass:
        value = _Later.fromisoformat(value.isoformat())
    expected = value.astimezone(UTC).isoformat(timespec="microseconds")[:26]
    assert sql._utc_text(value) == expected
    assert sql._utc_text(value) == expected  # the document's text remembered
