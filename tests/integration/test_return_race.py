"""Issue 14 point 10: two returns racing on one contract line cannot both pass.

The first return's transaction is held open (created, not committed) while a second
return for the same line starts in another thread.  The contract is locked in the
creating transaction (storage.base.RowLock), so the second waits, then counts the first
and is refused.  Without the lock the second reads no return on PostgreSQL (read
committed) or in the memory store and passes: 1200 returned of 1000 shipped.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reqmgmt import Contract, Desk, ReqMgmtError, ValidationError
from reqmgmt.creation import create_in
from reqmgmt.testing import FakeClock

from ..unit.test_lifecycle_returns import SALES, shipped_contract


@pytest.mark.parametrize("url_kind", ["memory", "sqlite", "postgres"])
def test_two_returns_on_one_line_are_checked_one_after_the_other(
    url_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = {
        "memory": lambda: "memory://",
        "sqlite": lambda: f"sqlite:///{tmp_path / 'race.db'}",
        "postgres": lambda: request.getfixturevalue("pg_url"),
    }[url_kind]()
    with Desk.open(url, clock=FakeClock()) as desk:
        contract: Contract = shipped_contract(desk)
        fields = {
            "customer": contract.customer, "product": "冲压支架 ZJ-12", "reason_code": "quality",
            "reason_text": "开裂", "contract_ref": contract.ref, "line_no": 1, "quantity": 600,
        }  # fmt: skip
        outcome: list[object] = []

        def second() -> None:
            try:
                outcome.append(desk.returns.report(actor=SALES, **fields))  # type: ignore[arg-type]
            except ReqMgmtError as exc:
                outcome.append(exc)

        racer = threading.Thread(target=second, daemon=True)
        with desk.store.transaction() as tx:
            create_in(desk, tx, "return", actor=SALES, note=None, decisions=(), fields=fields)
            racer.start()
            racer.join(timeout=1.0)
            assert racer.is_alive(), f"the second return did not wait: {outcome}"
        racer.join(timeout=30)
        assert not racer.is_alive()
        assert len(outcome) == 1, outcome
        assert isinstance(outcome[0], ValidationError), outcome
        assert "at most 400 on" in str(outcome[0])
        assert [r.quantity for r in desk.query(kind="return")] == [600]


def test_the_memory_store_gives_up_on_a_record_held_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RowLock in the memory store: a lock held past the wait is a StoreUnavailable, not a hang;
    the lock is released when the holding transaction ends, committed or not."""
    from reqmgmt.errors import StoreUnavailable
    from reqmgmt.storage import memory

    monkeypatch.setattr(memory, "_LOCK_WAIT", 0.05)
    store = memory.MemoryStore()
    with store.transaction() as holder:
        holder.lock("CON-1")
        holder.lock("CON-1")  # again in the same transaction: already held
        with (
            pytest.raises(StoreUnavailable, match="CON-1 stayed locked"),
            store.transaction() as tx,
        ):
            tx.lock("CON-1")
    with store.transaction() as after:
        after.lock("CON-1")
