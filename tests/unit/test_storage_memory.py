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
