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

from ..calendar import CompanyCalendar
from ..errors import ConfigError, ReqMgmtError, RuleError, ValidationError
from ..model import Money
from .expr import Compiled
from .vocabulary import Vocabulary, default_vocabularies

__all__ = [
    "AGGREGATIONS",
    "HIT_POLICIES",
    "INPUT_TYPES",
    "LIST_POLICIES",
    "ORDERED_POLICIES",
    "SINGLE_POLICIES",
    "Decision",
    "Row",
    "RowResult",
    "RuleSet",
    "Table",
]

#: The DMN 1.3 hit policies (see docs/rules.md for what each one gives).
HIT_POLICIES = ("unique", "first", "priority", "any", "collect", "rule order", "output order")
#: Single-hit policies: the outcome is one mapping (a row's outputs or the default).
SINGLE_POLICIES = frozenset({"unique", "first", "priority", "any"})
#: Multiple-hit policies: the outcome is a list of mappings (``collect`` without aggregation).
LIST_POLICIES = frozenset({"collect", "rule order", "output order"})
#: Policies that rank rows by the order of ``output_values`` (DMN outputValues).
ORDERED_POLICIES = frozenset({"priority", "output order"})
#: ``collect`` aggregations (DMN C+, C<, C>, C#), with the FEEL list function semantics.
AGGREGATIONS = ("sum", "min", "max", "count")
#: How the explanations name the policies and aggregations in Chinese.
POLICY_ZH = {
    "unique": "唯一",
    "first": "首个命中",
    "priority": "优先级",
    "any": "任一(须一致)",
    "collect": "收集",
    "rule order": "规则顺序",
    "output order": "输出顺序",
    "sum": "求和",
    "min": "最小值",
    "max": "最大值",
    "count": "计数",
}
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
    #: ``sum``/``min``/``max``/``count`` for a ``collect`` table with one output, else None.
    aggregation: str | None = None
    #: Output name → its allowed values, highest priority first (DMN outputValues).
    output_values: Mapping[str, tuple[Any, ...]] | None = None
    # (name, kind, accepted types) per input, worked out once: checked per decision.
    checks: tuple[tuple[str, str, tuple[type, ...]], ...] = field(init=False, repr=False, eq=False)
    # Row id → its rank for priority / output order (smaller comes first), worked out once.
    ranks: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, eq=False)

    @checks.default
    def _checks(self) -> tuple[tuple[str, str, tuple[type, ...]], ...]:
        return tuple((n, k, INPUT_TYPES.get(k, ())) for n, k in self.inputs.items())

    @ranks.default
    def _ranks(self) -> Mapping[str, tuple[int, ...]]:
        given = self.output_values or {}
        lists = [(o, given[o]) for o in self.outputs if o in given]
        return MappingProxyType(
            {r.id: tuple(value_index(v, r.then.get(o)) for o, v in lists) for r in self.rows}
        )

    @property
    def policy(self) -> str:
        """The hit policy with its aggregation, as in ``collect (sum)``."""
        return f"{self.hit} ({self.aggregation})" if self.aggregation else self.hit


def same_value(a: Any, b: Any) -> bool:
    """``a == b`` where true/false never equals 1/0 (an output value list keeps them apart)."""
    return bool(a == b) and (a.__class__ is bool) == (b.__class__ is bool)


def value_index(values: Sequence[Any], value: Any) -> int:
    """The position of ``value`` in ``values`` (``len(values)``, last, when it is not there)."""
    for i, candidate in enumerate(values):
        if same_value(candidate, value):
            return i
    return len(values)


@frozen
class RowResult:
    """How one row fared: matched or not, and the facts its condition read."""

    row: Row
    matched: bool
    values: Mapping[str, Any]


@attrs.define(slots=True, eq=True)
class Decision:
    """What a table decided for one fact set.

    ``outcome`` is, by the table's hit policy (docs/rules.md):

    - ``unique``, ``first``, ``any``, ``priority``: the deciding row's
      outputs (the table's default or ``{}`` when nothing matched);
    - ``collect``, ``rule order``, ``output order``: a list of the matched
      rows' outputs in the policy's order (``[default]`` or ``[]`` when
      nothing matched);
    - ``collect`` with an aggregation: ``{output: aggregated value}``;

    as read-only mappings.  ``matched`` lists the matched row ids in the
    policy's order: the table's order, or by ``output_values`` for
    ``priority`` and ``output order`` (so the deciding row comes first), and
    only the deciding row for ``first``.  Treat a decision as a value: it is
    not frozen only because building frozen objects costs measurably in bulk
    classification.
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
        policy = self.spec.policy
        if zh:
            named = POLICY_ZH.get(self.hit, self.hit)
            if self.spec.aggregation:
                named += "," + POLICY_ZH.get(self.spec.aggregation, self.spec.aggregation)
            policy = f"{policy}({named})"
        head = (
            f"决策表 {self.table}({title}),规则集版本 {self.version[:12]},命中策略 {policy}"
            if zh
            else f"table {self.table} ({title}), rule set {self.version[:12]}, hit policy {policy}"
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
        else:
            lines.extend(self._policy_lines(zh))
        outcome = _show(self.outcome)
        lines.append(f"  结果: {outcome}" if zh else f"  outcome: {outcome}")
        return "\n".join(lines)

    def _policy_lines(self, zh: bool) -> list[str]:
        """How the policy turned the matched rows into the outcome (beyond ``first``)."""
        hit, ids = self.hit, ", ".join(self.matched)
        order = "; ".join(
            f"{o}: {' > '.join(_show(v) for v in values)}"
            for o, values in (self.spec.output_values or {}).items()
        )
        if hit == "priority":
            return [
                f"  优先级:{self.matched[0]} 的输出在 output_values 中最靠前({order})"
                if zh
                else f"  priority: row {self.matched[0]} wins, its outputs come first in "
                f"output_values ({order})"
            ]
        if hit == "output order":
            return [
                f"  按 output_values 排序:{ids}({order})"
                if zh
                else f"  in output_values order: {ids} ({order})"
            ]
        if hit == "any" and len(self.matched) > 1:
            return [f"  命中的规则输出一致:{ids}" if zh else f"  matched rows agree: {ids}"]
        if self.spec.aggregation:
            agg = self.spec.aggregation
            return [f"  {POLICY_ZH[agg]}:{ids}" if zh else f"  {agg} over rows {ids}"]
        if hit in ("collect", "rule order"):
            return [f"  按规则顺序收集:{ids}" if zh else f"  collected in rule order: {ids}"]
        return []

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
            "facts": {
                k: v if v.__class__ in _PLAIN_JSON else _jsonable(v) for k, v in self.facts.items()
            },
        }


def _show(value: Any) -> str:
    if isinstance(value, list):  # a multiple-hit outcome: its mappings, not their proxies
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, MappingProxyType):
        return str(dict(value))
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:,}"
    return repr(value) if isinstance(value, str) else str(value)


#: The classes whose values are their own JSON form (checked by class, not isinstance:
#: one set look-up instead of five isinstance checks, two of them against ABCs).
_PLAIN_JSON = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if value.__class__ in _PLAIN_JSON:
        return value
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
    #: The rule file's ``[calendar]``: the company's holidays, make-up workdays,
    #: shutdowns and complete years (:mod:`reqmgmt.calendar`); part of ``version``.
    calendar: CompanyCalendar | None = None
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
        facts, a ``unique`` table matches more than one row or an ``any``
        table's matching rows differ; nothing else.
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
    hit = table.hit
    if len(matched) > 1:
        if hit == "unique":
            raise RuleError(
                table.name,
                None,
                facts,
                "hit policy 'unique' but rows "
                + ", ".join(repr(r.id) for r in matched)
                + " all match; make the conditions exclusive or use 'first'",
            )
        if hit == "any":
            _check_any(table, matched, facts)
        elif hit in ORDERED_POLICIES:
            ranks = table.ranks
            matched.sort(key=lambda r: ranks[r.id])  # stable: rule order among equals
    outcome: Any
    if table.aggregation is not None:
        outcome = _aggregate(table, matched)
    elif hit in LIST_POLICIES:
        if matched:
            outcome = [r.then for r in matched]
        else:
            outcome = [MappingProxyType(dict(table.default))] if table.default is not None else []
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


def _check_any(table: Table, matched: Sequence[Row], facts: Mapping[str, Any]) -> None:
    """``any``: every matched row must give the same outputs, else a :class:`RuleError`."""
    first = matched[0]
    for other in matched[1:]:
        differing = [
            f"{o}: {_show(first.then.get(o))} vs {_show(other.then.get(o))}"
            for o in table.outputs
            if not same_value(first.then.get(o), other.then.get(o))
            or (o in first.then) != (o in other.then)
        ]
        if differing:
            raise RuleError(
                table.name,
                None,
                facts,
                f"hit policy 'any' but rows {first.id!r} and {other.id!r} both match with "
                f"different outputs ({'; '.join(differing)}); make their outputs equal, the "
                "conditions exclusive, or use 'priority' or 'first'",
            )


def _aggregate(table: Table, matched: Sequence[Row]) -> Mapping[str, Any]:
    """``collect`` with an aggregation over the one output (FEEL sum/min/max/count).

    Nothing matched: the default if declared, else ``None`` (``0`` for count).
    """
    (name,) = table.outputs
    if not matched:
        if table.default is not None:
            return MappingProxyType(dict(table.default))
        return MappingProxyType({name: 0 if table.aggregation == "count" else None})
    values = [r.then[name] for r in matched]
    result: Any
    if table.aggregation == "count":
        result = len(values)
    elif table.aggregation == "min":
        result = min(values)
    elif table.aggregation == "max":
        result = max(values)
    elif any(v.__class__ is Decimal for v in values):
        # Exact: a float from a TOML file counts as the decimal it is written as.
        result = sum((v if v.__class__ is Decimal else Decimal(str(v)) for v in values), Decimal(0))
    else:
        result = sum(values)
    return MappingProxyType({name: result})


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
