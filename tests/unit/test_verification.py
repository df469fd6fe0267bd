"""Verification: every column seen, nothing raised, whole stores, anchors, `reqmgmt verify`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reqmgmt import ConflictError, Desk, HistoryCheck, MemoryStore, TamperedRecord, VerifyReport
from reqmgmt.cli import main
from reqmgmt.storage.base import RawRead
from reqmgmt.storage.memory import _pack_trail, _trail
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, ENG, MAT, PRO, receive


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'v.db'}"


def walked(desk: Desk) -> str:
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    desk.sign(ref, department="engineering", actor=ENG, opinion="can do")
    desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
    desk.sign(ref, department="production", actor=PRO, opinion="week 12")
    return ref


def attack(url: str, *statements: str, **params: Any) -> None:
    """Write access to the database, the append-only triggers dropped."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_delete")
        for s in statements:
            conn.execute(sa.text(s), params)
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "column"),
    [
        ("UPDATE records SET state = 'closed' WHERE ref = :r", "records.state"),
        ("UPDATE records SET version = version + 1 WHERE ref = :r", "records.version"),
        (
            "UPDATE records SET due_at = '2000-01-01T00:00:00.000000' WHERE ref = :r",
            "records.due_at",
        ),
        ("UPDATE records SET customer = 'OTHER' WHERE ref = :r", "records.customer"),
        ("UPDATE audit SET to_state = 'accepted' WHERE ref = :r AND version = 2", "audit.to_state"),
        ("UPDATE audit SET event = 'accept' WHERE ref = :r AND version = 3", "audit.event"),
        ("UPDATE audit SET version = 9 WHERE ref = :r AND version = 5", "audit.version"),
    ],
)
def test_a_column_edited_alone_is_reported_by_name(url: str, statement: str, column: str) -> None:
    """Columns the queries, reminders and reports read are compared with the documents."""
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = walked(desk)
    attack(url, statement, r=ref)
    with Desk.open(url, clock=FakeClock()) as desk:
        check = desk.verify_history(ref)
        assert not check
        assert check.column == column
        assert column in check.problem


@pytest.mark.parametrize(
    "doc",
    ['{"ref": ', "null", "[]", "{}", '{"ref": "x"}', "42", ""],
)
@pytest.mark.parametrize("table", ["records", "audit"])
def test_a_malformed_document_is_reported_not_raised(url: str, table: str, doc: str) -> None:
    """Malformed JSON, missing keys, wrong types: a HistoryCheck, never an exception."""
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = walked(desk)
    where = "ref = :r" + (" AND version = 2" if table == "audit" else "")
    attack(url, f"UPDATE {table} SET doc = :d WHERE {where}", r=ref, d=doc)
    with Desk.open(url, clock=FakeClock()) as desk:
        check = desk.verify_history(ref)
        assert not check
        assert check.column == f"{table}.doc"
        assert check.broken_at == (2 if table == "audit" else 5)
        report = desk.verify_all()
        assert [c.ref for c in report.broken] == [ref]


def test_a_record_whose_columns_disagree_is_refused_with_tampered_record(url: str) -> None:
    """A changed records.version no longer means a ConflictError forever: the error says why."""
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = walked(desk)
        other = receive(desk)
    attack(url, "UPDATE records SET version = 9 WHERE ref = :r", r=ref)
    with Desk.open(url, clock=FakeClock()) as desk:
        with pytest.raises(TamperedRecord, match=r"records\.version.*reqmgmt verify") as info:
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="p")
        assert not isinstance(info.value, ConflictError)
        assert (info.value.ref, info.value.columns) == (ref, ("records.version",))
        with pytest.raises(TamperedRecord):
            desk.get(ref)
        assert len(desk.verify_history(ref).problem) > 0
        desk.fire(other, "clarify", actor=CLERK, note="?")  # the others carry on
    attack(url, "UPDATE records SET version = 5, state = 'accepted' WHERE ref = :r", r=ref)
    with (
        Desk.open(url, clock=FakeClock()) as desk,
        pytest.raises(TamperedRecord, match=r"records\.state"),
    ):
        desk.can(ref, "accept", actor=CLERK)
    attack(url, "UPDATE records SET state = 'evaluating', doc = '{' WHERE ref = :r", r=ref)
    with Desk.open(url, clock=FakeClock()) as desk:
        with pytest.raises(TamperedRecord, match="does not read as a record"):
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="p")
        assert len(desk.history(other)) == 2


def test_verify_all_checks_every_record_in_batches_with_progress(url: str) -> None:
    """Summary: checked, intact, the first break per broken record; progress per batch."""
    with Desk.open(url, clock=FakeClock()) as desk:
        refs = [receive(desk) for _ in range(7)]
        assert desk.verify_all() == VerifyReport(7, 7)
    attack(
        url,
        "UPDATE records SET state = 'closed' WHERE ref = :a",
        "UPDATE audit SET to_state = 'closed' WHERE ref = :b",
        a=refs[2],
        b=refs[5],
    )
    calls: list[tuple[int, int | None]] = []
    with Desk.open(url, clock=FakeClock()) as desk:
        report = desk.verify_all(batch_size=3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 7), (6, 7), (7, 7)]
    assert (report.checked, report.intact, bool(report)) == (7, 5, False)
    assert [(c.ref, c.column) for c in report.broken] == [
        (refs[2], "records.state"),
        (refs[5], "audit.to_state"),
    ]


def test_verify_all_on_the_memory_store() -> None:
    """The memory store answers raw reads too; a removed event is found."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = walked(desk)
        receive(desk)
        assert desk.verify_all() == VerifyReport(2, 2)
        store = desk.store
        assert isinstance(store, MemoryStore)
        trail = _trail(store._audit[ref])
        del trail[2]
        store._audit[ref] = _pack_trail(trail)
        report = desk.verify_all()
        assert [(c.ref, c.broken_at) for c in report.broken] == [(ref, 3)]


class _DocumentsOnly:
    """A host's store without raw reads: verification falls back to documents."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            yield _Plain(tx)

    def close(self) -> None:
        self.inner.close()


class _Plain:
    def __init__(self, tx: Any) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        if name.startswith("raw_") or name.endswith("_columns"):
            raise AttributeError(name)
        return getattr(self._tx, name)


def test_a_store_without_raw_reads_is_verified_through_its_documents() -> None:
    """verify_history and verify_all work on a Store that lacks the optional RawRead."""
    inner = MemoryStore()
    with Desk.open("memory://", clock=FakeClock()) as desk:
        desk.store = _DocumentsOnly(inner)
        ref = walked(desk)
        with desk.store.transaction() as tx:
            assert not isinstance(tx, RawRead)
        assert desk.verify_history(ref)
        assert desk.verify_all() == VerifyReport(1, 1)
        trail = _trail(inner._audit[ref])
        trail[1] = (b"{", trail[1][1])
        inner._audit[ref] = _pack_trail(trail)
        check = desk.verify_history(ref)
        assert not check
        assert "cannot be read" in check.problem
        assert not desk.verify_all()


def test_history_check_stays_backward_compatible() -> None:
    """Built positionally as before; the new fields have defaults."""
    check = HistoryCheck("REQ-1", 3)
    assert check
    assert check.ok
    assert (check.column, check.head) == (None, "")
    assert not HistoryCheck("REQ-1", 3, 2, "altered")


# --- reqmgmt verify ---------------------------------------------------------------------------


def test_cli_verify_exits_0_when_intact_and_3_when_broken(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit codes: 0 intact, 3 broken (done but needs attention); --json for machines."""
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = walked(desk)
        receive(desk)
    assert main(["verify", "--db", url, "--no-entrypoints"]) == 0
    assert "verified 2 records: 2 intact, 0 broken" in capsys.readouterr().out
    attack(url, "UPDATE audit SET to_state = 'closed' WHERE ref = :r AND version = 2", r=ref)
    assert main(["verify", "--db", url, "--no-entrypoints"]) == 3
    out = capsys.readouterr().out
    assert "1 intact, 1 broken" in out
    assert f"{ref} at version 2 [audit.to_state]" in out
    assert main(["verify", "--db", url, "--json", "--no-entrypoints"]) == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["checked"] == 2
    assert summary["intact"] == 1
    assert [(b["ref"], b["broken_at"], b["column"]) for b in summary["broken"]] == [
        (ref, 2, "audit.to_state")
    ]


def test_cli_verify_anchors_written_then_truncation_caught(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--anchor FILE: written when missing; a later run finds the chain cut short (exit 3)."""
    anchor = tmp_path / "anchors.jsonl"
    with Desk.open(url, clock=FakeClock()) as desk:
        ref = walked(desk)
        v2 = desk.get(ref, version=2)
    assert main(["verify", "--db", url, "--anchor", str(anchor), "--no-entrypoints"]) == 0
    assert "anchored the heads of 1 chains" in capsys.readouterr().out
    lines = anchor.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "reqmgmt-anchors/1"
    assert json.loads(lines[1])["ref"] == ref
    assert json.loads(lines[1])["version"] == 5
    assert main(["verify", "--db", url, "--anchor", str(anchor), "--no-entrypoints"]) == 0
    # events 3-5 removed and the record put back to version 2: consistent, but short
    with Desk.open(url, clock=FakeClock()) as desk, desk.store.transaction() as tx:
        values = tx._values(v2)  # type: ignore[attr-defined]
    attack(
        url,
        "DELETE FROM audit WHERE ref = :r AND version > 2",
        "UPDATE records SET state = :state, version = 2, due_at = :due_at, "
        "updated_at = :updated_at, doc = :doc WHERE ref = :r",
        r=ref,
        **{k: values[k] for k in ("state", "due_at", "updated_at", "doc")},
    )
    assert main(["verify", "--db", url, "--no-entrypoints"]) == 0
    capsys.readouterr()
    assert main(["verify", "--db", url, "--anchor", str(anchor), "--no-entrypoints"]) == 3
    assert "truncated" in capsys.readouterr().out
    # a new anchor is never written over an old one, nor from a broken store
    new = tmp_path / "new.jsonl"
    args = ["verify", "--db", url, "--anchor", str(anchor), "--write-anchor", str(new)]
    assert main([*args, "--no-entrypoints"]) == 3
    assert not new.exists()
    assert "no anchor written" in capsys.readouterr().out
    args = ["verify", "--db", url, "--write-anchor", str(anchor), "--no-entrypoints"]
    assert main(args) == 1
    assert "never overwritten" in capsys.readouterr().err


def test_cli_verify_refuses_a_malformed_anchor_file(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An anchor file that is not one: exit 1 naming the line."""
    with Desk.open(url, clock=FakeClock()) as desk:
        receive(desk)
    anchor = tmp_path / "a.jsonl"
    anchor.write_text('{"format": "reqmgmt-anchors/1"}\n{"ref": "R", "version": "1"}\n')
    assert main(["verify", "--db", url, "--anchor", str(anchor), "--no-entrypoints"]) == 1
    assert "line 2" in capsys.readouterr().err


def test_progress_is_rich_when_installed_else_a_plain_counter(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal: rich's bar when it imports, else "verified n/total records" on stderr."""
    import sys

    from reqmgmt.cli import _progress

    update, done = _progress(True)
    assert update is not None
    update(3, 7)
    done()
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # rich not installed
    update, done = _progress(True)
    assert update is not None
    update(3, 7)
    done()
    assert "\rverified 3/7 records\n" in capsys.readouterr().err
    assert _progress(False)[0] is None
