"""Tokenizer and recursive-descent parser for the FHIRPath subset of search parameters.

The AST is made of tuples:

- ``("ident", name)``: an identifier at the start of a path (a type name at the root, a
  child element inside ``where(...)``)
- ``("child", base, name)``: ``base.name``
- ``("call", base, name, args)``: ``base.name(args)``; ``base`` is None for a call at the
  start of a path (``resolve()``)
- ``("index", base, n)``: ``base[n]``
- ``("as", base, type)`` / ``("is", base, type)``: the type operators
- ``("union", [operands])``: ``a | b | ...``
- ``("eq", left, right)``: ``left = right``
- ``("literal", value)``: a string, number or boolean
- ``("paren", expr)``: ``(expr)``
"""

from __future__ import annotations

import re
from typing import Any


class UnsupportedExpression(Exception):
    """The expression is outside the subset this compiler handles (raised at compile time)."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
    | (?P<op>!=|<=|>=|[.()\[\]|=,<>+\-*/&~%$])
    )""",
    re.VERBOSE,
)

_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n"}
_ESCAPES.update({"r": "\r", "t": "\t"})

Node = tuple[Any, ...]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def tokenize(expression: str) -> list[tuple[str, Any]]:
    """Split an expression into ``(kind, value)`` tokens."""
    tokens: list[tuple[str, Any]] = []
    position = 0
    end = len(expression.rstrip())
    while position < end:
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise UnsupportedExpression(f"cannot tokenize at {expression[position:]!r}")
        position = match.end()
        kind = match.lastgroup
        text = match.group(kind)  # type: ignore[arg-type]
        if kind == "string":
            tokens.append(("literal", _unescape(text[1:-1])))
        elif kind == "number":
            tokens.append(("literal", float(text) if "." in text else int(text)))
        elif kind == "ident":
            if text.startswith("`"):
                tokens.append(("ident", text[1:-1]))
            elif text in ("true", "false"):
                tokens.append(("literal", text == "true"))
            else:
                tokens.append(("ident", text))
        else:
            tokens.append(("op", text))
    return tokens


class _Parser:
    def __init__(self, expression: str) -> None:
        self.tokens = tokenize(expression)
        self.position = 0

    def peek(self, offset: int = 0) -> tuple[str, Any] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise UnsupportedExpression("unexpected end of expression")
        self.position += 1
        return token

    def expect(self, op: str) -> None:
        token = self.take()
        if token != ("op", op):
            raise UnsupportedExpression(f"expected {op!r}, got {token[1]!r}")

    def at_op(self, op: str) -> bool:
        return self.peek() == ("op", op)

    def parse(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            raise UnsupportedExpression(f"unsupported operator or token {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def expression(self) -> Node:
        left = self.union()
        if self.at_op("="):
            self.take()
            return ("eq", left, self.union())
        return left

    def union(self) -> Node:
        operands = [self.type_expression()]
        while self.at_op("|"):
            self.take()
            operands.append(self.type_expression())
        return operands[0] if len(operands) == 1 else ("union", operands)

    def type_expression(self) -> Node:
        node = self.postfix()
        while True:
            token = self.peek()
            if token is not None and token[0] == "ident" and token[1] in ("as", "is"):
                self.take()
                node = (token[1], node, self.type_name())
            else:
                return node

    def type_name(self) -> str:
        kind, value = self.take()
        if kind != "ident":
            raise UnsupportedExpression(f"expected a type name, got {value!r}")
        if self.at_op("."):  # FHIR.Quantity / System.String
            raise UnsupportedExpression("qualified type names are not supported")
        return value

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at_op("."):
                self.take()
                kind, name = self.take()
                if kind != "ident":
                    raise UnsupportedExpression(f"expected a name after '.', got {name!r}")
                if self.at_op("("):
                    node = ("call", node, name, self.arguments(name))
                else:
                    node = ("child", node, name)
            elif self.at_op("["):
                self.take()
                kind, index = self.take()
                if kind != "literal" or type(index) is not int:
                    raise UnsupportedExpression("only integer literal indexes are supported")
                self.expect("]")
                node = ("index", node, index)
            else:
                return node

    def arguments(self, name: str) -> list[Node]:
        self.expect("(")
        args: list[Node] = []
        if self.at_op(")"):
            self.take()
            return args
        while True:
            if name in ("as", "ofType"):
                args.append(("type", self.type_name()))
            else:
                args.append(self.expression())
            if self.at_op(","):
                self.take()
                continue
            self.expect(")")
            return args

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "literal":
            return ("literal", value)
        if kind == "ident":
            if self.at_op("("):
                return ("call", None, value, self.arguments(value))
            return ("ident", value)
        if value == "(":
            node = self.expression()
            self.expect(")")
            return ("paren", node)
        raise UnsupportedExpression(f"unsupported token {value!r}")


def parse(expression: str) -> Node:
    """The AST of ``expression``; raises UnsupportedExpression outside the subset's syntax."""
    return _Parser(expression).parse()
