"""Decision tables, rule sets, and the decisions they make.

A :class:`RuleSet` is a set of named :class:`Table` objects with a version
(the SHA-256 of its content).  A table has typed inputs, declared outputs, a
hit policy and rows; evaluating it on a fact set gives a :class:`Decision`
that says which rows matched, with which fact values, and can explain itself
in Chinese or English.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
from attrs import field, frozen

from ..errors import ConfigError, ReqMgmtError, RuleError, ValidationError
from ..model import Money
from .expr import Compiled
from .vocabulary import Vocabulary, default_vocabularies

__all__ = ["HIT_POLICIES", "INPUT_TYPES", "Decision", "Row", "RowResult", "RuleSet", "Table"]

HIT_POLICIES = ("first", "unique", "collect")
#: Input types a table may declare, and the Python values a fact may have.
INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "decimal": (Decimal, int),
    "money": (Money,),
    "str": (str,),
    "date": (date,),
    "list": (list, tuple, frozenset, set),
}

Converter = Callable[[Money, str, date], Money | None]


@frozen
class Row:
    """One row: ``when`` (a condition), ``then`` (the outputs), labels and source clause."""

    id: str
    when: Compiled
    then: Mapping[str, Any]
    zh: str = ""
    en: str = ""
    clause: str = ""


@frozen
class Table:
    """A decision table.

    ``currency`` is the currency of money thresholds: money facts are
    converted into it (``reqmgmt_convert_money``) before any comparison.
    """

    name: str
    hit: str
    inputs: Mapping[str, str]
    outputs: tuple[str, ...]
    rows: tuple[Row, ...]
    zh: str = ""
    en: str = ""
    source: str = ""
    currency: str | None = None
    default: Mapping[str, Any] | None = None
    examples: tuple[Mapping[str, Any], ...] = ()
    # (name, kind, accepted types) per input, worked out once: checked per decision.
    checks: tuple[tuple[str, str, tuple[type, ...]], ...] = field(init=False, repr=False, eq=False)

    @checks.default
    def _checks(self) -> tuple[tuple[str, str, tuple[type, ...]], ...]:
        return tuple((n, k, INPUT_TYPES.get(k, ())) for n, k in self.inputs.items())


@frozen
class RowResult:
    """How one row fared: matched or not, and the facts its condition read."""

    row: Row
    matched: bool
    values: Mapping[str, Any]


@attrs.define(slots=True, eq=True)
class Decision:
    """What a table decided for one fact set.

    ``outcome`` is the matched row's outputs (``first``/``unique``; the
    table's default or ``{}`` when nothing matched), or a list of them
    (``collect``), as read-only mappings.  ``matched`` lists the matched row
    ids in order.  Treat a decision as a value: it is not frozen only
    because building frozen objects costs measurably in bulk classification.
    """

    table: str
    version: str
    hit: str
    outcome: Any
    matched: tuple[str, ...]
    facts: Mapping[str, Any] = field(repr=False)
    spec: Table = field(repr=False, eq=False)
    prepared: Mapping[str, Any] = field(repr=False, eq=False)

    def __bool__(self) -> bool:
        return bool(self.matched)

    @property
    def zh(self) -> str:
        """The table's Chinese title."""
        return self.spec.zh

    @property
    def en(self) -> str:
        """The table's English title."""
        return self.spec.en

    @property
    def results(self) -> tuple[RowResult, ...]:
        """Each row evaluated (up to the first match for ``first``), with its fact values.

        Worked out when asked for: classifying stays cheap, explaining costs
        one more pass over the rows.
        """
        out = []
        for row in self.spec.rows:
            try:
                hit = row.when(self.prepared)
            except ReqMgmtError:
                raise
            except Exception as exc:
                raise rule_error(self.spec, self.prepared, self.facts, exc) from exc
            out.append(RowResult(row, hit, {n: self.prepared[n] for n in row.when.names}))
            if hit and self.hit == "first":
                break
        return tuple(out)

    def explain(self, lang: str = "en") -> str:
        """Each row evaluated, whether it matched, and the fact values that decided."""
        if lang not in ("en", "zh"):
            raise ValidationError("lang", lang, "'en' or 'zh'", where="Decision.explain")
        zh = lang == "zh"
        title = self.zh if zh else self.en
        head = (
            f"决策表 {self.table}({title}),规则集版本 {self.version[:12]},命中策略 {self.hit}"
            if zh
            else f"table {self.table} ({title}), rule set {self.version[:12]}, "
            f"hit policy {self.hit}"
        )
        lines = [head]
        for r in self.results:
            mark = ("命中" if r.matched else "未命中") if zh else ("MATCH" if r.matched else "no")
            label = r.row.zh if zh else r.row.en
            values = ", ".join(f"{k} = {self._value(k, v)}" for k, v in r.values.items()) or "-"
            lines.append(f"  [{mark}] {r.row.id}: {r.row.when.source}  ({values})")
            if label:
                lines.append(f"         {label}" + (f" [{r.row.clause}]" if r.row.clause else ""))
        if not self.matched:
            lines.append("  没有规则命中" if zh else "  no row matched")
        outcome = _show(self.outcome)
        lines.append(f"  结果: {outcome}" if zh else f"  outcome: {outcome}")
        return "\n".join(lines)

    def _value(self, name: str, value: Any) -> str:
        original = self.facts.get(name)
        if isinstance(original, Money) and self.spec.currency not in (None, original.currency):
            return f"{_show(value)} {self.spec.currency} ({original})"
        return _show(value)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready record of the decision kept in audit events."""
        return {
            "table": self.table,
            "version": self.version,
            "matched": list(self.matched),
            "outcome": _jsonable(self.outcome),
            "facts": {k: _jsonable(v) for k, v in self.facts.items()},
        }


def _show(value: Any) -> str:
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:,}"
    return repr(value) if isinstance(value, str) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


@frozen
class RuleSet:
    """Named decision tables with a content-hash version."""

    tables: Mapping[str, Table]
    version: str
    sources: tuple[str, ...] = ()
    #: The closed vocabularies (flags, categories, departments...): see
    #: :mod:`reqmgmt.rules.vocabulary`.  Not part of ``version``: they decide
    #: which words are accepted, not how a record is decided.
    vocabularies: Mapping[str, Vocabulary] = field(factory=default_vocabularies)
    #: States declared to have no step deadline, ``(kind, state) -> reason``
    #: (the rule file's ``[no_step_deadline.<kind>]``).  Not part of ``version``.
    no_step_deadline: Mapping[tuple[str, str], str] = field(factory=dict)

    def vocabulary(self, name: str) -> Vocabulary:
        """The vocabulary ``name``; :class:`ConfigError` lists the declared ones."""
        found = self.vocabularies.get(name)
        if found is None:
            raise ConfigError(
                f"rule set {self.version[:12]}",
                f"no vocabulary {name!r}; vocabularies: {', '.join(sorted(self.vocabularies))}",
            )
        return found

    def table(self, name: str) -> Table:
        """The table ``name``; :class:`ConfigError` lists the known ones."""
        try:
            return self.tables[name]
        except KeyError:
            raise ConfigError(
                f"rule set {self.version[:12]}",
                f"no table {name!r}; tables: {', '.join(sorted(self.tables))}",
            ) from None

    def decide(
        self,
        name: str,
        facts: Mapping[str, Any],
        *,
        convert: Converter | None = None,
        on: date | None = None,
    ) -> Decision:
        """Evaluate table ``name`` on ``facts``.

        Every declared input must be given, of its declared type.  Money facts
        are converted into the table's currency with ``convert`` (rates of
        ``on``, default today).  Raises :class:`ValidationError` for missing or
        mistyped facts and :class:`RuleError` when a condition fails on these
        facts or a ``unique`` table matches more than one row; nothing else.
        """
        table = self.tables.get(name)
        if table is None:
            table = self.table(name)  # raises, naming the tables there are
        return evaluate(table, prepare_facts(table, facts, convert, on), self.version, facts)


def prepare_facts(
    table: Table, facts: Mapping[str, Any], convert: Converter | None, on: date | None
) -> dict[str, Any]:
    """Check the facts against the table's inputs; money becomes a Decimal in its currency."""
    # dict first: an isinstance check against the Mapping ABC is slow, and
    # this runs for every decision.
    if facts.__class__ is not dict and not isinstance(facts, Mapping):
        raise ValidationError(
            "facts", facts, "a mapping of fact name to value", where=f"table {table.name}"
        )
    out: dict[str, Any] = {}
    for name, kind, allowed in table.checks:
        try:
            value = facts[name]
        except KeyError:
            raise ValidationError(
                name,
                None,
                f"a {kind} fact (inputs: {', '.join(table.inputs)})",
                where=f"table {table.name}",
            ) from None
        if not isinstance(value, allowed) or (
            value.__class__ is bool and kind in ("int", "decimal")
        ):
            raise ValidationError(name, value, f"a {kind}", where=f"table {table.name}")
        if value.__class__ is Money:
            if value.currency == table.currency:
                value = value.amount
            else:
                value = _in_currency(table, name, value, convert, on)
        out[name] = value
    return out


def _in_currency(
    table: Table, name: str, money: Money, convert: Converter | None, on: date | None
) -> Decimal:
    target = table.currency or money.currency
    if money.currency == target:
        return money.amount
    when = on or date.today()
    converted = convert(money, target, when) if convert is not None else None
    if converted is None or converted.currency != target:
        raise ValidationError(
            name,
            money,
            f"an amount in {target} or a reqmgmt_convert_money plugin with a "
            f"{money.currency}→{target} rate for {when.isoformat()}; amounts in different "
            "currencies are never compared raw",
            where=f"table {table.name}",
        )
    return converted.amount


def evaluate(
    table: Table, prepared: Mapping[str, Any], version: str, facts: Mapping[str, Any]
) -> Decision:
    """Run the rows on prepared facts (see :meth:`RuleSet.decide`).

    A condition that fails on these facts raises :class:`RuleError`.
    """
    matched: list[Row] = []
    # One try around the loop: free while nothing fails (Python 3.11).
    try:
        if table.hit == "first":
            for row in table.rows:
                if row.when.evaluate(prepared):
                    return Decision(
                        table.name, version, "first", row.then, (row.id,), facts, table, prepared
                    )
        else:
            matched = [row for row in table.rows if row.when.evaluate(prepared)]
    except ReqMgmtError:
        raise  # a rule function's own library error says enough
    except Exception as exc:
        raise rule_error(table, prepared, facts, exc) from exc
    if table.hit == "unique" and len(matched) > 1:
        raise RuleError(
            table.name,
            None,
            facts,
            "hit policy 'unique' but rows "
            + ", ".join(repr(r.id) for r in matched)
            + " all match; make the conditions exclusive or use 'first'",
        )
    outcome: Any
    if table.hit == "collect":
        outcome = [r.then for r in matched]
    elif matched:
        outcome = matched[0].then
    else:
        outcome = MappingProxyType(dict(table.default or {}))
    # Positional: measurably cheaper than keywords in bulk classification.
    return Decision(
        table.name,
        version,
        table.hit,
        outcome,
        tuple([r.id for r in matched]),
        facts,
        table,
        prepared,
    )


def rule_error(
    table: Table, prepared: Mapping[str, Any], facts: Mapping[str, Any], exc: Exception
) -> RuleError:
    """The :class:`RuleError` for ``exc``, naming the first row that fails on ``prepared``."""
    failing = None
    for row in table.rows:
        try:
            row.when.evaluate(prepared)
        except Exception:
            failing = row.id
            break
    return RuleError(table.name, failing, facts, f"its condition failed: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):  # decimal.DivisionByZero too
        return "division by zero"
    if isinstance(exc, decimal.Overflow):
        return "a number too large to compute with"
    if isinstance(exc, decimal.InvalidOperation):
        return "an undefined decimal operation (such as 0 / 0)"
    if isinstance(exc, RecursionError):
        return "the condition nests too deeply to evaluate here"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def row_ids(rows: Sequence[Row]) -> list[str]:
    """The ids of ``rows``, in order."""
    return [r.id for r in rows]
