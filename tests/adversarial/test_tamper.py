"""The tamper matrix: every column and document field of records and audit, damaged every way.

An attacker with write access to the database (the append-only triggers
dropped, as a superuser can) edits a column or a document field (another
value, a wrong type, a missing key, malformed JSON, NUL...), deletes,
reorders, duplicates or truncates rows.  Every case must be reported by
``verify_history`` AND ``verify_all``, and neither may raise.  What a
consistent rewrite hides (a chain cut short or rolled back with its record,
a re-hashed head, a record removed whole) only anchors reveal: tested last.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from reqmgmt import Desk, MemoryStore
from reqmgmt.audit import canonical, event_hash, from_canonical
from reqmgmt.storage.memory import _audit_piece, _trail
from reqmgmt.storage.sql import SqlStore, metadata
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, ENG, MAT, PRO, receive
from ..integration.conftest import pg_url  # noqa: F401  (the fixture)

DROP = object()  # "delete this key"
COUNTS: dict[str, int] = {}


def populate(desk: Desk) -> tuple[str, str]:
    """Two requirements: one through a countersigned review, one clarified."""
    long = receive(desk)
    desk.fire(long, "start_evaluation", actor=CLERK)
    desk.sign(long, department="engineering", actor=ENG, opinion="can do")
    desk.sign(long, department="materials", actor=MAT, opinion="in stock")
    desk.sign(long, department="production", actor=PRO, opinion="week 12")
    desk.fire(long, "accept", actor=CLERK, delivery_plan="week 12, by sea")
    short = receive(desk)
    desk.fire(short, "clarify", actor=CLERK, note="which finish?")
    return long, short


def json_variants(old: Any) -> list[tuple[str, Any]]:
    """Damaged values for a JSON value: another of its type, wrong types, NUL, missing."""
    out: list[tuple[str, Any]] = []
    if isinstance(old, bool):
        out += [("other", not old), ("wrong-type", "yes")]
    elif isinstance(old, int):
        out += [("other", old + 1), ("wrong-type-text", str(old)), ("wrong-type-bool", True)]
    elif isinstance(old, str):
        out += [("other", old + "x"), ("wrong-type", 7), ("nul", old + "\x00")]
    elif old is None:
        out += [("other", "x"), ("wrong-type", 7)]
    elif isinstance(old, list):
        out += [("other", [*old, old[0]] if old else [1]), ("wrong-type", "x")]
    elif isinstance(old, dict):
        out += [("other", {**old, "zz": 1}), ("wrong-type", [])]
    out.append(("missing", DROP))
    return out


MALFORMED = [
    ("malformed-json", '{"ref": '),
    ("json-null", "null"),
    ("json-list", "[]"),
    ("json-text", '"x"'),
    ("json-empty-object", "{}"),
    ("empty", ""),
]


def edited(doc: str, key: str, value: Any) -> str:
    data = json.loads(doc)
    if value is DROP:
        del data[key]
    else:
        data[key] = value
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def assert_reported(desk: Desk, refs: tuple[str, ...], case: str, counts_as: str) -> None:
    """verify_history and verify_all both report ``refs[0]`` (the damaged record), raise nothing."""
    target = refs[0]
    check = desk.verify_history(target)
    assert not check, f"{case}: verify_history missed it"
    assert check.problem, case
    report = desk.verify_all(batch_size=1)
    assert not report, f"{case}: verify_all missed it"
    assert target in {c.ref for c in report.broken}, f"{case}: verify_all missed {target}"
    COUNTS[counts_as] = COUNTS.get(counts_as, 0) + 1


# --- SQL backends --------------------------------------------------------------------------


class Attacker:
    """Write access to the database: triggers dropped, any statement."""

    def __init__(self, engine: sa.Engine, backend: str) -> None:
        self.engine = engine
        self.backend = backend

    def run(self, *statements: tuple[str, dict[str, Any]] | str) -> None:
        with self.engine.begin() as conn:
            for s in statements:
                text, params = (s, {}) if isinstance(s, str) else s
                conn.execute(sa.text(text), params)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))


def sql_cases(
    attacker: Attacker, long: str, short: str
) -> Iterator[tuple[str, Callable[[], None], tuple[str, ...]]]:
    """(case name, apply it, damaged refs) for every column, document field and row operation."""
    sqlite = attacker.backend == "sqlite"
    records, audit = metadata.tables["records"], metadata.tables["audit"]
    rec = attacker.rows("SELECT * FROM records WHERE ref = :r", r=long)[0]._asdict()
    events = [
        r._asdict()
        for r in attacker.rows("SELECT * FROM audit WHERE ref = :r ORDER BY version", r=long)
    ]
    n = len(events)
    targets = {"first": events[0], "middle": events[n // 2], "last": events[-1]}
    plausible = {
        "state": "closed", "to_state": "accepted", "from_state": "accepted", "kind": "contract",
        "event": "accept", "customer": "OTHER-001", "due_at": "2000-01-01T00:00:00.000000",
        "at": "2000-01-01T00:00:00.000000", "created_at": "2000-01-01T00:00:00.000000",
        "updated_at": "2000-01-01T00:00:00.000000", "hash": "0" * 64, "ref": "REQ-2026-999998",
    }  # fmt: skip

    def column_values(column: sa.Column[Any], old: Any) -> list[tuple[str, Any]]:
        values: list[tuple[str, Any]] = []
        if isinstance(old, int):
            # audit versions are unique per ref: step over the chain rather than into it
            step = 1 if column.table.name == "records" else 100
            values += [("up", old + step), ("down", old - step)]
            if sqlite:
                values += [("wrong-type-text", "x"), ("wrong-type-real", old + 0.5)]
        else:
            values += [("other", (old or "") + "x"), ("empty", "")]
            if column.name in plausible:
                values.append(("plausible", plausible[column.name]))
            if sqlite:
                values += [("wrong-type-int", 42), ("nul", (old or "") + "\x00")]
        if old is None:
            values.append(("text", "2026-01-01T00:00:00.000000"))
        elif column.nullable:
            values.append(("null", None))
        return [(k, v) for k, v in values if v != old or type(v) is not type(old)]

    # records: every column
    for column in records.c:
        if column.name == "doc":
            continue
        for kind, value in column_values(column, rec[column.name]):
            yield (
                f"records.{column.name}={kind}",
                lambda c=column.name, v=value: attacker.run(
                    (f"UPDATE records SET {c} = :v WHERE ref = :r", {"v": v, "r": long})
                ),
                (long,),
            )
    # records.doc: malformed, and every field of the document
    doc_variants = list(MALFORMED)
    for key, old in json.loads(rec["doc"]).items():
        doc_variants += [(f"{key}:{k}", edited(rec["doc"], key, v)) for k, v in json_variants(old)]
    if sqlite:
        doc_variants.append(("invalid-utf8", b"\xff\xfe{"))
    for kind, value in doc_variants:
        yield (
            f"records.doc={kind}",
            lambda v=value: attacker.run(
                ("UPDATE records SET doc = :v WHERE ref = :r", {"v": v, "r": long})
            ),
            (long,),
        )
    # audit: every column and every document field, of the first, a middle and the last event
    for where, row in targets.items():
        for column in audit.c:
            if column.name in ("doc", "id"):
                continue
            for kind, value in column_values(column, row[column.name]):
                yield (
                    f"audit[{where}].{column.name}={kind}",
                    lambda c=column.name, v=value, i=row["id"]: attacker.run(
                        (f"UPDATE audit SET {c} = :v WHERE id = :i", {"v": v, "i": i})
                    ),
                    (long,),
                )
        variants = list(MALFORMED)
        for key, old in json.loads(row["doc"]).items():
            variants += [(f"{key}:{k}", edited(row["doc"], key, v)) for k, v in json_variants(old)]
        variants.append(("reformatted", json.dumps(json.loads(row["doc"]), sort_keys=True)))
        if sqlite:
            variants.append(("invalid-utf8", b"\xff\xfe{"))
        for kind, value in variants:
            yield (
                f"audit[{where}].doc={kind}",
                lambda v=value, i=row["id"]: attacker.run(
                    ("UPDATE audit SET doc = :v WHERE id = :i", {"v": v, "i": i})
                ),
                (long,),
            )
    # rows: delete, reorder, duplicate, truncate
    for where, row in targets.items():
        yield (
            f"audit[{where}] deleted",
            lambda i=row["id"]: attacker.run(("DELETE FROM audit WHERE id = :i", {"i": i})),
            (long,),
        )
    a, b = events[1]["id"], events[2]["id"]
    yield (
        "audit rows 2 and 3 reordered (ids swapped)",
        lambda: attacker.run(
            ("UPDATE audit SET id = -1 WHERE id = :a", {"a": a}),
            ("UPDATE audit SET id = :a WHERE id = :b", {"a": a, "b": b}),
            ("UPDATE audit SET id = :b WHERE id = -1", {"b": b}),
        ),
        (long,),
    )
    yield (
        "audit rows 2 and 3 reordered (contents swapped, versions kept)",
        lambda: attacker.run(
            (
                "UPDATE audit SET doc = CASE id WHEN :a THEN (SELECT doc FROM audit WHERE id = :b) "
                "ELSE (SELECT doc FROM audit WHERE id = :a) END, "
                "hash = CASE id WHEN :a THEN (SELECT hash FROM audit WHERE id = :b) "
                "ELSE (SELECT hash FROM audit WHERE id = :a) END WHERE id IN (:a, :b)",
                {"a": a, "b": b},
            )
        ),
        (long,),
    )
    yield (
        "audit row 2 duplicated as the next version",
        lambda: attacker.run(
            (
                "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, "
                "to_state, at) SELECT ref, :v, hash, doc, kind, event, from_state, to_state, "
                "at FROM audit WHERE id = :a",
                {"v": n + 1, "a": a},
            )
        ),
        (long,),
    )
    if not sqlite:
        yield (
            "audit row 2 duplicated exactly (unique constraint dropped)",
            lambda: attacker.run(
                "ALTER TABLE audit DROP CONSTRAINT uq_audit_ref_version",
                (
                    "INSERT INTO audit (ref, version, hash, doc, kind, event, from_state, "
                    "to_state, at) SELECT ref, version, hash, doc, kind, event, from_state, "
                    "to_state, at FROM audit WHERE id = :a",
                    {"a": a},
                ),
            ),
            (long,),
        )
        yield ("TRUNCATE audit", lambda: attacker.run("TRUNCATE audit"), (long, short))
    yield (
        "the trail truncated after event 2",
        lambda: attacker.run(("DELETE FROM audit WHERE ref = :r AND version > 2", {"r": long})),
        (long,),
    )
    yield (
        "the whole trail deleted",
        lambda: attacker.run(("DELETE FROM audit WHERE ref = :r", {"r": long})),
        (long,),
    )
    yield (
        "the record row deleted",
        lambda: attacker.run(("DELETE FROM records WHERE ref = :r", {"r": long})),
        (long,),
    )
    yield (
        "the record row duplicated under another ref",
        lambda: attacker.run(
            (
                "INSERT INTO records SELECT :n, kind, state, customer, due_at, version, "
                "created_at, updated_at, doc FROM records WHERE ref = :r",
                {"n": "REQ-2026-999999", "r": long},
            )
        ),
        ("REQ-2026-999999",),
    )
    yield (
        "the record row rolled back to version 2's document",
        lambda: attacker.run(
            (
                "UPDATE records SET version = 2, state = 'evaluating' WHERE ref = :r",
                {"r": long},
            )
        ),
        (long,),
    )


def _unprotect(attacker: Attacker) -> None:
    if attacker.backend == "sqlite":
        attacker.run("DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete")
    else:
        attacker.run(
            "DROP TRIGGER audit_append_only ON audit", "DROP TRIGGER audit_no_truncate ON audit"
        )
    attacker.run(
        "CREATE TABLE records_kept AS SELECT * FROM records",
        "CREATE TABLE audit_kept AS SELECT * FROM audit",
    )


def _restore(attacker: Attacker) -> None:
    statements = ["DELETE FROM records", "DELETE FROM audit"]
    if attacker.backend == "postgresql":
        statements.insert(0, "ALTER TABLE audit DROP CONSTRAINT IF EXISTS uq_audit_ref_version")
    statements += [
        "INSERT INTO records SELECT * FROM records_kept",
        "INSERT INTO audit SELECT * FROM audit_kept",
    ]
    if attacker.backend == "postgresql":
        statements.append(
            "ALTER TABLE audit ADD CONSTRAINT uq_audit_ref_version UNIQUE (ref, version)"
        )
    attacker.run(*statements)


def run_sql_matrix(url: str, backend: str) -> int:
    with Desk.open(url, clock=FakeClock()) as desk:
        long, short = populate(desk)
        assert desk.verify_all().intact == 2
        store = desk.store
        assert isinstance(store, SqlStore)
        attacker = Attacker(sa.create_engine(url), backend)
        _unprotect(attacker)
        tried = refused = 0
        seen_columns: set[str] = set()
        for case, apply, refs in sql_cases(attacker, long, short):
            try:
                apply()
            except (sa.exc.IntegrityError, sa.exc.DataError):
                refused += 1  # the database itself refuses it (a constraint): no damage
                continue
            assert_reported(desk, refs, f"{backend}: {case}", backend)
            _restore(attacker)
            tried += 1
            target = case.split("=")[0]  # "records.state", "audit[last].to_state"
            if "=" in case:
                seen_columns.add(f"{target.split('[')[0].split('.')[0]}.{target.split('.')[-1]}")
        assert desk.verify_all().intact == 2  # restored: the matrix left nothing behind
        attacker.engine.dispose()
    assert refused <= tried // 20, f"{refused} cases refused by the database"
    COUNTS[f"{backend} refused by the database"] = refused
    # every column of both tables was damaged (audit.id by reordering)
    for table in ("records", "audit"):
        for column in metadata.tables[table].c:
            if column.name != "id":
                assert f"{table}.{column.name}" in seen_columns, f"{table}.{column.name} untouched"
    return tried


def test_every_damage_to_a_sqlite_store_is_reported(tmp_path: Path) -> None:
    """SQLite: every case of the matrix is reported by verify_history and verify_all."""
    tried = run_sql_matrix(f"sqlite:///{tmp_path / 'tamper.db'}", "sqlite")
    assert tried >= 300
    refused = COUNTS["sqlite refused by the database"]
    print(f"\nSQLite tamper cases reported: {tried}/{tried} ({refused} refused by SQLite itself)")


def test_every_damage_to_a_postgres_store_is_reported(pg_url: str) -> None:  # noqa: F811
    """PostgreSQL (triggers dropped, as a superuser can): every case is reported."""
    tried = run_sql_matrix(pg_url, "postgresql")
    assert tried >= 250
    refused = COUNTS["postgresql refused by the database"]
    print(f"\nPostgreSQL tamper cases reported: {tried}/{tried} ({refused} refused by the server)")


# --- the memory store ------------------------------------------------------------------------


def memory_cases(
    store: MemoryStore, long: str, short: str
) -> Iterator[tuple[str, Callable[[], None], tuple[str, ...]]]:
    def trail() -> list[tuple[bytes, str]]:
        return _trail(store._audit[long])  # looked up at each case: restoring replaces the blobs

    def edit(change: Callable[[list[tuple[bytes, str]]], object]) -> None:
        rows = trail()
        change(rows)
        store._audit[long] = b"".join(_audit_piece(data, digest) for data, digest in rows)

    n = len(trail())
    for where, i in {"first": 0, "middle": n // 2, "last": n - 1}.items():
        data, digest = trail()[i]
        doc = data.decode()
        variants = list(MALFORMED)
        for key, old in json.loads(doc).items():
            variants += [(f"{key}:{k}", edited(doc, key, v)) for k, v in json_variants(old)]
        variants.append(("reformatted", json.dumps(json.loads(doc), sort_keys=True)))
        for kind, value in variants:

            def put(i: int = i, value: str = value, digest: str = digest) -> None:
                edit(lambda t: t.__setitem__(i, (value.encode(), digest)))

            yield f"audit[{where}].doc={kind}", put, (long,)
        yield (
            f"audit[{where}].hash=other",
            lambda i=i, d=data: edit(lambda t: t.__setitem__(i, (d, "0" * 64))),
            (long,),
        )
        yield f"audit[{where}] deleted", lambda i=i: edit(lambda t: t.__delitem__(i)), (long,)
    yield "audit rows 2 and 3 reordered", lambda: edit(lambda t: t.insert(1, t.pop(2))), (long,)
    yield "audit row 2 duplicated", lambda: edit(lambda t: t.append(t[1])), (long,)
    yield (
        "the trail truncated after event 2",
        lambda: edit(lambda t: t.__delitem__(slice(2, None))),
        (long,),
    )
    yield "the whole trail deleted", lambda: store._audit.pop(long), (long,)
    yield "the record deleted", lambda: store._records.pop(long), (long,)
    record = store._records[long]
    other = store._records[short]
    changes: dict[str, Any] = {
        "state": "closed",
        "version": record.version - 1,
        "description": "changed quietly",
        "signoffs": record.signoffs[:-1],
        "next_deadline": None if record.next_deadline else record.updated_at,
        "review_round": record.review_round + 1,
        "delivery_plan": "never",
    }
    for name, value in changes.items():
        yield (
            f"records.{name}=other",
            lambda n=name, v=value: store._records.__setitem__(
                long, attrs.evolve(record, **{n: v})
            ),
            (long,),
        )
    yield "the record replaced by another", lambda: store._records.__setitem__(long, other), (long,)
    yield "the record replaced by a text", lambda: store._records.__setitem__(long, "x"), (long,)  # type: ignore[arg-type]


def test_every_damage_to_a_memory_store_is_reported() -> None:
    """The memory store (trail bytes and record objects): every case is reported."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        long, short = populate(desk)
        store = desk.store
        assert isinstance(store, MemoryStore)
        kept = (copy.deepcopy(store._audit), dict(store._records))
        tried = 0
        for case, apply, refs in memory_cases(store, long, short):
            apply()
            assert_reported(desk, refs, f"memory: {case}", "memory")
            store._audit, store._records = copy.deepcopy(kept[0]), dict(kept[1])
            tried += 1
        assert desk.verify_all().intact == 2
    assert tried >= 150
    print(f"\nmemory tamper cases reported: {tried}/{tried}")


# --- anchors: what a consistent rewrite hides --------------------------------------------------


def heads(desk: Desk) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    report = desk.verify_all(on_head=lambda ref, v, h: found.__setitem__(ref, (v, h)))
    assert report
    return found


def test_anchors_reveal_truncation_rollback_rehashing_and_removal(tmp_path: Path) -> None:
    """Rewrites that leave every chain consistent are caught against anchors kept outside."""
    path = tmp_path / "a.db"
    url = f"sqlite:///{path}"
    with Desk.open(url, clock=FakeClock()) as desk:
        long, short = populate(desk)
    shutil.copy(path, tmp_path / "backup.db")
    with Desk.open(url, clock=FakeClock()) as desk:
        desk.fire(long, "start", actor=CLERK)
        anchors = heads(desk)
    assert anchors[long][0] == 7

    # rollback: yesterday's backup put back; every chain is consistent
    shutil.copy(tmp_path / "backup.db", path)
    with Desk.open(url, clock=FakeClock()) as desk:
        assert desk.verify_all()  # intact without anchors...
        report = desk.verify_all(anchors=anchors)  # ...not against them
        assert [c.ref for c in report.broken] == [long]
        assert "rolled back" in report.broken[0].problem
        assert report.anchored == 2

    shutil.copy(tmp_path / "backup.db", path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the attacker: triggers dropped
        conn.exec_driver_sql("DROP TRIGGER audit_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_no_delete")
    # truncation of the trail with its record put back to version 2 (consistently)
    with Desk.open(url, clock=FakeClock()) as desk:
        v2 = desk.get(long, version=2)
        anchors = heads(desk)
        store = desk.store
        assert isinstance(store, SqlStore)
        with store.transaction() as tx:
            values = tx._values(v2)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit WHERE ref = :r AND version > 2"), {"r": long})
        conn.execute(
            sa.text(
                "UPDATE records SET state = :state, version = :version, due_at = :due_at, "
                "updated_at = :updated_at, doc = :doc WHERE ref = :r"
            ),
            {
                **{k: values[k] for k in ("state", "version", "due_at", "updated_at", "doc")},
                "r": long,
            },
        )
    with Desk.open(url, clock=FakeClock()) as desk:
        assert desk.verify_history(long)  # consistent...
        report = desk.verify_all(anchors=anchors)
        assert [(c.ref, c.broken_at, c.column) for c in report.broken] == [(long, 3, "audit")]
        assert "truncated" in report.broken[0].problem

    # the head re-hashed: the last event's actor changed and sealed again
    with Desk.open(url, clock=FakeClock()) as desk:
        anchors = heads(desk)
        last = desk.history(short)[-1]
    forged = attrs.evolve(last, actor_name="someone else")
    forged = attrs.evolve(forged, hash=event_hash(forged))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit SET doc = :d, hash = :h WHERE ref = :r AND version = :v"),
            {"d": canonical(forged).decode(), "h": forged.hash, "r": short, "v": last.version},
        )
    with Desk.open(url, clock=FakeClock()) as desk:
        assert desk.history(short)[-1] == from_canonical(canonical(forged), forged.hash)
        assert desk.verify_history(short)  # the chain alone cannot tell
        report = desk.verify_all(anchors=anchors)
        assert [(c.ref, c.broken_at, c.column) for c in report.broken] == [
            (short, last.version, "audit.hash")
        ]
        assert "rewritten" in report.broken[0].problem

    # a record removed whole, row and trail
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit WHERE ref = :r"), {"r": short})
        conn.execute(sa.text("DELETE FROM records WHERE ref = :r"), {"r": short})
    with Desk.open(url, clock=FakeClock()) as desk:
        assert desk.verify_all()  # what is left is consistent
        report = desk.verify_all(anchors=anchors)
        assert [(c.ref, c.column) for c in report.broken] == [(short, "records")]
        assert "missing" in report.broken[0].problem
        assert report.checked == 1
    engine.dispose()
