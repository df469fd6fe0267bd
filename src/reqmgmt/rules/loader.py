"""Loading rule sets from TOML files and dicts, with every mistake named.

Several sources merge in order: a later source replaces a table's settings
key by key, replaces rows with the same id, adds new rows (at the end, or
``before`` a named row) and removes rows listed in ``remove``.  Every problem
found is reported at once, each with its file, table, row and field.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..calendar import MAX_YEAR, MIN_YEAR, CalendarEntry, CompanyCalendar
from ..errors import ConfigError, ReqMgmtError, RuleError, ValidationError
from ..model import CURRENCIES, Money
from .expr import ExpressionError, compile_condition
from .model import (
    AGGREGATIONS,
    HIT_POLICIES,
    INPUT_TYPES,
    LIST_POLICIES,
    ORDERED_POLICIES,
    SINGLE_POLICIES,
    Row,
    RuleSet,
    Table,
    evaluate,
    prepare_facts,
    same_value,
)
from .vocabulary import default_vocabularies, merge_vocabularies

__all__ = [
    "CONSUMED_TABLES",
    "DEFAULT_RULES",
    "MAX_NESTING",
    "Source",
    "default_rules",
    "facts_from_data",
    "load_rules",
]

Source = str | Path | Mapping[str, Any]
Functions = Mapping[str, Callable[..., Any]]

#: The packaged rule set with the procedures' own thresholds.
DEFAULT_RULES = "default_rules.toml"

#: How deeply tables and arrays may nest in a rule file or dict (the defaults need 6).
MAX_NESTING = 32

#: The tables reqmgmt itself decides with, and the outcome shape its code reads: "one"
#: (one mapping: unique, first, priority, any) or "list" (a list of mappings: collect
#: without aggregation, rule order, output order).  A rule file cannot give them another.
CONSUMED_TABLES: Mapping[str, str] = MappingProxyType(
    {
        "contract_class": "one",
        "review_route": "one",
        "sample_order": "one",
        "amendment_departments": "list",
        "requirement_deadline": "one",
        "step_deadline": "one",
        "escalation": "one",
        "return_window": "one",
        "capa_trigger": "one",
    }
)
_SHAPES = {
    "one": ("one mapping", sorted(SINGLE_POLICIES, key=HIT_POLICIES.index)),
    "list": ("a list of mappings", sorted(LIST_POLICIES, key=HIT_POLICIES.index)),
}
#: What an ``output_values`` list may hold (DMN outputValues are simple values).
_OUTPUT_VALUE_TYPES = (str, int, float, bool, Decimal, date)

_SCALARS = frozenset({str, int, float, bool, date, datetime, time})
_TOP_KEYS = {"tables", "meta", "vocabularies", "calendar", "no_step_deadline"}
_TABLE_KEYS = {
    "zh", "en", "source", "hit", "inputs", "outputs", "currency", "default", "rows",
    "examples", "remove", "aggregation", "output_values",
}  # fmt: skip
_ROW_KEYS = {"id", "when", "then", "zh", "en", "clause", "before"}
_EXAMPLE_KEYS = {"facts", "expect", "note"}


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _where(origin: str, table: str | None = None, row: str | None = None, fld: str = "") -> str:
    parts = [origin]
    if table is not None:
        parts.append(f"table {table!r}")
    if row is not None:
        parts.append(f"row {row!r}")
    if fld:
        parts.append(f"field {fld!r}")
    return ", ".join(parts)


def _bad_key(data: Any) -> str | None:
    """What in nested dicts and lists a rule file cannot hold: a non-string key, a cycle,
    nesting deeper than :data:`MAX_NESTING` (so nothing after this recurses without end).

    A part shared many times over is walked once per level it is found at, not once
    per path; the path is spelt out only for the message.
    """
    passed: dict[int, int] = {}  # container id → the deepest level it was found sound at
    ancestors: set[int] = set()
    path: list[str] = []

    def where() -> str:
        return "".join(path).lstrip(".") or "the data"

    def walk(node: Any, depth: int) -> str | None:
        key = id(node)
        if key in ancestors:
            return f"{where()} contains itself: a rule file cannot (TOML has no cycles)"
        if passed.get(key, 0) >= depth:
            return None
        if depth > MAX_NESTING:
            return (
                f"{where()}: tables and arrays nested more than {MAX_NESTING} levels deep; "
                "the default rules need 6"
            )
        ancestors.add(key)
        mapping = isinstance(node, Mapping)
        for name, value in node.items() if mapping else enumerate(node):
            if mapping and name.__class__ is not str and not isinstance(name, str):
                return f"{where()}[{name!r}]: a key must be a string, as in TOML"
            if value.__class__ in _SCALARS:
                continue  # the bulk of a file: skip the slower checks below
            if isinstance(value, Mapping | list | tuple):
                path.append(f".{name}" if mapping else f"[{name}]")
                found = walk(value, depth + 1)
                if found:
                    return found
                path.pop()
        ancestors.discard(key)
        passed[key] = depth
        return None

    return walk(data, 1) if isinstance(data, Mapping | list | tuple) else None


def _read(source: Source, index: int, problems: _Problems) -> tuple[str, Mapping[str, Any] | None]:
    if isinstance(source, Mapping):
        origin = f"<dict #{index}>"
        bad = _bad_key(source)
        if bad:
            # A dict keeps to what a TOML file can hold.
            problems.add(origin, bad)
            return origin, None
        return origin, source
    path = Path(source)
    origin = str(source)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        problems.add(origin, f"cannot be read: {exc.strerror or exc}")
        return origin, None
    except UnicodeDecodeError:
        problems.add(origin, "is not UTF-8 text")
        return origin, None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(origin, f"is not valid TOML: {exc}")
        return origin, None
    except (RecursionError, MemoryError):
        # tomllib reads nested arrays and inline tables recursively.
        problems.add(
            origin, f"is not a rule file: arrays or tables nested more than {MAX_NESTING} deep"
        )
        return origin, None
    bad = _bad_key(data)
    if bad:
        problems.add(origin, bad)
        return origin, None
    return origin, data


def _merge(
    sources: Iterable[tuple[str, Mapping[str, Any]]], problems: _Problems
) -> dict[str, dict[str, Any]]:
    """Merge sources into table name → {"keys": {k: (origin, v)}, "rows": [(origin, row)]}."""
    merged: dict[str, dict[str, Any]] = {}
    for origin, data in sources:
        if not isinstance(data, Mapping):
            problems.add(origin, "must be a table of tables")
            continue
        for key in sorted(set(data) - _TOP_KEYS):
            problems.add(
                origin,
                f"unknown top-level key {key!r}; allowed: {', '.join(sorted(_TOP_KEYS))}",
            )
        tables = data.get("tables", {})
        if not isinstance(tables, Mapping):
            problems.add(origin, "'tables' must be a table of decision tables")
            continue
        for name, spec in tables.items():
            where = _where(origin, name)
            if not isinstance(spec, Mapping):
                problems.add(where, "must be a table (keys: hit, inputs, outputs, rows, ...)")
                continue
            target = merged.setdefault(name, {"keys": {}, "rows": []})
            for key in sorted(set(spec) - _TABLE_KEYS):
                problems.add(
                    where, f"unknown key {key!r}; allowed: {', '.join(sorted(_TABLE_KEYS))}"
                )
            for key, value in spec.items():
                if key in ("rows", "remove"):
                    continue
                target["keys"][key] = (origin, value)
            _merge_rows(origin, name, spec, target["rows"], problems)
    return merged


def _merge_rows(
    origin: str,
    table: str,
    spec: Mapping[str, Any],
    rows: list[tuple[str, Any]],
    problems: _Problems,
) -> None:
    remove = spec.get("remove", [])
    if not isinstance(remove, list) or not all(isinstance(r, str) for r in remove):
        problems.add(_where(origin, table, fld="remove"), "must be a list of row ids")
        remove = []
    for rid in remove:
        before = len(rows)
        rows[:] = [(o, r) for o, r in rows if not (isinstance(r, Mapping) and r.get("id") == rid)]
        if len(rows) == before:
            problems.add(_where(origin, table, fld="remove"), f"no row {rid!r} to remove")
    new_rows = spec.get("rows", [])
    if not isinstance(new_rows, list):
        problems.add(_where(origin, table, fld="rows"), "must be an array of tables ([[...rows]])")
        return
    seen_here: set[str] = set()
    for i, row in enumerate(new_rows, start=1):
        rid = row.get("id") if isinstance(row, Mapping) else None
        label = rid if isinstance(rid, str) and rid else f"#{i}"
        if not isinstance(row, Mapping):
            problems.add(_where(origin, table, label), "must be a table with id, when, then")
            continue
        if not isinstance(rid, str) or not rid.strip():
            problems.add(_where(origin, table, label, "id"), "a non-empty string is required")
            continue
        if rid in seen_here:
            problems.add(_where(origin, table, rid, "id"), "duplicate row id in this file")
            continue
        seen_here.add(rid)
        existing = [
            k for k, (_, r) in enumerate(rows) if isinstance(r, Mapping) and r.get("id") == rid
        ]
        if existing:
            rows[existing[0]] = (origin, row)
            continue
        anchor = row.get("before")
        if anchor is not None:
            spots = [k for k, (_, r) in enumerate(rows) if r.get("id") == anchor]
            if not spots:
                problems.add(
                    _where(origin, table, rid, "before"), f"no row {anchor!r} to insert before"
                )
                rows.append((origin, row))
            else:
                rows.insert(spots[0], (origin, row))
        else:
            rows.append((origin, row))


def _build_table(
    name: str, entry: Mapping[str, Any], functions: Functions, problems: _Problems
) -> Table | None:
    keys: dict[str, tuple[str, Any]] = entry["keys"]
    count = len(problems.items)

    def get(key: str, default: Any = None) -> tuple[str, Any]:
        return keys.get(key, (next(iter(keys.values()), ("<rules>", None))[0], default))

    origin, hit = get("hit", "first")
    if not isinstance(hit, str) or hit not in HIT_POLICIES:
        problems.add(
            _where(origin, name, fld="hit"),
            f"{hit!r} is not one of {', '.join(repr(h) for h in HIT_POLICIES)}",
        )
        hit = "first"  # reported; the checks below need a policy to check against
    origin, inputs = get("inputs", None)
    if not isinstance(inputs, Mapping) or not inputs:
        problems.add(_where(origin, name, fld="inputs"), "a table of fact name = type is required")
        inputs = {}
    for fact, kind in inputs.items():
        if not isinstance(kind, str) or kind not in INPUT_TYPES:
            problems.add(
                _where(origin, name, fld=f"inputs.{fact}"),
                f"type {kind!r} is not one of {', '.join(INPUT_TYPES)}",
            )
    origin, outputs = get("outputs", None)
    if (
        not isinstance(outputs, list)
        or not outputs
        or not all(isinstance(o, str) and o for o in outputs)
    ):
        problems.add(
            _where(origin, name, fld="outputs"), "a non-empty list of output names is required"
        )
        outputs = []
    elif len(set(outputs)) != len(outputs):
        problems.add(_where(origin, name, fld="outputs"), "an output name is listed twice")
    origin, currency = get("currency", None)
    if currency is not None and (not isinstance(currency, str) or currency not in CURRENCIES):
        problems.add(_where(origin, name, fld="currency"), f"{currency!r} is not an ISO 4217 code")
    if currency is None and "money" in inputs.values():
        problems.add(
            _where(origin, name, fld="currency"),
            "a table with money inputs needs the currency of its thresholds",
        )
    origin, default = get("default", None)
    if default is not None:
        if not isinstance(default, Mapping):
            problems.add(_where(origin, name, fld="default"), "must be a table of outputs")
            default = None
        else:
            for key in sorted(set(default) - set(outputs)):
                problems.add(
                    _where(origin, name, fld="default"),
                    f"output {key!r} is not declared; outputs: {', '.join(outputs)}",
                )
    texts = {}
    for key in ("zh", "en", "source"):
        origin, value = get(key, "")
        if not isinstance(value, str):
            problems.add(_where(origin, name, fld=key), "must be a string")
            value = ""
        texts[key] = value

    rows: list[Row] = []
    origins: list[str] = []
    for origin, raw in entry["rows"]:
        row = _build_row(origin, name, raw, inputs, outputs, functions, problems)
        if row is not None:
            rows.append(row)
            origins.append(origin)
    if not entry["rows"]:
        problems.add(_where(get("hit")[0], name, fld="rows"), "a table needs at least one row")
    aggregation, output_values = _policy_keys(name, get, hit, outputs, problems)
    _check_row_values(
        name, hit, aggregation, output_values, list(zip(origins, rows, strict=True)), problems
    )
    _check_default(name, get("default")[0], aggregation, output_values, outputs, default, problems)

    origin, examples = get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(e, Mapping) for e in examples):
        problems.add(_where(origin, name, fld="examples"), "must be an array of tables")
        examples = []
    if len(problems.items) > count:
        return None
    table = Table(
        name=name,
        hit=hit,
        inputs=MappingProxyType(dict(inputs)),
        outputs=tuple(outputs),
        rows=tuple(rows),
        zh=texts["zh"],
        en=texts["en"],
        source=texts["source"],
        currency=currency,
        default=dict(default) if default is not None else None,
        examples=tuple(examples),
        aggregation=aggregation,
        output_values=output_values,
    )
    _check_examples(origin, table, problems)
    return table


def _policy_keys(
    name: str,
    get: Callable[[str, Any], tuple[str, Any]],
    hit: Any,
    outputs: list[str],
    problems: _Problems,
) -> tuple[str | None, Mapping[str, tuple[Any, ...]] | None]:
    """``aggregation`` and ``output_values`` checked against the hit policy and outputs."""
    origin, aggregation = get("aggregation", None)
    where = _where(origin, name, fld="aggregation")
    if aggregation is not None:
        if not isinstance(aggregation, str) or aggregation not in AGGREGATIONS:
            problems.add(where, f"{aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
            aggregation = None
        elif hit != "collect":
            problems.add(
                where,
                f"an aggregation needs hit = 'collect', not {hit!r} (DMN: C+, C<, C>, C#); "
                "remove it or make the table collect",
            )
        elif len(outputs) != 1:
            problems.add(
                where,
                f"an aggregated table has exactly one output, not {len(outputs)} "
                f"({', '.join(outputs) or 'none'}); split it into one table per output",
            )
    origin, raw = get("output_values", None)
    where = _where(origin, name, fld="output_values")
    lists: dict[str, tuple[Any, ...]] = {}
    if raw is not None:
        if not isinstance(raw, Mapping):
            problems.add(where, "must be a table of output name = [allowed values, in priority]")
            raw = {}
        for output, values in raw.items():
            if output not in outputs:
                problems.add(
                    where,
                    f"output {output!r} is not declared; outputs: {', '.join(outputs) or 'none'}",
                )
            elif (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, _OUTPUT_VALUE_TYPES) for v in values)
            ):
                problems.add(
                    where,
                    f"{output}: a non-empty list of strings, numbers, true/false or dates "
                    "is required, highest priority first",
                )
            elif any(same_value(a, b) for i, a in enumerate(values) for b in values[i + 1 :]):
                problems.add(where, f"{output}: a value is listed twice in {values!r}")
            else:
                lists[output] = tuple(values)
    if hit in ORDERED_POLICIES and not lists:
        problems.add(
            where,
            f"hit {hit!r} ranks rows by output_values: list the allowed values of at least "
            "one output, highest priority first (DMN outputValues)",
        )
    return aggregation, (MappingProxyType(lists) if lists else None)


def _check_row_values(
    name: str,
    hit: Any,
    aggregation: str | None,
    output_values: Mapping[str, tuple[Any, ...]] | None,
    rows: list[tuple[str, Row]],
    problems: _Problems,
) -> None:
    """Every row's outputs in their ``output_values``; aggregated outputs set and aggregable."""
    for origin, row in rows:
        for output, values in (output_values or {}).items():
            if output not in row.then:
                if hit in ORDERED_POLICIES:
                    problems.add(
                        _where(origin, name, row.id, "then"),
                        f"hit {hit!r} ranks rows by {output!r}: the row must set it to one "
                        f"of {list(values)!r}",
                    )
                continue
            value = row.then[output]
            if not any(same_value(value, v) for v in values):
                problems.add(
                    _where(origin, name, row.id, "then"),
                    f"output {output!r} = {value!r} is not in its output_values {list(values)!r}",
                )
    if aggregation is None or not rows:
        return
    found: list[tuple[str, Row, Any]] = []
    for origin, row in rows:
        if len(row.then) != 1:
            problems.add(
                _where(origin, name, row.id, "then"),
                f"an aggregated ({aggregation}) table's row sets its one output",
            )
            continue
        ((output, value),) = row.then.items()
        if aggregation == "sum" and not _is_number(value):
            problems.add(
                _where(origin, name, row.id, "then"),
                f"{output} = {value!r}: hit 'collect' with aggregation 'sum' adds numbers only",
            )
        found.append((origin, row, value))
    kinds = {_order_kind(v) for _, _, v in found}
    if aggregation in ("min", "max") and (len(kinds) > 1 or None in kinds):
        origin = found[0][0] if found else rows[0][0]
        problems.add(
            _where(origin, name, fld="rows"),
            f"aggregation {aggregation!r} compares the rows' values, which must all be numbers, "
            f"all strings or all dates: {', '.join(f'{r.id} = {v!r}' for _, r, v in found)}",
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and value.__class__ is not bool


def _order_kind(value: Any) -> str | None:
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, date) and not isinstance(value, datetime):
        return "date"
    return None


def _check_default(
    name: str,
    origin: str,
    aggregation: str | None,
    output_values: Mapping[str, tuple[Any, ...]] | None,
    outputs: list[str],
    default: Any,
    problems: _Problems,
) -> None:
    """The default's values in their ``output_values``; an aggregated default sets the output."""
    if not isinstance(default, Mapping):
        return
    where = _where(origin, name, fld="default")
    for output, values in (output_values or {}).items():
        if output in default and not any(same_value(default[output], v) for v in values):
            problems.add(
                where,
                f"output {output!r} = {default[output]!r} is not in its output_values "
                f"{list(values)!r}",
            )
    if aggregation is not None and len(outputs) == 1 and outputs[0] not in default:
        problems.add(
            where,
            f"the default of an aggregated table is its result when no row matches: "
            f"set {outputs[0]!r} (or drop the default: then {outputs[0]} is "
            f"{'0' if aggregation == 'count' else 'none'})",
        )


def _build_row(
    origin: str,
    table: str,
    raw: Mapping[str, Any],
    inputs: Mapping[str, str],
    outputs: list[str],
    functions: Functions,
    problems: _Problems,
) -> Row | None:
    rid = raw["id"]
    count = len(problems.items)
    for key in sorted(set(raw) - _ROW_KEYS):
        problems.add(
            _where(origin, table, rid, key), f"unknown key; allowed: {', '.join(sorted(_ROW_KEYS))}"
        )
    when = raw.get("when")
    compiled = None
    if not isinstance(when, str):
        problems.add(_where(origin, table, rid, "when"), "a condition string is required")
    else:
        try:
            compiled = compile_condition(when, inputs, functions, types=inputs)
        except ExpressionError as exc:
            problems.add(_where(origin, table, rid, "when"), f"{when!r}: {exc}")
    then = raw.get("then")
    if not isinstance(then, Mapping) or not then:
        problems.add(_where(origin, table, rid, "then"), "a table of outputs is required")
        then = {}
    for key in then:
        if key not in outputs:
            problems.add(
                _where(origin, table, rid, "then"),
                f"output {key!r} is not declared; outputs: {', '.join(outputs) or 'none'}",
            )
    for key in ("zh", "en", "clause"):
        if not isinstance(raw.get(key, ""), str):
            problems.add(_where(origin, table, rid, key), "must be a string")
    if len(problems.items) > count or compiled is None:
        return None
    return Row(
        id=rid,
        when=compiled,
        then=MappingProxyType(dict(then)),
        zh=raw.get("zh", ""),
        en=raw.get("en", ""),
        clause=raw.get("clause", ""),
    )


def facts_from_data(table: Table, facts: Mapping[str, Any]) -> dict[str, Any]:
    """Facts read from TOML or JSON, made into the types the table's inputs declare.

    Money is ``{amount = "...", currency = "..."}`` (or a bare number in the
    table's currency); decimals may be strings.
    """
    if not isinstance(facts, Mapping):
        raise ValidationError(
            "facts", facts, "a table of fact name = value", where=f"table {table.name}"
        )
    out = dict(facts)
    for name, kind in table.inputs.items():
        value = out.get(name)
        if kind == "money" and isinstance(value, Mapping):
            out[name] = Money(str(value.get("amount")), str(value.get("currency")))
        elif kind == "decimal" and isinstance(value, str | float) and not isinstance(value, bool):
            out[name] = _decimal_fact(table, name, value)
        elif (
            kind == "money" and isinstance(value, int | str | float) and not isinstance(value, bool)
        ):
            out[name] = Money(str(value), table.currency or "CNY")
    return out


def _decimal_fact(table: Table, name: str, value: str | float) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ValidationError(
            name, value, 'a finite decimal number such as "12.5"', where=f"table {table.name}"
        )
    return number


def _check_examples(origin: str, table: Table, problems: _Problems) -> None:
    for i, example in enumerate(table.examples, start=1):
        where = _where(origin, table.name, fld=f"examples[{i}]")
        for key in sorted(set(example) - _EXAMPLE_KEYS):
            problems.add(where, f"unknown key {key!r}; allowed: facts, expect, note")
        facts = example.get("facts")
        if not isinstance(facts, Mapping):
            problems.add(where, "needs facts = { ... }")
            continue
        try:
            prepared = prepare_facts(table, facts_from_data(table, facts), None, date.today())
            decision = evaluate(table, prepared, "", facts)
        except RuleError as exc:
            overlap = exc.row is None and table.hit in ("unique", "any")
            problems.add(
                where,
                ("rows overlap: " if overlap else f"row {exc.row!r}: " if exc.row else "")
                + exc.reason,
            )
            continue
        except ReqMgmtError as exc:  # a missing or mistyped fact
            problems.add(where, str(exc))
            continue
        expect = example.get("expect")
        if expect is not None and decision.outcome != expect:
            got = decision.outcome
            shown = [dict(o) for o in got] if isinstance(got, list) else dict(got)
            problems.add(
                where,
                f"expected {expect!r} but the rows give {shown!r} "
                f"(matched: {', '.join(decision.matched) or 'none'})",
            )


def _version(merged: Mapping[str, Any]) -> str:
    data = {
        name: {
            "keys": {k: v for k, (_, v) in sorted(entry["keys"].items())},
            "rows": [row for _, row in entry["rows"]],
        }
        for name, entry in sorted(merged.items())
    }
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_rules(
    sources: Source | Iterable[Source],
    *,
    functions: Functions | None = None,
    with_defaults: bool = False,
) -> RuleSet:
    """Load and check a rule set from TOML files and/or dicts, merged in order.

    ``with_defaults`` puts the packaged default rule set first, so the
    sources override it.  ``functions`` are the named predicates conditions
    may call.  Raises :class:`ConfigError` listing every problem with its
    file, table, row and field.
    """
    if isinstance(sources, str | Path | Mapping):
        sources = [sources]
    listed: list[Source] = list(sources)
    if with_defaults:
        listed.insert(0, _default_path())
    problems = _Problems()
    read = []
    for index, source in enumerate(listed, start=1):
        origin, data = _read(source, index, problems)
        if data is not None:
            read.extend(_with_dmn(origin, source, data, problems))
    merged = _merge(read, problems)
    tables: dict[str, Table] = {}
    for name, entry in merged.items():
        table = _build_table(name, entry, functions or {}, problems)
        if table is not None:
            tables[name] = table
    if not merged and not problems.items:
        problems.add(", ".join(str(s) for s in listed) or "rules", "defines no tables")
    _check_consumed(merged, tables, problems)
    vocabularies = _vocabularies(read, problems)
    _check_departments(merged, vocabularies, problems)
    _check_self_review(merged, problems)
    _check_steps(merged, vocabularies, problems)
    calendar = _calendar(read, problems)
    no_deadline = _no_step_deadline(read, problems)
    if problems.items:
        raise ConfigError("rule set", problems.items)
    return RuleSet(
        tables=MappingProxyType(tables),
        version=_calendar_version(_version(merged), calendar),
        sources=tuple(o for o, _ in read),
        vocabularies=vocabularies,
        calendar=calendar,
        no_step_deadline=no_deadline,
    )


def _with_dmn(
    origin: str, source: Source, data: Mapping[str, Any], problems: _Problems
) -> list[tuple[str, Mapping[str, Any]]]:
    """The DMN files a rule file names in ``[meta] dmn``, then the file (which may add to them)."""
    meta = data.get("meta")
    if not isinstance(meta, Mapping) or "dmn" not in meta:
        return [(origin, data)]
    from .dmn import dmn_sources  # only rule files naming DMN files pay for the XML reader

    try:
        return [*dmn_sources(origin, source, data), (origin, data)]
    except ConfigError as exc:
        problems.items.extend(f"{exc.location}: {p}" for p in exc.problems)
        return [(origin, data)]


def _check_consumed(
    merged: Mapping[str, Any], tables: Mapping[str, Table], problems: _Problems
) -> None:
    """A table reqmgmt reads (:data:`CONSUMED_TABLES`) keeps the outcome shape its code reads."""
    for name, shape in CONSUMED_TABLES.items():
        table = tables.get(name)
        if table is None:
            continue
        gives = "list" if table.hit in LIST_POLICIES else "one"
        if table.aggregation is None and gives == shape:
            continue
        keys = merged[name]["keys"]
        origin = keys.get("aggregation", keys.get("hit", ("<rules>", None)))[0]
        wanted, accepted = _SHAPES[shape]
        problems.add(
            _where(origin, name, fld="aggregation" if table.aggregation else "hit"),
            f"reqmgmt reads this table's outcome as {wanted}, which hit {table.policy!r} "
            f"does not give; this table accepts hit {', '.join(repr(h) for h in accepted)}"
            + (" without an aggregation" if table.aggregation else ""),
        )


def _no_step_deadline(
    read: Iterable[tuple[str, Mapping[str, Any]]], problems: _Problems
) -> Mapping[tuple[str, str], str]:
    """``[no_step_deadline.<kind>]`` ``<state> = "<reason>"``: states declared to have no
    step deadline, each with its reason; a later source replaces a state's reason.

    Which kinds and states exist is checked when a Desk meets its lifecycles
    (:func:`check_no_step_deadline`).
    """
    found: dict[tuple[str, str], str] = {}
    for origin, data in read:
        section = data.get("no_step_deadline")
        if section is None:
            continue
        if not isinstance(section, Mapping):
            problems.add(origin, "'no_step_deadline' must be a table of [no_step_deadline.<kind>]")
            continue
        for kind, states in section.items():
            where = f"{origin}, no_step_deadline.{kind}"
            if not isinstance(states, Mapping) or not states:
                problems.add(where, 'must be a table of <state> = "<why it has no deadline>"')
                continue
            for state, reason in states.items():
                if not isinstance(reason, str) or not reason.strip():
                    problems.add(
                        f"{where}.{state}", "the reason the state has no step deadline (a text)"
                    )
                    continue
                found[(kind, state)] = reason
    return MappingProxyType(found)


def _vocabularies(
    read: Iterable[tuple[str, Mapping[str, Any]]], problems: _Problems
) -> Mapping[str, Any]:
    """The built-in vocabularies with every source's ``[vocabularies]`` merged over them."""
    found: list[str] = []
    merged = merge_vocabularies(
        default_vocabularies(),
        [(origin, data["vocabularies"]) for origin, data in read if "vocabularies" in data],
        found,
    )
    problems.items.extend(found)
    return MappingProxyType(merged)


#: Outputs of the built-in tables that name departments, which must sign.
_DEPARTMENT_OUTPUTS = {"review_route": "departments", "amendment_departments": "department"}


def _check_departments(
    merged: Mapping[str, Any], vocabularies: Mapping[str, Any], problems: _Problems
) -> None:
    """A department a route names must be in the ``departments`` vocabulary (or none could sign)."""
    known = vocabularies.get("departments")
    if known is None:
        return
    for table, output in _DEPARTMENT_OUTPUTS.items():
        for origin, row in merged.get(table, {}).get("rows", []):
            then = row.get("then") if isinstance(row, Mapping) else None
            named = then.get(output) if isinstance(then, Mapping) else None
            listed = [named] if isinstance(named, str) else named
            for department in listed if isinstance(listed, list | tuple) else []:
                if isinstance(department, str) and department not in known:
                    problems.add(
                        _where(origin, table, str(row.get("id")), f"then.{output}"),
                        known.expected(department),
                    )


def _check_steps(
    merged: Mapping[str, Any], vocabularies: Mapping[str, Any], problems: _Problems
) -> None:
    """A step ``step_deadline`` names has zh/en labels in ``deadline_steps`` (reminders say it)."""
    known = vocabularies.get("deadline_steps")
    if known is None:
        return
    for origin, row in merged.get("step_deadline", {}).get("rows", []):
        then = row.get("then") if isinstance(row, Mapping) else None
        step = then.get("step") if isinstance(then, Mapping) else None
        if isinstance(step, str) and step and step not in known:
            problems.add(
                _where(origin, "step_deadline", str(row.get("id")), "then.step"),
                f"{step!r} is not {known.expected(step)}",
            )


def _check_self_review(merged: Mapping[str, Any], problems: _Problems) -> None:
    """``self_review`` on a review route: a boolean, and ``true`` only where the seed allows it.

    A self-reviewed route (合同评审: verbal orders, 自行评审) has no countersign
    and its signatory approves himself, so the customer's read-back (复述) must be
    its control: ``departments = []`` and ``confirmation = "read_back"``.  Any
    other route keeps its independent approval.
    """
    for origin, row in merged.get("review_route", {}).get("rows", []):
        then = row.get("then") if isinstance(row, Mapping) else None
        if not isinstance(then, Mapping) or "self_review" not in then:
            continue
        value = then["self_review"]
        where = _where(origin, "review_route", str(row.get("id")), "then.self_review")
        if not isinstance(value, bool):
            problems.add(where, f"{value!r} is not true or false")
        elif value and (then.get("departments") != [] or then.get("confirmation") != "read_back"):
            problems.add(
                where,
                "a self-reviewed route (自行评审) needs departments = [] and confirmation = "
                f"'read_back' (the customer's read-back is its control); this row has departments "
                f"{then.get('departments')!r} and confirmation {then.get('confirmation')!r}",
            )


def _default_path() -> Path:
    return Path(str(resources.files("reqmgmt.rules").joinpath(DEFAULT_RULES)))


def default_rules(functions: Functions | None = None) -> RuleSet:
    """The packaged default rule set (``rules/default_rules.toml``).

    Loaded once per process when no rule functions are given (every
    ``Desk.open`` asks for it; loading and checking it took ~8 ms).
    """
    if functions:
        return load_rules(_default_path(), functions=functions)
    return _plain_defaults()


@cache
def _plain_defaults() -> RuleSet:
    # Shared safely: a rule set is read-only (frozen classes, read-only mappings).
    return load_rules(_default_path())


# --- [calendar]: the company's own days (reqmgmt.calendar) -----------------------------------

_CALENDAR_KEYS = {"complete", "holidays", "workdays", "shutdowns"}
#: The kind of entry each list of ``[calendar]`` holds, and the keys an entry may have.
_CALENDAR_LISTS = {
    "holidays": ("holiday", {"on", "from", "to", "zh", "en"}),
    "workdays": ("workday", {"on", "from", "to", "zh", "en"}),
    "shutdowns": ("shutdown", {"from", "to", "zh", "en"}),
}
#: The longest range one entry may span (a shutdown of more than a year is a typo).
_MAX_RANGE_DAYS = 366


def _calendar_day(value: Any, where: str, problems: _Problems) -> date | None:
    """A TOML date (or ``"YYYY-MM-DD"`` from a dict) in the years allowed, else a problem."""
    day: date | None = None
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
    if day is None:
        problems.add(where, f"{value!r} is not a date; allowed: a TOML date such as 2027-02-06")
        return None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        problems.add(where, f"{day.isoformat()}: allowed years are {MIN_YEAR}-{MAX_YEAR}")
        return None
    return day


def _calendar_entry(
    kind: str, keys: set[str], raw: Any, where: str, problems: _Problems
) -> CalendarEntry | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a table with on (or from and to), zh, en")
        return None
    count = len(problems.items)
    for key in sorted(set(raw) - keys):
        problems.add(f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(keys))}")
    if "on" not in keys:
        raw = {k: v for k, v in raw.items() if k != "on"}  # reported as unknown above
    if "on" in raw and ("from" in raw or "to" in raw):
        problems.add(where, "give either on (one day) or from and to (a range), not both")
        return None
    if "on" in raw:
        start = end = _calendar_day(raw["on"], f"{where}.on", problems)
    elif "from" in raw and "to" in raw:
        start = _calendar_day(raw["from"], f"{where}.from", problems)
        end = _calendar_day(raw["to"], f"{where}.to", problems)
        if start is not None and end is not None:
            if end < start:
                problems.add(
                    where, f"from {start} is after to {end}; allowed: from on or before to"
                )
            elif (end - start).days >= _MAX_RANGE_DAYS:
                problems.add(where, f"{start} to {end}: at most {_MAX_RANGE_DAYS} days an entry")
    else:
        needs = "from and to" if "on" not in keys else "on, or from and to"
        problems.add(where, f"the days are missing; allowed: {needs}")
        return None
    names = {}
    for key in ("zh", "en"):
        value = raw.get(key, "")
        if not isinstance(value, str) or len(value) > 200:
            problems.add(f"{where}.{key}", "must be a string of at most 200 characters")
            value = ""
        names[key] = value.strip()
    if not names["zh"] and not names["en"]:
        problems.add(where, 'needs a name: zh and/or en, e.g. zh = "春节", en = "Spring Festival"')
    if len(problems.items) > count or start is None or end is None:
        return None
    return CalendarEntry(kind, start, end, names["zh"], names["en"])


def _calendar(
    read: Iterable[tuple[str, Mapping[str, Any]]], problems: _Problems
) -> CompanyCalendar | None:
    """Every source's ``[calendar]`` checked and merged (entries added, complete years joined)."""
    entries: list[tuple[str, CalendarEntry]] = []
    complete: set[int] = set()
    found = False
    count = len(problems.items)
    for origin, data in read:
        section = data.get("calendar") if isinstance(data, Mapping) else None
        if section is None:
            continue
        found = True
        where = f"{origin}, calendar"
        if not isinstance(section, Mapping):
            problems.add(where, "must be a table: [calendar] with complete, holidays, ...")
            continue
        for key in sorted(set(section) - _CALENDAR_KEYS):
            problems.add(
                f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(_CALENDAR_KEYS))}"
            )
        years = section.get("complete", [])
        if not isinstance(years, list):
            problems.add(f"{where}.complete", f"must be a list of years ({MIN_YEAR}-{MAX_YEAR})")
            years = []
        for year in years:
            if year.__class__ is not int or not MIN_YEAR <= year <= MAX_YEAR:
                problems.add(
                    f"{where}.complete", f"{year!r}: allowed: a year from {MIN_YEAR} to {MAX_YEAR}"
                )
            else:
                complete.add(year)
        for name, (kind, keys) in _CALENDAR_LISTS.items():
            listed = section.get(name, [])
            if not isinstance(listed, list):
                problems.add(f"{where}.{name}", f"must be an array of tables ([[calendar.{name}]])")
                continue
            for i, raw in enumerate(listed, start=1):
                entry = _calendar_entry(kind, keys, raw, f"{where}.{name}[{i}]", problems)
                if entry is not None:
                    entries.append((f"{where}.{name}[{i}]", entry))
    if not found:
        return None
    worked: dict[date, str] = {}
    for where, entry in entries:
        if entry.kind == "workday":
            for day in entry.days():
                worked.setdefault(day, where)
    for where, entry in entries:
        if entry.kind != "workday":
            both = [d for d in entry.days() if d in worked]
            if both:
                problems.add(
                    where,
                    f"{both[0]} is also a workday in {worked[both[0]]}; "
                    "allowed: a day is either off or worked",
                )
    if len(problems.items) > count:
        return None
    return CompanyCalendar(tuple(e for _, e in entries), frozenset(complete))


def _calendar_version(version: str, calendar: CompanyCalendar | None) -> str:
    """The tables' version, changed by a non-empty ``[calendar]`` (unchanged without one)."""
    if not calendar:
        return version
    text = json.dumps([version, calendar.canonical()], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
