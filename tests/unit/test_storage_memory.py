"""The memory store passes the storage contract suite."""

from __future__ import annotations

from reqmgmt import MemoryStore, Store
from reqmgmt.testing import StoreContract


class TestMemoryStore(StoreContract):
    """The contract suite, unchanged, against MemoryStore."""

    def make_store(self) -> Store:
        return MemoryStore()


def test_memory_store_satisfies_the_protocol() -> None:
    """MemoryStore and its transactions are Store / Transaction."""
    from reqmgmt import Transaction

    store = MemoryStore()
    assert isinstance(store, Store)
    with store.transaction() as tx:
        assert isinstance(tx, Transaction)
    assert len(store) == 0


def test_the_audit_trail_costs_about_its_json_in_memory() -> None:
    """Events are kept as compact bytes: orjson's output would hold 8 KB buffers each."""
    import gc
    import tracemalloc

    from reqmgmt import Desk
    from reqmgmt.testing import FakeClock

    from ..conftest import CLERK, receive

    with Desk.open("memory://", clock=FakeClock()) as desk:
        for _ in range(20):  # warm: caches, imports, first calls
            desk.fire(receive(desk), "clarify", actor=CLERK, note="which finish?")
        store = desk.store
        assert isinstance(store, MemoryStore)
        gc.collect()
        tracemalloc.start()
        try:
            for _ in range(200):
                desk.fire(receive(desk), "clarify", actor=CLERK, note="which finish?")
            store._outbox.clear()
            store._outbox_keys.clear()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            refs = list(store._audit)[-200:]  # the trails written while tracing
            size = sum(len(store._audit[ref]) for ref in refs)  # the JSON and the hashes
            for ref in refs:
                del store._audit[ref]
            gc.collect()
            freed = before - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert 0 < freed < 1.5 * size  # the JSON text, bookkeeping included, no buffers


def test_creating_on_the_memory_store_hands_over_no_document() -> None:
    """Only stores that serialize records are handed the creating command's JSON form."""
    from reqmgmt import Desk, serialize
    from reqmgmt.testing import FakeClock

    from ..conftest import receive

    serialize._HANDED.clear()
    with Desk.open("memory://", clock=FakeClock()) as desk:
        receive(desk)
    assert len(serialize._HANDED) == 0


def test_a_failed_transaction_gives_its_numbers_back() -> None:
    """Numbers drawn in a rolled-back transaction are drawn again, as on SQL stores."""
    store = MemoryStore()
    failed = store.transaction()
    assert failed.next_sequence("requirement:2026", count=3) == 1
    failed.__exit__(RuntimeError, None, None)  # the block raised: rolled back
    with store.transaction() as tx:
        assert tx.next_sequence("requirement:2026") == 1


def test_numbers_another_transaction_drew_after_are_never_given_back() -> None:
    """A gap rather than a number handed out twice when transactions interleave."""
    store = MemoryStore()
    a = store.transaction()
    b = store.transaction()
    assert a.next_sequence("n") == 1
    assert b.next_sequence("n") == 2
    assert a.next_sequence("n") == 3
    a.__exit__(RuntimeError, None, None)
    b.__exit__(None, None, None)
    with store.transaction() as tx:
        assert tx.next_sequence("n") == 4
