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

from ..errors import ConfigError, ReqMgmtError, RuleError, ValidationError
from ..model import CURRENCIES, Money
from .expr import ExpressionError, compile_condition
from .model import HIT_POLICIES, INPUT_TYPES, Row, RuleSet, Table, evaluate, prepare_facts
from .vocabulary import default_vocabularies, merge_vocabularies

__all__ = [
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

_SCALARS = frozenset({str, int, float, bool, date, datetime, time})
_TOP_KEYS = {"tables", "meta", "vocabularies", "no_step_deadline"}
_TABLE_KEYS = {
    "zh", "en", "source", "hit", "inputs", "outputs", "currency", "default", "rows",
    "examples", "remove",
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
            _where(origin, name, fld="hit"), f"{hit!r} is not one of {', '.join(HIT_POLICIES)}"
        )
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
    for origin, raw in entry["rows"]:
        row = _build_row(origin, name, raw, inputs, outputs, functions, problems)
        if row is not None:
            rows.append(row)
    if not entry["rows"]:
        problems.add(_where(get("hit")[0], name, fld="rows"), "a table needs at least one row")

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
    )
    _check_examples(origin, table, problems)
    return table


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
            overlap = exc.row is None and table.hit == "unique" and "all match" in exc.reason
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
            read.append((origin, data))
    merged = _merge(read, problems)
    tables: dict[str, Table] = {}
    for name, entry in merged.items():
        table = _build_table(name, entry, functions or {}, problems)
        if table is not None:
            tables[name] = table
    if not merged and not problems.items:
        problems.add(", ".join(str(s) for s in listed) or "rules", "defines no tables")
    vocabularies = _vocabularies(read, problems)
    _check_departments(merged, vocabularies, problems)
    no_deadline = _no_step_deadline(read, problems)
    if problems.items:
        raise ConfigError("rule set", problems.items)
    return RuleSet(
        tables=MappingProxyType(tables),
        version=_version(merged),
        sources=tuple(o for o, _ in read),
        vocabularies=vocabularies,
        no_step_deadline=no_deadline,
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
