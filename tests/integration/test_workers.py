"""Workers isolate a failing record: reminders, dispatch and report list it and go on.

A bad record or row is planted behind the library's back (raw SQL on SQLite
and PostgreSQL, the memory store's internals), as an old release, a DBA or a
broken import could leave it.  Each pass finishes for the good records and
reports the bad one in ``failed`` as (ref, reason), and logs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from reqmgmt import Actor, Customer, Desk, Notification, hookimpl
from reqmgmt.reports import rebuild, recompute
from reqmgmt.storage.memory import MemoryStore
from reqmgmt.testing import FakeClock

CLERK = Actor("clerk", "Clerk", roles={"sales"})
CUSTOMER = Customer("HK-001", "Hong Kong Trading Ltd")
FOREVER = datetime(2199, 1, 1, tzinfo=UTC)
YEAR_ONE = "0001-01-01T00:00:00+00:00"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'workers.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def _receive(desk: Desk, n: int = 3) -> list[str]:
    return [
        desk.requirements.receive(customer=CUSTOMER, description=f"brackets {i}", actor=CLERK).ref
        for i in range(n)
    ]


def _sql(desk: Desk, statement: str, **params: Any) -> None:
    """Run ``statement`` on the desk's database, as a DBA would."""
    engine = sa.create_engine(desk.store.url)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    engine.dispose()


def _edit_doc(desk: Desk, ref: str, **changes: Any) -> None:
    """Change fields of a stored record's JSON document (and its due column)."""
    engine = sa.create_engine(desk.store.url)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        doc = conn.execute(sa.text("SELECT doc FROM records WHERE ref = :r"), {"r": ref}).scalar()
        data = json.loads(doc)
        data.update(changes)
        conn.execute(
            sa.text("UPDATE records SET doc = :d WHERE ref = :r"),
            {"d": json.dumps(data), "r": ref},
        )
    engine.dispose()


def _plant_memory(desk: Desk, ref: str, **changes: Any) -> None:
    store = desk.store
    assert isinstance(store, MemoryStore)
    bad = attrs.evolve(store._records[ref])
    for name, value in changes.items():
        object.__setattr__(bad, name, value)  # past the validators
    store._records[ref] = bad


def test_a_bad_record_does_not_stop_the_reminder_pass(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """due_at 0001-01-02 (an ERP's "no date") on one record: the others are reminded."""
    with Desk.open(url, clock=FakeClock()) as desk:
        good1, bad, good2 = _receive(desk)
        if url == "memory://":
            year_one = datetime.fromisoformat(YEAR_ONE)
            _plant_memory(desk, bad, due_at=year_one, next_deadline=year_one)
        else:
            _edit_doc(desk, bad, due_at=YEAR_ONE, next_deadline=YEAR_ONE)
        result = desk.run_reminders(desk.now() + timedelta(days=30))
        assert [ref for ref, _ in result.failed] == [bad]
        reason = result.failed[0][1]
        assert ("OverflowError" in reason) if url == "memory://" else ("due_at" in reason)
        reminded = {
            e.notification.ref
            for e in desk.outbox(now=FOREVER)
            if e.notification.event in ("remind", "escalate")
        }
        assert {good1, good2} <= reminded
        assert bad not in reminded
        assert result.queued > 0
        assert bad in caplog.text


class _Picky:
    """Delivers, except for one record, whose delivery fails with a NUL in the message."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.sent: list[str] = []

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        if notification.ref == self.refuse:
            raise RuntimeError("mail gateway said: bad\x00byte \ud800")
        self.sent.append(notification.ref)


def test_a_bad_notification_does_not_stop_dispatch(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing delivery (its error text unstorable as is) and an unreadable entry are listed."""
    with Desk.open(url, clock=FakeClock(), autodispatch=False) as desk:
        good, failing, damaged = _receive(desk)
        keys = [e.notification.key for e in desk.outbox() if e.notification.ref == failing]
        picky = _Picky(failing)
        desk.pm.register(picky)
        expected = {failing}
        if url != "memory://":
            _sql(desk, "UPDATE outbox SET doc = 'not json' WHERE ref = :r", r=damaged)
            expected.add(damaged)
        result = desk.dispatch()
        assert {ref for ref, _ in result.failed} == expected
        assert good in picky.sent
        if url == "memory://":
            assert damaged in picky.sent
        reasons = dict(result.failed)
        assert "bad\\x00byte" in reasons[failing]
        if url != "memory://":
            assert "cannot be read" in reasons[damaged]
        # The failed delivery's error is kept, in a form every database stores.
        with desk.store.transaction() as tx:
            kept = tx.outbox(keys[0])
        assert kept is not None
        assert kept.last_error is not None
        assert "\x00" not in kept.last_error
        assert failing in caplog.text


def test_a_bad_record_does_not_stop_the_report(url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A record the report cannot take is left out and listed; the others are counted.

    The report itself reads only the summary rows (a row damaged outside
    reqmgmt is not read); the full computation and the rebuild of the
    summaries read every record, leave the bad ones out and list them.
    """
    with Desk.open(url, clock=FakeClock()) as desk:
        refs = _receive(desk, 4)
        since = datetime(2000, 1, 1, tzinfo=UTC)
        if url == "memory://":
            # A naive time cannot be compared with the window.
            _plant_memory(desk, refs[1], created_at=datetime(2026, 3, 2, 9, 0))
            planted = [refs[1]]
        else:
            _sql(desk, "UPDATE records SET doc = 'not json' WHERE ref = :r", r=refs[1])
            # PostgreSQL's jsonb cannot hold \u0000; the document as text can.
            _edit_doc(desk, refs[2], description="brack\x00ets")
            planted = [refs[1], refs[2]]
        assert desk.report(since=since).failed == ()
        report = recompute(desk.store, desk.engines, since)
        assert [ref for ref, _ in report.failed] == planted
        received = [c for c in report.counts if c.dimension == "state" and c.value == "received"]
        assert [c.count for c in received] == [4 - len(planted)]
        assert "records left out" in report.table()
        assert all(ref in caplog.text for ref in planted)
        assert [ref for ref, _ in rebuild(desk.store, desk.engines)] == planted
        received = [
            c
            for c in desk.report(since=since).counts
            if c.dimension == "state" and c.value == "received"
        ]
        assert [c.count for c in received] == [4 - len(planted)]


def test_the_command_line_names_what_a_pass_left_out_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reqmgmt report --rebuild` and `reqmgmt remind` list the unreadable record and exit 3."""
    from reqmgmt.cli import main

    url = f"sqlite:///{tmp_path / 'workers.db'}"
    with Desk.open(url, clock=FakeClock()) as desk:
        refs = _receive(desk)
        _sql(desk, "UPDATE records SET doc = 'not json' WHERE ref = :r", r=refs[1])
    assert main(["report", "--db", url, "--no-entrypoints"]) == 0  # the summaries only
    capsys.readouterr()
    assert main(["report", "--rebuild", "--db", url, "--no-entrypoints"]) == 3
    assert f"left out {refs[1]}" in capsys.readouterr().err
    later = (FakeClock()() + timedelta(days=30)).isoformat()
    assert main(["remind", "--db", url, "--now", later, "--json", "--no-entrypoints"]) == 3
    failed = json.loads(capsys.readouterr().out)["failed"]
    assert [f["ref"] for f in failed] == [refs[1]]
