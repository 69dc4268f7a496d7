"""A small evaluator of Bicep expressions, over tree-sitter-bicep's syntax tree.

The infra tests use it to compute what ARM would compute from the real
template text for given parameter values: the Key Vault secret names, the
app settings that name them, the vault's name. It knows only the functions
and the syntax those expressions use and raises ``Unsupported`` for anything
else, so a template change it cannot follow fails loudly instead of being
guessed at. It is not ARM: where ARM's behaviour matters to a test (how
``uriComponent`` encodes, what ``uniqueString`` hashes to) the test says so.

Laziness is deliberate: a variable, a parameter's default or a module
parameter is evaluated only when an expression needs it, as ARM would, so a
test of the secret names never has to supply the function app's settings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_bicep

BICEP = tree_sitter.Language(tree_sitter_bicep.language())
RFC3986_UNRESERVED = "-_.~"  # what .NET's Uri.EscapeDataString leaves as it is
JS_UNRESERVED = "-_.!~*'()"  # what JavaScript's encodeURIComponent leaves as it is


class Unsupported(Exception):
    """The template uses syntax or a function this evaluator does not know."""


class TemplateError(Exception):
    """What ARM would refuse the deployment with (e.g. a property an object does not have)."""


def _text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8")


def _named(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [child for child in node.named_children if child.type != "comment"]


class BicepFile:
    """One .bicep file: its declarations, by kind and name, and their decorators."""

    def __init__(self, path: Path) -> None:
        self.path = path
        tree = tree_sitter.Parser(BICEP).parse(path.read_bytes())
        self.params: dict[str, tree_sitter.Node] = {}
        self.variables: dict[str, tree_sitter.Node] = {}
        self.resources: dict[str, tree_sitter.Node] = {}
        self.modules: dict[str, tree_sitter.Node] = {}
        self.outputs: dict[str, tree_sitter.Node] = {}
        self.decorators: dict[str, list[tree_sitter.Node]] = {}
        pending: list[tree_sitter.Node] = []
        kinds = {
            "parameter_declaration": self.params,
            "variable_declaration": self.variables,
            "resource_declaration": self.resources,
            "module_declaration": self.modules,
            "output_declaration": self.outputs,
        }
        for node in _named(tree.root_node):
            if node.type == "decorators":
                pending = [_named(d)[0] for d in _named(node)]
                continue
            table = kinds.get(node.type)
            if table is not None:
                name = _text(_named(node)[0])
                table[name] = node
                self.decorators[name] = pending
            pending = []

    def decorator(self, declaration: str, name: str) -> tree_sitter.Node | None:
        """The argument of a decorator such as ``@allowed([...])`` on a declaration."""
        for call in self.decorators.get(declaration, []):
            if call.type == "call_expression" and _text(call.child_by_field_name("function")) == name:
                return _named(call.child_by_field_name("arguments"))[0]
        return None

    def param_default(self, name: str) -> tree_sitter.Node | None:
        children = _named(self.params[name])
        return children[2] if len(children) > 2 else None

    def value_node(self, declaration: tree_sitter.Node) -> tree_sitter.Node:
        """The expression after '=' of a variable, resource or module declaration."""
        return _named(declaration)[-1]


def _object_properties(node: tree_sitter.Node) -> dict[str, tree_sitter.Node]:
    if node.type != "object":
        raise Unsupported(f"expected an object literal, got {node.type}: {_text(node)[:80]}")
    properties = {}
    for prop in _named(node):
        if prop.type != "object_property":
            raise Unsupported(f"object member {prop.type}")
        key, value = _named(prop)
        properties[_text(key) if key.type == "identifier" else _string_value(key, None)] = value
    return properties


def _string_value(node: tree_sitter.Node, interpolate: Callable[[tree_sitter.Node], str] | None) -> str:
    """A string literal's value; ``interpolate`` gives the text of each ${...} (None: none allowed)."""
    parts = []
    for child in node.named_children:
        if child.type == "string_content":
            parts.append(_text(child))
        elif child.type == "escape_sequence":
            parts.append(_escape(_text(child)))
        elif child.type == "interpolation" and interpolate is not None:
            parts.append(interpolate(_named(child)[0]))
        else:
            raise Unsupported(f"string part {child.type}")
    return "".join(parts)


def _escape(sequence: str) -> str:
    simple = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}
    if sequence in simple:
        return simple[sequence]
    if sequence.startswith("\\u{"):
        return chr(int(sequence[3:-1], 16))
    raise Unsupported(f"escape {sequence}")


class Evaluation:
    """The values of one file's expressions for one set of parameter values."""

    def __init__(
        self,
        file: BicepFile,
        params: Mapping[str, Any],
        *,
        unreserved: str = RFC3986_UNRESERVED,
        now: datetime | None = None,
        subscription_id: str = "00000000-0000-0000-0000-000000000000",
        tenant_id: str = "33333333-3333-3333-3333-333333333333",
    ) -> None:
        unknown = set(params) - set(file.params)
        if unknown:
            raise Unsupported(f"{file.path.name} has no parameters {sorted(unknown)}")
        self.file = file
        self.given = dict(params)
        self.unreserved = unreserved
        self.now = now or datetime.now(UTC)
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id
        self._variables: dict[str, Any] = {}

    # -- declarations ------------------------------------------------------
    def param(self, name: str) -> Any:
        if name in self.given:
            return self.given[name]
        default = self.file.param_default(name)
        if default is None:
            raise Unsupported(f"parameter {name} has no value and no default")
        return self.eval(default, {})

    def var(self, name: str) -> Any:
        if name not in self._variables:
            self._variables[name] = self.eval(self.file.value_node(self.file.variables[name]), {})
        return self._variables[name]

    def resource_property(self, resource: str, *path: str) -> Any:
        """One property of a (non-loop) resource's body, e.g. ("properties", "publicNetworkAccess")."""
        node = self.file.value_node(self.file.resources[resource])
        if node.type == "if_statement":
            node = _named(node)[-1]
        for key in path:
            node = _object_properties(node)[key]
        return self.eval(node, {})

    def condition(self, declaration: str) -> bool:
        """The `if (...)` of a conditional resource or module."""
        node = self.file.value_node(self.file.resources.get(declaration) or self.file.modules[declaration])
        if node.type != "if_statement":
            raise Unsupported(f"{declaration} has no condition")
        return self.eval(_named(node)[0], {})

    def output(self, name: str) -> Any:
        return self.eval(self.file.value_node(self.file.outputs[name]), {})

    def module_param(self, module: str, name: str) -> Any:
        body = _object_properties(self.file.value_node(self.file.modules[module]))
        return self.eval(_object_properties(body["params"])[name], {})

    def loop_items(self, resource: str, prop: str) -> list[Any]:
        """``prop`` of every item of a resource loop, whatever its ``if``: ARM checks a
        child's name before it evaluates the condition (Azure/bicep#10596)."""
        loop = self.file.value_node(self.file.resources[resource])
        if loop.type != "for_statement":
            raise Unsupported(f"{resource} is not a resource loop")
        variable = _text(loop.child_by_field_name("initializer"))
        collection = self.eval(_loop_collection(loop), {})
        body = loop.child_by_field_name("body")
        if body.type == "if_statement":
            body = _named(body)[-1]
        return [self.eval(_object_properties(body)[prop], {variable: item}) for item in collection]

    # -- expressions -------------------------------------------------------
    def eval(self, node: tree_sitter.Node, scope: dict[str, Any]) -> Any:
        method = getattr(self, f"_eval_{node.type}", None)
        if method is None:
            raise Unsupported(f"{node.type}: {_text(node)[:80]}")
        return method(node, scope)

    def _eval_parenthesized_expression(self, node, scope):
        return self.eval(_named(node)[0], scope)

    def _eval_string(self, node, scope):
        return _string_value(node, lambda expression: _to_string(self.eval(expression, scope)))

    def _eval_number(self, node, scope):
        return int(_text(node))

    def _eval_boolean(self, node, scope):
        return _text(node) == "true"

    def _eval_null(self, node, scope):
        return None

    def _eval_array(self, node, scope):
        return [self.eval(item, scope) for item in _named(node)]

    def _eval_object(self, node, scope):
        return {key: self.eval(value, scope) for key, value in _object_properties(node).items()}

    def _eval_identifier(self, node, scope):
        name = _text(node)
        if name in scope:
            return scope[name]
        if name in self.file.params:
            return self.param(name)
        if name in self.file.variables:
            return self.var(name)
        raise Unsupported(f"the value of {name} (a resource, module or unknown symbol)")

    def _eval_for_statement(self, node, scope):
        variable = node.child_by_field_name("initializer")
        if variable.type != "identifier":
            raise Unsupported("a for-expression with an index")
        collection = self.eval(_loop_collection(node), scope)
        body = node.child_by_field_name("body")
        if body.type == "if_statement":
            raise Unsupported("a filtering for-expression in a variable")
        return [self.eval(body, scope | {_text(variable): item}) for item in collection]

    def _eval_ternary_expression(self, node, scope):
        condition = self.eval(node.child_by_field_name("condition"), scope)
        if not isinstance(condition, bool):
            raise TemplateError(f"a condition that is not a bool: {condition!r}")
        return self.eval(node.child_by_field_name("consequence" if condition else "alternative"), scope)

    def _eval_unary_expression(self, node, scope):
        operator = _text(node.child_by_field_name("operator"))
        value = self.eval(node.child_by_field_name("argument"), scope)
        if operator == "!" and isinstance(value, bool):
            return not value
        if operator == "-" and isinstance(value, int):
            return -value
        raise Unsupported(f"unary {operator} on {value!r}")

    def _eval_binary_expression(self, node, scope):
        operator = _text(node.child_by_field_name("operator"))
        left = self.eval(node.child_by_field_name("left"), scope)
        if operator in ("&&", "||"):
            if not isinstance(left, bool):
                raise TemplateError(f"{operator} on {left!r}")
            if (operator == "&&") != left:  # short-circuit, as ARM's and() and or() do
                return left
            right = self.eval(node.child_by_field_name("right"), scope)
            if not isinstance(right, bool):
                raise TemplateError(f"{operator} on {right!r}")
            return right
        right = self.eval(node.child_by_field_name("right"), scope)
        comparisons: dict[str, Callable[[Any, Any], Any]] = {
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
        }
        if operator not in comparisons:
            raise Unsupported(f"operator {operator}")
        return comparisons[operator](left, right)

    def _eval_member_expression(self, node, scope):
        target_node = node.child_by_field_name("object")
        prop = _text(node.child_by_field_name("property"))
        if target_node.type == "identifier" and _text(target_node) in self.file.resources and prop == "name":
            # a resource's name is what its declaration says (its other properties come from ARM)
            resource = self.file.value_node(self.file.resources[_text(target_node)])
            return self.eval(_object_properties(resource)["name"], {})
        return _lookup(self.eval(target_node, scope), prop)

    def _eval_subscript_expression(self, node, scope):
        target = self.eval(node.child_by_field_name("object"), scope)
        index = self.eval(node.child_by_field_name("index"), scope)
        return _lookup(target, index)

    def _eval_lambda_expression(self, node, scope):
        parameter, body = _named(node)
        if parameter.type != "identifier":
            raise Unsupported("a lambda with more than one parameter")
        return lambda value: self.eval(body, scope | {_text(parameter): value})

    def _eval_call_expression(self, node, scope):
        name = _text(node.child_by_field_name("function"))
        arguments = [self.eval(argument, scope) for argument in _named(node.child_by_field_name("arguments"))]
        function = getattr(self, f"_fn_{name}", None)
        if function is None:
            raise Unsupported(f"function {name}()")
        return function(*arguments)

    # -- functions (ARM's meaning) -------------------------------------------
    def _fn_empty(self, value):
        return value is None or value in ("", [], {})

    def _fn_length(self, value):
        if isinstance(value, str | list | dict):
            return len(value)
        raise TemplateError(f"length() of {value!r}")

    def _fn_trim(self, value):
        return _string(value).strip()

    def _fn_toLower(self, value):
        return _string(value).lower()

    def _fn_split(self, value, delimiter):
        return _string(value).split(_string(delimiter))

    def _fn_join(self, items, delimiter):
        return _string(delimiter).join(_string(item) for item in items)

    def _fn_first(self, value):
        if isinstance(value, list | str):
            return value[0] if value else None
        raise TemplateError(f"first() of {value!r}")

    def _fn_flatten(self, value):
        if not all(isinstance(item, list) for item in value):
            raise TemplateError("flatten() of an array that holds more than arrays")
        return [element for item in value for element in item]

    def _fn_filter(self, items, predicate):
        kept = []
        for item in items:
            result = predicate(item)
            if not isinstance(result, bool):
                raise TemplateError(f"a filter() lambda returned {result!r}")
            if result:
                kept.append(item)
        return kept

    def _fn_contains(self, container, item):
        if isinstance(container, str):
            return _string(item) in container
        if isinstance(container, list | dict):
            return item in container
        raise TemplateError(f"contains() on {container!r}")

    def _fn_uriComponent(self, value):
        return urllib.parse.quote(_string(value), safe=self.unreserved)

    def _fn_union(self, *objects):
        if not all(isinstance(item, dict) for item in objects):
            raise Unsupported("union() of anything but objects")
        merged: dict[str, Any] = {}
        for item in objects:
            merged.update(item)
        return merged

    def _fn_loadJsonContent(self, path):
        return json.loads((self.file.path.parent / _string(path)).read_text(encoding="utf-8"))

    def _fn_subscription(self):
        return {"id": f"/subscriptions/{self.subscription_id}", "subscriptionId": self.subscription_id}

    def _fn_uniqueString(self, *values):
        # Not ARM's algorithm (a 64-bit murmur hash): the same inputs give the same 13 characters.
        digest = hashlib.sha256("|".join(_string(v) for v in values).encode()).digest()
        return "".join("abcdefghijklmnopqrstuvwxyz234567"[b % 32] for b in digest[:13])

    def _fn_environment(self):
        return {  # the Azure public cloud
            "authentication": {"loginEndpoint": "https://login.microsoftonline.com/"},
            "suffixes": {"storage": "core.windows.net", "keyvaultDns": ".vault.azure.net"},
        }

    def _fn_last(self, value):
        if isinstance(value, list | str):
            return value[-1] if value else None
        raise TemplateError(f"last() of {value!r}")

    def _fn_tenant(self):
        return {"tenantId": self.tenant_id}

    def _fn_dateTimeAdd(self, base, duration, *fmt):
        if fmt:
            raise Unsupported("dateTimeAdd() with a format")
        years, rest = _parse_duration(duration)
        start = _parse_datetime(base)
        return _iso(start.replace(year=start.year + years) + rest)

    def _fn_dateTimeToEpoch(self, value):
        return int(_parse_datetime(value).timestamp())

    def _fn_utcNow(self, *fmt):
        if fmt:
            raise Unsupported("utcNow() with a format")
        return self.now.strftime("%Y%m%dT%H%M%SZ")


def _parse_datetime(value: Any) -> datetime:
    """An ISO 8601 date or date-time (or utcNow()'s default yyyyMMddTHHmmssZ), as ARM reads one."""
    text = _string(value)
    for layout in ("%Y%m%dT%H%M%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as bad:
        raise TemplateError(f"The string '{text}' is not a valid date-time") from bad
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_duration(value: Any) -> tuple[int, timedelta]:
    """(calendar years, the rest) of an ISO 8601 duration such as P1Y or PT1H."""
    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", _string(value))
    if not match or not any(match.groups()):
        raise Unsupported(f"duration {value!r}")
    years, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return years, timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _loop_collection(loop: tree_sitter.Node) -> tree_sitter.Node:
    fields = (loop.child_by_field_name("initializer"), loop.child_by_field_name("body"))
    (collection,) = [child for child in _named(loop) if child not in fields]
    return collection


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"a string function applied to {value!r}")
    return value


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _lookup(target: Any, key: Any) -> Any:
    if isinstance(target, dict) and isinstance(key, str):
        if key not in target:
            raise TemplateError(
                f"The language expression property '{key}' doesn't exist, available properties are "
                f"'{', '.join(target)}'."
            )
        return target[key]
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < len(target):
            raise TemplateError(f"index {key} is out of range")
        return target[key]
    raise TemplateError(f"cannot index {type(target).__name__} with {key!r}")


@functools.cache
def bicep_file(path: Path) -> BicepFile:
    return BicepFile(path)
