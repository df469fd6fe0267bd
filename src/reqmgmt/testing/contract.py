"""The storage contract suite: what every Store must do, as pytest tests.

A host checks its own store by subclassing::

    from reqmgmt.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self):
            return MyStore("...fresh, empty database...")

The built-in stores run the same suite (tests/unit/test_storage_memory.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from ..errors import ConflictError
from ..model import AuditEvent, Customer, Notification, Requirement
from ..storage.base import BulkInsert, RawRead, Store

__all__ = ["StoreContract", "make_notification", "make_requirement"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_requirement(ref: str = "REQ-2026-000001", **changes: object) -> Requirement:
    """A valid requirement record at version 1 (fields overridable)."""
    values: dict[str, object] = {
        "ref": ref,
        "state": "received",
        "created_at": T0,
        "updated_at": T0,
        "created_by": "clerk",
        "customer": Customer("C1", "Customer one"),
        "description": "10,000 brackets",
        "received_at": T0,
    }
    values.update(changes)
    return Requirement(**values)  # type: ignore[arg-type]


def make_event(ref: str, version: int, prev_hash: str = "") -> AuditEvent:
    """A minimal audit event (hash left as given: stores do not check hashes)."""
    return AuditEvent(
        ref=ref,
        record_kind="requirement",
        version=version,
        event="e",
        from_state=None,
        to_state="received",
        actor_id="clerk",
        actor_name="",
        at=T0 + timedelta(seconds=version),
        prev_hash=prev_hash,
        hash=f"h{version}",
    )


def make_notification(ref: str, version: int, recipient: str = "role:sales") -> Notification:
    """A notification with the usual idempotency key."""
    return Notification(
        key=f"{ref}:{version}:{recipient}",
        ref=ref,
        record_kind="requirement",
        version=version,
        event="e",
        recipient=recipient,
        topic="requirement.e",
        text_zh="通知",
        text_en="notice",
        created_at=T0,
    )


class StoreContract:
    """Subclass with a ``Test`` name and implement :meth:`make_store`."""

    def make_store(self) -> Store:
        """A fresh, empty store."""
        raise NotImplementedError("implement make_store() in your subclass")

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = self.make_store()
        try:
            yield store
        finally:
            store.close()

    # --- records ------------------------------------------------------------------------

    def test_insert_then_get_returns_an_equal_record(self, store: Store) -> None:
        """A committed insert reads back equal, in a later transaction."""
        rec = make_requirement()
        with store.transaction() as tx:
            tx.insert(rec)
        with store.transaction() as tx:
            assert tx.get(rec.ref) == rec
            assert tx.get("REQ-2026-999999") is None

    def test_insert_of_a_taken_ref_conflicts(self, store: Store) -> None:
        """Inserting a ref that exists raises ConflictError."""
        with store.transaction() as tx:
            tx.insert(make_requirement())
        with pytest.raises(ConflictError) as info, store.transaction() as tx:
            tx.insert(make_requirement(description="other"))
        assert info.value.ref == "REQ-2026-000001"
        with store.transaction() as tx:
            got = tx.get("REQ-2026-000001")
            assert isinstance(got, Requirement)
            assert got.description == "10,000 brackets"

    def test_insert_many_writes_records_and_their_events(self, store: Store) -> None:
        """``insert_many`` (optional, an import's batch) stores what insert + append_audit would."""
        recs = [make_requirement(f"REQ-2026-{i:06d}") for i in range(1, 4)]
        with store.transaction() as tx:
            if not isinstance(tx, BulkInsert):
                pytest.skip("this store has no insert_many (optional: imports go row by row)")
            tx.insert_many(recs, [make_event(r.ref, 1) for r in recs])
        with store.transaction() as tx:
            for r in recs:
                assert tx.get(r.ref) == r
                assert [e.hash for e in tx.audit(r.ref)] == ["h1"]

    def test_insert_many_with_a_taken_ref_conflicts_and_writes_nothing(self, store: Store) -> None:
        """A ref stored already, or twice in a batch: ConflictError names it, nothing is written."""
        with store.transaction() as tx:
            tx.insert(make_requirement("REQ-2026-000002", description="first"))
        # the ref the error must name -> the batch
        batches = {
            "REQ-2026-000002": ["REQ-2026-000001", "REQ-2026-000002", "REQ-2026-000003"],
            "REQ-2026-000004": ["REQ-2026-000004", "REQ-2026-000005", "REQ-2026-000004"],
        }
        for taken, refs in batches.items():
            recs = [make_requirement(ref) for ref in refs]
            with pytest.raises(ConflictError) as info, store.transaction() as tx:
                if not isinstance(tx, BulkInsert):
                    pytest.skip("this store has no insert_many (optional: imports go row by row)")
                tx.insert_many(recs, [make_event(r.ref, 1) for r in recs])
            assert info.value.ref == taken
        with store.transaction() as tx:
            assert [r.ref for r in tx.query()] == ["REQ-2026-000002"]
            got = tx.get("REQ-2026-000002")
            assert isinstance(got, Requirement)
            assert got.description == "first"
            for ref in ("REQ-2026-000001", "REQ-2026-000003", "REQ-2026-000004"):
                assert list(tx.audit(ref)) == []

    def test_raw_reads_give_rows_as_stored_with_columns_that_agree(self, store: Store) -> None:
        """``RawRead`` (optional, for verification): rows, their columns, refs in order."""
        rec = make_requirement("REQ-2026-000002")
        events = [make_event(rec.ref, 1), make_event(rec.ref, 2, "h1")]
        with store.transaction() as tx:
            if not isinstance(tx, RawRead):
                pytest.skip("this store has no raw reads (optional: verification reads documents)")
            tx.insert(rec)
            for e in events:
                tx.append_audit(e)
            tx.append_audit(make_event("REQ-2026-000001", 1))  # a trail without a record
        with store.transaction() as tx:
            assert isinstance(tx, RawRead)
            raw = tx.raw_record(rec.ref)
            assert raw is not None
            assert tx.raw_record("REQ-2026-999999") is None
            own = tx.record_columns(rec)
            assert {k: v for k, v in raw.columns.items() if k in own} == {
                k: v for k, v in own.items() if k in raw.columns
            }
            assert '"REQ-2026-000002"' in raw.doc
            rows = tx.raw_audit(rec.ref)
            assert [r.columns.get("hash") for r in rows] == ["h1", "h2"]
            for row, event in zip(rows, events, strict=True):
                expected = tx.event_columns(event)
                assert {k: v for k, v in row.columns.items() if k in expected} == {
                    k: v for k, v in expected.items() if k in row.columns
                }
            assert tx.raw_audit("REQ-2026-999999") == []
            assert tx.raw_refs() == ["REQ-2026-000001", "REQ-2026-000002"]
            assert tx.raw_refs(after="REQ-2026-000001") == ["REQ-2026-000002"]
            assert tx.raw_refs(limit=1) == ["REQ-2026-000001"]
            assert tx.raw_count() == 2

    def test_integers_beyond_64_bits_read_back_exactly(self, store: Store) -> None:
        """A JSON store must not turn a big integer into a float (orjson.loads would).

        Records hold whole numbers up to 2**53 - 1 (the input policy); the rule facts
        an audit event keeps may be any integer.
        """
        rec = make_requirement(paused_seconds=2**53 - 1)
        event = attrs.evolve(make_event(rec.ref, 1), decisions=({"facts": {"n": 2**80 + 3}},))
        with store.transaction() as tx:
            tx.insert(rec)
            tx.append_audit(event)
        with store.transaction() as tx:
            got = tx.get(rec.ref)
            assert got is not None
            assert got.paused_seconds == 2**53 - 1
            assert tx.audit(rec.ref)[0].decisions == ({"facts": {"n": 2**80 + 3}},)

    def test_update_with_the_current_version_replaces_the_record(self, store: Store) -> None:
        """update(expected_version=current) stores the new version."""
        rec = make_requirement()
        with store.transaction() as tx:
            tx.insert(rec)
        new = attrs.evolve(rec, version=2, state="clarifying")
        with store.transaction() as tx:
            tx.update(new, expected_version=1)
        with store.transaction() as tx:
            assert tx.get(rec.ref) == new

    def test_stale_update_conflicts_and_writes_nothing(self, store: Store) -> None:
        """A stale expected version raises ConflictError; the transaction writes nothing."""
        rec = make_requirement()
        with store.transaction() as tx:
            tx.insert(rec)
            tx.append_audit(make_event(rec.ref, 1))
        with pytest.raises(ConflictError) as info, store.transaction() as tx:
            tx.append_audit(make_event(rec.ref, 2, "h1"))
            tx.enqueue([make_notification(rec.ref, 2)])
            tx.update(attrs.evolve(rec, version=3), expected_version=2)
        assert (info.value.expected, info.value.actual) == (2, 1)
        with store.transaction() as tx:
            assert tx.get(rec.ref) == rec
            assert [e.version for e in tx.audit(rec.ref)] == [1]
            assert tx.pending(now=T0) == []

    def test_update_of_a_missing_record_conflicts(self, store: Store) -> None:
        """Updating a ref that does not exist raises ConflictError with actual None."""
        with pytest.raises(ConflictError) as info, store.transaction() as tx:
            tx.update(make_requirement(version=2), expected_version=1)
        assert info.value.actual is None

    def test_an_exception_in_the_block_rolls_everything_back(self, store: Store) -> None:
        """Any exception inside the transaction leaves records, audit and outbox untouched."""
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.insert(make_requirement())
            tx.append_audit(make_event("REQ-2026-000001", 1))
            tx.enqueue([make_notification("REQ-2026-000001", 1)])
            raise RuntimeError("boom")
        with store.transaction() as tx:
            assert tx.get("REQ-2026-000001") is None
            assert list(tx.audit("REQ-2026-000001")) == []
            assert tx.pending(now=T0) == []

    def test_interleaved_writers_one_wins_the_other_conflicts(self, store: Store) -> None:
        """Two transactions read version 1; the second to write gets ConflictError."""
        rec = make_requirement()
        with store.transaction() as tx:
            tx.insert(rec)
        with store.transaction() as first:
            loaded = first.get(rec.ref)
            assert loaded is not None
            first.update(attrs.evolve(loaded, version=2, state="clarifying"), expected_version=1)
        # The second writer loaded version 1 before the first committed.
        with pytest.raises(ConflictError), store.transaction() as second:
            second.append_audit(make_event(rec.ref, 2))
            second.update(attrs.evolve(rec, version=2, state="evaluating"), expected_version=1)
        with store.transaction() as tx:
            got = tx.get(rec.ref)
            assert got is not None
            assert got.state == "clarifying"
            assert list(tx.audit(rec.ref)) == []

    def test_a_transaction_sees_its_own_writes(self, store: Store) -> None:
        """Reads inside a transaction see what it staged."""
        with store.transaction() as tx:
            rec = make_requirement()
            tx.insert(rec)
            assert tx.get(rec.ref) == rec
            tx.append_audit(make_event(rec.ref, 1))
            assert [e.version for e in tx.audit(rec.ref)] == [1]
            assert tx.last_hash(rec.ref) == "h1"

    # --- audit ----------------------------------------------------------------------------

    def test_audit_keeps_order_and_last_hash_is_the_newest(self, store: Store) -> None:
        """Audit events come back oldest first; last_hash is the newest event's hash."""
        with store.transaction() as tx:
            tx.insert(make_requirement())
            for v in (1, 2, 3):
                tx.append_audit(make_event("REQ-2026-000001", v))
        with store.transaction() as tx:
            assert [e.version for e in tx.audit("REQ-2026-000001")] == [1, 2, 3]
            assert tx.last_hash("REQ-2026-000001") == "h3"
            assert tx.last_hash("REQ-2026-000002") is None

    # --- outbox -----------------------------------------------------------------------------

    def test_enqueue_is_idempotent_by_key(self, store: Store) -> None:
        """A key enqueued twice is kept once."""
        n = make_notification("REQ-2026-000001", 1)
        with store.transaction() as tx:
            tx.enqueue([n])
        with store.transaction() as tx:
            tx.enqueue([n, make_notification("REQ-2026-000001", 2)])
        with store.transaction() as tx:
            keys = [e.notification.key for e in tx.pending(now=T0)]
        assert keys == [n.key, "REQ-2026-000001:2:role:sales"]

    def test_saved_outbox_entries_leave_pending_when_delivered(self, store: Store) -> None:
        """save_outbox with status delivered removes the entry from pending."""
        with store.transaction() as tx:
            tx.enqueue([make_notification("R", 1), make_notification("R", 2)])
        with store.transaction() as tx:
            first = tx.pending(now=T0)[0]
            tx.save_outbox(attrs.evolve(first, status="delivered", attempts=1, delivered_at=T0))
        with store.transaction() as tx:
            assert [e.notification.version for e in tx.pending(now=T0)] == [2]
            entry = tx.outbox("R:1:role:sales")
            assert entry is not None
            assert entry.status == "delivered"

    def test_pending_respects_retry_time_and_limit(self, store: Store) -> None:
        """An entry due later is not pending yet; limit caps the answer."""
        with store.transaction() as tx:
            tx.enqueue([make_notification("R", v) for v in (1, 2, 3)])
        with store.transaction() as tx:
            first = tx.pending(now=T0)[0]
            later = T0 + timedelta(minutes=5)
            tx.save_outbox(attrs.evolve(first, attempts=1, next_attempt_at=later, last_error="x"))
        with store.transaction() as tx:
            assert [e.notification.version for e in tx.pending(now=T0)] == [2, 3]
            assert len(tx.pending(now=T0, limit=1)) == 1
            due = tx.pending(now=T0 + timedelta(minutes=5))
            assert [e.notification.version for e in due] == [1, 2, 3]
            assert due[0].last_error == "x"

    def test_pending_of_one_record(self, store: Store) -> None:
        """pending(ref=...) returns only that record's entries, in order."""
        with store.transaction() as tx:
            tx.enqueue([make_notification("A", 1), make_notification("B", 1)])
            tx.enqueue([make_notification("A", 2)])
        with store.transaction() as tx:
            assert [e.notification.key for e in tx.pending(now=T0, ref="A")] == [
                "A:1:role:sales",
                "A:2:role:sales",
            ]
            assert tx.pending(now=T0, ref="C") == []

    def test_claim_leases_what_it_returns(self, store: Store) -> None:
        """Claimed entries are not claimed again until the lease runs out."""
        lease = T0 + timedelta(minutes=5)
        with store.transaction() as tx:
            tx.enqueue([make_notification("A", 1), make_notification("B", 1)])
        with store.transaction() as tx:
            first = tx.claim(now=T0, lease_until=lease, limit=1)
        assert [e.notification.key for e in first] == ["A:1:role:sales"]
        assert first[0].next_attempt_at == lease
        with store.transaction() as tx:
            assert [e.notification.key for e in tx.claim(now=T0, lease_until=lease)] == [
                "B:1:role:sales"
            ]
        with store.transaction() as tx:
            assert tx.claim(now=T0, lease_until=lease) == []
        with store.transaction() as tx:
            again = tx.claim(now=lease, lease_until=lease + timedelta(minutes=5))
        assert [e.notification.key for e in again] == ["A:1:role:sales", "B:1:role:sales"]

    def test_claim_keeps_each_records_order(self, store: Store) -> None:
        """Behind an entry that is backing off, a record's later entries wait; others go."""
        with store.transaction() as tx:
            tx.enqueue([make_notification("A", v) for v in (1, 2, 3)])
            tx.enqueue([make_notification("B", 1)])
        with store.transaction() as tx:
            first = tx.pending(now=T0, ref="A")[0]
            later = T0 + timedelta(minutes=1)
            tx.save_outbox(attrs.evolve(first, attempts=1, next_attempt_at=later, last_error="x"))
        with store.transaction() as tx:
            claimed = tx.claim(now=T0, lease_until=T0 + timedelta(minutes=5))
        assert [e.notification.key for e in claimed] == ["B:1:role:sales"]
        with store.transaction() as tx:
            claimed = tx.claim(now=later, lease_until=later + timedelta(minutes=5), ref="A")
        assert [e.notification.version for e in claimed] == [1, 2, 3]

    def test_concurrent_claims_take_each_entry_once_in_record_order(self, store: Store) -> None:
        """Four workers claiming and delivering at once: each entry once, records in order."""
        with store.transaction() as tx:
            tx.enqueue([make_notification(f"R{i % 7}", i) for i in range(1, 141)])
        got: list[str] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(10_000):
                with store.transaction() as tx:
                    claimed = tx.claim(now=T0, lease_until=T0 + timedelta(hours=1), limit=5)
                    if not claimed and not tx.pending(now=T0 + timedelta(days=1)):
                        return
                with lock:
                    got.extend(e.notification.key for e in claimed)
                for entry in claimed:
                    with store.transaction() as tx:
                        tx.save_outbox(attrs.evolve(entry, status="delivered", delivered_at=T0))
            raise AssertionError("the workers never finished")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        want = sorted(f"R{i % 7}:{i}:role:sales" for i in range(1, 141))
        assert len(got) == len(set(got)), "an entry was claimed twice"
        assert sorted(got) == want, f"never claimed: {sorted(set(want) - set(got))}"
        for r in range(7):
            versions = [int(k.split(":")[1]) for k in got if k.startswith(f"R{r}:")]
            assert versions == sorted(versions), f"R{r} claimed out of order: {versions}"

    def test_entries_lists_by_status_oldest_first(self, store: Store) -> None:
        """entries(status=...) lists the outbox by status, in enqueue order, up to limit."""
        with store.transaction() as tx:
            assert tx.enqueue([make_notification("A", v) for v in (1, 2, 3)]) == 3
            assert tx.enqueue([make_notification("A", 1)]) == 0  # already there
        with store.transaction() as tx:
            first = tx.pending(now=T0)[0]
            tx.save_outbox(attrs.evolve(first, status="dead", attempts=8, last_error="smtp"))
        with store.transaction() as tx:
            dead = tx.entries(status="dead")
            assert [e.notification.key for e in dead] == ["A:1:role:sales"]
            assert dead[0].last_error == "smtp"
            pending = tx.entries(status="pending", limit=1)
            assert [e.notification.key for e in pending] == ["A:2:role:sales"]
            assert tx.entries(status="delivered") == []

    # --- sequences and queries -----------------------------------------------------------

    def test_sequences_count_up_per_name(self, store: Store) -> None:
        """next_sequence gives 1, 2, ... per name."""
        with store.transaction() as tx:
            assert [tx.next_sequence("a"), tx.next_sequence("a"), tx.next_sequence("b")] == [
                1,
                2,
                1,
            ]

    def test_sequences_reserve_blocks_of_numbers(self, store: Store) -> None:
        """next_sequence(name, count=k) reserves k numbers and returns the first."""
        with store.transaction() as tx:
            assert tx.next_sequence("a", count=5) == 1
            assert tx.next_sequence("a") == 6
            assert tx.next_sequence("a", count=3) == 7
            assert tx.next_sequence("a") == 10

    def test_sequences_never_repeat_across_threads(self, store: Store) -> None:
        """Concurrent next_sequence calls never hand out a number twice."""
        got: list[int] = []
        lock = threading.Lock()

        def take() -> None:
            for _ in range(50):
                with store.transaction() as tx:
                    n = tx.next_sequence("shared")
                with lock:
                    got.append(n)

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1, 201))

    def test_query_filters_by_kind_state_customer_and_due(self, store: Store) -> None:
        """query() applies every given criterion and returns refs in order."""
        due = T0 + timedelta(days=3)
        with store.transaction() as tx:
            tx.insert(make_requirement("REQ-2026-000002", due_at=due, next_deadline=due))
            tx.insert(make_requirement("REQ-2026-000001", state="evaluating"))
            tx.insert(make_requirement("REQ-2026-000003", customer=Customer("C2", "Customer two")))
        with store.transaction() as tx:

            def refs(**kw: object) -> list[str]:
                return [r.ref for r in tx.query(**kw)]  # type: ignore[arg-type]

            assert refs() == ["REQ-2026-000001", "REQ-2026-000002", "REQ-2026-000003"]
            assert refs(kind="requirement", state="received") == [
                "REQ-2026-000002",
                "REQ-2026-000003",
            ]
            assert refs(kind="contract") == []
            assert refs(customer="C2") == ["REQ-2026-000003"]
            assert refs(due_before=due + timedelta(seconds=1)) == ["REQ-2026-000002"]
            assert refs(due_before=due) == []

    def test_concurrent_updates_lose_nothing(self, store: Store) -> None:
        """Threads racing to bump one record: every success is one version, none lost."""
        rec = make_requirement()
        with store.transaction() as tx:
            tx.insert(rec)
        successes = 0
        conflicts = 0
        lock = threading.Lock()

        def bump() -> None:
            nonlocal successes, conflicts
            for _ in range(100):
                try:
                    with store.transaction() as tx:
                        cur = tx.get(rec.ref)
                        assert cur is not None
                        new = attrs.evolve(cur, version=cur.version + 1)
                        tx.append_audit(make_event(rec.ref, new.version))
                        tx.update(new, expected_version=cur.version)
                except ConflictError:
                    with lock:
                        conflicts += 1
                else:
                    with lock:
                        successes += 1

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert successes + conflicts == 400
        with store.transaction() as tx:
            final = tx.get(rec.ref)
            assert final is not None
            assert final.version == 1 + successes
            assert [e.version for e in tx.audit(rec.ref)] == list(range(2, 2 + successes))
