"""Stores: the protocol, and the in-memory store."""

from __future__ import annotations

from .base import BulkInsert, OutboxEntry, RowLock, Store, Transaction
from .memory import MemoryStore

__all__ = ["BulkInsert", "MemoryStore", "OutboxEntry", "RowLock", "Store", "Transaction"]
