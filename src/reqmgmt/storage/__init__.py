"""Stores: the protocol, and the in-memory store."""

from __future__ import annotations

from .base import BulkInsert, OutboxEntry, Store, Transaction
from .memory import MemoryStore

__all__ = ["BulkInsert", "MemoryStore", "OutboxEntry", "Store", "Transaction"]
