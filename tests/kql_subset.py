"""Runs the workbook's and the alert rules' KQL over rows in memory, the way Log Analytics would.

Only the part of KQL those queries use: a table name, then ``extend``,
``where``, ``summarize`` (``arg_max``, ``count``, ``make_set``, ``by``),
``project`` and ``top``; the functions ``parse_json``, ``extract``,
``tostring``, ``isempty``, ``isnotempty`` and ``strcat``; ``==``, ``!=``,
``in``, ``and``, ``or``, ``not()``. Anything else raises ``Unsupported``, so
a query change the tests cannot follow fails instead of being misread.
``extract`` uses Python's ``re``: for the patterns here (no look-around,
no flags) it matches as RE2 does, including ``.`` and ``[^\\n]`` stopping
at a line break.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN = re.compile(
    r"""\s*(?:
      (?P<verbatim>@'[^']*'|@"[^"]*")
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|!in\b|[|(),=.\[\]])
    )""",
    re.VERBOSE,
)


class Unsupported(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise Unsupported(f"cannot read {text[position:position + 40]!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "verbatim":
            tokens.append(("str", value[2:-1]))
        elif kind == "string" and value.startswith('"'):
            tokens.append(("str", json.loads(value)))
        elif kind == "string":
            tokens.append(("str", value[1:-1].replace("\\'", "'").replace("\\\\", "\\")))
        elif kind == "number":
            tokens.append(("num", float(value) if "." in value else int(value)))
        else:
            tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", None)

    def take(self, value: Any = None) -> tuple[str, Any]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise Unsupported(f"expected {value!r}, got {token[1]!r}")
        self.at += 1
        return token

    def done(self) -> bool:
        return self.peek()[0] == "end"

    # expressions, as nested tuples
    def expression(self):
        left = self.conjunction()
        while self.peek() == ("name", "or"):
            self.take()
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self):
        left = self.comparison()
        while self.peek() == ("name", "and"):
            self.take()
            left = ("and", left, self.comparison())
        return left

    def comparison(self):
        left = self.primary()
        kind, value = self.peek()
        if value in ("==", "!="):
            self.take()
            return (value, left, self.primary())
        if (kind, value) in (("name", "in"), ("op", "!in")):
            self.take()
            self.take("(")
            items = [self.primary()]
            while self.peek()[1] == ",":
                self.take()
                items.append(self.primary())
            self.take(")")
            return ("in" if value == "in" else "!in", left, items)
        return left

    def primary(self):
        kind, value = self.take()
        if kind in ("str", "num"):
            node = ("literal", value)
        elif value == "(":
            node = self.expression()
            self.take(")")
        elif kind == "name" and self.peek()[1] == "(":
            self.take("(")
            arguments = []
            while self.peek()[1] != ")":
                arguments.append(self.expression())
                if self.peek()[1] == ",":
                    self.take()
            self.take(")")
            node = ("call", value, arguments)
        elif kind == "name":
            node = ("column", value)
        else:
            raise Unsupported(f"unexpected {value!r}")
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                node = ("member", node, self.take()[1])
            else:
                key = self.take()[1]
                self.take("]")
                node = ("member", node, key)
        return node

    def assignment(self):
        """``name = expression``, or an expression whose column keeps its name."""
        if self.peek()[0] == "name" and self.peek(1)[1] == "=":
            name = self.take()[1]
            self.take("=")
            return name, self.expression()
        expression = self.expression()
        if expression[0] == "column":
            return expression[1], expression
        if expression[0] == "call":
            return expression[1], expression
        raise Unsupported("an unnamed computed column")

    def assignments(self):
        items = [self.assignment()]
        while self.peek()[1] == ",":
            self.take()
            items.append(self.assignment())
        return items


def _value(node, row: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "literal":
        return node[1]
    if kind == "column":
        if node[1] not in row:
            raise Unsupported(f"no column {node[1]}")
        return row[node[1]]
    if kind == "member":
        target = _value(node[1], row)
        return target.get(node[2]) if isinstance(target, dict) else None
    if kind == "or":
        return bool(_value(node[1], row)) or bool(_value(node[2], row))
    if kind == "and":
        return bool(_value(node[1], row)) and bool(_value(node[2], row))
    if kind in ("==", "!="):
        equal = _value(node[1], row) == _value(node[2], row)
        return equal if kind == "==" else not equal
    if kind in ("in", "!in"):
        found = _value(node[1], row) in [_value(item, row) for item in node[2]]
        return found if kind == "in" else not found
    if kind == "call":
        return _call(node[1], [_value(argument, row) for argument in node[2]])
    raise Unsupported(kind)


def _call(name: str, arguments: list[Any]) -> Any:
    if name == "extract":
        pattern, group, text = arguments
        match = re.search(pattern, text or "")
        return match.group(group) if match else ""
    if name == "parse_json":
        try:
            return json.loads(arguments[0]) if arguments[0] else None
        except ValueError:
            return arguments[0]
    if name == "tostring":
        value = arguments[0]
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if name == "isempty":
        return arguments[0] in (None, "")
    if name == "isnotempty":
        return arguments[0] not in (None, "")
    if name == "strcat":
        return "".join(_call("tostring", [argument]) for argument in arguments)
    if name == "not":
        return not arguments[0]
    raise Unsupported(f"function {name}()")


def _split_stages(query: str) -> list[str]:
    stages, depth, current, quote = [], 0, [], None
    for index, char in enumerate(query):
        if quote:
            current.append(char)
            if char == quote and query[index - 1] != "\\":
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            stages.append("".join(current))
            current = []
            continue
        current.append(char)
    stages.append("".join(current))
    return [stage.strip() for stage in stages]


def run(query: str, tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows ``query`` returns over ``tables`` (name -> rows)."""
    first, *stages = _split_stages(query)
    if first not in tables:
        raise Unsupported(f"table {first}")
    rows = [dict(row) for row in tables[first]]
    for stage in stages:
        operator, _, rest = stage.partition(" ")
        parser = _Parser(_tokens(rest))
        if operator == "extend":
            for name, expression in parser.assignments():
                for row in rows:
                    row[name] = _value(expression, row)
        elif operator == "where":
            condition = parser.expression()
            rows = [row for row in rows if _value(condition, row)]
        elif operator == "project":
            columns = parser.assignments()
            rows = [{name: _value(expression, row) for name, expression in columns} for row in rows]
        elif operator == "summarize":
            rows = _summarize(parser, rows)
        elif operator == "top":
            count = parser.take()[1]
            parser.take("by")
            column = parser.take()[1]
            descending = parser.done() or parser.take()[1] == "desc"
            rows = sorted(rows, key=lambda row: row[column], reverse=descending)[:count]
        else:
            raise Unsupported(f"operator {operator}")
        if not parser.done():
            raise Unsupported(f"left over in {stage!r}: {parser.tokens[parser.at:]}")
    return rows


def _summarize(parser: _Parser, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    aggregates = []
    while parser.peek() != ("name", "by"):
        name, expression = parser.assignment()
        aggregates.append((name, expression))
        if parser.peek()[1] == ",":
            parser.take()
    parser.take("by")
    keys = parser.assignments()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(_value(expression, row) for _, expression in keys), []).append(row)
    result = []
    for key, members in groups.items():
        out = {name: value for (name, _), value in zip(keys, key, strict=True)}
        for name, (kind, function, arguments) in aggregates:
            if kind != "call":
                raise Unsupported("an aggregate that is not a function")
            if function == "count":
                out[name] = len(members)
            elif function == "make_set":
                out[name] = sorted({_value(arguments[0], row) for row in members})
            elif function == "arg_max":
                by, *columns = arguments
                latest = max(members, key=lambda row: _value(by, row))
                out[by[1]] = _value(by, latest)
                for column in columns:
                    out[column[1]] = _value(column, latest)
            else:
                raise Unsupported(f"aggregate {function}()")
        result.append(out)
    return result
