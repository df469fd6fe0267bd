"""A reminder worker: what cron runs every few minutes, here over one simulated week.

Requirements come in on Monday morning in Shanghai; one is answered at once,
one waits on the customer (the clock stops), one is left alone.  A worker
loop, as cron or a systemd timer would run it (``reqmgmt remind --dispatch``),
queues reminders and escalations and delivers them.  Because each reminder has
an idempotency key, the loop can run as often as it likes, in as many
processes as it likes, and restart at any time: each reminder goes out once.

Run it: ``python examples/reminders_worker.py``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from reqmgmt import Actor, Customer, Desk, Notification, hookimpl
from reqmgmt.testing import FakeClock

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Inbox:
    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        when = notification.created_at.astimezone(SHANGHAI)
        if notification.event in ("remind", "escalate"):
            print(f"  {when:%a %H:%M} → {notification.recipient:22} {notification.text_en}")


def worker_pass(url: str, clock: FakeClock, inbox: Inbox) -> None:
    """One cron run: a fresh process would open the Desk like this."""
    with Desk.open(url, clock=clock, plugins=[inbox]) as desk:
        desk.run_reminders()
        desk.dispatch()


def main() -> None:
    clerk = Actor("zhang.wei", "张伟", roles={"sales"})
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)
    clock = FakeClock(monday, tick=timedelta(0))
    inbox = Inbox()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'reminders.db'}"
        with Desk.open(url, clock=clock, autodispatch=False) as desk:
            customer = Customer("HK-001", "Hong Kong Trading Ltd")
            answered = desk.requirements.receive(
                customer=customer, description="answered at once", actor=clerk
            )
            desk.fire(answered.ref, "start_evaluation", actor=clerk)
            waiting = desk.requirements.receive(
                customer=customer, description="waits on the customer", actor=clerk
            )
            desk.fire(waiting.ref, "clarify", actor=clerk, note="which plating?")
            ignored = desk.requirements.receive(
                customer=customer, description="nobody looks at it", priority="urgent",
                actor=clerk,
            )  # fmt: skip
            print(f"{answered.ref} evaluating, {waiting.ref} waiting on the customer, "
                  f"{ignored.ref} urgent and ignored")  # fmt: skip
        sent: Counter[str] = Counter()
        for _ in range(5 * 24 * 4):  # a week of 15-minute cron runs
            clock.now += timedelta(minutes=15)
            worker_pass(url, clock, inbox)
        with Desk.open(url, clock=clock) as desk:
            for entry in desk.outbox(now=clock.now):
                sent[entry.status] += 1
            paused = desk.get(waiting.ref)
            since = paused.paused_since
            assert since is not None
            print(f"{waiting.ref}: no reminders while the customer has it; clock stopped "
                  f"since {since.astimezone(SHANGHAI):%a %H:%M}")  # fmt: skip
            assert paused.next_deadline is None
            assert not sent, "everything was delivered"


if __name__ == "__main__":
    main()
