"""The condition language: a small, safe subset of Python expressions.

Conditions are parsed with Python's own parser (:mod:`ast`), checked against
a whitelist, and compiled into a tree of closures.  Nothing is ever passed to
``eval`` or ``exec``; a name is either a declared fact or a registered
function, so a condition cannot reach any other object.

Allowed: numbers (exact: ``0.1`` is ``Decimal("0.1")``), strings, ``true`` /
``false`` / ``none`` (or ``True``/``False``/``None``), lists and tuples of
literals, ``and`` ``or`` ``not``, comparisons ``== != < <= > >= in not in``
(chained too), ``+ - * /``, and calls of registered functions.
"""

from __future__ import annotations

import ast
import operator
import weakref
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any

from attrs import frozen

__all__ = ["Compiled", "ExpressionError", "compile_condition"]

Facts = Mapping[str, Any]
Node = Callable[[Facts], Any]

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
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_SYMBOLS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip


# Closures standing for literals, and their values (so comparisons can inline them).
_CONSTANT_VALUES: weakref.WeakKeyDictionary[Node, Any] = weakref.WeakKeyDictionary()


def _constant(value: Any) -> Node:
    def node(facts: Facts) -> Any:
        return value

    _CONSTANT_VALUES[node] = value
    return node


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


def compile_condition(
    source: str, facts: Collection[str], functions: Mapping[str, Callable[..., Any]]
) -> Compiled:
    """Compile ``source``; names must be in ``facts`` or ``functions``.

    Raises :class:`ExpressionError` saying what is wrong and where.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("a condition must be a non-empty string")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"does not parse: {exc.msg}", exc.offset) from None
    used: list[str] = []
    node = _Compiler(source.strip(), set(facts), functions, used).visit(tree.body)
    return Compiled(source, tuple(dict.fromkeys(used)), node)


class _Compiler:
    def __init__(
        self,
        source: str,
        facts: set[str],
        functions: Mapping[str, Callable[..., Any]],
        used: list[str],
    ) -> None:
        self.source = source
        self.facts = facts
        self.functions = functions
        self.used = used

    def visit(self, node: ast.expr) -> Node:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(
                f"{type(node).__name__} is not allowed in a condition; use facts, literals, "
                "and/or/not, comparisons, + - * / and registered functions",
                node.col_offset + 1,
            )
        result: Node = method(node)
        return result

    def visit_Constant(self, node: ast.Constant) -> Node:
        value: Any = node.value
        if isinstance(value, float):
            # Exact decimals: 0.1 means Decimal("0.1"), never a binary float.
            value = Decimal(ast.get_source_segment(self.source, node) or repr(value))
        if not isinstance(value, str | int | bool | Decimal) and value is not None:
            raise ExpressionError(f"literal {value!r} is not allowed", node.col_offset + 1)
        return _constant(value)

    def visit_Name(self, node: ast.Name) -> Node:
        name = node.id
        if name in self.facts:
            self.used.append(name)
            return operator.itemgetter(name)
        lowered = name.lower()
        if lowered in _CONSTANTS and name in (lowered, lowered.capitalize()):
            return _constant(_CONSTANTS[lowered])
        known = ", ".join(sorted(self.facts)) or "none"
        raise ExpressionError(f"unknown fact {name!r}; known facts: {known}", node.col_offset + 1)

    def visit_BoolOp(self, node: ast.BoolOp) -> Node:
        parts = [self.visit(v) for v in node.values]
        if len(parts) == 2:
            a, b = parts
            if isinstance(node.op, ast.And):
                return lambda facts: bool(a(facts) and b(facts))
            return lambda facts: bool(a(facts) or b(facts))
        if isinstance(node.op, ast.And):
            # Plain loops: measurably faster than all()/any() over a generator.
            def both(facts: Facts) -> bool:
                for p in parts:  # noqa: SIM110
                    if not p(facts):
                        return False
                return True

            return both

        def either(facts: Facts) -> bool:
            for p in parts:  # noqa: SIM110
                if p(facts):
                    return True
            return False

        return either

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda facts: not operand(facts)
        if isinstance(node.op, ast.USub):
            return lambda facts: -operand(facts)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise ExpressionError("only not, - and + are allowed before a value", node.col_offset + 1)

    def visit_Compare(self, node: ast.Compare) -> Node:
        left = self.visit(node.left)
        ops: list[tuple[Callable[[Any, Any], bool], Node]] = []
        for op, operand in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ExpressionError(
                    f"comparison {type(op).__name__} is not allowed; use "
                    + " ".join(_SYMBOLS.values()),
                    node.col_offset + 1,
                )
            ops.append((fn, self.visit(operand)))
        if len(ops) == 1:
            ((only, right),) = ops
            # Most conditions compare a fact with a literal: skip the literal's call.
            if right in _CONSTANT_VALUES:
                const = _CONSTANT_VALUES[right]
                return lambda facts: only(left(facts), const)
            return lambda facts: only(left(facts), right(facts))

        def chained(facts: Facts) -> bool:
            a = left(facts)
            for test, nxt in ops:
                b = nxt(facts)
                if not test(a, b):
                    return False
                a = b
            return True

        return chained

    def visit_BinOp(self, node: ast.BinOp) -> Node:
        fn = _ARITH.get(type(node.op))
        if fn is None:
            raise ExpressionError("only + - * / are allowed", node.col_offset + 1)
        left, right = self.visit(node.left), self.visit(node.right)
        return lambda facts: fn(left(facts), right(facts))

    def visit_List(self, node: ast.List) -> Node:
        items = [self.visit(e) for e in node.elts]
        return lambda facts: tuple(i(facts) for i in items)

    visit_Tuple = visit_List

    def visit_Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ExpressionError(
                "only registered functions called by name with plain arguments are allowed",
                node.col_offset + 1,
            )
        name = node.func.id
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise ExpressionError(
                f"unknown function {name!r}; registered functions: {known}", node.col_offset + 1
            )
        args = [self.visit(a) for a in node.args]
        return lambda facts: fn(*(a(facts) for a in args))
