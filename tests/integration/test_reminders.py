"""Reminder passes in several workers at once, and the due-date index, on SQL stores."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from reqmgmt import Actor, Customer, Desk, Notification, hookimpl
from reqmgmt.storage.sql import SqlStore
from reqmgmt.testing import FakeClock

CST = ZoneInfo("Asia/Shanghai")
CLERK = Actor("clerk", roles={"sales"})
START = datetime(2026, 3, 2, 9, 0, tzinfo=CST).astimezone(UTC)  # Monday 09:00 in Shanghai


class SharedMailbox:
    """Every delivery of every worker, in one list."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: list[str] = []

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        with self.lock:
            self.keys.append(notification.key)


def two_workers_send_each_reminder_once(url: str) -> None:
    with Desk.open(url, clock=FakeClock(START, tick=timedelta(0)), autodispatch=False) as desk:
        for i in range(12):
            desk.requirements.receive(
                customer=Customer("C1", "C"), description=f"order {i}", actor=CLERK,
                priority=["urgent", "high", "normal"][i % 3],
            )  # fmt: skip
        created = {e.notification.key for e in desk.outbox()}
    mailbox = SharedMailbox()
    clocks = [FakeClock(START, tick=timedelta(0)) for _ in range(2)]
    desks = [Desk.open(url, clock=c, plugins=[mailbox]) for c in clocks]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(desk: Desk, clock: FakeClock) -> None:
        try:
            for _ in range(6 * 48):  # six days, every half hour, both at the same moments
                clock.now += timedelta(minutes=30)
                barrier.wait()
                desk.run_reminders()
                desk.dispatch()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=work, args=(d, c)) for d, c in zip(desks, clocks, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in desks:
        d.close()
    assert not errors, errors
    reminders = [k for k in mailbox.keys if k not in created]
    assert reminders, "no reminder was sent"
    doubled = [k for k, n in Counter(reminders).items() if n > 1]
    assert doubled == []
    stages = Counter(k.split(":")[2] for k in reminders)
    assert stages["escalate-1"] >= 12, stages
    assert stages["due"] >= 12, stages


def test_two_workers_on_sqlite_send_each_reminder_once(tmp_path: Path) -> None:
    two_workers_send_each_reminder_once(f"sqlite:///{tmp_path / 'remind.db'}")


def test_two_workers_on_postgres_send_each_reminder_once(pg_url: str) -> None:
    two_workers_send_each_reminder_once(pg_url)


def test_the_reminder_pass_reads_through_the_due_date_index(tmp_path: Path) -> None:
    """EXPLAIN QUERY PLAN of the pass's query on SQLite: a search on ix_records_due_at."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    with Desk.open(url, clock=FakeClock(START), autodispatch=False) as desk:
        desk.requirements.receive(customer=Customer("C1", "C"), description="x", actor=CLERK)
        store = desk.store
        assert isinstance(store, SqlStore)
        seen: list[tuple[str, Any]] = []

        @sa.event.listens_for(store.engine, "before_cursor_execute")
        def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if "FROM records" in statement and "due_at <" in statement:
                seen.append((statement, params))

        desk.run_reminders(now=START + timedelta(days=3))
        assert seen, "the pass did not query by due date"
        statement, params = seen[0]
        with store.engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    details = " ".join(str(row[-1]) for row in plan)
    print(details)
    assert "USING INDEX ix_records_due_at" in details, details
    assert "SCAN records" not in details, details
