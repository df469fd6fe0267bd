"""The DMN TCK's compliance-level-2 cases run through the DMN import and the rule engine."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from reqmgmt.errors import ConfigError
from reqmgmt.rules import load_rules
from reqmgmt.rules.dmn import dmn_to_toml, read_dmn

TCK = Path(__file__).parents[1] / "data" / "dmn-tck"
_TC = "{http://www.omg.org/spec/DMN/20160719/testcase}"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"

#: The decision-table models of the TCK's level 2, all run case by case.
TABLES = [
    "0004-simpletable-U",
    "0005-simpletable-A",
    "0006-simpletable-P1",
    "0007-simpletable-P2",
    "0010-multi-output-U",
    "0108-first-hitpolicy",
    "0109-ruleOrder-hitpolicy",
    "0110-outputOrder-hitpolicy",
    "0111-first-hitpolicy-singleoutputcol",
    "0112-ruleOrder-hitpolicy-singleinoutcol",
    "0113-outputOrder-hitpolicy-singleinoutcol",
    "0114-min-collect-hitpolicy",
    "0115-sum-collect-hitpolicy",
    "0116-count-collect-hitpolicy",
    "0117-multi-any-hitpolicy",
    "0118-multi-priority-hitpolicy",
    "0119-multi-collect-hitpolicy",
]
#: The other models of level 2 and the refusal each gets (docs/rules.md, "DMN").
OUT_OF_SCOPE = {
    "0001-input-data-string": "its logic is a literalExpression",
    "0002-input-data-number": "its logic is a literalExpression",
    "0003-input-data-string-allowed-values": "its logic is a literalExpression",
    "0008-LX-arithmetic": "its logic is a literalExpression",
    "0009-invocation-arithmetic": "businessKnowledgeModel 'PMT' (id b_PMT): not read",
    "0100-feel-constants": "its logic is a literalExpression",
    "0101-feel-constants": "its logic is a literalExpression",
    "0102-feel-constants": "its logic is a literalExpression",
    "0105-feel-math": "its logic is a literalExpression",
    "0106-feel-ternary-logic": "its logic is a literalExpression",
    "0107-feel-ternary-logic-not": "its logic is a literalExpression",
}


def _value(node: ElementTree.Element) -> Any:
    """A TCK value element (value, list, components) as a Python value."""
    value = node.find(f"{_TC}value")
    if value is not None:
        if value.get(f"{_XSI}nil") == "true":
            return None
        kind = value.get(f"{_XSI}type", "xsd:string")
        text = value.text or ""
        if kind == "xsd:decimal":
            return Decimal(text)
        if kind == "xsd:boolean":
            return text == "true"
        assert kind == "xsd:string", kind
        return text
    listed = node.find(f"{_TC}list")
    if listed is not None:
        return [_value(item) for item in listed.findall(f"{_TC}item")]
    return {c.get("name"): _value(c) for c in node.findall(f"{_TC}component")}


def _cases() -> list[Any]:
    out = []
    for model in TABLES:
        for tests in sorted((TCK / model).glob("*-test-*.xml")):
            root = ElementTree.parse(tests).getroot()
            for case in root.findall(f"{_TC}testCase"):
                facts = {n.get("name"): _value(n) for n in case.findall(f"{_TC}inputNode")}
                results = [
                    (r.get("name"), _value(r.find(f"{_TC}expected")))  # type: ignore[arg-type]
                    for r in case.findall(f"{_TC}resultNode")
                ]
                out.append(pytest.param(model, facts, results, id=f"{model}-{case.get('id')}"))
    return out


def _number(value: Any) -> Any:
    """Numbers compared by value (a TOML float, an int and a Decimal of the same number)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return Decimal(str(value)).normalize()
    if isinstance(value, Mapping):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_number(v) for v in value]
    return value


def as_dmn(outcome: Any, outputs: tuple[str, ...]) -> Any:
    """A decision's outcome as the DMN result: a single output's value, else a context."""

    def one(result: Any) -> Any:
        if not isinstance(result, Mapping):
            return result  # an aggregated number
        if not result:
            return None
        return result[outputs[0]] if len(outputs) == 1 else dict(result)

    if isinstance(outcome, list | tuple):
        return [one(r) for r in outcome]
    return one(outcome)


@pytest.mark.parametrize(("model", "facts", "results"), _cases())
def test_tck_case(model: str, facts: dict[str, Any], results: list[tuple[str, Any]]) -> None:
    """Each TCK test case of a decision-table model decides as the TCK expects (DMN and TOML)."""
    dmn = TCK / model / f"{model}.dmn"
    # Loaded straight from the DMN file, and from the TOML `reqmgmt rules import` writes.
    for rules in (load_rules(read_dmn(dmn)), load_rules(tomllib.loads(dmn_to_toml(dmn)))):
        for decision, expected in results:
            table = rules.table(decision)
            got = as_dmn(rules.decide(decision, facts).outcome, table.outputs)
            assert _number(got) == _number(expected), (decision, facts, rules.sources)


def test_every_level_2_model_is_run_or_refused() -> None:
    """The TCK folder holds exactly the models listed above: none is silently left out."""
    models = sorted(p.name for p in TCK.iterdir() if p.is_dir())
    assert models == sorted([*TABLES, *OUT_OF_SCOPE])
    assert len(_cases()) == 51


@pytest.mark.parametrize(("model", "reason"), sorted(OUT_OF_SCOPE.items()))
def test_out_of_scope_models_are_refused(model: str, reason: str) -> None:
    """A model outside the decision-table subset is refused, naming the file and element."""
    dmn = TCK / model / f"{model}.dmn"
    with pytest.raises(ConfigError) as info:
        read_dmn(dmn)
    assert str(dmn) in str(info.value)
    assert any(reason in p for p in info.value.problems), info.value.problems
    assert all("supported:" in p or "not read" in p for p in info.value.problems)
