"""Loading rule sets: merging, and every mistake named with file, table, row and field."""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import ConfigError, Money
from reqmgmt.rules import default_rules, load_rules

GOOD = """
[tables.t]
zh = "表"
en = "table"
hit = "first"
currency = "CNY"
outputs = ["level"]

[tables.t.inputs]
amount = "money"
count = "int"
flag = "bool"

[[tables.t.rows]]
id = "big"
when = "amount >= 1000"
then = { level = "high" }

[[tables.t.rows]]
id = "rest"
when = "true"
then = { level = "low" }
"""

ROW_BASE = """
[tables.t]
hit = "{hit}"
outputs = ["level"]
currency = "CNY"
[tables.t.inputs]
amount = "money"
count = "int"
flag = "bool"
name = "str"
"""


def row(body: str, hit: str = "first", rid: str = "r1") -> str:
    return ROW_BASE.format(hit=hit) + f'\n[[tables.t.rows]]\nid = "{rid}"\n' + body


# (case id, file text, strings the error must contain besides the file name)
BROKEN: list[tuple[str, str, list[str]]] = [
    ("toml-syntax", "[tables.t\nhit = 1", ["not valid TOML"]),
    ("toml-unclosed-string", 'x = "abc', ["not valid TOML"]),
    ("toml-duplicate-key", "a = 1\na = 2", ["not valid TOML"]),
    ("top-level-unknown", GOOD + "\n[extra]\nx = 1", ["unknown top-level key 'extra'"]),
    ("tables-not-table", "tables = 3", ["'tables' must be a table"]),
    ("table-not-table", "[tables]\nt = 3", ["table 't'", "must be a table"]),
    (
        "table-unknown-key",
        GOOD.replace('hit = "first"', 'hit = "first"\ncolour = "red"'),
        ["table 't'", "unknown key 'colour'"],
    ),
    (
        "hit-unknown",
        GOOD.replace('hit = "first"', 'hit = "any"'),
        ["table 't'", "field 'hit'", "'any' is not one of"],
    ),
    ("hit-number", GOOD.replace('hit = "first"', "hit = 1"), ["field 'hit'"]),
    (
        "inputs-missing",
        GOOD.replace('[tables.t.inputs]\namount = "money"\ncount = "int"\nflag = "bool"\n', ""),
        ["field 'inputs'"],
    ),
    (
        "inputs-bad-type",
        GOOD.replace('count = "int"', 'count = "integer"'),
        ["field 'inputs.count'", "type 'integer'"],
    ),
    (
        "inputs-not-table",
        GOOD.replace('hit = "first"', 'hit = "first"\ninputs = ["a"]').replace(
            '[tables.t.inputs]\namount = "money"\ncount = "int"\nflag = "bool"\n', ""
        ),
        ["field 'inputs'"],
    ),
    ("outputs-missing", GOOD.replace('outputs = ["level"]', ""), ["field 'outputs'"]),
    ("outputs-empty", GOOD.replace('outputs = ["level"]', "outputs = []"), ["field 'outputs'"]),
    (
        "outputs-not-strings",
        GOOD.replace('outputs = ["level"]', "outputs = [1, 2]"),
        ["field 'outputs'"],
    ),
    (
        "outputs-duplicate",
        GOOD.replace('outputs = ["level"]', 'outputs = ["level", "level"]'),
        ["field 'outputs'", "listed twice"],
    ),
    (
        "currency-unknown",
        GOOD.replace('currency = "CNY"', 'currency = "RMB"'),
        ["field 'currency'", "'RMB' is not an ISO 4217 code"],
    ),
    (
        "currency-missing-for-money",
        GOOD.replace('currency = "CNY"', ""),
        ["field 'currency'", "money inputs"],
    ),
    (
        "default-not-table",
        GOOD.replace('hit = "first"', 'hit = "first"\ndefault = 3'),
        ["field 'default'"],
    ),
    (
        "default-unknown-output",
        GOOD.replace('hit = "first"', 'hit = "first"\ndefault = { size = 1 }'),
        ["field 'default'", "output 'size' is not declared"],
    ),
    ("zh-not-string", GOOD.replace('zh = "表"', "zh = 5"), ["field 'zh'"]),
    ("source-not-string", GOOD.replace('zh = "表"', 'zh = "表"\nsource = []'), ["field 'source'"]),
    ("no-rows", ROW_BASE.format(hit="first"), ["field 'rows'", "at least one row"]),
    (
        "rows-not-array",
        ROW_BASE.format(hit="first").replace("outputs =", "rows = 3\noutputs ="),
        ["field 'rows'"],
    ),
    (
        "row-not-table",
        ROW_BASE.format(hit="first").replace("outputs =", "rows = [1]\noutputs ="),
        ["row '#1'"],
    ),
    (
        "inputs-type-not-string",
        GOOD.replace('count = "int"', "count = [1]"),
        ["field 'inputs.count'"],
    ),
    (
        "row-id-missing",
        ROW_BASE.format(hit="first") + '\n[[tables.t.rows]]\nwhen = "true"\nthen = { level = "x" }',
        ["row '#1'", "field 'id'"],
    ),
    ("row-id-empty", row('when = "true"\nthen = { level = "x" }', rid=""), ["field 'id'"]),
    (
        "row-id-duplicate",
        row('when = "true"\nthen = { level = "x" }')
        + '\n[[tables.t.rows]]\nid = "r1"\nwhen = "true"\nthen = { level = "y" }',
        ["row 'r1'", "duplicate row id"],
    ),
    (
        "row-unknown-key",
        row('when = "true"\nthen = { level = "x" }\nweight = 3'),
        ["row 'r1'", "field 'weight'"],
    ),
    ("when-missing", row('then = { level = "x" }'), ["row 'r1'", "field 'when'", "required"]),
    ("when-not-string", row('when = true\nthen = { level = "x" }'), ["row 'r1'", "field 'when'"]),
    ("when-empty", row('when = "  "\nthen = { level = "x" }'), ["field 'when'", "non-empty"]),
    (
        "when-syntax",
        row('when = "amount >= "\nthen = { level = "x" }'),
        ["field 'when'", "does not parse"],
    ),
    (
        "when-unbalanced",
        row('when = "(count > 1"\nthen = { level = "x" }'),
        ["field 'when'", "does not parse"],
    ),
    (
        "when-unknown-fact",
        row('when = "amout >= 1"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "unknown fact 'amout'", "known facts: amount"],
    ),
    (
        "when-unknown-function",
        row('when = "risky(count)"\nthen = { level = "x" }'),
        ["field 'when'", "unknown function 'risky'"],
    ),
    (
        "when-attribute",
        row('when = "name.upper() == 1"\nthen = { level = "x" }'),
        ["field 'when'", "only registered functions called by name"],
    ),
    (
        "when-subscript",
        row('when = "name[0] == \'a\'"\nthen = { level = "x" }'),
        ["field 'when'", "Subscript"],
    ),
    ("when-lambda", row('when = "(lambda: 1)()"\nthen = { level = "x" }'), ["field 'when'"]),
    (
        "when-import",
        row('when = "__import__(\'os\')"\nthen = { level = "x" }'),
        ["field 'when'", "unknown function '__import__'"],
    ),
    (
        "when-power",
        row('when = "count ** 2 > 4"\nthen = { level = "x" }'),
        ["field 'when'", "only + - * /"],
    ),
    (
        "when-walrus",
        row('when = "(x := 1)"\nthen = { level = "x" }'),
        ["field 'when'", "NamedExpr"],
    ),
    (
        "when-comprehension",
        row('when = "[c for c in name]"\nthen = { level = "x" }'),
        ["field 'when'", "ListComp"],
    ),
    (
        "when-is",
        row('when = "flag is true"\nthen = { level = "x" }'),
        ["field 'when'", "comparison Is"],
    ),
    ("when-bitwise", row('when = "count & 1"\nthen = { level = "x" }'), ["field 'when'"]),
    (
        "when-keyword-call",
        row('when = "max(count, key=1)"\nthen = { level = "x" }'),
        ["field 'when'"],
    ),
    (
        "when-statement",
        row('when = "import os"\nthen = { level = "x" }'),
        ["field 'when'", "does not parse"],
    ),
    ("then-missing", row('when = "true"'), ["row 'r1'", "field 'then'"]),
    ("then-empty", row('when = "true"\nthen = {}'), ["field 'then'"]),
    (
        "then-unknown-output",
        row('when = "true"\nthen = { size = "x" }'),
        ["row 'r1'", "field 'then'", "output 'size' is not declared"],
    ),
    (
        "row-zh-not-string",
        row('when = "true"\nthen = { level = "x" }\nzh = 1'),
        ["row 'r1'", "field 'zh'"],
    ),
    (
        "row-clause-not-string",
        row('when = "true"\nthen = { level = "x" }\nclause = []'),
        ["field 'clause'"],
    ),
    (
        "unique-overlap",
        row('when = "count > 1"\nthen = { level = "a" }', hit="unique")
        + '\n[[tables.t.rows]]\nid = "r2"\nwhen = "count > 5"\nthen = { level = "b" }'
        + '\n[[tables.t.examples]]\nfacts = { amount = 1, count = 9, flag = false, name = "n" }',
        ["field 'examples[1]'", "rows overlap", "'r1', 'r2'"],
    ),
    (
        "example-wrong-expectation",
        GOOD
        + '\n[[tables.t.examples]]\nfacts = { amount = 5, count = 1, flag = true }\nexpect = { level = "high" }',
        ["field 'examples[1]'", "expected {'level': 'high'}", "matched: rest"],
    ),
    (
        "example-missing-fact",
        GOOD + "\n[[tables.t.examples]]\nfacts = { amount = 5 }",
        ["field 'examples[1]'", "count"],
    ),
    (
        "example-wrong-type",
        GOOD + '\n[[tables.t.examples]]\nfacts = { amount = 5, count = "one", flag = true }',
        ["field 'examples[1]'", "count", "a int"],
    ),
    (
        "example-no-facts",
        GOOD + '\n[[tables.t.examples]]\nnote = "x"',
        ["field 'examples[1]'", "needs facts"],
    ),
    (
        "example-unknown-key",
        GOOD
        + "\n[[tables.t.examples]]\nfacts = { amount = 5, count = 1, flag = true }\nexpected = 1",
        ["field 'examples[1]'", "unknown key 'expected'"],
    ),
    (
        "examples-not-array",
        GOOD.replace('hit = "first"', 'hit = "first"\nexamples = 3'),
        ["field 'examples'"],
    ),
    (
        "remove-unknown-row",
        GOOD.replace('hit = "first"', 'hit = "first"\nremove = ["ghost"]'),
        ["field 'remove'", "no row 'ghost'"],
    ),
    (
        "remove-not-list",
        GOOD.replace('hit = "first"', 'hit = "first"\nremove = "big"'),
        ["field 'remove'"],
    ),
    (
        "before-unknown-row",
        GOOD
        + '\n[[tables.t.rows]]\nid = "new"\nbefore = "ghost"\nwhen = "flag"\nthen = { level = "x" }',
        ["row 'new'", "field 'before'", "no row 'ghost'"],
    ),
    ("empty-file", "", ["defines no tables"]),
]


@pytest.mark.parametrize(("case", "text", "expected"), BROKEN, ids=[c for c, _, _ in BROKEN])
def test_broken_rule_file_names_the_location(
    tmp_path: Path, case: str, text: str, expected: list[str]
) -> None:
    """Each broken file raises ConfigError naming the file and the place of the mistake."""
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in:\n{message}"


def test_there_are_at_least_fifty_distinct_broken_files() -> None:
    """The catalogue above covers 50+ distinct mistakes."""
    assert len({text for _, text, _ in BROKEN}) >= 50


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """An unreadable file is reported, not a traceback."""
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot be read"):
        load_rules(tmp_path / "nope.toml")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several mistakes in one file are all listed."""
    path = tmp_path / "many.toml"
    path.write_text(row('when = "amout > 1"\nthen = { size = 1 }', hit="often"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert len(info.value.problems) == 3


def test_a_good_file_loads_with_a_content_version(tmp_path: Path) -> None:
    """The version is the content hash: same content, same version; any edit, another."""
    a = tmp_path / "a.toml"
    a.write_text(GOOD, encoding="utf-8")
    b = tmp_path / "b.toml"
    b.write_text(GOOD.replace(">= 1000", ">= 1001"), encoding="utf-8")
    first, again, other = load_rules(a), load_rules(a), load_rules(b)
    assert first.version == again.version != other.version
    assert len(first.version) == 64


def test_later_sources_override_rows_by_id_and_add_before(tmp_path: Path) -> None:
    """A later file replaces a row by id, inserts before a named row, and removes rows."""
    base = tmp_path / "base.toml"
    base.write_text(GOOD, encoding="utf-8")
    override = {
        "tables": {
            "t": {
                "en": "overridden",
                "remove": [],
                "rows": [
                    {"id": "big", "when": "amount >= 5000", "then": {"level": "high"}},
                    {"id": "flagged", "before": "rest", "when": "flag", "then": {"level": "mid"}},
                ],
            }
        }
    }
    rules = load_rules([base, override])
    table = rules.table("t")
    assert [r.id for r in table.rows] == ["big", "flagged", "rest"]
    assert table.rows[0].when.source == "amount >= 5000"
    assert table.en == "overridden"
    facts = {"amount": Money(2000, "CNY"), "count": 1, "flag": True}
    assert rules.decide("t", facts).outcome == {"level": "mid"}
    removed = load_rules([base, {"tables": {"t": {"remove": ["big"]}}}])
    assert [r.id for r in removed.table("t").rows] == ["rest"]


def test_host_file_over_the_defaults(tmp_path: Path) -> None:
    """with_defaults=True merges a host's file over the packaged rule set."""
    stale = tmp_path / "stale.toml"
    stale.write_text(
        '[[tables.contract_class.rows]]\nid = "special-amount"\nwhen = "amount >= 100000"\n'
        'then = { class = "special" }\n',
        encoding="utf-8",
    )
    # The default examples still say 199,999.99 is general: the change is caught.
    with pytest.raises(ConfigError, match=r"examples\[1\]'.*expected \{'class': 'general'\}"):
        load_rules(stale, with_defaults=True)
    host = tmp_path / "host.toml"
    facts_toml = (
        "new_product = false, oem = false, new_customer = false, first_order = false, "
        "foreign_trade = false"
    )
    host.write_text(
        # Examples travel with the table: changing a threshold restates them.
        "[[tables.contract_class.examples]]\n"
        f'facts = {{ amount = "99999.99", {facts_toml} }}\n'
        'expect = { class = "general" }\n'
        "[[tables.contract_class.rows]]\n"
        'id = "special-amount"\nwhen = "amount >= 100000"\nthen = { class = "special" }\n',
        encoding="utf-8",
    )
    rules = load_rules(host, with_defaults=True)
    assert rules.version != default_rules().version
    facts = {
        "amount": Money(150000, "CNY"),
        "new_product": False,
        "oem": False,
        "new_customer": False,
        "first_order": False,
        "foreign_trade": False,
    }
    assert rules.decide("contract_class", facts).outcome == {"class": "special"}
    assert default_rules().decide("contract_class", facts).outcome == {"class": "general"}


def test_the_default_rule_set_is_valid_and_cites_its_clauses() -> None:
    """Every default row has both labels and the clause it comes from."""
    rules = default_rules()
    assert set(rules.tables) >= {
        "contract_class",
        "review_route",
        "sample_order",
        "customer_category",
        "requirement_deadline",
        "return_window",
        "capa_trigger",
    }
    for table in rules.tables.values():
        assert table.zh
        assert table.en
        assert table.source
        for r in table.rows:
            assert all((r.zh, r.en, r.clause)), f"{table.name}.{r.id}"


toml_values = st.recursive(
    st.none().map(lambda _: "x")
    | st.booleans()
    | st.integers(-10, 10)
    | st.text(max_size=8)
    | st.sampled_from(["first", "unique", "collect", "money", "int", "true", "amount >= 1"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "tables",
                    "t",
                    "hit",
                    "inputs",
                    "outputs",
                    "rows",
                    "id",
                    "when",
                    "then",
                    "zh",
                    "currency",
                    "default",
                    "examples",
                    "facts",
                    "expect",
                    "remove",
                    "before",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["tables", "meta", "x"]), toml_values, max_size=2))
def test_arbitrary_structures_raise_only_config_error(data: dict[str, Any]) -> None:
    """Whatever structure is fed to the loader, the only exception is ConfigError."""
    with contextlib.suppress(ConfigError):
        load_rules(data)


@given(st.text(max_size=200))
def test_arbitrary_toml_text_raises_only_config_error(text: str) -> None:
    """Arbitrary text as a rule file: a rule set or ConfigError, nothing else."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        data = None
    with contextlib.suppress(ConfigError):
        load_rules(data if data is not None else {"tables": text})


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


GOOD_DATA = tomllib.loads(
    GOOD + "\n[[tables.t.examples]]\nfacts = { amount = 5, count = 1, flag = true }\n"
    'expect = { level = "low" }\n'
)
GOOD_PATHS = [p for p in _paths(GOOD_DATA) if p]


@given(
    st.lists(
        st.tuples(st.sampled_from(GOOD_PATHS), toml_values | st.sampled_from([None, [], {}])),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_valid_files_raise_only_config_error(mutations: list[tuple[Any, Any]]) -> None:
    """A valid rule set with random parts replaced loads or raises ConfigError, nothing else."""
    import copy

    data = copy.deepcopy(GOOD_DATA)
    for path, value in mutations:
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            if value is None:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    with contextlib.suppress(ConfigError):
        load_rules(data)
