"""Rule-file mutations: every mutant of default_rules.toml is refused at load or is safe.

Each case mutates the packaged ``default_rules.toml`` deterministically (the
case number seeds the mutation): tokens deleted, duplicated, swapped or
replaced; operators changed; numbers made strings and strings numbers;
facts swapped for facts of another type; type-wrong comparisons and
arithmetic; conditions nested or repeated past the limits; huge string
repetition; divisions by zero; broken TOML; lines and keys removed; input
types, hit policies and currencies changed; example facts mangled; tables
and arrays nested thousands deep.

A case passes when the mutant either raises ``ConfigError`` at load, naming
the file, or loads, and then every table decides over generated facts of its
declared input types (and explains the decision) with no exception but
``RuleError`` from arithmetic on those facts (a division by zero, a
repetition past the size limit) or a ``unique`` overlap.  A ``RuleError``
caused by anything else (``TypeError``, ``AttributeError``, ...) is a type
error the load should have caught: a *silent type error*.  Any other
exception is a *raw exception*.  Both must be 0.

Run with ``-s`` to see the figures; they are also recorded as test properties.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import pytest

from reqmgmt import ConfigError, Money, RuleError, ValidationError
from reqmgmt.rules import INPUT_TYPES, RuleSet, Table, load_rules

MUTATIONS = 640
FACT_SETS = 12
TEXT = resources.files("reqmgmt.rules").joinpath("default_rules.toml").read_text("utf-8")
DATA = tomllib.loads(TEXT)


def double(x: Decimal) -> Decimal:
    """A registered rule function with a known signature."""
    return x * 2


def is_vip(name: str) -> bool:
    """A registered predicate."""
    return name == "vip"


FUNCTIONS: dict[str, Callable[..., Any]] = {"double": double, "is_vip": is_vip}

WHEN = re.compile(r'^(when = )"(.*)"$', re.M)
TOKEN = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[A-Za-z_]\w*|\d+(?:\.\d+)?|\S")
COND_TOKEN = re.compile(r"'[^']*'|[A-Za-z_]\w*|\d+(?:\.\d+)?|[<>=!]=|[<>]|\S")
OPERATORS = [
    "==", "!=", "<", "<=", ">", ">=", " in ", " not in ", " and ", " or ", "+", "-", "*", "/",
    "**", "//", "%", " is ", "&", "@", "<<", " if ", ",",
]  # fmt: skip
STRINGS = sorted(
    {s for cond in WHEN.findall(TEXT) for s in re.findall(r"'([^']*)'", cond[1])} | {"", "vip"}
)


# Each table of the original text and its declared inputs (fact name → type).
INPUTS: dict[str, dict[str, str]] = {
    name: dict(spec.get("inputs", {})) for name, spec in DATA["tables"].items() if "rows" in spec
}


def whens(text: str) -> list[tuple[str, str, int, int]]:
    """(table, condition, start, end) of every row's ``when`` in ``text``."""
    out = []
    table = ""
    for match in re.finditer(r'^\[\[tables\.(\w+)\.rows\]\]$|^when = "(.*)"$', text, re.M):
        if match.group(1):
            table = match.group(1)
        elif table in INPUTS:
            out.append((table, match.group(2), match.start(2), match.end(2)))
    return out


def with_condition(
    rnd: random.Random, text: str, make: Callable[[str, str, dict[str, str]], str]
) -> str:
    """``text`` with one row's condition replaced by ``make(table, condition, inputs)``."""
    table, cond, start, end = rnd.choice(whens(text))
    new = make(table, cond, INPUTS[table])
    return text[:start] + new.replace("\\", "\\\\").replace('"', '\\"') + text[end:]


def fact_of(inputs: dict[str, str], kinds: tuple[str, ...], rnd: random.Random) -> str:
    """A fact of one of ``kinds`` declared in ``inputs`` (else any fact)."""
    names = [n for n, k in inputs.items() if k in kinds] or list(inputs)
    return rnd.choice(names)


# --- mutations: each returns (label, mutated text) --------------------------------------


def delete_token(rnd: random.Random, text: str) -> str:
    tokens = list(TOKEN.finditer(text))
    t = rnd.choice(tokens)
    return text[: t.start()] + text[t.end() :]


def duplicate_token(rnd: random.Random, text: str) -> str:
    t = rnd.choice(list(TOKEN.finditer(text)))
    return text[: t.end()] + " " + t.group() + text[t.end() :]


def swap_tokens(rnd: random.Random, text: str) -> str:
    tokens = list(TOKEN.finditer(text))
    i = rnd.randrange(len(tokens) - 1)
    a, b = tokens[i], tokens[i + 1]
    return text[: a.start()] + b.group() + text[a.end() : b.start()] + a.group() + text[b.end() :]


def replace_token(rnd: random.Random, text: str) -> str:
    tokens = list(TOKEN.finditer(text))
    t = rnd.choice(tokens)
    return text[: t.start()] + rnd.choice(tokens).group() + text[t.end() :]


def _cond_tokens(cond: str) -> list[re.Match[str]]:
    return list(COND_TOKEN.finditer(cond))


def cond_delete_token(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        t = rnd.choice(_cond_tokens(cond))
        return cond[: t.start()] + cond[t.end() :]

    return with_condition(rnd, text, make)


def cond_swap_tokens(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        tokens = _cond_tokens(cond)
        if len(tokens) < 2:
            return cond + " " + cond
        i = rnd.randrange(len(tokens) - 1)
        a, b = tokens[i], tokens[i + 1]
        return (
            cond[: a.start()] + b.group() + cond[a.end() : b.start()] + a.group() + cond[b.end() :]
        )

    return with_condition(rnd, text, make)


def change_operator(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        ops = list(re.finditer(r"[<>=!]=|[<>]| in | and | or |\+|-|\*|/", cond))
        new = rnd.choice(OPERATORS)
        if not ops:
            fact = fact_of(inputs, ("int", "money", "str", "bool"), rnd)
            return f"{fact}{new}{rnd.choice(['1', repr(rnd.choice(STRINGS)), 'true'])}"
        m = rnd.choice(ops)
        return cond[: m.start()] + new + cond[m.end() :]

    return with_condition(rnd, text, make)


def number_to_string(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        numbers = list(re.finditer(r"\d+(?:\.\d+)?", cond))
        if not numbers:
            return cond + " == '1'"
        m = rnd.choice(numbers)
        return cond[: m.start()] + f"'{m.group()}'" + cond[m.end() :]

    return with_condition(rnd, text, make)


def string_to_number(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        strings = list(re.finditer(r"'[^']*'", cond))
        if not strings:
            return cond + " == 3"
        m = rnd.choice(strings)
        return cond[: m.start()] + rnd.choice(["3", "0", "0.5", "true", "none"]) + cond[m.end() :]

    return with_condition(rnd, text, make)


def swap_fact(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        names = [m for m in re.finditer(r"[A-Za-z_]\w*", cond) if m.group() in inputs]
        other = rnd.choice(list(inputs))
        if not names:
            return f"{other} and {cond}"
        m = rnd.choice(names)
        return cond[: m.start()] + other + cond[m.end() :]

    return with_condition(rnd, text, make)


TYPE_WRONG = {
    "str": [
        "{f} > 3", "{f} + 1 > 2", "{f} - 'a' == ''", "-{f} == 'x'", "{f} * 's' == ''",
        "{f} / 2 > 1", "{f} == 3", "{f} in 3", "3 in {f}", "{f} < true", "{f} * 2.5 == ''",
        "double({f}) > 1", "{f} + {f} > 3", "({f} > 'a') + 1 > 0", "not {f} > 1",
    ],
    "money": [
        "{f} == 'x'", "{f} in 'abc'", "'a' in {f}", "{f} + 'a' > 1", "{f} > true",
        "{f} > '200000'", "{f} * 'x' == 'x'", "is_vip({f})", "{f} in [1, 'a'] and {f} < 'b'",
    ],
    "int": [
        "{f} == 'x'", "{f} in 'abc'", "'a' in {f}", "{f} + 'a' > 1", "{f} > true",
        "{f} >= '200'", "{f} < none", "is_vip({f})", "{f} * '3' > 1",
    ],
    "bool": [
        "{f} + 1 > 1", "{f} < 'x'", "{f} * 3 == 3", "{f} > 0", "-{f}", "{f} == 'true'",
        "{f} in 'true'", "{f} / 2 == 0",
    ],
}  # fmt: skip


def type_wrong(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        kinds = [k for k in TYPE_WRONG if k in inputs.values()]
        kind = rnd.choice(kinds)
        fact = fact_of(inputs, (kind,), rnd)
        wrong = rnd.choice(TYPE_WRONG[kind]).format(f=fact)
        return rnd.choice([wrong, f"{cond} and {wrong}", f"{wrong} or {cond}"])

    return with_condition(rnd, text, make)


def deep_condition(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        k = rnd.choice([20, 49, 51, 60, 199, 250, 1000, 2600, 5000])
        fact = fact_of(inputs, ("int", "money"), rnd)
        shapes = [
            "(" * k + cond + ")" * k,
            "not " * k + cond,
            f"{fact} > " + "-" * k + "1",
            " + ".join([fact] * k) + " > 0",
            "(" * k + cond,
            f"{fact} > " + "(1 + " * k + "1" + ")" * k,
            "[" * k + "1" + "]" * k + " == 1",
        ]
        return rnd.choice(shapes)

    return with_condition(rnd, text, make)


def long_condition(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        k = rnd.choice([10, 100, 500, 2000, 20000])
        joiner = rnd.choice([" or ", " and "])
        return joiner.join([f"({cond})"] * k)

    return with_condition(rnd, text, make)


def huge_repetition(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        s = fact_of(inputs, ("str",), rnd)
        n = fact_of(inputs, ("int",), rnd)
        shapes = [
            f"{s} * 1000000000 == ''",
            f"'x' * 100000000 == {s}",
            f"{s} * {n} == 'x'",
            f"{s} * ({n} * 100000) == ''",
            f"({s} + {s}) * 99999 == ''",
            "[1] * 1000000000 == [1]",
            f"{s} * 3 == 'x' and {cond}",
            f"'ab' * 50001 == {s}",
            f"{s} * 50000 * 50000 == ''",
        ]
        return rnd.choice(shapes)

    return with_condition(rnd, text, make)


def division(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        n = fact_of(inputs, ("int", "money"), rnd)
        shapes = [
            f"{n} / 0 > 1",
            f"200000 / {n} > 1",
            f"{n} / ({n} - {n}) > 1",
            f"{n} / 0.0 > 1",
            f"({n} - {n}) / ({n} - {n}) == 1",
            f"{n} / 3 + 0.5 > 1",
            f"{n} * 1e999999 * 1e999999 > 1",
            f"{n} > 1e999999",
        ]
        return rnd.choice(shapes)

    return with_condition(rnd, text, make)


def extreme_number(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        numbers = list(re.finditer(r"\d+(?:\.\d+)?", cond))
        new = rnd.choice(
            ["1e999999", "-0", "0.0000001", "9" * 40, "1e-999999", "1_000", "9" * 5000]
        )
        if not numbers:
            return f"{fact_of(inputs, ('int', 'money'), rnd)} > {new}"
        m = rnd.choice(numbers)
        return cond[: m.start()] + new + cond[m.end() :]

    return with_condition(rnd, text, make)


def calls(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        s = fact_of(inputs, ("str",), rnd)
        n = fact_of(inputs, ("int", "money"), rnd)
        shapes = [
            f"foo({n})", f"len({s}) > 3", f"double({n}, {n}) > 3", "double() > 1",
            f"is_vip({s}, {s})", f"double({n}) > 3", f"is_vip({s})", f"double(x={n}) > 1",
            f"double(*{n}) > 1", "open('/etc/passwd')", "__import__('os')",
        ]  # fmt: skip
        return rnd.choice(shapes)

    return with_condition(rnd, text, make)


def forbidden(rnd: random.Random, text: str) -> str:
    def make(table: str, cond: str, inputs: dict[str, str]) -> str:
        s = fact_of(inputs, ("str",), rnd)
        n = fact_of(inputs, ("int", "money"), rnd)
        shapes = [
            f"{s}[0] == 'a'", f"{s}.upper() == 'A'", "(lambda: 1)()", f"{n} ** 2 > 1",
            f"{n} if {s} else {n}", f"f'{{{s}}}' == 'a'", f"{n}.__class__", "().__class__",
            f"{{1: {n}}}", f"[x for x in {s}]", f"{s} is none", "...", "b'x' == 1", "1j > 0",
            f"{n} // 2 > 1", f"{n} % 2 == 1", f"~{n} > 1", "x := 1",
        ]  # fmt: skip
        return rnd.choice(shapes)

    return with_condition(rnd, text, make)


def broken_toml(rnd: random.Random, text: str) -> str:
    i = rnd.randrange(len(text))
    shapes = [
        text[:i],
        text[:i] + rnd.choice(list("[]{}=\"',\n#.")) + text[i:],
        text.replace(" = ", " ", 1 + rnd.randrange(3)),
        text[:i] + '"' + text[i:],
        text[:i] + "\x00" + text[i:],
        text + "\n[tables\n",
    ]
    return rnd.choice(shapes)


def remove_line(rnd: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    del lines[rnd.randrange(len(lines))]
    return "".join(lines)


def remove_key(rnd: random.Random, text: str) -> str:
    key = rnd.choice(["hit", "outputs", "id", "then", "when", "currency", "facts", "expect", "zh"])
    lines = [
        i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith(key + " = ")
    ]
    victim = rnd.choice(lines)
    return "".join(
        text.splitlines(keepends=True)[:victim] + text.splitlines(keepends=True)[victim + 1 :]
    )


def duplicate_line(rnd: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    i = rnd.randrange(len(lines))
    lines.insert(i, lines[i])
    return "".join(lines)


def duplicate_row(rnd: random.Random, text: str) -> str:
    starts = [
        i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith("[[tables.")
    ]
    k = rnd.randrange(len(starts))
    end = starts[k + 1] if k + 1 < len(starts) else len(text.splitlines(keepends=True))
    block = "".join(text.splitlines(keepends=True)[starts[k] : end])
    times = rnd.choice([1, 2, 50, 400])
    renamed = rnd.random() < 0.5
    extra = "".join(
        block.replace('id = "', f'id = "copy{j}-', 1) if renamed else block for j in range(times)
    )
    return text + "\n" + extra


def change_input_type(rnd: random.Random, text: str) -> str:
    lines = [
        i
        for i, line in enumerate(text.splitlines(keepends=True))
        if re.match(r'^\w+ = "(' + "|".join(INPUT_TYPES) + ')"$', line)
    ]
    i = rnd.choice(lines)
    new = rnd.choice([*INPUT_TYPES, "integer", "float", ""])
    out = text.splitlines(keepends=True)
    out[i] = re.sub(r'"\w*"', f'"{new}"', out[i])
    return "".join(out)


def change_hit(rnd: random.Random, text: str) -> str:
    lines = [
        i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith("hit = ")
    ]
    out = text.splitlines(keepends=True)
    out[rnd.choice(lines)] = f'hit = "{rnd.choice(["first", "unique", "collect", "any", ""])}"\n'
    return "".join(out)


def change_currency(rnd: random.Random, text: str) -> str:
    lines = [
        i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith("currency = ")
    ]
    out = text.splitlines(keepends=True)
    out[rnd.choice(lines)] = f'currency = "{rnd.choice(["USD", "RMB", "cny", "JPY"])}"\n'
    return "".join(out)


def mangle_value(rnd: random.Random, text: str) -> str:
    """A TOML value (then, examples, default) made another type or an odd number."""
    values = list(re.finditer(r"(?<== )(\"[^\"\n]*\"|-?\d+(?:\.\d+)?|true|false)(?=[ ,}\n])", text))
    m = rnd.choice(values)
    new = rnd.choice(
        ['"abc"', '"nan"', '"1e999999"', '"-5"', '"0.001"', "-1", "1e308", "nan", "inf", '"8"',
         "8", "true", "[]", "{}", '{ amount = "x" }', '{ amount = 1 }', "9999999999999999999"]
    )  # fmt: skip
    return text[: m.start()] + new + text[m.end() :]


def deep_toml(rnd: random.Random, text: str) -> str:
    k = rnd.choice([10, 31, 33, 100, 1000, 5000])
    shapes = [
        "x = " + "[" * k + "1" + "]" * k,
        "x = " + "{ a = " * k + "1" + " }" * k,
        "[" + ".".join(["a"] * k) + "]\nb = 1",
    ]
    addition = rnd.choice(shapes)
    # Into a row (an unknown key), an example, or the top level.
    spots = [
        i
        for i, line in enumerate(text.splitlines(keepends=True))
        if line.startswith(("[[tables.", "[tables."))
    ]
    out = text.splitlines(keepends=True)
    if addition.startswith("["):
        return text + "\n" + addition + "\n"
    out.insert(rnd.choice(spots) + 1, addition + "\n")
    return "".join(out)


def rename_output(rnd: random.Random, text: str) -> str:
    lines = [
        i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith("outputs = ")
    ]
    out = text.splitlines(keepends=True)
    out[rnd.choice(lines)] = rnd.choice(
        ['outputs = ["x"]\n', "outputs = []\n", 'outputs = "class"\n']
    )
    return "".join(out)


SINGLE: list[Callable[[random.Random, str], str]] = [
    delete_token, duplicate_token, swap_tokens, replace_token, cond_delete_token,
    cond_swap_tokens, change_operator, number_to_string, string_to_number, swap_fact,
    type_wrong, deep_condition, long_condition, huge_repetition, division, extreme_number,
    calls, forbidden, broken_toml, remove_line, remove_key, duplicate_line, duplicate_row,
    change_input_type, change_hit, change_currency, mangle_value, deep_toml, rename_output,
]  # fmt: skip
# Mutations that keep the TOML readable, so that several can be stacked.
STACKABLE = [f for f in SINGLE if f not in (broken_toml, deep_toml, long_condition, duplicate_row)]


def mutate(case: int) -> tuple[str, str]:
    """Case ``case``: its label and text (every third case stacks two or three mutations)."""
    rnd = random.Random(case)
    first = SINGLE[case % len(SINGLE)]
    text = first(rnd, TEXT)
    label = first.__name__
    if case % 3 == 2:
        for _ in range(rnd.choice([1, 2])):
            again = rnd.choice(STACKABLE)
            try:
                text = again(rnd, text)
            except (IndexError, KeyError, ValueError):
                break  # an earlier mutation removed what this one needs
            label += "+" + again.__name__
    return label, text


# --- evaluating a loaded mutant ----------------------------------------------------------

AMOUNTS = ["0.01", "1", "1000", "199999.99", "200000", "2999999", "3000000", "5000000", "8e6"]


def fact_value(kind: str, table: Table, rnd: random.Random) -> Any:
    """A value of the declared input type ``kind``."""
    if kind == "bool":
        return rnd.random() < 0.5
    if kind == "int":
        return rnd.choice([0, 1, -1, 2, 3, 90, 91, 199, 200, 201, 10**6, rnd.randint(-9, 10**9)])
    if kind == "decimal":
        return Decimal(rnd.choice(["0", "0.5", "-3", "1e6", "199999.99"]))
    if kind == "money":
        return Money(rnd.choice(AMOUNTS), table.currency or "CNY")
    if kind == "str":
        return rnd.choice([*STRINGS, "x", "中文", "a" * 50])
    if kind == "date":
        return date(2020, 1, 1) + timedelta(days=rnd.randrange(3000))
    return [rnd.choice(STRINGS) for _ in range(rnd.randrange(3))]


@attrs.define
class Tally:
    """The figures of a run; ``raw`` and ``silent`` hold the first escape of each case."""

    cases: int = 0
    config_errors: int = 0
    loaded: int = 0
    decisions: int = 0
    refused_facts: int = 0
    rule_errors: Counter[str] = attrs.field(factory=Counter)
    raw: dict[int, str] = attrs.field(factory=dict)
    silent: dict[int, str] = attrs.field(factory=dict)
    unnamed: dict[int, str] = attrs.field(factory=dict)
    labels: Counter[str] = attrs.field(factory=Counter)


def evaluate_all(rules: RuleSet, case: int, label: str, tally: Tally) -> None:
    """Decide every table over generated facts; tally what escapes."""
    rnd = random.Random(case)
    for name, table in rules.tables.items():
        for _ in range(FACT_SETS):
            facts = {n: fact_value(k, table, rnd) for n, k in table.inputs.items()}
            what = f"case {case} ({label}), table {name}, facts {facts!r}"
            try:
                decision = rules.decide(name, facts)
                decision.explain("en")
                decision.explain("zh")
                decision.summary()
                tally.decisions += 1
            except RuleError as exc:
                cause = exc.__cause__
                if cause is None or isinstance(cause, ArithmeticError):
                    tally.rule_errors[type(cause).__name__ if cause else "unique overlap"] += 1
                else:  # a type error the load should have refused
                    tally.silent.setdefault(case, f"{what}: {exc!r} from {cause!r}")
            except ValidationError:
                tally.refused_facts += 1
            except TypeError as exc:  # the same, escaping raw
                tally.silent.setdefault(case, f"{what}: {exc!r}")
                tally.raw.setdefault(case, f"{what}: {exc!r}")
            except Exception as exc:
                tally.raw.setdefault(case, f"{what}: {exc!r}")


def run_case(case: int, tmp_path: Path, tally: Tally) -> None:
    """Load mutant ``case``; evaluate it if it loads."""
    label, text = mutate(case)
    tally.cases += 1
    tally.labels[label.split("+")[0]] += 1
    path = tmp_path / f"mutant-{case}.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        rules = load_rules(path, functions=FUNCTIONS)
    except ConfigError as exc:
        tally.config_errors += 1
        if str(path) not in str(exc):
            tally.unnamed[case] = f"case {case} ({label}): {exc}"
        return
    except Exception as exc:
        tally.raw[case] = f"case {case} ({label}) at load: {exc!r}"
        return
    tally.loaded += 1
    evaluate_all(rules, case, label, tally)


def test_every_mutant_is_refused_at_load_or_evaluates_safely(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """≥ 500 mutants: ConfigError naming the file, or a rule set that never fails by type."""
    tally = Tally()
    for case in range(MUTATIONS):
        run_case(case, tmp_path, tally)
    figures = {
        "mutations": tally.cases,
        "config_errors": tally.config_errors,
        "loaded_and_passed": tally.loaded,
        "decisions": tally.decisions,
        "rule_errors": dict(tally.rule_errors),
        "refused_facts": tally.refused_facts,
        "raw_exceptions": len(tally.raw),
        "silent_type_errors": len(tally.silent),
    }
    for key, value in figures.items():
        record_property(key, value)
    print("\nrule-file mutations:", figures)
    assert tally.cases >= 500
    assert len(tally.labels) == len(SINGLE), "every kind of mutation ran"
    assert not tally.raw, "\n".join(list(tally.raw.values())[:20])
    assert not tally.silent, "\n".join(list(tally.silent.values())[:20])
    assert not tally.unnamed, "\n".join(list(tally.unnamed.values())[:10])
    # Both outcomes occur often: the mutants are neither all broken nor all harmless.
    assert tally.config_errors > tally.cases // 4
    assert tally.loaded > tally.cases // 10
    assert tally.decisions > 0


@pytest.mark.parametrize("case", range(0, MUTATIONS, 97))
def test_mutations_are_deterministic(case: int) -> None:
    """The same case number gives the same mutant (figures can be quoted and rerun)."""
    assert mutate(case) == mutate(case)


def test_mutants_differ() -> None:
    """Nearly every mutant differs from the original and from every other mutant."""
    texts = {mutate(case)[1] for case in range(MUTATIONS)} - {TEXT}
    assert len(texts) >= MUTATIONS * 0.9
