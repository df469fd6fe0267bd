"""DMN decision tables read into the rule set's table form.

A DMN file (the XML of DMN 1.2 to 1.5) holds decisions; each decision whose
logic is a ``decisionTable`` becomes one table of the rule set, named after
the decision.  Only what the rule set can decide exactly is read: inputs
that are names of a simple type, S-FEEL unary tests as input entries
(translated into the condition language of :mod:`reqmgmt.rules.expr`),
simple literals as output entries, the hit policy and aggregation, default
output entries, and annotations as labels.  Anything else (FEEL functions,
contexts, business knowledge models, literal-expression decisions, decisions
that require other decisions) is refused with a :class:`ConfigError` naming
the file, the element and what is supported: never read half.

The XML is parsed with ``defusedxml`` with DTDs forbidden (no entity
expansion, no external entities) and at most :data:`MAX_DMN_BYTES`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import tomli_w
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..errors import ConfigError

__all__ = ["DMN_NAMESPACES", "MAX_DMN_BYTES", "dmn_sources", "dmn_to_toml", "read_dmn"]

#: The largest DMN file read, in bytes (the TCK's decision tables are 5-25 kB).
MAX_DMN_BYTES = 2_000_000
#: The DMN model namespaces read (DMN 1.2, 1.3, 1.4, 1.5); decision tables are the same in all.
DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
)
_HIT = {
    "UNIQUE": "unique",
    "FIRST": "first",
    "PRIORITY": "priority",
    "ANY": "any",
    "COLLECT": "collect",
    "RULE ORDER": "rule order",
    "OUTPUT ORDER": "output order",
}
_AGGREGATION = {"SUM": "sum", "MIN": "min", "MAX": "max", "COUNT": "count"}
# FEEL built-in types → the rule set's input types.
_TYPES = {"number": "decimal", "string": "str", "boolean": "bool", "date": "date"}
# What a literal of each input type is, for the checks below.
_LITERAL_KIND = {"decimal": "number", "str": "string", "bool": "boolean", "date": "date"}
# Elements a definitions element may hold that carry no decision logic.
_IGNORED = {
    "", "inputData", "itemDefinition", "description", "extensionElements", "import",
    "textAnnotation", "association", "group", "DMNDI", "knowledgeSource", "elementCollection",
    "performanceIndicator", "organizationUnit",
}  # fmt: skip
_DECISION_KEEP = {
    "", "variable", "informationRequirement", "authorityRequirement", "description",
    "extensionElements", "question", "allowedAnswers", "decisionTable",
}  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SUPPORTED = (
    "supported: decisions whose logic is a decision table with inputs that are names of type "
    "number, string, boolean or date, S-FEEL unary tests and simple literal outputs"
)


class _Refused(Exception):
    """One element outside the supported subset (collected into a ConfigError)."""


def read_dmn(path: str | Path, *, origin: str | None = None) -> dict[str, Any]:
    """The decision tables of the DMN file ``path`` as rule-set data (``{"tables": {...}}``).

    The data is what :func:`reqmgmt.rules.load_rules` reads from a TOML file.
    Raises :class:`ConfigError` naming the file and each element outside the
    supported subset (see docs/rules.md, "DMN").
    """
    where = origin or str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_DMN_BYTES + 1)
    except OSError as exc:
        raise ConfigError(where, f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_DMN_BYTES:
        raise ConfigError(where, f"is larger than {MAX_DMN_BYTES:,} bytes; not read")
    return parse_dmn(raw, where, Path(path).name)


def parse_dmn(raw: bytes, where: str, label: str = "") -> dict[str, Any]:
    """The decision tables of the DMN document ``raw`` (see :func:`read_dmn`)."""
    if len(raw) > MAX_DMN_BYTES:
        raise ConfigError(where, f"is larger than {MAX_DMN_BYTES:,} bytes; not read")
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ConfigError(
            where, f"refused: {exc}; a DMN file needs no DTD, entities or external references"
        ) from None
    except ParseError as exc:
        raise ConfigError(where, f"is not well-formed XML: {exc}") from None
    namespace, _, tag = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", "")
    if tag != "definitions" or namespace not in DMN_NAMESPACES:
        raise ConfigError(
            where,
            f"is not a DMN model: root element {root.tag!r}; expected 'definitions' in one of "
            + ", ".join(DMN_NAMESPACES),
        )
    reader = _Reader(namespace, label or where)
    for data in root.findall(reader.ns + "inputData"):
        variable = reader.find(data, "variable")
        if variable is not None and data.get("name") and variable.get("typeRef"):
            reader.types[str(data.get("name"))] = str(variable.get("typeRef"))
    problems: list[str] = []
    tables: dict[str, Any] = {}
    for child in root:
        local = reader.local(child)
        if local in _IGNORED:
            continue
        try:
            if local != "decision":
                raise _Refused(f"{_element(child, local)}: not read; {_SUPPORTED}")
            if (child.get("name") or "").strip() in tables:
                raise _Refused(f"{_element(child, local)}: a second decision of this name")
            name, table = reader.decision(child)
            tables[name] = table
        except _Refused as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(where, problems)
    if not tables:
        raise ConfigError(where, f"holds no decision table; {_SUPPORTED}")
    return {"tables": tables}


def dmn_to_toml(path: str | Path) -> str:
    """The decision tables of a DMN file written as a TOML rule file (``reqmgmt rules import``).

    Numbers with a fraction are written as TOML floats (TOML has no decimal
    type); everything else reads back exactly.
    """
    data = read_dmn(path)
    head = f"# Imported from the DMN file {Path(path).name} by `reqmgmt rules import`.\n\n"
    return head + tomli_w.dumps(data, multiline_strings=False)


def dmn_sources(
    origin: str, source: object, data: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The DMN files a rule file names in ``[meta] dmn = [...]``, read as sources.

    Paths are relative to the rule file's folder and may not leave it.
    Raises :class:`ConfigError` for a bad list, path or DMN file.
    """
    meta = data.get("meta")
    named = meta.get("dmn") if isinstance(meta, Mapping) else None
    if named is None:
        return
    where = f"{origin}, field 'meta.dmn'"
    if not isinstance(named, list) or not all(isinstance(n, str) and n for n in named):
        raise ConfigError(where, "must be a list of DMN file names relative to this file")
    if isinstance(source, Mapping) or not isinstance(source, str | Path):
        raise ConfigError(
            where, "only a rule file can name DMN files (they are found beside it), not a dict"
        )
    folder = Path(source).resolve().parent
    for name in named:
        relative = Path(name)
        try:
            target = (folder / relative).resolve()
        except (OSError, ValueError) as exc:  # a NUL character, a symlink loop
            raise ConfigError(where, f"{name!r} is not a usable path: {exc}") from None
        if relative.is_absolute() or not target.is_relative_to(folder):
            raise ConfigError(
                where, f"{name!r} is outside the rule file's folder; name a file beside it"
            )
        yield f"{origin} → {name}", read_dmn(target, origin=f"{origin} → {name}")


def _element(node: Element, local: str) -> str:
    ident = node.get("id")
    name = node.get("name")
    parts = [f"{local}"]
    if name:
        parts.append(f"{name!r}")
    if ident:
        parts.append(f"(id {ident})")
    return " ".join(parts)


class _Reader:
    """Reads one DMN document's decisions; each refusal names its element."""

    def __init__(self, namespace: str, label: str) -> None:
        self.ns = "{" + namespace + "}"
        self.label = label
        #: inputData name → its variable's typeRef, for inputs that give none of their own.
        self.types: dict[str, str] = {}

    def local(self, node: Element) -> str:
        """The element's DMN name; ``""`` for another namespace (diagrams, vendor extensions)."""
        tag = node.tag if isinstance(node.tag, str) else ""
        return tag[len(self.ns) :] if tag.startswith(self.ns) else ""

    def find(self, node: Element, local: str) -> Element | None:
        return node.find(self.ns + local)

    def text(self, node: Element | None) -> str:
        if node is None:
            return ""
        found = node.find(self.ns + "text")
        return (found.text or "").strip() if found is not None else ""

    def decision(self, node: Element) -> tuple[str, dict[str, Any]]:
        what = _element(node, "decision")
        name = (node.get("name") or "").strip()
        if not name:
            raise _Refused(f"{what}: a decision needs a name (the table's name)")
        for child in node:
            local = self.local(child)
            if local == "knowledgeRequirement":
                raise _Refused(
                    f"{what}: invokes a business knowledge model, not read; {_SUPPORTED}"
                )
            if local not in _DECISION_KEEP:
                raise _Refused(f"{what}: its logic is a {local}, not read; {_SUPPORTED}")
            if (
                local == "informationRequirement"
                and self.find(child, "requiredDecision") is not None
            ):
                raise _Refused(
                    f"{what}: requires another decision; chains of decisions are not read, "
                    "only decisions on input data"
                )
        table = self.find(node, "decisionTable")
        if table is None:
            raise _Refused(f"{what}: has no decision table; {_SUPPORTED}")
        return name, self.table(what, name, node, table)

    def table(self, what: str, name: str, decision: Element, node: Element) -> dict[str, Any]:
        hit_policy = node.get("hitPolicy", "UNIQUE")
        hit = _HIT.get(hit_policy)
        if hit is None:
            raise _Refused(f"{what}: hit policy {hit_policy!r} is not one of {', '.join(_HIT)}")
        if node.get("preferredOrientation") == "CrossTable":
            raise _Refused(f"{what}: a crosstab table is not read; rules as rows or columns")
        out: dict[str, Any] = {"en": decision.get("label") or name, "hit": hit}
        out["zh"] = out["en"]  # a DMN model has one label: shown in both languages
        out["source"] = f"{self.label}: decision {decision.get('id') or name}"
        aggregation = node.get("aggregation")
        if aggregation is not None:
            if hit != "collect" or aggregation not in _AGGREGATION:
                raise _Refused(
                    f"{what}: aggregation {aggregation!r}; allowed with COLLECT only: "
                    + ", ".join(_AGGREGATION)
                )
            out["aggregation"] = _AGGREGATION[aggregation]
        for child in node:
            local = self.local(child)
            if local not in ("", "input", "output", "rule", "annotation", "description",
                             "extensionElements"):  # fmt: skip
                raise _Refused(f"{what}: element {local!r} in a decision table is not read")
        inputs = [self.input(what, i) for i in node.findall(self.ns + "input")]
        outputs = node.findall(self.ns + "output")
        if not outputs:
            raise _Refused(f"{what}: a decision table needs an output")
        names: list[str] = []
        kinds: list[str | None] = []
        defaults: dict[str, Any] = {}
        values: dict[str, list[Any]] = {}
        for index, output in enumerate(outputs):
            oname = (output.get("name") or "").strip()
            if not oname:
                if len(outputs) > 1:
                    raise _Refused(f"{what}: output {index + 1} of several needs a name")
                oname = name  # the decision's own name for its single result
            if oname in names:
                raise _Refused(f"{what}: output {oname!r} is declared twice")
            names.append(oname)
            kind = _TYPES.get(output.get("typeRef") or "")
            if kind is None and len(outputs) == 1:
                kind = _TYPES.get(node.get("typeRef") or "")
            kinds.append(kind)
            allowed = self.text(self.find(output, "outputValues"))
            if allowed:
                values[oname] = [
                    _literal(t, f"{what}, output {oname!r}, outputValues", kind)
                    for t in _split(allowed, f"{what}, output {oname!r}, outputValues")
                ]
            default = self.find(output, "defaultOutputEntry")
            if default is not None:
                defaults[oname] = _literal(
                    self.text(default), f"{what}, output {oname!r}, defaultOutputEntry", kind
                )
        out["inputs"] = dict(inputs)
        if len(out["inputs"]) != len(inputs):
            raise _Refused(f"{what}: an input is named twice")
        out["outputs"] = names
        if defaults:
            out["default"] = defaults
        out["rows"] = [
            self.rule(what, number, rule, inputs, names, kinds)
            for number, rule in enumerate(node.findall(self.ns + "rule"), start=1)
        ]
        if not out["rows"]:
            raise _Refused(f"{what}: a decision table needs at least one rule")
        _check_values(what, out["rows"], defaults, values)
        if values:  # the allowed values; for PRIORITY and OUTPUT ORDER also the priority
            out["output_values"] = values
        return out

    def input(self, what: str, node: Element) -> tuple[str, str]:
        expression = self.find(node, "inputExpression")
        label = _element(node, "input")
        if expression is None:
            raise _Refused(f"{what}, {label}: has no inputExpression")
        text = self.text(expression)
        if not _NAME.match(text) or text in ("true", "false", "null", "not", "and", "or"):
            raise _Refused(
                f"{what}, {label}: input expression {text!r} is not read; an input must be "
                "the name of a fact (letters, digits and _ only), not a FEEL expression"
            )
        type_ref = expression.get("typeRef") or self.types.get(text)
        kind = _TYPES.get(type_ref or "")
        if kind is None:
            raise _Refused(
                f"{what}, {label}: typeRef {type_ref!r} is not read; allowed: " + ", ".join(_TYPES)
            )
        return text, kind

    def rule(
        self,
        what: str,
        number: int,
        node: Element,
        inputs: list[tuple[str, str]],
        outputs: list[str],
        kinds: list[str | None],
    ) -> dict[str, Any]:
        rid = node.get("id") or f"rule-{number}"
        where = f"{what}, rule {number} (id {rid})"
        entries = node.findall(self.ns + "inputEntry")
        results = node.findall(self.ns + "outputEntry")
        if len(entries) != len(inputs) or len(results) != len(outputs):
            raise _Refused(
                f"{where}: {len(entries)} input and {len(results)} output entries for "
                f"{len(inputs)} inputs and {len(outputs)} outputs"
            )
        tests = []
        for (fact, kind), entry in zip(inputs, entries, strict=True):
            if entry.get("expressionLanguage"):
                raise _Refused(f"{where}: an input entry in another expression language")
            test = unary_tests(self.text(entry), fact, kind, f"{where}, input {fact!r}")
            if test is not None:
                tests.append(test)
        then = {
            out: _literal(self.text(result), f"{where}, output {out!r}", kind)
            for out, kind, result in zip(outputs, kinds, results, strict=True)
        }
        row: dict[str, Any] = {"id": rid, "when": " and ".join(tests) or "true", "then": then}
        notes = [self.text(a) for a in node.findall(self.ns + "annotationEntry")]
        described = self.find(node, "description")
        label = "; ".join(n for n in notes if n) or (
            described.text if described is not None else None
        )
        if label and label.strip():
            row["en"] = row["zh"] = label.strip()
        return row


def _check_values(
    what: str,
    rows: list[dict[str, Any]],
    defaults: Mapping[str, Any],
    values: Mapping[str, list[Any]],
) -> None:
    """Every output entry and default is one of its output's ``outputValues``, as DMN requires."""
    for output, allowed in values.items():
        given = [(f"rule {r['id']}", r["then"][output]) for r in rows]
        if output in defaults:
            given.append(("defaultOutputEntry", defaults[output]))
        for place, value in given:
            if value not in allowed:
                raise _Refused(
                    f"{what}, output {output!r}, {place}: {value!r} is not one of its "
                    f"outputValues {', '.join(map(repr, allowed))}"
                )


# --- S-FEEL ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?(?:\d+(?:\.\d+)?|\.\d+))
      | (?P<op><=|>=|!=|<|>|=|\.\.|[\[\]()\-,])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'"}
_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "==", "!=": "!="}
#: The longest entry read, in characters (a longer one is no simple unary test).
MAX_ENTRY_LENGTH = 2_000


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    if len(text) > MAX_ENTRY_LENGTH:
        raise _Refused(f"{where}: an entry longer than {MAX_ENTRY_LENGTH:,} characters")
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            column = len(text) - len(text[position:].lstrip()) + 1
            raise _Refused(f"{where}: {text!r} is not S-FEEL (at column {column}); {_SUPPORTED}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    """One S-FEEL entry: tokens read left to right, each refusal naming the entry."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.tokens = _tokens(text, where)
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.at += 1
        return token

    def refuse(self, expected: str) -> _Refused:
        kind, value = self.peek()
        found = "the end" if kind == "end" else repr(value)
        return _Refused(
            f"{self.where}: {self.text!r} is not read: {expected} expected, found {found}; "
            + _SUPPORTED
        )

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            self.at -= 1
            raise self.refuse(repr(value))

    def literal(self) -> tuple[str, Any]:
        """(kind, value) of one literal: number, string, boolean, date("...") or null."""
        kind, value = self.take()
        if kind == "number":
            return "number", _number(value)
        if kind == "string":
            return "string", _string(value, self.where)
        if kind == "name" and value in ("true", "false"):
            return "boolean", value == "true"
        if kind == "name" and value == "null":
            return "null", None
        if kind == "name" and value == "date":
            self.expect("(")
            skind, text = self.take()
            if skind != "string":
                self.at -= 1
                raise self.refuse('a date string such as "2026-01-31"')
            self.expect(")")
            try:
                return "date", date.fromisoformat(_string(text, self.where))
            except ValueError:
                raise _Refused(f"{self.where}: {text} is not a date YYYY-MM-DD") from None
        self.at -= 1
        raise self.refuse('a literal (number, string, true, false, null or date("..."))')

    def done(self) -> None:
        if self.at != len(self.tokens):
            raise self.refuse("the end of the entry")


def _number(text: str) -> Decimal | int:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() and "." not in text else value


def _string(token: str, where: str) -> str:
    out = []
    body = token[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise _Refused(f"{where}: escape \\{nxt} in {token} is not read")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split(text: str, where: str) -> list[str]:
    """The items of a comma-separated list of literals (outputValues), as entry texts."""
    parser = _Parser(text, where)
    items = []
    while True:
        start = parser.at
        parser.literal()
        items.append(" ".join(v for _, v in parser.tokens[start : parser.at]))
        if parser.peek()[1] != ",":
            break
        parser.take()
    parser.done()
    return items


def _literal(text: str, where: str, kind: str | None) -> Any:
    """The value of an output entry: a simple literal, of the output's type when declared."""
    if not text:
        raise _Refused(f"{where}: an empty output entry (null) is not read; give a literal")
    parser = _Parser(text, where)
    if parser.peek()[0] == "op" and parser.peek()[1] == "-" and len(parser.tokens) > 1:
        parser.take()  # "- 5": a negative number written apart
        lkind, value = parser.literal()
        if lkind != "number":
            raise parser.refuse("a number after '-'")
        value = -value
    else:
        lkind, value = parser.literal()
    parser.done()
    if lkind == "null":
        raise _Refused(f"{where}: null is not read as an output; give a literal")
    if kind is not None and _LITERAL_KIND[kind] != lkind:
        raise _Refused(f"{where}: {text!r} is a {lkind}, but the output's typeRef is {kind}")
    return value


def unary_tests(text: str, fact: str, kind: str, where: str) -> str | None:
    """An S-FEEL unary-tests entry on ``fact`` as a condition (``None`` for ``-``).

    ``kind`` is the fact's input type; a literal of another type, an order on
    true/false values and anything that is not S-FEEL raise ``_Refused``.
    """
    parser = _Parser(text, where)
    if not parser.tokens:
        raise _Refused(f"{where}: an empty input entry; write - for any value")
    if parser.tokens == [("op", "-")]:
        return None
    negate = False
    if parser.peek() == ("name", "not") and len(parser.tokens) > 1:
        parser.take()
        parser.expect("(")
        negate = True
    tests: list[tuple[str, Any, str]] = []  # (condition, equality value or marker, kind)
    while True:
        tests.append(_positive(parser, fact, kind))
        if parser.peek()[1] != ",":
            break
        parser.take()
    if negate:
        parser.expect(")")
    parser.done()
    equal = [value for _, value, how in tests if how == "eq"]
    if len(equal) == len(tests) and len(tests) > 1:
        condition = f"{fact} in [{', '.join(_show(v) for v in equal)}]"
    elif len(tests) == 1:
        condition = tests[0][0]
    else:  # parenthesised: rows join their entries with "and"
        return ("not " if negate else "") + "(" + " or ".join(f"({c})" for c, _, _ in tests) + ")"
    return f"not ({condition})" if negate else condition


def _positive(parser: _Parser, fact: str, kind: str) -> tuple[str, Any, str]:
    kind_name = _LITERAL_KIND[kind]

    def typed(lkind: str, value: Any, ordered: bool) -> Any:
        if lkind == "null":
            if ordered:
                raise _Refused(f"{parser.where}: null has no order")
            return None
        if lkind != kind_name:
            raise _Refused(f"{parser.where}: {parser.text!r} compares a {kind} fact with a {lkind}")
        if ordered and kind == "bool":
            raise _Refused(f"{parser.where}: {parser.text!r}: true/false values have no order")
        return value

    token_kind, token = parser.peek()
    if token_kind == "op" and token in _OPS:
        parser.take()
        value = typed(*parser.literal(), ordered=token not in ("=", "!="))
        if token in ("=", "!="):
            return f"{fact} {_OPS[token]} {_show(value)}", value, "eq" if token == "=" else "ne"
        return f"{fact} {_OPS[token]} {_show(value)}", None, "cmp"
    if token_kind == "op" and token in ("[", "(", "]"):
        parser.take()
        low = typed(*parser.literal(), ordered=True)
        parser.expect("..")
        high = typed(*parser.literal(), ordered=True)
        close = parser.take()[1]
        if close not in ("]", ")", "["):
            parser.at -= 1
            raise parser.refuse("']', ')' or '[' closing the range")
        left = "<=" if token == "[" else "<"
        right = "<=" if close == "]" else "<"
        return f"{_show(low)} {left} {fact} {right} {_show(high)}", None, "range"
    lkind, value = parser.literal()
    value = typed(lkind, value, ordered=False)
    return f"{fact} == {_show(value)}", value, "eq"


def _show(value: Any) -> str:
    """A literal in the condition language."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return f"date({value.isoformat()!r})"
    if isinstance(value, int | Decimal):
        return str(value)
    return repr(value)
