"""A seeded run's whole output, hashed: the guard of the performance work (issue 15).

The demo's scenario (all three lifecycles: intake and countersign, every contract
route with amendments and shipments, returns with dispositions and CAPA,
reminders and delivery) runs on a fixed clock, on the memory store and on
SQLite.  Every record, every audit event (with its hash chain) and every outbox
entry is written out canonically and hashed.  A performance change must not
move this hash; a feature that changes what is stored updates
``SEEDED_RUN_SHA256`` in a commit of its own that says why.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import reqmgmt.demo
from reqmgmt import Desk
from reqmgmt.demo import run_demo
from reqmgmt.serialize import unstructure
from reqmgmt.storage.base import OUTBOX_STATUSES

#: sha256 of the canonical dump below; see the module docstring before changing it.
SEEDED_RUN_SHA256 = "16688fc891bd1855fd6d94109be2be1c9394c2f1f48f4d3a6103eae77616321d"
#: The demo's clock starts here (a Monday; the holidays of 2026 are official).
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _canonical(desk: Desk) -> Iterator[bytes]:
    for record in sorted(desk.query(), key=lambda r: r.ref):
        yield orjson.dumps(unstructure(record), option=orjson.OPT_SORT_KEYS)
        for event in desk.history(record.ref):
            yield orjson.dumps(unstructure(event), option=orjson.OPT_SORT_KEYS)
    with desk.store.transaction() as tx:
        entries: list[Any] = []
        for status in OUTBOX_STATUSES:
            entries.extend(tx.entries(status=status))
    for entry in sorted(entries, key=lambda e: e.notification.key):
        yield orjson.dumps(unstructure(entry), option=orjson.OPT_SORT_KEYS)


def seeded_run_hash(url: str) -> tuple[str, int]:
    """Run the demo on ``url`` and hash what it stored; also the number of lines hashed."""
    assert run_demo(url, io.StringIO(), start=START) == 0
    digest = hashlib.sha256()
    lines = 0
    with Desk.open(url) as desk:
        for line in _canonical(desk):
            digest.update(line + b"\n")
            lines += 1
    return digest.hexdigest(), lines


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the demo writes its notification log and forms beside the db
    return tmp_path


def test_seeded_run_is_unchanged(here: Path) -> None:
    digest, lines = seeded_run_hash(f"sqlite:///{here / 'seeded.db'}")
    assert lines > 150, lines
    assert digest == SEEDED_RUN_SHA256, (
        f"the seeded run's records, audit trail or outbox changed ({lines} lines hashed, "
        f"sha256 {digest}); a performance change must not do that. A feature that changes "
        "what is stored updates SEEDED_RUN_SHA256 in its own commit, saying why."
    )


class _NoToday(date):
    @classmethod
    def today(cls) -> date:  # type: ignore[override]
        raise AssertionError("the demo asked the machine's calendar (date.today())")


class _NoNow(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        raise AssertionError("the demo asked the machine's clock (datetime.now())")

    @classmethod
    def today(cls) -> datetime:  # type: ignore[override]
        raise AssertionError("the demo asked the machine's calendar (datetime.today())")


def test_a_seeded_run_never_asks_the_machines_clock(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every date the demo stores comes from its clock (``start``): until 2026-12-03
    two came from ``date.today()``, and the stored hash changed with the calendar."""
    patched = 0
    for name, value in vars(reqmgmt.demo).items():
        if value is date:
            monkeypatch.setattr(reqmgmt.demo, name, _NoToday)
            patched += 1
        elif value is datetime:
            monkeypatch.setattr(reqmgmt.demo, name, _NoNow)
            patched += 1
    assert patched >= 1  # the demo names datetime (for its default start)
    start = _NoNow(2026, 3, 2, 1, 0, tzinfo=UTC)  # START, as the patched class checks it
    assert run_demo(f"sqlite:///{here / 'clock.db'}", io.StringIO(), start=start) == 0
