"""The condition language: a small, safe subset of Python expressions.

Conditions are parsed with Python's own parser (:mod:`ast`), checked against
a whitelist, type-checked against the table's declared inputs, and compiled
into a tree of closures.  Nothing is ever passed to ``eval`` or ``exec``; a
name is either a declared fact or a registered function, so a condition
cannot reach any other object.

Allowed: numbers (exact: ``0.1`` is ``Decimal("0.1")``), strings, ``true`` /
``false`` / ``none`` (or ``True``/``False``/``None``), lists and tuples of
literals, dates as ``date('2026-01-31')``, ``and`` ``or`` ``not``,
comparisons ``== != < <= > >= in not in``
(chained too), ``+ - * /``, and calls of registered functions.

With ``types`` (what a table's ``inputs`` declare) every operation is checked
when the condition is compiled: comparing a string with a number, arithmetic
on strings, dates or true/false values, ``in`` on a number, a division by a
literal zero, a string repeated past :data:`MAX_REPEAT` and a function called
with the wrong number of arguments are refused there, not at evaluation.
Conditions longer than :data:`MAX_CONDITION_LENGTH` characters or nested
deeper than :data:`MAX_DEPTH` are refused too.
"""

from __future__ import annotations

import ast
import inspect
import operator
from collections.abc import Callable, Collection, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from attrs import frozen

__all__ = [
    "MAX_CONDITION_LENGTH",
    "MAX_DEPTH",
    "MAX_REPEAT",
    "Compiled",
    "ExpressionError",
    "RepeatTooLong",
    "compile_condition",
]

Facts = Mapping[str, Any]
Node = Callable[[Facts], Any]

#: The longest condition, in characters (a longer one belongs in a rule function).
MAX_CONDITION_LENGTH = 10_000
#: How deeply operations may nest in one condition (``a + b + c`` is 3 deep).
MAX_DEPTH = 50
#: The longest string or list ``*`` may build, in characters or items.
MAX_REPEAT = 100_000

_CONSTANTS = {"true": True, "false": False, "none": None, "null": None}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_SYMBOLS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)

# The static types of the checker.  Money is a number by the time a condition
# sees it (converted into the table's currency).
BOOL, NUMBER, STRING, DATE, LIST, NONE, ANY = (
    "bool", "number", "string", "date", "list", "none", "any",
)  # fmt: skip
_INPUT_KINDS = {
    "bool": BOOL, "int": NUMBER, "decimal": NUMBER, "money": NUMBER, "str": STRING,
    "date": DATE, "list": LIST,
}  # fmt: skip
_ORDERED = (NUMBER, STRING, DATE)
_ANNOTATIONS: dict[object, str] = {
    bool: BOOL, "bool": BOOL, int: NUMBER, "int": NUMBER, Decimal: NUMBER, "Decimal": NUMBER,
    str: STRING, "str": STRING,
}  # fmt: skip


def _divide(a: Any, b: Any) -> Any:
    # Exact: 3 / 2 is Decimal("1.5"), never the binary float 1.5.
    if a.__class__ is int:
        a = Decimal(a)
    if b.__class__ is int:
        b = Decimal(b)
    return a / b


class RepeatTooLong(OverflowError):
    """A string or list repeated past :data:`MAX_REPEAT` at evaluation."""


def _repeat(a: Any, b: Any) -> Any:
    # ``*`` where a side may be a string or list: the size is checked first.
    seq, count = (a, b) if isinstance(a, str | list | tuple) else (b, a)
    if (
        isinstance(seq, str | list | tuple)
        and isinstance(count, int)
        and len(seq) * count > MAX_REPEAT
    ):
        raise RepeatTooLong(
            f"a {type(seq).__name__} of length {len(seq)} repeated {count} times is longer "
            f"than {MAX_REPEAT:,}"
        )
    return a * b


_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}
_VERBS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}


class ExpressionError(ValueError):
    """A condition that does not parse or uses something not allowed; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        super().__init__(message if column is None else f"{message} (at column {column})")


@frozen
class Compiled:
    """A compiled condition: call it with the facts; ``names`` are the facts it reads."""

    source: str
    names: tuple[str, ...]
    evaluate: Node

    def __call__(self, facts: Facts) -> bool:
        return bool(self.evaluate(facts))


class _Typed(NamedTuple):
    """A compiled part: its closure, its static type and, for a literal, its value."""

    node: Node
    kind: str
    const: bool = False
    value: Any = None
    items: frozenset[str] = frozenset()  # the types in a list literal


def compile_condition(
    source: str,
    facts: Collection[str],
    functions: Mapping[str, Callable[..., Any]],
    *,
    types: Mapping[str, str] | None = None,
) -> Compiled:
    """Compile ``source``; names must be in ``facts`` or ``functions``.

    ``types`` maps facts to their declared input types (``"int"``,
    ``"str"``, ...: see :data:`reqmgmt.rules.INPUT_TYPES`); with it every
    operation is type-checked.  Raises :class:`ExpressionError` saying what
    is wrong and where.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("a condition must be a non-empty string")
    text = source.strip()
    if len(text) > MAX_CONDITION_LENGTH:
        raise ExpressionError(
            f"is {len(text):,} characters long; at most {MAX_CONDITION_LENGTH:,} are allowed "
            "(split it into rows, or use a rule function)"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"does not parse: {exc.msg}", exc.offset) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"is nested too deeply to parse; at most {MAX_DEPTH} levels are allowed"
        ) from None
    except ValueError as exc:  # e.g. a NUL character
        raise ExpressionError(f"does not parse: {exc}") from None
    known = dict.fromkeys(facts, ANY)
    if types is not None:
        for name, kind in types.items():
            if name in known and isinstance(kind, str):
                known[name] = _INPUT_KINDS.get(kind, ANY)
    used: list[str] = []
    typed = _Compiler(text, known, functions, used).visit(tree.body)
    return Compiled(source, tuple(dict.fromkeys(used)), typed.node)


class _Compiler:
    def __init__(
        self,
        source: str,
        facts: Mapping[str, str],
        functions: Mapping[str, Callable[..., Any]],
        used: list[str],
    ) -> None:
        self.source = source
        self.facts = facts
        self.functions = functions
        self.used = used
        self.depth = 0

    def visit(self, node: ast.expr) -> _Typed:
        # Counted here, so neither compiling nor evaluating recurses past the limit.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"is nested more than {MAX_DEPTH} levels deep; split it into rows "
                "or use a rule function",
                node.col_offset + 1,
            )
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(
                f"{type(node).__name__} is not allowed in a condition; use facts, literals, "
                "and/or/not, comparisons, + - * / and registered functions",
                node.col_offset + 1,
            )
        result: _Typed = method(node)
        self.depth -= 1
        return result

    def _show(self, node: ast.expr, typed: _Typed) -> str:
        """How an operand is named in a message: ``priority (a string)``."""
        text = ast.get_source_segment(self.source, node) or type(node).__name__
        if len(text) > 40:
            text = text[:37] + "..."
        return f"{text} (a {typed.kind})"

    def visit_Constant(self, node: ast.Constant) -> _Typed:
        value: Any = node.value
        if isinstance(value, float):
            # Exact decimals: 0.1 means Decimal("0.1"), never a binary float.
            segment = ast.get_source_segment(self.source, node) or repr(value)
            try:
                value = Decimal(segment)
            except InvalidOperation:
                raise ExpressionError(
                    f"number {segment!r} is not allowed", node.col_offset + 1
                ) from None
        if not isinstance(value, str | int | bool | Decimal) and value is not None:
            raise ExpressionError(f"literal {value!r} is not allowed", node.col_offset + 1)
        return _literal(value)

    def visit_Name(self, node: ast.Name) -> _Typed:
        name = node.id
        kind = self.facts.get(name)
        if kind is not None:
            self.used.append(name)
            return _Typed(operator.itemgetter(name), kind)
        lowered = name.lower()
        if lowered in _CONSTANTS and name in (lowered, lowered.capitalize()):
            return _literal(_CONSTANTS[lowered])
        known = ", ".join(sorted(self.facts)) or "none"
        raise ExpressionError(f"unknown fact {name!r}; known facts: {known}", node.col_offset + 1)

    def visit_BoolOp(self, node: ast.BoolOp) -> _Typed:
        # and/or/not read any value as true or false (Python's truthiness):
        # that never fails, so any type is accepted.
        parts = [self.visit(v).node for v in node.values]
        if len(parts) == 2:
            a, b = parts
            if isinstance(node.op, ast.And):
                return _Typed(lambda facts: bool(a(facts) and b(facts)), BOOL)
            return _Typed(lambda facts: bool(a(facts) or b(facts)), BOOL)
        if isinstance(node.op, ast.And):
            # Plain loops: measurably faster than all()/any() over a generator.
            def both(facts: Facts) -> bool:
                for p in parts:  # noqa: SIM110
                    if not p(facts):
                        return False
                return True

            return _Typed(both, BOOL)

        def either(facts: Facts) -> bool:
            for p in parts:  # noqa: SIM110
                if p(facts):
                    return True
            return False

        return _Typed(either, BOOL)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _Typed:
        typed = self.visit(node.operand)
        operand = typed.node
        if isinstance(node.op, ast.Not):
            return _Typed(lambda facts: not operand(facts), BOOL)
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise ExpressionError(
                "only not, - and + are allowed before a value", node.col_offset + 1
            )
        if typed.kind not in (NUMBER, ANY):
            raise ExpressionError(
                f"{'-' if isinstance(node.op, ast.USub) else '+'} needs a number: "
                f"{self._show(node.operand, typed)}",
                node.col_offset + 1,
            )
        if isinstance(node.op, ast.UAdd):
            return typed
        if typed.const:
            return _literal(-typed.value)
        return _Typed(lambda facts: -operand(facts), NUMBER)

    def visit_Compare(self, node: ast.Compare) -> _Typed:
        left = self.visit(node.left)
        ops: list[tuple[Callable[[Any, Any], bool], _Typed]] = []
        before, before_ast = left, node.left
        for op, operand in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ExpressionError(
                    f"comparison {type(op).__name__} is not allowed; use "
                    + " ".join(_SYMBOLS.values()),
                    node.col_offset + 1,
                )
            right = self.visit(operand)
            self._check_compare(op, before, before_ast, right, operand)
            ops.append((fn, right))
            before, before_ast = right, operand
        lnode = left.node
        if len(ops) == 1:
            ((only, right),) = ops
            rnode = right.node
            # Most conditions compare a fact with a literal: skip the literal's call.
            if right.const:
                const = right.value
                return _Typed(lambda facts: only(lnode(facts), const), BOOL)
            return _Typed(lambda facts: only(lnode(facts), rnode(facts)), BOOL)
        chain = [(test, nxt.node) for test, nxt in ops]

        def chained(facts: Facts) -> bool:
            a = lnode(facts)
            for test, nxt in chain:
                b = nxt(facts)
                if not test(a, b):
                    return False
                a = b
            return True

        return _Typed(chained, BOOL)

    def _check_compare(
        self, op: ast.cmpop, a: _Typed, a_ast: ast.expr, b: _Typed, b_ast: ast.expr
    ) -> None:
        ka, kb = a.kind, b.kind
        symbol = _SYMBOLS[type(op)]
        column = a_ast.col_offset + 1
        if isinstance(op, ast.In | ast.NotIn):
            if kb == LIST:
                if a.kind in (ANY, NONE) or not b.items or b.items & {a.kind, ANY, NONE}:
                    return
                held = " and ".join(sorted(b.items))
                raise ExpressionError(
                    f"{self._show(a_ast, a)} {symbol} a list of {held} values is "
                    f"{'never' if symbol == 'in' else 'always'} true: compare like with like",
                    column,
                )
            if kb == ANY or (kb == STRING and ka in (STRING, ANY)):
                return
            if kb == STRING:
                raise ExpressionError(
                    f"'{symbol}' a string needs a string on its left, not {self._show(a_ast, a)}",
                    column,
                )
            raise ExpressionError(
                f"'{symbol}' needs a list or a string on its right, not {self._show(b_ast, b)}",
                column,
            )
        if isinstance(op, _ORDERING):
            if (ka == kb and ka in _ORDERED) or (
                ANY in (ka, kb) and ka in (*_ORDERED, ANY) and kb in (*_ORDERED, ANY)
            ):
                return
            raise ExpressionError(
                f"cannot compare {self._show(a_ast, a)} with {self._show(b_ast, b)} using "
                f"{symbol}; only numbers with numbers, strings with strings and dates with "
                "dates have an order",
                column,
            )
        if ka == kb or ANY in (ka, kb) or NONE in (ka, kb):
            return
        raise ExpressionError(
            f"{self._show(a_ast, a)} {symbol} {self._show(b_ast, b)} compares a {ka} with a "
            f"{kb}: it is {'never' if symbol == '==' else 'always'} true; compare like with like",
            column,
        )

    def visit_BinOp(self, node: ast.BinOp) -> _Typed:
        fn = _ARITH.get(type(node.op))
        if fn is None:
            raise ExpressionError("only + - * / are allowed", node.col_offset + 1)
        left, right = self.visit(node.left), self.visit(node.right)
        kind = self._arith_kind(node, left, right)
        if fn is operator.mul and kind != NUMBER:
            fn = _repeat
        lnode, rnode = left.node, right.node
        return _Typed(lambda facts: fn(lnode(facts), rnode(facts)), kind)

    def _arith_kind(self, node: ast.BinOp, a: _Typed, b: _Typed) -> str:
        """The type of ``a op b``, or :class:`ExpressionError` when it cannot work."""
        ka, kb = a.kind, b.kind
        op = type(node.op)
        kinds = {ka, kb}
        if op is ast.Div and b.const and not isinstance(b.value, bool) and b.value == 0:
            raise ExpressionError("division by zero", node.right.col_offset + 1)
        if kinds <= {NUMBER, ANY}:
            # An unknown side of * may be a string at evaluation: its size is checked there.
            return ANY if op is ast.Mult and ANY in kinds else NUMBER
        if op is ast.Add and kinds <= {STRING, ANY}:
            return STRING
        if op is ast.Mult and kinds <= {STRING, NUMBER, ANY} and kinds != {STRING}:
            if ka == STRING:
                seq, count = a, b
            elif kb == STRING:
                seq, count = b, a
            else:
                return ANY
            self._check_repeat(node, seq, count)
            return STRING
        hint = (
            "+ joins two strings and string * number repeats one"
            if STRING in kinds
            else "arithmetic works on numbers"
        )
        raise ExpressionError(
            f"cannot {_VERBS[op]} {self._show(node.left, a)} and "
            f"{self._show(node.right, b)}; {hint}",
            node.col_offset + 1,
        )

    def _check_repeat(self, node: ast.BinOp, seq: _Typed, count: _Typed) -> None:
        """Refuse at compile time a repetition whose size is already too large."""
        if not count.const or not isinstance(count.value, int):
            return
        if isinstance(count.value, bool):
            return
        length = len(seq.value) if seq.const else 1
        if length * count.value > MAX_REPEAT:
            raise ExpressionError(
                f"repeating a string {count.value:,} times is longer than {MAX_REPEAT:,} "
                "characters",
                node.col_offset + 1,
            )

    def visit_List(self, node: ast.List | ast.Tuple) -> _Typed:
        typed = [self.visit(e) for e in node.elts]
        items = [t.node for t in typed]
        kinds = frozenset(t.kind for t in typed)
        if all(t.const for t in typed):
            return _literal(tuple(t.value for t in typed), kinds)
        return _Typed(lambda facts: tuple(i(facts) for i in items), LIST, items=kinds)

    visit_Tuple = visit_List

    def visit_Call(self, node: ast.Call) -> _Typed:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ExpressionError(
                "only registered functions called by name with plain arguments are allowed",
                node.col_offset + 1,
            )
        name = node.func.id
        fn = self.functions.get(name)
        if fn is None and name == "date":
            return self._date(node)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise ExpressionError(
                f"unknown function {name!r}; registered functions: {known}", node.col_offset + 1
            )
        if not callable(fn):
            raise ExpressionError(
                f"registered function {name!r} is not callable (it is {type(fn).__name__})",
                node.col_offset + 1,
            )
        typed = [self.visit(a) for a in node.args]
        kind = self._check_call(name, fn, node, typed)
        args = [t.node for t in typed]
        return _Typed(lambda facts: fn(*[a(facts) for a in args]), kind)

    def _date(self, node: ast.Call) -> _Typed:
        """``date('2026-01-31')``: a date literal (a registered ``date`` function wins)."""
        arg = node.args[0] if len(node.args) == 1 else None
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str):
            raise ExpressionError(
                "date(...) takes one string such as '2026-01-31'", node.col_offset + 1
            )
        try:
            return _literal(date.fromisoformat(arg.value))
        except ValueError:
            raise ExpressionError(
                f"date({arg.value!r}) is not a date YYYY-MM-DD", node.col_offset + 1
            ) from None

    def _check_call(
        self, name: str, fn: Callable[..., Any], node: ast.Call, typed: list[_Typed]
    ) -> str:
        """Check arguments against the signature where it is known; the result's type.

        Parameters and results annotated ``bool``, ``int``, ``Decimal`` or
        ``str`` are checked like facts of those types.
        """
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins have none: checked at evaluation
            return ANY
        count = len(typed)
        try:
            bound = signature.bind(*typed)
        except TypeError as exc:
            raise ExpressionError(
                f"{name}() cannot be called with {count} argument{'s' * (count != 1)}: {exc}; "
                f"its signature is {name}{signature}",
                node.col_offset + 1,
            ) from None
        position = 0
        for param, given in bound.arguments.items():
            declared = signature.parameters[param]
            wanted = _annotated(declared.annotation)
            many = declared.kind is inspect.Parameter.VAR_POSITIONAL
            for arg in given if many else (given,):
                where = node.args[position]
                position += 1
                if wanted in (ANY, arg.kind) or arg.kind in (ANY, NONE):
                    continue
                raise ExpressionError(
                    f"{name}() takes its parameter {param!r} as a {wanted}, "
                    f"not {self._show(where, arg)}",
                    where.col_offset + 1,
                )
        return _annotated(signature.return_annotation)


def _annotated(annotation: object) -> str:
    """The checker's type for a simple annotation (a class or its name), else any."""
    try:
        return _ANNOTATIONS.get(annotation, ANY)
    except TypeError:  # an unhashable annotation
        return ANY


def _literal(value: Any, items: frozenset[str] = frozenset()) -> _Typed:
    def node(facts: Facts) -> Any:
        return value

    if value is None:
        kind = NONE
    elif isinstance(value, bool):
        kind = BOOL
    elif isinstance(value, int | Decimal):
        kind = NUMBER
    elif isinstance(value, str):
        kind = STRING
    elif isinstance(value, date):
        kind = DATE
    else:
        kind = LIST
    return _Typed(node, kind, True, value, items)
