"""The bridge's import graph: each module's layer, what it imports, imports that run upward, and cycles.

The layers, bottom to top (an import only ever points down or sideways, never up):

1. pure: data, rules and formats, no I/O (model, jsonbody, auth, settings, lifecycle, ...);
2. adapters, one per remote service (Key Vault, Syskit Point, Tables, queues, the desks' APIs);
3. the runtime, which builds each adapter once and hands collaborators in;
4. use cases (intake, attempt, the retry worker, events, write-back, reconciler, operator);
5. entry points (handlers, the commands, doctor, ``function_app``).

Every import is found with :mod:`ast`: at module level and inside functions, ``import x`` and
``from x import y``, relative ones too, and those under ``if TYPE_CHECKING:`` (they are dependencies,
even if they do not run). ``tests/test_layers.py`` checks the same table against the same graph.

    .venv/bin/python -m devtools.imports [--root PATH] [--json]

``--root`` reads another checkout (``git worktree add /tmp/old <commit>``): a module that is not in
the table is shown with layer ``?``.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PURE, ADAPTER, RUNTIME, USE_CASE, ENTRY = 1, 2, 3, 4, 5
LAYER_NAMES = {PURE: "pure", ADAPTER: "adapter", RUNTIME: "runtime", USE_CASE: "use case", ENTRY: "entry point"}

# Every module of deskbridge/ (and function_app), and its layer. A new module must be added here.
LAYERS: dict[str, int] = {
    "deskbridge": PURE,
    "deskbridge.model": PURE,
    "deskbridge.jsonbody": PURE,
    "deskbridge.callback_url": PURE,
    "deskbridge.auth": PURE,
    "deskbridge.settings": PURE,
    "deskbridge.lifecycle": PURE,
    "deskbridge.point_status": PURE,  # reading Syskit Point's request status answer
    "deskbridge.clock": PURE,
    "deskbridge.retention": PURE,  # what erasing a record's people removes and keeps
    "deskbridge.retries": PURE,  # the retry schedule and the queue messages' form
    "deskbridge.telemetry": PURE,
    "deskbridge.causes": PURE,
    "deskbridge.errors": PURE,
    "deskbridge.expiry": PURE,  # expiry dates and the warning after each Key Vault read
    "deskbridge.desks": PURE,
    "deskbridge.desks.generic": PURE,
    "deskbridge.desks.jira": PURE,
    "deskbridge.desks.servicenow": PURE,
    "deskbridge.secrets": ADAPTER,
    "deskbridge.point": ADAPTER,
    "deskbridge.ledger": ADAPTER,
    "deskbridge.queues": ADAPTER,
    "deskbridge.arm": ADAPTER,  # Azure Resource Manager, as the deployer (setup, doctor --deployed)
    "deskbridge.desks.jira_client": ADAPTER,
    "deskbridge.desks.servicenow_client": ADAPTER,
    "deskbridge.desks.callback": ADAPTER,
    "deskbridge.runtime": RUNTIME,
    "deskbridge.answers": USE_CASE,
    "deskbridge.executor": USE_CASE,
    "deskbridge.attempt": USE_CASE,
    "deskbridge.intake": USE_CASE,
    "deskbridge.worker": USE_CASE,
    "deskbridge.events": USE_CASE,
    "deskbridge.writeback": USE_CASE,
    "deskbridge.outcomes": USE_CASE,  # asking Syskit Point by request id, overdue requests
    "deskbridge.reconciler": USE_CASE,
    "deskbridge.operator": USE_CASE,
    "deskbridge.deployment": USE_CASE,  # setup's steps
    "deskbridge.admin": USE_CASE,  # the operator routes' answers (on deskbridge.operator)
    "deskbridge.checks": ENTRY,
    "deskbridge.doctor": ENTRY,
    "deskbridge.desk_doctor": ENTRY,
    "deskbridge.cli": ENTRY,
    "deskbridge.setup_command": ENTRY,
    "deskbridge.handlers": ENTRY,
    "deskbridge.__main__": ENTRY,
    "function_app": ENTRY,
}

# Where modules stood before issue 15 (--former), for reading older checkouts: service held the use
# cases, demo was a command in the package, and retries and the desk modules held their clients too.
FORMER_LAYERS: dict[str, int] = {
    "deskbridge.service": USE_CASE,
    "deskbridge.demo": ENTRY,
    "deskbridge.expiry": USE_CASE,
    "deskbridge.retries": ADAPTER,
    "deskbridge.desks.jira": ADAPTER,
    "deskbridge.desks.servicenow": ADAPTER,
}

# Outside the deployment (.funcignore leaves them out): nothing in it may import them.
NOT_DEPLOYED = ("devtools", "tests", "bench")
# The one exception: a command the CLI offers only when its module can be found (a checkout, not a
# deployment). It is looked up by name, never imported by an import statement.
WHEN_PRESENT: dict[str, set[str]] = {"deskbridge.cli": {"devtools.demo"}}
# Only the handlers (and function_app's table) know Azure Functions types.
FUNCTIONS_SDK = "azure.functions"
FUNCTIONS_SDK_USERS = ("deskbridge.handlers", "function_app")
# The remote services' SDKs and HTTP client belong to the adapters and the runtime that builds them:
# pure code and the use cases import none of them.
SERVICE_SDKS = ("azure", "requests", "urllib3", "msal")
SDK_FREE_LAYERS = (PURE, USE_CASE)


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (a package's __init__ when a name comes from it)
    line: int
    in_function: bool
    type_only: bool = False  # under ``if TYPE_CHECKING:``
    by_name: bool = False  # a module's name in a string (importlib.import_module, a list of plugins)


@dataclass
class Module:
    name: str
    path: Path
    imports: list[Import] = field(default_factory=list)  # the bridge's own modules
    external: list[Import] = field(default_factory=list)  # everything else, as written
    layer: int | None = None


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path) -> dict[str, Path]:
    """deskbridge's modules and function_app, by dotted name."""
    found = {module_name(root, path): path for path in sorted((root / "deskbridge").rglob("*.py"))}
    if (root / "function_app.py").is_file():
        found["function_app"] = root / "function_app.py"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(node: ast.ImportFrom, name: str, path: Path) -> str:
    """The absolute module named by a ``from`` import (relative ones resolved against the module's package)."""
    if not node.level:
        return node.module or ""
    package = _package_of(name, path).split(".") if _package_of(name, path) else []
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*base, *([node.module] if node.module else [])])


_DOTTED = re.compile(r"(deskbridge|devtools|tests|bench)(\.[A-Za-z_][A-Za-z0-9_]*)+|function_app")
_LOGGER_CALLS = ("logger", "getLogger")


def _logger_names(tree: ast.AST) -> set[int]:
    """ids of the string constants that name a logger (``telemetry.logger("deskbridge.events")``), not a module."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in _LOGGER_CALLS:
                found.update(id(arg) for arg in node.args)
    return found


def read_imports(name: str, path: Path, known: set[str]) -> Module:
    """Every import of one module, wherever it stands; also modules it names in a string (loaded by name)."""
    module = Module(name, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    loggers = _logger_names(tree)

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in loggers:
            if _DOTTED.fullmatch(node.value) and (node.value in known or node.value.split(".")[0] != "deskbridge"):
                _add(module, node.value, known, node.lineno, in_function, type_only, by_name=True)
        if isinstance(node, ast.Import):
            for alias in node.names:
                _add(module, alias.name, known, node.lineno, in_function, type_only)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, name, path)
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                # ``from deskbridge import runtime`` imports the module deskbridge.runtime.
                _add(module, submodule if submodule in known else base, known, node.lineno, in_function, type_only)
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            guarded = type_only or (isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body)
            visit(child, nested, guarded)

    visit(tree, False, False)
    return module


def _add(
    module: Module, target: str, known: set[str], line: int, in_function: bool, type_only: bool, by_name: bool = False
) -> None:
    if not target or target == module.name:
        return
    entry = Import(target, line, in_function, type_only, by_name)
    if target in known or target.split(".")[0] == "deskbridge":
        module.imports.append(entry)
    else:
        module.external.append(entry)


def graph(root: Path = ROOT, layers: dict[str, int] | None = None) -> dict[str, Module]:
    """Every module of the checkout at ``root`` with its imports, placed by ``layers`` (default: LAYERS)."""
    table = LAYERS if layers is None else layers
    paths = find_modules(root)
    known = set(paths)
    modules = {name: read_imports(name, path, known) for name, path in paths.items()}
    for name, module in modules.items():
        module.layer = table.get(name)
    return modules


@dataclass(frozen=True)
class Violation:
    module: str
    target: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}: {self.why}"


def _describe(layer: int | None) -> str:
    return f"{layer} {LAYER_NAMES[layer]}" if layer else "? (not in the table)"


def violations(modules: dict[str, Module]) -> list[Violation]:
    """Imports that run upward, reach outside the deployment, or use Azure Functions types outside handlers."""
    found: list[Violation] = []
    for module in modules.values():
        for item in module.imports:
            target = modules.get(item.target)
            here, there = module.layer, target.layer if target else None
            if here is not None and there is not None and there > here:
                found.append(
                    Violation(
                        module.name, item.target, item.line, f"upward, from {_describe(here)} to {_describe(there)}"
                    )
                )
        for item in module.external:
            top = item.target.split(".")[0]
            if item.by_name and item.target in WHEN_PRESENT.get(module.name, set()):
                continue
            if top in NOT_DEPLOYED or item.target == "function_app":
                found.append(Violation(module.name, item.target, item.line, "not part of the deployment"))
            elif (item.target == FUNCTIONS_SDK or item.target.startswith(FUNCTIONS_SDK + ".")) and (
                module.name not in FUNCTIONS_SDK_USERS
            ):
                found.append(Violation(module.name, item.target, item.line, "Azure Functions types outside handlers"))
            elif top in SERVICE_SDKS and module.layer in SDK_FREE_LAYERS:
                found.append(
                    Violation(
                        module.name,
                        item.target,
                        item.line,
                        f"a service SDK in {_describe(module.layer)} code (adapters only)",
                    )
                )
    return sorted(set(found), key=lambda v: (v.module, v.line, v.target))


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Groups of modules that import one another in a loop (strongly connected components), sorted."""
    edges = _edges(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm (the graph is small: recursion is fine)
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(edges):
        if name not in index:
            connect(name)
    return sorted(groups)


def loops(modules: dict[str, Module], group: list[str]) -> list[list[str]]:
    """A shortest loop through each member of a group, each loop once."""
    edges = _edges(modules)
    members = set(group)
    found: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for start in group:
        paths = {start: [start]}
        queue = [start]
        loop: list[str] | None = None
        while queue and loop is None:
            node = queue.pop(0)
            for other in edges[node]:
                if other == start:
                    loop = [*paths[node], start]
                    break
                if other in members and other not in paths:
                    paths[other] = [*paths[node], other]
                    queue.append(other)
        if loop is None:
            continue
        ring = loop[:-1]
        key = min(tuple(ring[i:] + ring[:i]) for i in range(len(ring)))
        if key not in seen:
            seen.add(key)
            found.append(loop)
    return found


def _edges(modules: dict[str, Module]) -> dict[str, list[str]]:
    return {name: sorted({i.target for i in m.imports if i.target in modules}) for name, m in modules.items()}


def report(modules: dict[str, Module]) -> str:
    lines = []
    for layer in (*LAYER_NAMES, None):
        names = sorted(n for n, m in modules.items() if m.layer == layer)
        if not names:
            continue
        lines.append(f"== layer {_describe(layer)}")
        for name in names:
            module = modules[name]
            shown = []
            for target in sorted({i.target for i in module.imports}):
                found = [i for i in module.imports if i.target == target]
                shown.append(f"{_short(target)}[{_layer_of(modules, target)}]{_how(found)}")
            optional = sorted({i.target for i in module.external if i.target in WHEN_PRESENT.get(name, set())})
            shown += [f"{target} (by name, when present)" for target in optional]
            lines.append(f"  {_short(name)} -> {', '.join(shown) if shown else '(nothing of the bridge)'}")
    found = violations(modules)
    lines.append(f"== imports that break the layering: {len(found) or 'none'}")
    lines += [f"  {v}" for v in found]
    groups = cycles(modules)
    lines.append(f"== cycles: {len(groups) or 'none'}")
    for group in groups:
        lines.append(f"  {len(group)} modules in one loop: {', '.join(_short(n) for n in group)}")
        lines += ["    " + " -> ".join(_short(n) for n in loop) for loop in loops(modules, group)]
    unknown = sorted(n for n, m in modules.items() if m.layer is None)
    if unknown:
        lines.append(f"== not in the layer table: {', '.join(_short(n) for n in unknown)}")
    return "\n".join(lines)


def _layer_of(modules: dict[str, Module], name: str) -> str:
    module = modules.get(name)
    return str(module.layer) if module and module.layer else "?"


def _how(found: list[Import]) -> str:
    """How a module imports another: at module level (no mark), only inside functions, only for types, by name."""
    if any(not (i.in_function or i.type_only or i.by_name) for i in found):
        return ""
    kinds = [
        ("in a function", any(i.in_function and not i.by_name for i in found)),
        ("type only", any(i.type_only for i in found)),
        ("by name", any(i.by_name for i in found)),
    ]
    return " (" + ", ".join(kind for kind, present in kinds if present) + ")"


def _short(name: str) -> str:
    return name.removeprefix("deskbridge.") if name != "deskbridge" else name


def as_json(modules: dict[str, Module]) -> dict[str, object]:
    return {
        "modules": {
            name: {
                "layer": m.layer,
                "imports": [
                    {
                        "module": i.target,
                        "line": i.line,
                        "in_function": i.in_function,
                        "type_only": i.type_only,
                        "by_name": i.by_name,
                    }
                    for i in m.imports
                ],
            }
            for name, m in sorted(modules.items())
        },
        "violations": [str(v) for v in violations(modules)],
        "cycles": [{"modules": group, "loops": loops(modules, group)} for group in cycles(modules)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.imports", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to read (default: this one)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.add_argument(
        "--former",
        action="store_true",
        help="place modules as they stood before issue 15 (service, demo, the mixed retries and "
        "desk modules), for reading an older checkout",
    )
    args = parser.parse_args(argv)
    if not (args.root / "deskbridge").is_dir():
        print(f"error: {args.root} has no deskbridge/ folder", file=sys.stderr)
        return 2
    modules = graph(args.root, LAYERS | FORMER_LAYERS if args.former else LAYERS)
    print(json.dumps(as_json(modules), indent=2) if args.json else report(modules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
