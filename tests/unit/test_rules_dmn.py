"""Reading DMN decision tables: S-FEEL translation, refusals, hostile XML, loading, import."""

from __future__ import annotations

import contextlib
import random
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reqmgmt.errors import ConfigError, RuleError
from reqmgmt.rules import load_rules
from reqmgmt.rules.dmn import MAX_DMN_BYTES, dmn_to_toml, parse_dmn, read_dmn

NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"  # DMN 1.3


def dmn(
    rules: list[tuple[list[str], list[str]]],
    *,
    inputs: tuple[tuple[str, str], ...] = (("amount", "number"), ("channel", "string")),
    outputs: tuple[tuple[str, str], ...] = (("route", "string"),),
    hit: str = "UNIQUE",
    extra: str = "",
    table_attrs: str = "",
    decision_extra: str = "",
    output_extra: str = "",
) -> str:
    """A DMN 1.3 model with one decision table 'Route'."""
    ins = "".join(
        f'<input id="i{n}"><inputExpression typeRef="{t}"><text>{name}</text>'
        "</inputExpression></input>"
        for n, (name, t) in enumerate(inputs)
    )
    outs = "".join(
        f'<output id="o{n}" name="{name}" typeRef="{t}">{output_extra}</output>'
        for n, (name, t) in enumerate(outputs)
    )
    rows = "".join(
        f'<rule id="r{n}">'
        + "".join(f"<inputEntry><text>{e}</text></inputEntry>" for e in when)
        + "".join(f"<outputEntry><text>{o}</text></outputEntry>" for o in then)
        + f"<annotationEntry><text>rule {n}</text></annotationEntry></rule>"
        for n, (when, then) in enumerate(rules, start=1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="{NS}" id="d" name="m" '
        f'namespace="urn:test"><decision id="route" name="Route">{decision_extra}'
        f'<decisionTable hitPolicy="{hit}" {table_attrs}>{ins}{outs}{rows}</decisionTable>'
        f"</decision>{extra}</definitions>"
    )


def table(xml: str) -> dict[str, Any]:
    data: dict[str, Any] = parse_dmn(xml.encode(), "test.dmn")["tables"]["Route"]
    return data


# --- S-FEEL unary tests into conditions ----------------------------------------------------------

TRANSLATIONS = [
    ("-", "true", [(0, True), (10**9, True)]),
    ("&gt;= 200000", "amount >= 200000", [(200000, True), (199999, False)]),
    ("&lt;0.5", "amount < 0.5", [(Decimal("0.4"), True), (Decimal("0.5"), False)]),
    ("[1..10]", "1 <= amount <= 10", [(1, True), (10, True), (11, False), (0, False)]),
    ("(1..10)", "1 < amount < 10", [(1, False), (2, True), (10, False)]),
    ("]1..10[", "1 < amount < 10", [(1, False), (9, True), (10, False)]),
    ("[1..10)", "1 <= amount < 10", [(1, True), (10, False)]),
    ("(1..10]", "1 < amount <= 10", [(1, False), (10, True)]),
    ("5", "amount == 5", [(5, True), (6, False)]),
    ("= 5", "amount == 5", [(5, True), (6, False)]),
    ("!= 5", "amount != 5", [(5, False), (6, True)]),
    ("1, 2, 3", "amount in [1, 2, 3]", [(2, True), (4, False)]),
    ("&lt;0, &gt;100", "((amount < 0) or (amount > 100))", [(-1, True), (50, False), (101, True)]),
    ("not(1, 2)", "not (amount in [1, 2])", [(1, False), (3, True)]),
    ("not(&gt;= 5)", "not (amount >= 5)", [(4, True), (5, False)]),
    (
        "not(&lt;0, [10..20])",
        "not ((amount < 0) or (10 <= amount <= 20))",
        [(5, True), (15, False)],
    ),
    ("-5", "amount == -5", [(-5, True), (5, False)]),
]


@pytest.mark.parametrize(("entry", "condition", "checks"), TRANSLATIONS)
def test_unary_tests_become_conditions(entry: str, condition: str, checks: list[Any]) -> None:
    """Each S-FEEL unary test becomes the condition shown, deciding as DMN does."""
    xml = dmn([([entry, "-"], ['"yes"'])], hit="FIRST")
    data = table(xml)
    assert data["rows"][0]["when"] == condition
    rules = load_rules(parse_dmn(xml.encode(), "t.dmn"))
    for amount, expected in checks:
        decision = rules.decide("Route", {"amount": amount, "channel": "fax"})
        assert bool(decision.matched) is expected, (entry, amount)


def test_strings_booleans_and_dates() -> None:
    """Strings (with escapes), true/false and date("...") literals, as entries and outputs."""
    xml = dmn(
        [
            (['"fax", "e\\"mail"', "true", '&gt;= date("2026-01-01")'], ['date("2026-12-31")']),
            (
                ['not("fax")', "false", '[date("2025-01-01")..date("2025-12-31")]'],
                ['date("2025-06-30")'],
            ),
        ],
        inputs=(("channel", "string"), ("urgent", "boolean"), ("received", "date")),
        outputs=(("due", "date"),),
    )
    rows = table(xml)["rows"]
    assert rows[0]["when"] == (
        "channel in ['fax', 'e\"mail'] and urgent == true and received >= date('2026-01-01')"
    )
    assert rows[0]["then"] == {"due": date(2026, 12, 31)}
    assert rows[0]["en"] == rows[0]["zh"] == "rule 1"
    rules = load_rules(parse_dmn(xml.encode(), "t.dmn"))
    facts = {"channel": 'e"mail', "urgent": True, "received": date(2026, 3, 1)}
    assert rules.decide("Route", facts).outcome == {"due": date(2026, 12, 31)}
    facts = {"channel": "visit", "urgent": False, "received": date(2025, 3, 1)}
    assert rules.decide("Route", facts).outcome == {"due": date(2025, 6, 30)}
    facts = {"channel": "fax", "urgent": False, "received": date(2025, 3, 1)}
    assert not rules.decide("Route", facts).matched


def test_a_rule_description_labels_a_row_without_annotations() -> None:
    """With no annotationEntry, the rule's description is its label."""
    xml = dmn([(["-", "-"], ['"a"'])]).replace(
        "<annotationEntry><text>rule 1</text></annotationEntry>",
        "<description>small orders</description>",
    )
    assert table(xml)["rows"][0]["en"] == "small orders"


def test_table_settings() -> None:
    """Hit policy, defaults, the decision's name as a single output's name, labels."""
    xml = dmn(
        [(["&gt; 10", "-"], ['"big"'])],
        hit="FIRST",
        outputs=(("", "string"),),
        output_extra='<defaultOutputEntry><text>"small"</text></defaultOutputEntry>',
    ).replace(' name=""', "")
    data = table(xml)
    assert data["hit"] == "first"
    assert data["outputs"] == ["Route"]
    assert data["default"] == {"Route": "small"}
    assert data["en"] == "Route"
    rules = load_rules(parse_dmn(xml.encode(), "t.dmn"))
    assert rules.decide("Route", {"amount": 1, "channel": "x"}).outcome == {"Route": "small"}
    assert rules.decide("Route", {"amount": 11, "channel": "x"}).outcome == {"Route": "big"}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("UNIQUE", "unique"), ("FIRST", "first"), ("PRIORITY", "priority"), ("ANY", "any"),
     ("COLLECT", "collect"), ("RULE ORDER", "rule order"), ("OUTPUT ORDER", "output order")],
)  # fmt: skip
def test_hit_policies_are_named_as_in_toml(policy: str, expected: str) -> None:
    """DMN's hit policies map onto the rule file's hit names."""
    values = '<outputValues><text>"a", "b"</text></outputValues>'
    data = table(dmn([(["-", "-"], ['"a"'])], hit=policy, output_extra=values))
    assert data["hit"] == expected
    assert data["output_values"] == {"route": ["a", "b"]}  # in order: the priority
    rules = load_rules({"tables": {"Route": data}})
    assert rules.table("Route").output_values == {"route": ("a", "b")}


def test_an_input_without_type_takes_its_input_data_type() -> None:
    """An inputExpression without typeRef has the type of the inputData of that name."""
    xml = dmn([(["&gt; 5"], ['"a"'])], inputs=(("amount", "number"),))
    xml = xml.replace(' typeRef="number"', "").replace(
        "</decision>",
        '</decision><inputData id="x" name="amount"><variable name="amount" typeRef="number"/>'
        "</inputData>",
    )
    assert table(xml)["inputs"] == {"amount": "decimal"}
    with pytest.raises(ConfigError, match=r"typeRef None is not read"):
        parse_dmn(xml.replace('typeRef="number"', "").encode(), "t.dmn")


def test_aggregation() -> None:
    """COLLECT with SUM/MIN/MAX/COUNT becomes aggregation = sum/min/max/count."""
    for dmn_name, name in [("SUM", "sum"), ("MIN", "min"), ("MAX", "max"), ("COUNT", "count")]:
        xml = dmn([(["-", "-"], ["1.5"])], hit="COLLECT", table_attrs=f'aggregation="{dmn_name}"',
                  outputs=(("fee", "number"),))  # fmt: skip
        data = table(xml)
        assert (data["hit"], data["aggregation"]) == ("collect", name)
        assert data["rows"][0]["then"] == {"fee": Decimal("1.5")}


# --- refused, naming the file and element -----------------------------------------------------

REFUSALS = [
    (dmn([(["count(amount) &gt; 1", "-"], ['"a"'])]), "rule 1 (id r1), input 'amount'"),
    (dmn([(["&gt; limit", "-"], ['"a"'])]), "a literal (number, string"),
    (dmn([(['"ten"', "-"], ['"a"'])]), "compares a decimal fact with a string"),
    (dmn([(["-", "&gt; 5"], ['"a"'])]), "compares a str fact with a number"),
    (dmn([(["true"], ['"a"'])], inputs=(("urgent", "boolean"),)), None),
    (dmn([(["&lt; true"], ['"a"'])], inputs=(("urgent", "boolean"),)), "have no order"),
    (dmn([(["-", "-"], ["5"])]), "'5' is a number, but the output's typeRef is str"),
    (dmn([(["-", "-"], [""])]), "an empty output entry"),
    (dmn([(["-", "-"], ["amount * 2"])]), "'amount * 2' is not S-FEEL (at column 8)"),
    (dmn([(["-", "-"], ['"a"'])], hit="WHATEVER"), "hit policy 'WHATEVER' is not one of"),
    (dmn([(["-", "-"], ['"a"'])], table_attrs='aggregation="SUM"'), "allowed with COLLECT only"),
    (dmn([(["-"], ['"a"'])], inputs=(("a + b", "number"),)), "is not read; an input must be"),
    (dmn([(["-"], ['"a"'])], inputs=(("amount", "tAmount"),)), "typeRef 'tAmount' is not read"),
    (dmn([(["-"], ['"a"'])], inputs=(("amount", "dateTime"),)), "typeRef 'dateTime'"),
    (dmn([(["-", "-"], ['"c"'])], output_extra='<outputValues><text>"a","b"</text></outputValues>'),
     "'c' is not one of its outputValues"),
    (dmn([(["-", "-"], ['"a"'])], decision_extra=(
        '<informationRequirement><requiredDecision href="#other"/></informationRequirement>')),
     "requires another decision"),
    (dmn([(["-", "-"], ['"a"'])], extra=(
        '<decision id="x" name="X"><literalExpression><text>1 + 1</text></literalExpression>'
        "</decision>")), "decision 'X' (id x): its logic is a literalExpression"),
    (dmn([(["-", "-"], ['"a"'])], extra='<businessKnowledgeModel id="b" name="B"/>'),
     "businessKnowledgeModel 'B' (id b): not read"),
    (dmn([(["-", "-"], ['"a"'])], extra=(
        '<decision id="y" name="Y"><context/></decision>')), "its logic is a context"),
    (dmn([(["-", "-"], ['"a"'])], extra=(
        '<decision id="z" name="Route"><decisionTable><output/></decisionTable></decision>')),
     "decision 'Route' (id z): a second decision of this name"),
]  # fmt: skip


@pytest.mark.parametrize(("xml", "reason"), REFUSALS)
def test_outside_the_subset_is_refused(xml: str, reason: str | None) -> None:
    """FEEL beyond S-FEEL, other logic, chains and mistyped entries: a ConfigError naming it."""
    if reason is None:  # the control: the same table with a supported entry reads
        assert table(xml)["rows"][0]["when"] == "urgent == true"
        return
    with pytest.raises(ConfigError) as info:
        parse_dmn(xml.encode(), "test.dmn")
    assert info.value.location == "test.dmn"
    assert any(reason in p for p in info.value.problems), info.value.problems


# --- hostile XML ---------------------------------------------------------------------------------

LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    f'<definitions xmlns="{NS}"><decision name="&c;"/></definitions>'
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f'<definitions xmlns="{NS}"><decision name="&x;"/></definitions>'
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (LAUGHS.encode(), "refused: "),
        (EXTERNAL.encode(), "refused: "),
        (b"<definitions", "is not well-formed XML"),
        (b'<definitions xmlns="urn:other"/>', "is not a DMN model"),
        (f'<definitions xmlns="{NS}"/>'.encode(), "holds no decision table"),
        (b" " * (MAX_DMN_BYTES + 1), "is larger than 2,000,000 bytes"),
    ],
)
def test_hostile_xml_is_refused(raw: bytes, reason: str) -> None:
    """DTDs, entities and external references are refused before anything expands."""
    with pytest.raises(ConfigError) as info:
        parse_dmn(raw, "evil.dmn")
    assert str(info.value).startswith("evil.dmn: ")
    assert reason in str(info.value)


def test_a_large_file_is_not_read_whole(tmp_path: Path) -> None:
    """read_dmn stops reading past the size limit."""
    big = tmp_path / "big.dmn"
    big.write_bytes(b" " * (MAX_DMN_BYTES + 10))
    with pytest.raises(ConfigError, match=r"larger than 2,000,000 bytes"):
        read_dmn(big)
    with pytest.raises(ConfigError, match=r"cannot be read"):
        read_dmn(tmp_path / "missing.dmn")


# --- [meta] dmn: loading DMN files beside a rule file ---------------------------------------------

ROUTE = dmn([(["&gt;= 200000", "-"], ['"special"']), (["&lt; 200000", "-"], ['"general"'])])


def test_a_rule_file_loads_the_dmn_files_it_names(tmp_path: Path) -> None:
    """`[meta] dmn` loads DMN files from the rule file's folder; the version covers them."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "route.dmn").write_text(ROUTE, encoding="utf-8")
    rules_file = tmp_path / "host.toml"
    rules_file.write_text(
        '[meta]\ndmn = ["tables/route.dmn"]\n\n'
        "[[tables.Route.examples]]\n"  # the TOML adds to the DMN table
        'facts = { amount = "200000", channel = "fax" }\nexpect = { route = "special" }\n',
        encoding="utf-8",
    )
    rules = load_rules(rules_file)
    assert rules.decide("Route", {"amount": 5, "channel": "fax"}).outcome == {"route": "general"}
    assert len(rules.table("Route").examples) == 1
    first = rules.version
    (tmp_path / "tables" / "route.dmn").write_text(
        ROUTE.replace("&lt; 200000", "&lt; 100000"), encoding="utf-8"
    )
    assert load_rules(rules_file).version != first
    # A wrong example now fails the load: the DMN file's tables are checked like any other.
    (tmp_path / "tables" / "route.dmn").write_text(
        ROUTE.replace("&gt;= 200000", "&gt; 200000"), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"expected \{'route': 'special'\}"):
        load_rules(rules_file)


@pytest.mark.parametrize(
    ("listed", "reason"),
    [
        ('"/etc/route.dmn"', "is outside the rule file's folder"),
        ('"../route.dmn"', "is outside the rule file's folder"),
        ('"missing.dmn"', "cannot be read"),
        ('"bad.dmn"', "is not well-formed XML"),
        ("3", "must be a list of DMN file names"),
        ('"route\\u0000.dmn"', "is not a usable path: embedded null byte"),
    ],
)
def test_dmn_files_outside_the_folder_or_broken_are_refused(
    tmp_path: Path, listed: str, reason: str
) -> None:
    """Absolute paths, paths leaving the folder and broken DMN files fail the load, named."""
    (tmp_path / "route.dmn").write_text(ROUTE, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.dmn").write_text("<definitions", encoding="utf-8")
    rules_file = tmp_path / "sub" / "host.toml"
    rules_file.write_text(f"[meta]\ndmn = [{listed}]\n", encoding="utf-8")
    if listed == "3":
        rules_file.write_text("[meta]\ndmn = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(rules_file)
    assert any(str(rules_file) in p and reason in p for p in info.value.problems), (
        info.value.problems
    )


def test_a_dict_cannot_name_dmn_files() -> None:
    """DMN paths are relative to a rule file: a dict source naming them is refused."""
    with pytest.raises(ConfigError, match=r"only a rule file can name DMN files"):
        load_rules({"meta": {"dmn": ["route.dmn"]}, "tables": {}})


# --- writing TOML --------------------------------------------------------------------------------


def test_the_written_toml_decides_as_the_dmn(tmp_path: Path) -> None:
    """dmn_to_toml's output loads and decides the same as the DMN file on a grid of facts."""
    xml = dmn(
        [
            (["[0..1000)", '"fax","email"'], ['"self"', "0.5"]),
            (["[1000..200000)", "-"], ['"department"', "1"]),
            (["&gt;= 200000", 'not("fax")'], ['"central"', "2.25"]),
        ],
        hit="FIRST",
        outputs=(("route", "string"), ("fee", "number")),
        output_extra="",
    )
    source = tmp_path / "route.dmn"
    source.write_text(xml, encoding="utf-8")
    text = dmn_to_toml(source)
    assert text.startswith("# Imported from the DMN file route.dmn")
    written = load_rules(tomllib.loads(text))
    direct = load_rules(read_dmn(source))
    for amount in (0, 999, 1000, 199999, 200000, 10**7):
        for channel in ("fax", "email", "visit"):
            facts = {"amount": amount, "channel": channel}
            a, b = written.decide("Route", facts), direct.decide("Route", facts)
            assert a.matched == b.matched, facts
            # TOML has no decimal type: 2.25 reads back as a float of the same value.
            assert {k: str(v) for k, v in a.outcome.items()} == {
                k: str(v) for k, v in b.outcome.items()
            }


def test_mutated_dmn_files_raise_nothing_but_config_error() -> None:
    """300 deterministic mutants of a TCK model: a ConfigError or a rule set, never a raw error."""
    tck = Path(__file__).parents[1] / "data" / "dmn-tck" / "0118-multi-priority-hitpolicy"
    original = (tck / "0118-multi-priority-hitpolicy.dmn").read_text(encoding="utf-8")
    start = original.index("<decision ")
    end = original.index("</decision>") + len("</decision>")
    pieces = ["-", "..", "[", "]", "(", ")", ",", '"', "not(", "&lt;", "&gt;=", "1.5", "true",
              "date(", "null", "<text>", "</text>", "<rule>", 'hitPolicy="ANY"', "\\", "x"]  # fmt: skip
    rng = random.Random(16)
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(300):
        text = original
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(start, end)
            cut = rng.randint(0, 8)
            text = text[:at] + rng.choice(pieces) * rng.randint(0, 2) + text[at + cut :]
        try:
            rules = load_rules(parse_dmn(text.encode(), "mutant.dmn"))
        except ConfigError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        table = next(iter(rules.tables.values()))
        for age in (0, 17, 18, 30):
            for risk in ("Low", "Medium", "High"):
                facts = {"Age": age, "RiskCategory": risk, "isAffordable": age > 10}
                if set(table.inputs) <= set(facts):
                    # A RuleError is an answer: "any" rows that now disagree, say.
                    with contextlib.suppress(RuleError):
                        rules.decide(table.name, facts)
    print(outcomes)
    assert outcomes["refused"] > 100, outcomes
    assert outcomes["loaded"] > 10, outcomes
