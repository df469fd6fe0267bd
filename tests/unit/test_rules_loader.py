"""Loading rule sets: merging, and every mistake named with file, table, row and field."""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import ConfigError, Desk, Money, RuleError, ValidationError
from reqmgmt.rules import RuleSet, default_rules, load_rules
from reqmgmt.rules.loader import facts_from_data

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
        GOOD.replace('hit = "first"', 'hit = "anyone"'),
        ["table 't'", "field 'hit'", "'anyone' is not one of", "'output order'"],
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


# --- rules that cannot blow up at run time ---------------------------------------------------

FACTS_OK = 'facts = { amount = 5, count = 1, flag = true, name = "n" }'

# (case id, file text, strings the error must contain besides the file name).  Before the
# load-time checks, each of these raised a raw TypeError, ZeroDivisionError,
# decimal.InvalidOperation or RecursionError, or loaded and then failed at every decision.
UNSAFE: list[tuple[str, str, list[str]]] = [
    (
        "str-compared-with-number",  # loaded silently; every decision raised TypeError
        row('when = "name > 3"\nthen = { level = "x" }'),
        ["table 't'", "row 'r1'", "field 'when'", "name (a string) with 3 (a number)", "column 1"],
    ),
    (
        "number-compared-with-str",
        row('when = "count >= \'3\'"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "count (a number) with '3' (a string)"],
    ),
    (
        "arithmetic-on-str",
        row('when = "flag and name + 1 > 2"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "cannot add name (a string) and 1", "column 10"],
    ),
    (
        "in-a-number",
        row('when = "\'a\' in count"\nthen = { level = "x" }'),
        ["row 'r1'", "'in' needs a list or a string on its right, not count (a number)"],
    ),
    (
        "type-wrong-with-example",  # raised a raw TypeError while checking the example
        row('when = "name - 1 > 0"\nthen = { level = "x" }')
        + f"\n[[tables.t.examples]]\n{FACTS_OK}",
        ["row 'r1'", "field 'when'", "cannot subtract name (a string)"],
    ),
    (
        "example-divides-by-zero",  # raw ZeroDivisionError
        row('when = "count / (count - 1) > 0"\nthen = { level = "x" }')
        + f"\n[[tables.t.examples]]\n{FACTS_OK}",
        ["field 'examples[1]'", "row 'r1'", "its condition failed: division by zero"],
    ),
    (
        "example-zero-by-zero",  # raw decimal.InvalidOperation
        row('when = "amount / amount > 0"\nthen = { level = "x" }')
        + '\n[[tables.t.examples]]\nfacts = { amount = 0, count = 1, flag = true, name = "n" }',
        ["field 'examples[1]'", "row 'r1'", "an undefined decimal operation (such as 0 / 0)"],
    ),
    (
        "example-overflows",  # raw decimal.Overflow
        row('when = "amount * 1e999999 * 1e999999 > 0"\nthen = { level = "x" }')
        + f"\n[[tables.t.examples]]\n{FACTS_OK}",
        ["field 'examples[1]'", "row 'r1'", "a number too large"],
    ),
    (
        "example-decimal-not-a-number",  # raw decimal.InvalidOperation
        ROW_BASE.format(hit="first")
        + 'rate = "decimal"\n[[tables.t.rows]]\nid = "r1"\nwhen = "rate > 1"\n'
        'then = { level = "x" }\n[[tables.t.examples]]\n'
        'facts = { amount = 5, count = 1, flag = true, name = "n", rate = "abc" }',
        ["field 'examples[1]'", "rate", "a finite decimal number"],
    ),
    (
        "example-decimal-nan",
        ROW_BASE.format(hit="first")
        + 'rate = "decimal"\n[[tables.t.rows]]\nid = "r1"\nwhen = "rate > 1"\n'
        'then = { level = "x" }\n[[tables.t.examples]]\n'
        'facts = { amount = 5, count = 1, flag = true, name = "n", rate = "nan" }',
        ["field 'examples[1]'", "a finite decimal number"],
    ),
    (
        "division-by-literal-zero",
        row('when = "count / 0 > 1"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "division by zero (at column 9)"],
    ),
    (
        "huge-repetition",  # loaded, then allocated a gigabyte per decision
        row('when = "name * 1000000000 == \'\'"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "repeating a string 1,000,000,000 times is longer"],
    ),
    (
        "deep-condition",  # RecursionError
        row('when = "' + "not " * 2000 + 'flag"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "nested more than 50 levels deep"],
    ),
    (
        "long-sum",  # RecursionError while parsing
        row('when = "count > ' + "+".join(["1"] * 4000) + '"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "nested too deeply to parse"],
    ),
    (
        "long-condition",
        row('when = "' + " or ".join(["flag"] * 5000) + '"\nthen = { level = "x" }'),
        ["row 'r1'", "field 'when'", "at most 10,000 are allowed"],
    ),
    (
        "deep-toml-array",  # RecursionError inside tomllib
        row('when = "flag"\nthen = { level = "x" }') + "\n[meta]\nx = " + "[" * 5000 + "]" * 5000,
        ["is not a rule file: arrays or tables nested more than 32 deep"],
    ),
    (
        "deep-toml-inline-table",
        row('when = "flag"\nthen = { level = ' + "{ a = " * 3000 + "1" + " }" * 3001),
        ["nested more than 32 deep"],
    ),
    (
        "deep-toml-within-the-limit-of-tomllib",
        row('when = "flag"\nthen = { level = "x" }') + "\n[meta]\nx = " + "[" * 40 + "]" * 40,
        ["meta.x[0]", "nested more than 32 levels deep"],
    ),
    (
        "deep-toml-dotted-table",
        row('when = "flag"\nthen = { level = "x" }') + "\n[" + ".".join(["a"] * 20000) + "]",
        ["nested more than 32 levels deep"],
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), UNSAFE, ids=[c for c, _, _ in UNSAFE])
def test_unsafe_rule_file_is_a_config_error_at_load(
    tmp_path: Path, case: str, text: str, expected: list[str]
) -> None:
    """What used to raise raw or fail at every decision is a ConfigError naming the place."""
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in:\n{message}"


def test_a_deeply_nested_dict_is_a_config_error() -> None:
    """A dict source nested thousands deep is refused, not a RecursionError."""
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(
        ConfigError, match=r"<dict #1>: tables\.t\.rows\[0\]\.x\.a\.a.*nested more than 32 levels"
    ):
        load_rules({"tables": {"t": {"rows": [{"id": "r", "when": "true", "x": deep}]}}})


def test_a_dict_that_contains_itself_is_a_config_error() -> None:
    """A cycle is named as one."""
    looped: dict[str, Any] = {"tables": {}}
    looped["tables"]["t"] = looped
    with pytest.raises(ConfigError, match=r"tables\.t contains itself"):
        load_rules(looped)


def test_rule_function_arity_is_checked_at_load() -> None:
    """A registered function called with the wrong number of arguments fails the load."""

    def on_watch_list(customer: str) -> bool:
        return customer == "acme"

    source = {
        "tables": {
            "t": {
                "inputs": {"name": "str"},
                "outputs": ["x"],
                "rows": [{"id": "r", "when": "on_watch_list(name, name)", "then": {"x": 1}}],
            }
        }
    }
    with pytest.raises(ConfigError) as info:
        load_rules(source, functions={"on_watch_list": on_watch_list})
    assert "table 't', row 'r', field 'when'" in str(info.value)
    assert "on_watch_list() cannot be called with 2 arguments" in str(info.value)


def one_row(when: str, functions: dict[str, Any] | None = None) -> RuleSet:
    """A table t (count int, name str) of one row ``r`` with condition ``when``."""
    return load_rules(
        {
            "tables": {
                "t": {
                    "inputs": {"count": "int", "name": "str"},
                    "outputs": ["x"],
                    "rows": [{"id": "r", "when": when, "then": {"x": 1}}],
                }
            }
        },
        functions=functions,
    )


def test_an_evaluation_failure_is_a_rule_error_naming_table_row_and_facts() -> None:
    """A condition failing on some facts raises RuleError, chained to the cause."""
    rules = one_row("count / (count - 1) > 0")
    assert rules.decide("t", {"count": 3, "name": "n"}).matched == ("r",)
    with pytest.raises(RuleError) as info:
        rules.decide("t", {"count": 1, "name": "n"})
    err = info.value
    assert (err.table, err.row, err.facts) == ("t", "r", {"count": 1, "name": "n"})
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert str(err).startswith("table 't', row 'r': its condition failed: division by zero")
    assert "facts {'count': 1, 'name': 'n'}" in str(err)


def test_repetition_sized_by_the_facts_is_a_rule_error() -> None:
    """``name * count`` is capped at evaluation: a RuleError instead of a huge string."""
    rules = one_row("name * count == 'nn'")
    assert rules.decide("t", {"count": 2, "name": "n"}).matched == ("r",)
    with pytest.raises(RuleError, match="repeated 1000 times is longer than 100,000"):
        rules.decide("t", {"count": 1000, "name": "x" * 1000})


def test_a_failing_rule_function_is_a_rule_error_in_decide_and_explain() -> None:
    """A host function that raises is reported as the row's failure, at decide and explain."""
    calls: list[str] = []

    def flaky(name: str) -> bool:
        calls.append(name)
        if len(calls) > 1:
            raise KeyError(name)
        return True

    rules = one_row("flaky(name)", {"flaky": flaky})
    decision = rules.decide("t", {"count": 1, "name": "n"})
    with pytest.raises(RuleError, match=r"row 'r': its condition failed: KeyError: 'n'"):
        decision.explain()
    with pytest.raises(RuleError) as info:
        rules.decide("t", {"count": 1, "name": "n"})
    assert isinstance(info.value.__cause__, KeyError)


def test_desk_classify_raises_rule_error_not_raw() -> None:
    """Desk.classify on such a rule set raises RuleError too."""
    desk = Desk.open("memory://", rules=one_row("10 / count > 1"))
    try:
        assert desk.classify("t", {"count": 2, "name": "n"}).matched == ("r",)
        with pytest.raises(RuleError, match="table 't', row 'r'"):
            desk.classify("t", {"count": 0, "name": "n"})
    finally:
        desk.close()


def test_facts_from_data_refuses_what_is_not_a_table_of_facts() -> None:
    """Facts read from JSON that are not an object are a ValidationError (reqmgmt rules explain)."""
    table = default_rules().table("sample_order")
    with pytest.raises(ValidationError, match="a table of fact name = value"):
        facts_from_data(table, [1, 2])  # type: ignore[arg-type]


def test_a_rule_error_survives_facts_that_cannot_be_shown() -> None:
    """A fact whose repr raises does not replace the RuleError with its own exception."""

    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    rules = one_row("10 / count > 1")
    with pytest.raises(RuleError, match=r"'extra': <Opaque instance at .*'name': 'n'"):
        rules.decide("t", {"count": 0, "name": "n", "extra": Opaque()})
    with pytest.raises(RuleError, match=r"'name': 'x{30,80}[.]{3}x+'\}"):  # shortened
        rules.decide("t", {"count": 0, "name": "x" * 10_000})


def test_a_deadline_step_needs_zh_and_en_labels() -> None:
    """A step_deadline step outside [vocabularies.deadline_steps] fails at load (reminders say it)."""
    row = {
        "id": "quote",
        "when": "kind == 'contract' and state == 'draft'",
        "then": {"step": "quoting", "hours": 8, "remind_before_hours": 2},
    }
    with pytest.raises(ConfigError, match=r"'quoting' is not one of the deadline_steps vocabulary"):
        load_rules(
            {"tables": {"step_deadline": {"rows": [row], "examples": []}}}, with_defaults=True
        )
    rules = load_rules(
        {
            "tables": {"step_deadline": {"rows": [row], "examples": []}},
            "vocabularies": {"deadline_steps": {"quoting": {"zh": "报价", "en": "quoting"}}},
        },
        with_defaults=True,
    )
    assert rules.vocabulary("deadline_steps").labels["quoting"] == ("报价", "quoting")
