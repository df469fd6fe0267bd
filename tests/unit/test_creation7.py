"""A creation's sealed event, round seven (issue 15): written in its own transaction,
its bytes are kept as ``audit.LAST_SEALED`` only, not among the 256 events
``audit._SEALED`` keeps for an import batch; the stored bytes are the generic
encoding wherever the event comes from (one creation, several in one
transaction, a batch written at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from reqmgmt import Actor, Customer, Desk, audit
from reqmgmt.creation import create_in
from reqmgmt.model import AuditEvent

CLERK = Actor("clerk", "Clerk", roles={"sales"}, departments={"sales"})
CUSTOMER = Customer(id="C-1", name="华南五金")
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def desk() -> Iterator[Desk]:
    with Desk.open("memory://") as d:
        yield d


def _generic(event: AuditEvent) -> bytes:
    return audit._encode(audit._event_payload(event))


def _stored_match(desk: Desk, ref: str) -> None:
    """Every stored event of ``ref`` is the generic encoding of what it reads back as,
    and the chain verifies."""
    history = desk.history(ref)
    with desk.store.transaction() as tx:
        rows = tx.raw_audit(ref)
    assert len(rows) == len(history) >= 1
    for row, event in zip(rows, history, strict=True):
        assert orjson.loads(row.doc) == orjson.loads(_generic(event))
        assert audit.event_hash(event) == event.hash
    assert desk.verify_history(ref)


def test_a_creation_in_its_own_transaction_is_not_kept_among_the_256(desk: Desk) -> None:
    audit._SEALED.clear()
    made = desk.requirements.receive(customer=CUSTOMER, description="brackets", actor=CLERK)
    assert audit._SEALED == {}  # the old path kept the creating event (and its document)
    assert audit.LAST_SEALED[0] is not None
    assert audit.LAST_SEALED[0].ref == made.ref
    _stored_match(desk, made.ref)


def test_two_creations_in_one_transaction_store_the_generic_bytes(desk: Desk) -> None:
    """The first event left the last-sealed slot before the commit: encoded again."""
    fields = {"customer": CUSTOMER, "description": "brackets", "received_at": AT}
    with desk.store.transaction() as tx:
        first, e1, _ = create_in(
            desk, tx, "requirement", actor=CLERK, note=None, decisions=(), fields=fields
        )
        second, e2, _ = create_in(
            desk, tx, "requirement", actor=CLERK, note="两张 two", decisions=(), fields=fields
        )
        assert audit.LAST_SEALED[0] is e2
        assert audit.canonical(e1) == _generic(e1)  # not kept: the same bytes again
    for ref in (first.ref, second.ref):
        _stored_match(desk, ref)


def test_an_import_batchs_events_are_stored_as_the_generic_bytes(desk: Desk) -> None:
    """An import seals with ``write=False`` (kept among the 256 until the batch is written)."""
    rows = [{"customer": CUSTOMER, "description": f"lot {i}", "received_at": AT} for i in range(5)]
    refs = desk.create_many("requirement", rows, actor=CLERK)
    assert len(refs) == 5
    for ref in refs:
        _stored_match(desk, ref)
