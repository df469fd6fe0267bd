"""Classifying contracts with the default ``contract_class`` table, against baselines.

In one process, on the same fact sets:

- reqmgmt: ``RuleSet.decide("contract_class", facts)`` (fact checks, money in
  the table's currency, first-hit evaluation; explanations are worked out
  only when asked for);
- hand-written: the same rules as one Python function;
- SpiffWorkflow's DMN engine on the same table written as DMN (installed with
  the ``bench`` extra only).

Run: ``python benchmarks/bench_rules.py [--n 1000000]``; ``--smoke`` for a
quick check.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from reqmgmt import Money
from reqmgmt.rules import default_rules

FLAGS = ("new_product", "oem", "new_customer", "first_order", "foreign_trade")


def fact_sets(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Contracts: amounts around the 200,000 CNY threshold, flags mostly off."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        facts: dict[str, Any] = {
            "amount": Money(Decimal(rnd.randrange(1_000_00, 400_000_00)) / 100, "CNY")
        }
        for flag in FLAGS:
            facts[flag] = rnd.random() < 0.05
        out.append(facts)
    return out


def hand_written(facts: dict[str, Any]) -> str:
    """The table as a plain function (the speed ceiling)."""
    if facts["amount"].amount >= 200000:
        return "special"
    if facts["new_product"]:
        return "special"
    if facts["oem"] or facts["new_customer"]:
        return "special"
    if facts["first_order"] or facts["foreign_trade"]:
        return "special"
    return "general"


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="contracts"
    name="contracts" namespace="http://reqmgmt.invalid/dmn">
  <decision id="contract_class" name="contract class">
    <decisionTable id="contract_class_table" hitPolicy="UNIQUE">
{inputs}
      <output id="out_class" label="class" name="class" typeRef="string" />
{rules}
    </decisionTable>
  </decision>
</definitions>
"""


def dmn_xml() -> str:
    """The default contract_class table as DMN (Spiff's UNIQUE stops at the first match)."""
    names = ["amount", *FLAGS]
    inputs = "\n".join(
        f'      <input id="in_{n}" label="{n}"><inputExpression id="ie_{n}" '
        f'typeRef="{"number" if n == "amount" else "boolean"}"><text>{n}</text>'
        "</inputExpression></input>"
        for n in names
    )
    rows = [
        {"amount": "&gt;= 200000"},
        {"new_product": "True"},
        {"oem": "True"},
        {"new_customer": "True"},
        {"first_order": "True"},
        {"foreign_trade": "True"},
        {},
    ]
    rules = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<inputEntry id="r{i}_{n}"><text>{row.get(n, "-")}</text></inputEntry>' for n in names
        )
        value = '"general"' if not row else '"special"'
        rules.append(
            f'      <rule id="r{i}">{cells}<outputEntry id="r{i}_out"><text>{value}</text>'
            "</outputEntry></rule>"
        )
    return DMN.format(inputs=inputs, rules="\n".join(rules))


def spiff_classifier() -> Callable[[dict[str, Any]], str] | None:
    """A function running SpiffWorkflow's DMN engine, or None when it is not installed."""
    try:
        from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
        from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
    except ImportError:
        return None
    parser = BpmnDmnParser()
    parser.add_dmn_str(dmn_xml().encode())
    engine = parser.get_engine("contract_class", None)

    class Workflow:
        script_engine = PythonScriptEngine()

    class Task:
        workflow = Workflow()

        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data

    def classify(facts: dict[str, Any]) -> str:
        data = dict(facts, amount=facts["amount"].amount)
        result: str = engine.result(Task(data))["class"]
        return result

    return classify


def timed(fn: Callable[[dict[str, Any]], Any], facts: list[dict[str, Any]]) -> float:
    gc.collect()
    start = time.perf_counter()
    for f in facts:
        fn(f)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="fact sets (default 1,000,000)")
    parser.add_argument(
        "--spiff-n", type=int, default=20_000, help="fact sets for SpiffWorkflow (slow)"
    )
    parser.add_argument("--smoke", action="store_true", help="a quick run")
    args = parser.parse_args(argv)
    n, spiff_n = (2_000, 200) if args.smoke else (args.n, args.spiff_n)

    rules = default_rules()
    facts = fact_sets(n)

    def ours(f: dict[str, Any]) -> str:
        result: str = rules.decide("contract_class", f).outcome["class"]
        return result

    spiff = spiff_classifier()
    # Same answers first: a fast wrong classifier would prove nothing.
    for f in facts[:2000]:
        assert ours(f) == hand_written(f), f
        if spiff is not None:
            assert spiff(f) == hand_written(f), f

    rounds = 5
    chunk = max(1, n // rounds)
    per: dict[str, list[float]] = {"ours": [], "hand": [], "spiff": []}
    for r in range(rounds):
        part = facts[r * chunk : (r + 1) * chunk]
        per["ours"].append(chunk / timed(ours, part))
        per["hand"].append(chunk / timed(hand_written, part))
        if spiff is not None:
            sp = part[: max(1, spiff_n // rounds)]
            per["spiff"].append(len(sp) / timed(spiff, sp))

    ours_rate = statistics.median(per["ours"])
    hand_rate = statistics.median(per["hand"])
    print(f"contract fact sets: {chunk * rounds:,} (SpiffWorkflow: {spiff_n:,})")
    print(f"reqmgmt decision table   {ours_rate:12,.0f} evaluations/s")
    print(f"hand-written function    {hand_rate:12,.0f} evaluations/s")
    print(f"hand-written / reqmgmt:  {hand_rate / ours_rate:8.2f}x  (target <= 20)")
    if spiff is None:
        print("SpiffWorkflow DMN: not installed (pip install -e '.[bench]')")
    else:
        spiff_rate = statistics.median(per["spiff"])
        print(f"SpiffWorkflow DMN        {spiff_rate:12,.0f} evaluations/s")
        print(f"reqmgmt / SpiffWorkflow: {ours_rate / spiff_rate:8.2f}x  (target >= 10)")


if __name__ == "__main__":
    main()
