"""Every DMN 1.3 hit policy: outcome shapes, overlaps, no match, defaults, load errors.

The TCK-derived cases restate tables of the DMN TCK (github.com/dmn-tck/tck,
``TestCases/compliance-level-2`` and ``compliance-level-3/0020``) in this
library's TOML form, with the results the TCK expects.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import ConfigError, RuleError
from reqmgmt.rules import HIT_POLICIES, RuleSet, default_rules, load_rules
from reqmgmt.rules.loader import CONSUMED_TABLES

SRC = Path(__file__).resolve().parents[2] / "src" / "reqmgmt"


def table(hit: str, rows: list[dict[str, Any]], **keys: Any) -> RuleSet:
    """A table ``t`` on one int fact ``n``; ``keys`` adds or replaces table keys."""
    spec: dict[str, Any] = {"hit": hit, "inputs": {"n": "int"}, "outputs": ["v"], "rows": rows}
    spec.update(keys)
    return load_rules({"tables": {"t": spec}})


def plain(outcome: Any) -> Any:
    """An outcome as plain dicts and lists (read-only mappings compare equal, but show worse)."""
    if isinstance(outcome, list):
        return [plain(o) for o in outcome]
    return dict(outcome)


# Rows a (n > 1), b (n > 5), c (n > 5): on n = 7 all match, on n = 3 only a, on n = 0 none.
LOW_HIGH = [
    {"id": "a", "when": "n > 1", "then": {"v": "low"}},
    {"id": "b", "when": "n > 5", "then": {"v": "high"}},
    {"id": "c", "when": "n > 5", "then": {"v": "mid"}},
]
ORDER = {"v": ["high", "mid", "low"]}
DEFAULT = {"v": "none"}

# (policy, extra table keys, facts n, expected outcome, expected matched ids)
CASES: list[tuple[str, dict[str, Any], int, Any, tuple[str, ...]]] = [
    ("first", {}, 7, {"v": "low"}, ("a",)),
    ("first", {}, 0, {}, ()),
    ("first", {"default": DEFAULT}, 0, DEFAULT, ()),
    ("unique", {}, 3, {"v": "low"}, ("a",)),
    ("unique", {}, 0, {}, ()),
    ("unique", {"default": DEFAULT}, 0, DEFAULT, ()),
    ("priority", {"output_values": ORDER}, 7, {"v": "high"}, ("b", "c", "a")),
    ("priority", {"output_values": ORDER}, 3, {"v": "low"}, ("a",)),
    ("priority", {"output_values": ORDER}, 0, {}, ()),
    ("priority", {"output_values": ORDER, "default": DEFAULT | {"v": "mid"}}, 0, {"v": "mid"}, ()),
    ("any", {}, 3, {"v": "low"}, ("a",)),
    ("any", {}, 0, {}, ()),
    ("any", {"default": DEFAULT}, 0, DEFAULT, ()),
    ("collect", {}, 7, [{"v": "low"}, {"v": "high"}, {"v": "mid"}], ("a", "b", "c")),
    ("collect", {}, 0, [], ()),
    ("collect", {"default": DEFAULT}, 0, [DEFAULT], ()),
    ("rule order", {}, 7, [{"v": "low"}, {"v": "high"}, {"v": "mid"}], ("a", "b", "c")),
    ("rule order", {}, 0, [], ()),
    ("rule order", {"default": DEFAULT}, 0, [DEFAULT], ()),
    ("rule order", {"default": DEFAULT}, 3, [{"v": "low"}], ("a",)),
    (
        "output order",
        {"output_values": ORDER},
        7,
        [{"v": "high"}, {"v": "mid"}, {"v": "low"}],
        ("b", "c", "a"),
    ),
    ("output order", {"output_values": ORDER}, 0, [], ()),
    ("output order", {"output_values": ORDER, "default": {"v": "low"}}, 0, [{"v": "low"}], ()),
]


@pytest.mark.parametrize(
    ("hit", "keys", "n", "outcome", "matched"),
    CASES,
    ids=[f"{c[0]}-n{c[2]}{'-default' if 'default' in c[1] else ''}" for c in CASES],
)
def test_policy_outcome(
    hit: str, keys: dict[str, Any], n: int, outcome: Any, matched: tuple[str, ...]
) -> None:
    """Each policy's outcome and matched rows on overlap, single match, no match and default."""
    decision = table(hit, LOW_HIGH, **keys).decide("t", {"n": n})
    assert plain(decision.outcome) == outcome
    assert decision.matched == matched
    assert decision.hit == hit
    if isinstance(outcome, dict):
        assert isinstance(decision.outcome, Mapping)
        with pytest.raises(TypeError):
            decision.outcome["v"] = "x"  # type: ignore[index]  # read-only
    else:
        assert isinstance(decision.outcome, list)


def test_unique_overlap_is_a_rule_error() -> None:
    """unique: two matches raise RuleError naming the rows."""
    with pytest.raises(RuleError, match=r"'unique' but rows 'a', 'b', 'c' all match"):
        table("unique", LOW_HIGH).decide("t", {"n": 7})


def test_any_overlap_with_equal_outputs_gives_them() -> None:
    """any: overlapping rows with equal outputs are fine; the outcome is those outputs."""
    rows = [
        {"id": "a", "when": "n > 1", "then": {"v": "x"}},
        {"id": "b", "when": "n > 5", "then": {"v": "x"}},
    ]
    decision = table("any", rows).decide("t", {"n": 7})
    assert dict(decision.outcome) == {"v": "x"}
    assert decision.matched == ("a", "b")
    assert "matched rows agree: a, b" in decision.explain()


def test_any_overlap_with_different_outputs_names_rows_and_outputs() -> None:
    """any: overlapping rows with different outputs raise RuleError naming rows and outputs."""
    with pytest.raises(RuleError) as info:
        table("any", LOW_HIGH).decide("t", {"n": 7})
    err = info.value
    assert err.table == "t"
    assert err.row is None
    assert "'any' but rows 'a' and 'b' both match with different outputs" in err.reason
    assert "v: 'low' vs 'high'" in err.reason


def test_any_overlap_in_an_example_fails_the_load() -> None:
    """An example on which an any table's rows disagree is a load error."""
    with pytest.raises(ConfigError, match=r"examples\[1\].*rows overlap: hit policy 'any'"):
        table("any", LOW_HIGH, examples=[{"facts": {"n": 7}}])


def test_any_tells_true_from_one() -> None:
    """any: rows giving true and 1 differ (Python's dict equality would call them equal)."""
    rows = [
        {"id": "a", "when": "n > 1", "then": {"v": True}},
        {"id": "b", "when": "n > 5", "then": {"v": 1}},
    ]
    with pytest.raises(RuleError, match=r"different outputs \(v: True vs 1\)"):
        table("any", rows).decide("t", {"n": 7})


def test_priority_ties_keep_rule_order_and_unlisted_outputs_do_not_rank() -> None:
    """Rows equal in priority keep their rule order; outputs without a list do not rank.

    TCK 0118-multi-priority-hitpolicy: Rate has no output values, so of two
    rows approving, the first in rule order wins.
    """
    rules = load_rules(
        {
            "tables": {
                "approval": {
                    "hit": "priority",
                    "inputs": {"age": "int", "risk": "str", "affordable": "bool"},
                    "outputs": ["status", "rate"],
                    "output_values": {"status": ["Approved", "Declined"]},
                    "rows": [
                        {
                            "id": "r1",
                            "when": "age >= 18 and risk in ['Medium', 'Low'] and affordable",
                            "then": {"status": "Approved", "rate": "Basic"},
                        },
                        {
                            "id": "r2",
                            "when": "age < 18",
                            "then": {"status": "Declined", "rate": "Standard"},
                        },
                        {
                            "id": "r3",
                            "when": "risk == 'High'",
                            "then": {"status": "Approved", "rate": "Standard"},
                        },
                    ],
                }
            }
        }
    )
    facts = [({"age": 17, "risk": "High"}, "Approved", "Standard")]
    facts += [({"age": 19, "risk": "Low"}, "Approved", "Basic")]
    facts += [({"age": 10, "risk": "Low"}, "Declined", "Standard")]
    for given_facts, status, rate in facts:
        d = rules.decide("approval", given_facts | {"affordable": True})
        assert dict(d.outcome) == {"status": status, "rate": rate}
    # Two approving rows (r1, r3) over a declining one: rule order between equals.
    d = rules.decide("approval", {"age": 17, "risk": "High", "affordable": True})
    assert d.matched == ("r3", "r2")


def test_output_order_of_compound_outputs() -> None:
    """TCK 0110-outputOrder-hitpolicy case 001: approvals before declines."""
    rows = [
        {"id": "r2", "when": "age < 18", "then": {"status": "Declined", "rate": "Standard"}},
        {"id": "r3", "when": "risk == 'High'", "then": {"status": "Approved", "rate": "Standard"}},
    ]
    rules = load_rules(
        {
            "tables": {
                "t": {
                    "hit": "output order",
                    "inputs": {"age": "int", "risk": "str"},
                    "outputs": ["status", "rate"],
                    "output_values": {"status": ["Approved", "Declined"]},
                    "rows": rows,
                }
            }
        }
    )
    d = rules.decide("t", {"age": 17, "risk": "High"})
    assert plain(d.outcome) == [
        {"status": "Approved", "rate": "Standard"},
        {"status": "Declined", "rate": "Standard"},
    ]


# TCK 0114-0116: rows NumOfYears > 1: 100, > 2: 200, > 3: 300, > 5: 500.
SALARY = [
    {"id": f"over-{k}", "when": f"n > {k}", "then": {"v": v}}
    for k, v in ((1, 100), (2, 200), (3, 300), (5, 500))
]


@pytest.mark.parametrize(
    ("aggregation", "n", "expected"),
    [
        ("sum", 6, 1100),  # TCK 0115
        ("sum", 3, 300),
        ("sum", 2, 100),
        ("count", 6, 4),  # TCK 0116
        ("count", 2, 1),
        ("count", 3, 2),
        ("min", 6, 100),  # TCK 0114
        ("max", 6, 500),
        ("sum", 0, None),  # nothing matched: FEEL sum([]) is null
        ("min", 0, None),
        ("max", 0, None),
        ("count", 0, 0),  # FEEL count([]) is 0
    ],
)
def test_collect_aggregation(aggregation: str, n: int, expected: Any) -> None:
    """collect with sum/min/max/count gives {output: aggregated value}."""
    d = table("collect", SALARY, aggregation=aggregation).decide("t", {"n": n})
    assert isinstance(d.outcome, Mapping)
    assert dict(d.outcome) == {"v": expected}
    assert d.matched == tuple(r["id"] for r in SALARY if n > int(r["id"].split("-")[1]))
    assert f"hit policy collect ({aggregation})" in d.explain()


def test_collect_count_counts_equal_values_each() -> None:
    """count is FEEL count() of the matched rows' values: equal values count each."""
    rows = [
        {"id": "a", "when": "n > 1", "then": {"v": 5}},
        {"id": "b", "when": "n > 2", "then": {"v": 5}},
    ]
    assert dict(table("collect", rows, aggregation="count").decide("t", {"n": 3}).outcome) == {
        "v": 2
    }


def test_collect_sum_is_exact_with_decimals() -> None:
    """A float from a file and a decimal add as the decimals they are written as."""
    rows = [
        {"id": "a", "when": "n > 1", "then": {"v": 0.1}},
        {"id": "b", "when": "n > 2", "then": {"v": Decimal("0.2")}},
    ]
    outcome = table("collect", rows, aggregation="sum").decide("t", {"n": 3}).outcome
    assert outcome["v"] == Decimal("0.3")


def test_collect_max_honours_the_default() -> None:
    """TCK compliance-level-3 0020-vacation-days: C> with default 0 gives 0 when nothing matches."""
    rows = [
        {"id": "r1", "when": "age < 18 or age >= 60", "then": {"days": 5}},
        {"id": "r2", "when": "years >= 30", "then": {"days": 5}},
    ]
    rules = load_rules(
        {
            "tables": {
                "extra": {
                    "hit": "collect",
                    "aggregation": "max",
                    "inputs": {"age": "int", "years": "int"},
                    "outputs": ["days"],
                    "default": {"days": 0},
                    "rows": rows,
                    "examples": [
                        {"facts": {"age": 16, "years": 1}, "expect": {"days": 5}},
                        {"facts": {"age": 30, "years": 10}, "expect": {"days": 0}},
                    ],
                }
            }
        }
    )
    assert dict(rules.decide("extra", {"age": 30, "years": 10}).outcome) == {"days": 0}
    assert dict(rules.decide("extra", {"age": 65, "years": 40}).outcome) == {"days": 5}


def test_examples_of_multi_hit_tables_are_checked() -> None:
    """A wrong expect on a rule order table fails the load, showing what the rows give."""
    with pytest.raises(ConfigError, match=r"expected \[\{'v': 'low'\}\] but the rows give"):
        table("rule order", LOW_HIGH, examples=[{"facts": {"n": 7}, "expect": [{"v": "low"}]}])
    ok = [{"facts": {"n": 7}, "expect": [{"v": "low"}, {"v": "high"}, {"v": "mid"}]}]
    assert table("rule order", LOW_HIGH, examples=ok).tables["t"].examples


# (case, table keys and hit, strings the ConfigError must contain)
LOAD_ERRORS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    (
        "aggregation-without-collect",
        "rule order",
        {"aggregation": "sum"},
        ["field 'aggregation'", "needs hit = 'collect', not 'rule order'"],
    ),
    (
        "aggregation-unknown",
        "collect",
        {"aggregation": "average"},
        ["field 'aggregation'", "'average' is not one of sum, min, max, count"],
    ),
    (
        "aggregation-two-outputs",
        "collect",
        {"aggregation": "count", "outputs": ["v", "w"]},
        ["field 'aggregation'", "exactly one output, not 2 (v, w)"],
    ),
    (
        "sum-of-strings",
        "collect",
        {"aggregation": "sum"},
        ["row 'a'", "v = 'low': hit 'collect' with aggregation 'sum' adds numbers only"],
    ),
    (
        "aggregated-default-without-output",
        "collect",
        {"aggregation": "count", "default": {}},
        ["field 'default'", "set 'v'"],
    ),
    (
        "priority-without-output-values",
        "priority",
        {},
        ["field 'output_values'", "hit 'priority' ranks rows by output_values"],
    ),
    (
        "output-order-without-output-values",
        "output order",
        {},
        ["field 'output_values'", "hit 'output order' ranks rows"],
    ),
    (
        "row-value-not-in-list",
        "priority",
        {"output_values": {"v": ["high", "low"]}},
        [
            "row 'c'",
            "field 'then'",
            "output 'v' = 'mid' is not in its output_values ['high', 'low']",
        ],
    ),
    (
        "default-not-in-list",
        "first",
        {"output_values": ORDER, "default": {"v": "none"}},
        ["field 'default'", "output 'v' = 'none' is not in its output_values"],
    ),
    (
        "output-values-undeclared",
        "first",
        {"output_values": {"w": ["x"]}},
        ["field 'output_values'", "output 'w' is not declared; outputs: v"],
    ),
    (
        "output-values-not-a-list",
        "first",
        {"output_values": {"v": "high"}},
        ["field 'output_values'", "v: a non-empty list"],
    ),
    (
        "output-values-twice",
        "first",
        {"output_values": {"v": ["high", "mid", "low", "high"]}},
        ["field 'output_values'", "a value is listed twice"],
    ),
    (
        "output-values-table",
        "first",
        {"output_values": ["high"]},
        ["field 'output_values'", "must be a table of output name"],
    ),
]


@pytest.mark.parametrize(
    ("case", "hit", "keys", "expected"), LOAD_ERRORS, ids=[c[0] for c in LOAD_ERRORS]
)
def test_load_errors(case: str, hit: str, keys: dict[str, Any], expected: list[str]) -> None:
    """Each misuse of hit, aggregation, output_values or default is a ConfigError saying where."""
    with pytest.raises(ConfigError) as info:
        table(hit, LOW_HIGH, **keys)
    text = str(info.value)
    assert "table 't'" in text
    for part in expected:
        assert part in text


def test_priority_row_must_set_a_ranked_output() -> None:
    """A priority row that leaves out an output it is ranked by is refused."""
    rows = [
        {"id": "a", "when": "n > 1", "then": {"w": 1}},
        {"id": "b", "when": "true", "then": {"v": "x"}},
    ]
    with pytest.raises(ConfigError, match=r"row 'a'.*ranks rows by 'v': the row must set it"):
        table("priority", rows, outputs=["v", "w"], output_values={"v": ["x"]})


def test_min_of_mixed_values_is_refused() -> None:
    """min/max compare the rows' values: numbers and strings mixed are refused at load."""
    rows = [
        {"id": "a", "when": "n > 1", "then": {"v": 1}},
        {"id": "b", "when": "true", "then": {"v": "x"}},
    ]
    with pytest.raises(ConfigError, match=r"aggregation 'min' compares .* a = 1, b = 'x'"):
        table("collect", rows, aggregation="min")


def test_true_is_not_one_in_output_values() -> None:
    """An output value true is not the listed 1 (nor 1 true)."""
    rows = [{"id": "a", "when": "true", "then": {"v": True}}]
    with pytest.raises(ConfigError, match=r"output 'v' = True is not in its output_values \[1\]"):
        table("first", rows, output_values={"v": [1]})


# --- tables the library itself reads -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "keys", "accepted"),
    [
        ("contract_class", {"hit": "collect"}, "'unique', 'first', 'priority', 'any'"),
        ("review_route", {"hit": "rule order"}, "'unique', 'first', 'priority', 'any'"),
        ("amendment_departments", {"hit": "first"}, "'collect', 'rule order', 'output order'"),
        (
            "amendment_departments",
            {"hit": "collect", "aggregation": "count"},
            "'collect', 'rule order', 'output order' without an aggregation",
        ),
    ],
)
def test_a_consumed_table_keeps_its_outcome_shape(
    name: str, keys: dict[str, Any], accepted: str
) -> None:
    """A host file cannot turn a table reqmgmt reads into another outcome shape."""
    with pytest.raises(ConfigError) as info:
        load_rules({"tables": {name: keys}}, with_defaults=True)
    text = str(info.value)
    assert f"table {name!r}" in text
    assert "reqmgmt reads this table's outcome as" in text
    assert f"this table accepts hit {accepted}" in text


def test_a_consumed_table_may_change_within_its_shape() -> None:
    """requirement_deadline may become any; amendment_departments rule order."""
    rules = load_rules(
        {
            "tables": {
                "requirement_deadline": {"hit": "any"},
                "amendment_departments": {"hit": "rule order"},
            }
        },
        with_defaults=True,
    )
    assert rules.tables["requirement_deadline"].hit == "any"
    d = rules.decide("amendment_departments", {"field": "quantity"})
    assert [o["department"] for o in d.outcome] == ["production", "materials"]


def test_consumed_tables_list_every_table_the_library_decides_with() -> None:
    """Every table name the library's code classifies or decides with is in CONSUMED_TABLES."""
    used: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""(?:classify|decide)\(\s*["']([a-z_]+)["']""", text))
    assert used, "the scan found no table names"
    assert used <= set(CONSUMED_TABLES), sorted(used - set(CONSUMED_TABLES))
    defaults = default_rules().tables
    for name, shape in CONSUMED_TABLES.items():
        assert name in defaults
        hit = defaults[name].hit
        assert (shape == "list") == (hit in ("collect", "rule order", "output order")), name


# --- properties ------------------------------------------------------------------------------

thresholds = st.lists(
    st.tuples(st.integers(0, 10), st.sampled_from(["x", "y", "z"]), st.integers(-5, 5)),
    min_size=1,
    max_size=8,
)


def rows_of(spec: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """Row i matches n > k and sets v (a word) and w (a number)."""
    return [
        {"id": f"r{i}", "when": f"n > {k}", "then": {"v": v, "w": w}}
        for i, (k, v, w) in enumerate(spec)
    ]


@given(spec=thresholds, n=st.integers(-1, 12))
def test_property_multi_hit_orders(spec: list[tuple[int, str, int]], n: int) -> None:
    """rule order/collect: the matching rows in order; output order: sorted stably by the list;
    priority: the first of that; unique raises iff more than one row matches."""
    rows = rows_of(spec)
    hits = [r for r, (k, _, _) in zip(rows, spec, strict=True) if n > k]
    expected = [r["then"] for r in hits]
    two = {"outputs": ["v", "w"]}
    for hit in ("rule order", "collect"):
        assert plain(table(hit, rows, **two).decide("t", {"n": n}).outcome) == expected
    order = {"v": ["z", "x", "y"]}
    ranked = sorted(hits, key=lambda r: order["v"].index(r["then"]["v"]))
    d = table("output order", rows, output_values=order, **two).decide("t", {"n": n})
    assert plain(d.outcome) == [r["then"] for r in ranked]
    assert d.matched == tuple(r["id"] for r in ranked)
    d = table("priority", rows, output_values=order, **two).decide("t", {"n": n})
    assert plain(d.outcome) == (ranked[0]["then"] if ranked else {})
    if len(hits) > 1:
        with pytest.raises(RuleError):
            table("unique", rows, **two).decide("t", {"n": n})
    else:
        assert plain(table("unique", rows, **two).decide("t", {"n": n}).outcome) == (
            expected[0] if expected else {}
        )


@given(spec=thresholds, n=st.integers(-1, 12))
def test_property_aggregations(spec: list[tuple[int, str, int]], n: int) -> None:
    """collect sum/min/max/count equal Python's over the matching rows' values."""
    rows = [
        {"id": r["id"], "when": r["when"], "then": {"v": r["then"]["w"]}} for r in rows_of(spec)
    ]
    values = [w for k, _, w in spec if n > k]
    want = {
        "sum": sum(values) if values else None,
        "min": min(values, default=None),
        "max": max(values, default=None),
        "count": len(values),
    }
    for aggregation, expected in want.items():
        outcome = table("collect", rows, aggregation=aggregation).decide("t", {"n": n}).outcome
        assert dict(outcome) == {"v": expected}, aggregation


def test_every_policy_is_covered() -> None:
    """The cases above exercise every policy the loader accepts."""
    assert {c[0] for c in CASES} == set(HIT_POLICIES)


# --- the command line ------------------------------------------------------------------------


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reqmgmt", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_explains_and_shows_a_multi_hit_table(tmp_path: Path) -> None:
    """`reqmgmt rules explain` names the policy and the order; `rules show` the output values."""
    rules = tmp_path / "hits.toml"
    rules.write_text(
        """
[tables.levels]
zh = "级别"
en = "levels"
hit = "output order"
outputs = ["v"]
output_values = { v = ["high", "mid", "low"] }
inputs = { n = "int" }

[[tables.levels.rows]]
id = "a"
when = "n > 1"
then = { v = "low" }

[[tables.levels.rows]]
id = "b"
when = "n > 5"
then = { v = "high" }
""",
        encoding="utf-8",
    )
    facts = tmp_path / "facts.json"
    facts.write_text('{"n": 7}', encoding="utf-8")
    args = ["rules", "explain", str(rules), "--no-defaults", "--kind", "levels", "--facts"]
    en = run(*args, str(facts), cwd=tmp_path)
    assert en.returncode == 0, en.stderr
    assert "hit policy output order" in en.stdout
    assert "in output_values order: b, a (v: 'high' > 'mid' > 'low')" in en.stdout
    assert "outcome: [{'v': 'high'}, {'v': 'low'}]" in en.stdout
    zh = run(*args, str(facts), "--lang", "zh", cwd=tmp_path)
    assert "命中策略 output order(输出顺序)" in zh.stdout
    assert "按 output_values 排序:b, a" in zh.stdout
    show = run("rules", "show", str(rules), "--no-defaults", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "(hit output order;" in show.stdout
    assert "output_values v: high > mid > low" in show.stdout
