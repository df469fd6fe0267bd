"""Summary rows for the management report (issue 15.3): O(groups), not O(events).

Every command, creation and import stages a few *delta rows* in its own
transaction (``stage``, ``stage_created``), so the report sums rows grouped
by day instead of reading every record and audit event.  A row is::

    (metric, day, kind, a, b, n, amount)

``day`` is the UTC day (``YYYY-MM-DD``) the row's time falls on; ``n`` and
``amount`` are integers added up by the report.  The metrics:

``count``    records created that day, by ``a`` = dimension (state, channel,
             category, class) and ``b`` = its value *now* (a state change
             moves one count from the old value to the new);
``returns``  complaints and returns created that day, by ``a`` = customer,
             product, defect, judgement or capa and ``b`` = the value;
``outcome``  records whose last event (final state) fell that day, ``a`` = state;
``cycle``    the same records, ``a`` = cycle time in buckets of
             :data:`BUCKET_HOURS` (creation to the last event, rounded to the
             nearest bucket);
``ontime``   the same records that have a deadline, ``a`` = ``on`` or ``late``;
``dwell``    time spent in state ``a`` up to an event that day: ``n`` = the
             events that left the state, ``amount`` = microseconds;
``first``    records first moved out of their initial state that day,
             ``a`` = the time from creation, in buckets;
``survey``   satisfaction survey answers recorded that day: ``a`` = question,
             ``b`` = customer, ``n`` = 1, ``amount`` = the score;
``shipped``  contract shipments that day: ``a`` = customer, ``b`` = product
             (``""``: the contract as a whole); ``n`` = contracts shipping
             (the product) for the first time, ``amount`` = quantity shipped.

Stores keep the rows as they are told (SQL stores: INSERT only, so
concurrent commands never wait on one row; ``compact`` sums them).  A
record's facts that depend on its current state (``count``, ``returns``,
``outcome``, ``cycle``, ``ontime``) are staged as the difference between its
facts before and after the command: -1 for what no longer holds, +1 for what
now holds.  :func:`rebuild_rows` makes the same rows from the records and
their audit trails (the migration's backfill and ``reqmgmt report --rebuild``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .storage.base import SummaryRow

__all__ = [
    "BUCKET_HOURS",
    "METRICS",
    "SummaryRow",
    "bucket_hours",
    "move_rows",
    "rebuild_rows",
    "record_facts",
    "stage",
    "stage_created",
]

#: A fact of a record: metric, UTC day, kind, a, b (counted once).
_Fact = tuple[str, str, str, str, str]

#: The metrics a summary row may carry.
METRICS = ("count", "returns", "outcome", "cycle", "ontime", "dwell", "first", "shipped", "survey")

#: Resolution of cycle and first-response times: 0.1 h (6 minutes).
BUCKET_HOURS = 0.1
_BUCKET = 360_000_000  # microseconds
_HALF = _BUCKET // 2
#: A fact's (n, amount) as a row that adds it, and one that takes it away:
#: ``fact + _ADDS`` is one tuple built in C, where ``(*fact, 1, 0)`` goes through a list.
_ADDS = (1, 0)
_TAKES = (-1, 0)


def _day_of(at: datetime) -> str:
    zone = at.tzinfo
    if zone is UTC:
        return at.date().isoformat()
    if zone is None:  # only a record planted outside reqmgmt has one
        raise ValueError(f"time {at.isoformat()} has no zone")
    return at.astimezone(UTC).date().isoformat()


#: A UTC day's text by its ordinal, bounded: the commands of a day share it.
_DAYS: dict[int, str] = {}


def _day(at: datetime) -> str:
    """The UTC day ``at`` falls on (``YYYY-MM-DD``), as :func:`_day_of` writes it.

    Every command asks for the day of its new ``now``: ``date.isoformat``
    (~6k instructions) once per day and an ordinal's look-up (~1k) after.
    A time in another zone, naive or not a plain ``datetime`` goes to
    :func:`_day_of`.
    """
    if type(at) is not datetime or at.tzinfo is not UTC:
        return _day_of(at)
    ordinal = at.toordinal()
    try:
        return _DAYS[ordinal]
    except KeyError:
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        text = _DAYS[ordinal] = at.date().isoformat()
        return text


def _micros(a: datetime, b: datetime) -> int:
    d = b - a
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _bucket(micros: int) -> str:
    return str((micros + _HALF) // _BUCKET)


def bucket_hours(bucket: str) -> float:
    """The hours a cycle or first-response bucket stands for."""
    return int(bucket) * BUCKET_HOURS


def record_facts(record: Any, final: frozenset[str], tail: tuple[int, ...] = ()) -> tuple[Any, ...]:
    """What ``record`` as it is adds to the state-dependent metrics (each fact counts 1).

    ``tail``: ``(n, amount)`` to have the facts as rows (as :func:`_other_facts`).
    """
    day = _day(record.created_at)  # the creation day, for _other_facts too
    state = ("count", day, record.RECORD_KIND, "state", record.state) + tail  # noqa: RUF005
    return (state, *_other_facts(record, day, tail), *_finished_facts(record, final, tail=tail))


def _other_facts(
    record: Any, day: str | None = None, tail: tuple[int, ...] = ()
) -> tuple[Any, ...]:
    """The facts of a record's creation day besides its state: dimensions, a return's figures.

    ``day``: the creation day when the caller has it already (``_day(record.created_at)``);
    ``tail``: ``(n, amount)`` to have the facts as rows (``fact + ()`` is the fact itself;
    ``(*fact, *tail)``, which ruff's RUF005 asks for, goes through a list: dearer).
    """
    kind: str = record.RECORD_KIND
    if day is None:
        day = _day(record.created_at)
    facts: list[Any] = []
    channel = getattr(record, "channel", None)
    if channel is not None:
        facts.append(("count", day, kind, "channel", channel) + tail)  # noqa: RUF005
    customer = getattr(record, "customer", None)
    if customer is not None:
        facts.append(("count", day, kind, "category", customer.category) + tail)  # noqa: RUF005
    cls = getattr(record, "contract_class", None)
    if cls is not None:
        facts.append(("count", day, kind, "class", cls) + tail)  # noqa: RUF005
    if kind == "return":
        facts.append(("returns", day, kind, "customer", record.customer.id) + tail)  # noqa: RUF005
        facts.append(("returns", day, kind, "product", record.product) + tail)  # noqa: RUF005
        report = record.report
        if report is not None and report.defect_category is not None:
            facts.append(("returns", day, kind, "defect", report.defect_category) + tail)  # noqa: RUF005
        if record.judgement is not None:
            facts.append(("returns", day, kind, "judgement", record.judgement) + tail)  # noqa: RUF005
        if record.capa is not None:
            facts.append(("returns", day, kind, "capa", "opened") + tail)  # noqa: RUF005
    return tuple(facts)


def _finished_facts(
    record: Any,
    final: frozenset[str],
    at: datetime | None = None,
    day: str = "",
    tail: tuple[int, ...] = (),
) -> tuple[Any, ...]:
    """A finished record: outcome, cycle time and timeliness on the day of its last event.

    ``day``: the day of ``at`` when the caller has it, taken when ``record.updated_at``
    is that very object (a command's new version: its time is the command's);
    ``tail``: ``(n, amount)`` to have the facts as rows.
    """
    state = record.state
    if state not in final:
        return ()
    kind: str = record.RECORD_KIND
    end = record.updated_at
    done = day if end is at and at is not None else _day(end)
    facts: list[Any] = [
        ("outcome", done, kind, state, "") + tail,  # noqa: RUF005
        ("cycle", done, kind, _bucket(_micros(record.created_at, end)), "") + tail,  # noqa: RUF005
    ]
    if record.due_at is not None:
        facts.append(("ontime", done, kind, "on" if end <= record.due_at else "late", "") + tail)  # noqa: RUF005
    return tuple(facts)


def _survey_rows(record: Any) -> list[SummaryRow]:
    """A survey's answers: n = 1 and amount = the score, per question and customer."""
    day = _day(record.created_at)
    return [
        ("survey", day, "survey", a.question, record.customer.id, 1, a.score)
        for a in record.answers
    ]


def _final(engine: Any) -> frozenset[str]:
    """The states in which a record counts as finished (a survey is only recorded)."""
    return frozenset() if engine.kind == "survey" else frozenset(engine.final)


def _shipped(lines: Iterable[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        if line.shipped:
            out[line.product] = out.get(line.product, 0) + line.shipped
    return out


def _shipped_rows(
    day: str, customer: str, before: Mapping[str, int], after: Mapping[str, int]
) -> list[SummaryRow]:
    rows: list[SummaryRow] = []
    total = 0
    for product in sorted(before.keys() | after.keys()):
        old, new = before.get(product, 0), after.get(product, 0)
        if old != new:
            total += new - old
            first = int(not old and new > 0) - int(old > 0 and not new)
            rows.append(("shipped", day, "contract", customer, product, first, new - old))
    if rows:
        first = int(not before and bool(after)) - int(bool(before) and not after)
        rows.append(("shipped", day, "contract", customer, "", first, total))
    return rows


def _delta(old: Sequence[_Fact], new: Sequence[_Fact]) -> tuple[SummaryRow, ...]:
    gone = [f + _TAKES for f in old if f not in new]
    came = [f + _ADDS for f in new if f not in old]
    return (*gone, *came)


def move_rows(key: tuple[str, str, str, str, str], micros: int) -> tuple[SummaryRow, ...]:
    """The rows a command's *move* stands for: its dwell row and, when the state changed,
    the count moved from the old state to the new.

    ``key``: ``(day, kind, state, dest, created)``, ``created`` the record's creation day
    when the state changed and ``""`` when it did not (no day is ``""``); ``micros``: the
    time since the record's previous version.  :func:`stage` gives a transaction these
    rows, or the key and that time itself (``stage_summary_move``).
    """
    day, kind, state, dest, created = key
    if created:
        return (
            ("dwell", day, kind, state, "", 1, micros),
            ("count", created, kind, "state", state, -1, 0),
            ("count", created, kind, "state", dest, 1, 0),
        )
    return (("dwell", day, kind, state, "", 0, micros),)


def stage(tx: Any, engine: Any, before: Any, after: Any, at: datetime) -> None:
    """Stage the summary rows of one command (``before`` → ``after`` at ``at``) in ``tx``.

    A transaction without ``stage_summary`` (a store that keeps no
    summaries) is left alone: its report is computed from the audit trail.
    One with ``stage_summary_move(key, elapsed, rows)`` (the memory store) is
    given the command's move as :func:`move_rows`' key, the ``timedelta`` since
    the previous version and the other rows (a tuple, mostly empty): the same
    rows as ``stage_summary(move_rows(key, micros) + rows)``, ``micros`` the
    microseconds of ``elapsed``, in a form a store can add with one look-up of
    the key (the same key every command of a day that makes the same move) and
    without reading ``days``, ``seconds`` and ``microseconds`` (~270
    instructions each).  A difference of times that is no ``timedelta`` goes
    as rows.  Runs once per command: no ``getattr`` or ``int`` calls on
    records, the rows in tuples (which a store may keep as they are: nothing
    changes them), the dimensions compared by one generated function per
    class (:func:`_dimensions_changed`).
    """
    move = getattr(tx, "stage_summary_move", None)
    if move is None:
        put: Any = getattr(tx, "stage_summary", None)
        if put is None:  # a store without summaries
            return
    final = engine.final  # a survey has no command: only records with transitions come here
    kind = engine.kind
    # _day(at) written out; ordinal 0 (no date has it) when ``at`` is not a plain UTC time.
    if type(at) is datetime and at.tzinfo is UTC:
        ordinal = at.toordinal()
        try:
            day = _DAYS[ordinal]
        except KeyError:
            day = _day(at)
    else:
        ordinal = 0
        day = _day_of(at)
    state, dest = before.state, after.state
    d = at - before.updated_at
    if move is None or type(d) is not timedelta:  # rows: the dwell in microseconds
        micros = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds  # _micros
        if move is not None:
            move = None
            put = tx.stage_summary
    if dest != state:  # one count moves from the old state to the new
        # Created on the day of ``at`` (most records move on the day they come): the
        # same text, not looked up again.
        created_at = before.created_at
        if (
            type(created_at) is datetime
            and created_at.tzinfo is UTC
            and created_at.toordinal() == ordinal
        ):
            created = day
        else:
            created = _day(created_at)
        key = (day, kind, state, dest, created)
    else:
        key = (day, kind, state, state, "")
    rows: tuple[SummaryRow, ...] = ()  # the rows besides the move's
    if dest in final:
        if state in final:
            old, new = _finished_facts(before, final), _finished_facts(after, final)
            if old != new:
                rows = _delta(old, new)
        else:  # finished now: nothing held before, what holds now comes (_delta((), new))
            rows = _finished_facts(after, final, at, day, _ADDS)
    elif state in final:
        old, new = _finished_facts(before, final), _finished_facts(after, final)
        if old != new:
            rows = _delta(old, new)
    if kind == "return":
        # A return's facts read more than the dimensions: computed (twice) only when
        # one of those fields is not the very object it was.
        try:
            same = _SAME_RETURNS[type(before)]
        except KeyError:
            same = _same_return(before)
        moved = not same(before, after)
    else:
        try:
            changed = _DIMENSIONS[type(before)]
        except KeyError:
            changed = _dimensions_changed(before)
        moved = changed(before, after)
    if moved:
        old, new = _other_facts(before), _other_facts(after)
        if old != new:
            rows += _delta(old, new)
    initial = engine.lifecycle.initial
    if state == initial and dest != initial and _first_move(tx, before):
        rows += (("first", day, kind, _bucket(_micros(before.created_at, at)), "", 1, 0),)
    if kind == "contract" and before.lines is not after.lines:
        rows += tuple(
            _shipped_rows(day, after.customer.id, _shipped(before.lines), _shipped(after.lines))
        )
    if move is not None:
        move(key, d, rows)
    else:
        put(move_rows(key, micros) + rows)


#: The fields :func:`_other_facts` reads besides a return's, per record class.
_DIMENSION_FIELDS = ("customer", "channel", "contract_class")
_DIMENSIONS: dict[type, Callable[[Any, Any], bool]] = {}


def _dimensions_changed(record: Any) -> Callable[[Any, Any], bool]:
    """For records of ``record``'s class: ``changed(before, after)``, whether the
    dimension fields it has (those ``getattr(r, name, None)`` finds) differ, as
    tuples of their values compare (equal values give equal facts; unchanged
    fields are the same objects, which the comparison sees first).  Generated
    once per class: one call instead of a getter's per record.
    """
    names = [name for name in _DIMENSION_FIELDS if hasattr(record, name)]
    before = "".join(f"before.{name}, " for name in names)
    after = "".join(f"after.{name}, " for name in names)
    # The tuples are built only when some field is not the same object (most
    # commands keep them all): identical items compare equal in a tuple anyway.
    moved = " or ".join(f"before.{name} is not after.{name}" for name in names)
    test = f"({moved}) and ({before}) != ({after})" if names else "False"
    namespace: dict[str, Any] = {}
    exec(f"def changed(before, after):\n    return {test}", namespace)
    found: Callable[[Any, Any], bool] = namespace["changed"]
    if len(_DIMENSIONS) >= 256:
        _DIMENSIONS.clear()
    _DIMENSIONS[type(record)] = found
    return found


#: What :func:`_other_facts` reads of a return besides the dimensions (its creation
#: day too): each must be there.
_RETURN_FIELDS = ("created_at", "customer", "product", "report", "judgement", "capa")
_SAME_RETURNS: dict[type, Callable[[Any, Any], bool]] = {}


def _same_return(record: Any) -> Callable[[Any, Any], bool]:
    """For returns of ``record``'s class: ``same(before, after)``, whether every field
    :func:`_other_facts` reads holds the very same object in both (so their facts are
    equal and need not be computed).  Generated once per class, as
    :func:`_dimensions_changed`.  A class that lacks a field, a record without a
    customer, or ``after`` of another class: no (the facts are computed, and fail
    as they did).
    """
    if all(hasattr(record, name) for name in _RETURN_FIELDS):
        names = _RETURN_FIELDS + tuple(n for n in _DIMENSION_FIELDS[1:] if hasattr(record, n))
        test = " and ".join(
            [
                "type(after) is type(before)",
                "before.customer is not None",
                "before.RECORD_KIND is after.RECORD_KIND",
                *(f"before.{name} is after.{name}" for name in names),
            ]
        )
    else:
        test = "False"
    namespace: dict[str, Any] = {}
    exec(f"def same(before, after):\n    return {test}", namespace)
    found: Callable[[Any, Any], bool] = namespace["same"]
    if len(_SAME_RETURNS) >= 256:
        _SAME_RETURNS.clear()
    _SAME_RETURNS[type(record)] = found
    return found


def _first_move(tx: Any, before: Any) -> bool:
    """Is leaving the initial state now the record's first move?"""
    if before.version == 1:
        return True  # nothing but the creation before it
    # The trail up to ``before`` (a store may list the event this command staged).
    events = [e for e in tx.audit(before.ref) if e.version <= before.version]
    return not any(e.to_state != e.from_state for e in events[1:])


def stage_created(tx: Any, engine: Any, records: Sequence[Any]) -> None:
    """Stage the summary rows of records just created (one, or an import's batch)."""
    put = getattr(tx, "stage_summary", None)
    if put is None:  # a store without summaries
        return
    final = _final(engine)
    kind = engine.kind
    rows: list[SummaryRow] = []
    for record in records:
        # record_facts(record, final, _ADDS) written out: each fact made a row as it is
        # made, and no call or tuple to unpack (~0.5k instructions a command of the
        # benchmark's mix, measured against the call).
        day = _day(record.created_at)
        state = record.state
        rows.append(("count", day, record.RECORD_KIND, "state", state, 1, 0))
        rows += _other_facts(record, day, _ADDS)
        if state in final:
            rows += _finished_facts(record, final, tail=_ADDS)
        if kind == "survey":
            rows.extend(_survey_rows(record))
        elif kind == "contract":
            shipped = _shipped(record.lines)
            if shipped:
                rows.extend(_shipped_rows(_day(record.created_at), record.customer.id, {}, shipped))
    if rows:
        put(rows)


# --- from the audit trail (backfill, rebuild) -----------------------------------------------


def _lines_of(doc: Any) -> dict[int, tuple[str, int]]:
    out: dict[int, tuple[str, int]] = {}
    for line in doc or ():
        out[int(line["line_no"])] = (str(line["product"]), int(line.get("shipped", 0)))
    return out


def _by_product(lines: Mapping[int, tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for product, shipped in lines.values():
        if shipped:
            out[product] = out.get(product, 0) + shipped
    return out


def trail_rows(
    record: Any, events: Sequence[Any], final: frozenset[str], initial: str
) -> list[SummaryRow]:
    """Every summary row ``record`` and its audit trail (oldest first) add up to."""
    kind: str = record.RECORD_KIND
    rows: list[SummaryRow] = list(record_facts(record, final, _ADDS))
    if kind == "survey":
        rows.extend(_survey_rows(record))
    for this, following in itertools.pairwise(events):
        rows.append(
            (
                "dwell",
                _day(following.at),
                kind,
                this.to_state,
                "",
                int(following.to_state != this.to_state),
                _micros(this.at, following.at),
            )
        )
    moved = next((e for e in events[1:] if e.to_state != e.from_state), None)
    if moved is not None:
        rows.append(("first", _day(moved.at), kind, _bucket(_micros(events[0].at, moved.at)), "",
                     1, 0))  # fmt: skip
    if kind == "contract":
        lines: dict[int, tuple[str, int]] = {}
        for e in events:
            after = dict(lines)
            for change in e.changes:
                if change.op == "create" and isinstance(change.new, Mapping):
                    after = _lines_of(change.new.get("lines"))
                elif change.field == "lines" and change.op == "append":
                    after.update(_lines_of(change.new))
                elif change.field == "lines":
                    after = _lines_of(change.new)
            rows.extend(
                _shipped_rows(
                    _day(e.at), record.customer.id, _by_product(lines), _by_product(after)
                )
            )
            lines = after
    return rows


def rebuild_rows(
    tx: Any, engines: Mapping[str, Any], failed: list[tuple[str, str]]
) -> Iterator[SummaryRow]:
    """The summary rows of every record in ``tx``, from the records and their audit trails.

    A record that cannot be read or counted is left out and appended to
    ``failed`` as (ref, reason).
    """
    for record in tx.query():
        engine = engines.get(record.RECORD_KIND)
        try:
            if engine is None:
                raise ValueError(f"no lifecycle for kind {record.RECORD_KIND!r}")
            rows = trail_rows(record, tx.audit(record.ref), engine.final, engine.lifecycle.initial)
        except Exception as exc:  # one odd record must not stop the rebuild
            failed.append((record.ref, f"{type(exc).__name__}: {exc}"))
            continue
        yield from rows
