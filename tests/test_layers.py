"""One direction for every import: pure code, adapters, the runtime, use cases, entry points (README, Development).

The table of layers is devtools/imports.py's ``LAYERS``; every import of every module of deskbridge/ (and
function_app) is read with ``ast``: at module level and inside functions, ``import x`` and ``from x import y``,
relative ones, those under ``if TYPE_CHECKING:``, and modules loaded by name from a string.
``python -m devtools.imports`` prints the same graph.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from devtools import imports

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_has_a_layer():
    found = set(imports.find_modules(ROOT))
    assert found - set(imports.LAYERS) == set(), "a new module: give it a layer in devtools/imports.py LAYERS"
    assert set(imports.LAYERS) - found == set(), "a module in LAYERS that no longer exists"


def test_no_import_runs_upward_or_leaves_the_deployment():
    assert [str(v) for v in imports.violations(imports.graph(ROOT))] == []


def test_no_modules_import_one_another_in_a_loop():
    assert imports.cycles(imports.graph(ROOT)) == []


def test_no_adapter_imports_another_adapter():
    modules = imports.graph(ROOT)
    crossing = [
        f"{name} imports {item.target}"
        for name, module in modules.items()
        if module.layer == imports.ADAPTER
        for item in module.imports
        if imports.LAYERS.get(item.target) == imports.ADAPTER
    ]
    assert crossing == [], "one adapter per remote service: pass a collaborator in through the runtime instead"


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_the_check_sees_every_kind_of_import(tmp_path):
    """A checkout made up for the purpose: each kind of upward import is caught, and a module without a layer."""
    write(tmp_path, "deskbridge/__init__.py", "")
    write(
        tmp_path,
        "deskbridge/model.py",
        """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from deskbridge.runtime import Runtime  # type only, still a dependency
        """,
    )
    write(
        tmp_path,
        "deskbridge/ledger.py",
        """\
        def get():
            from . import intake  # relative, inside a function
        """,
    )
    write(tmp_path, "deskbridge/runtime.py", "import deskbridge.cli\n")
    write(
        tmp_path,
        "deskbridge/intake.py",
        """\
        import importlib

        import azure.functions
        import requests

        def load():
            return importlib.import_module("deskbridge.handlers")  # by name
        """,
    )
    write(tmp_path, "deskbridge/desks/__init__.py", "")
    write(tmp_path, "deskbridge/desks/generic.py", "from ..cli import main\n")
    write(tmp_path, "deskbridge/cli.py", "from devtools import stack\nfrom deskbridge import runtime\n")
    write(tmp_path, "deskbridge/handlers.py", "import azure.functions\nfrom deskbridge import intake\n")
    write(tmp_path, "deskbridge/newcomer.py", "")
    modules = imports.graph(tmp_path)
    found = {(v.module, v.target) for v in imports.violations(modules)}
    assert found == {
        ("deskbridge.model", "deskbridge.runtime"),
        ("deskbridge.ledger", "deskbridge.intake"),
        ("deskbridge.runtime", "deskbridge.cli"),
        ("deskbridge.intake", "deskbridge.handlers"),
        ("deskbridge.intake", "azure.functions"),
        ("deskbridge.intake", "requests"),
        ("deskbridge.desks.generic", "deskbridge.cli"),
        ("deskbridge.cli", "devtools"),
    }
    groups = imports.cycles(modules)
    assert groups == [["deskbridge.cli", "deskbridge.runtime"], ["deskbridge.handlers", "deskbridge.intake"]]
    assert imports.loops(modules, groups[1]) == [["deskbridge.handlers", "deskbridge.intake", "deskbridge.handlers"]]
    assert "deskbridge.newcomer" in imports.find_modules(tmp_path) and modules["deskbridge.newcomer"].layer is None


def test_the_graph_command_prints_layers_imports_and_cycles(tmp_path, capsys):
    assert imports.main([]) == 0
    out = capsys.readouterr().out
    assert "== layer 1 pure" in out and "== layer 5 entry point" in out
    assert "  runtime -> " in out and "== cycles: none" in out and "== imports that break the layering: none" in out
    write(tmp_path, "deskbridge/__init__.py", "")
    write(tmp_path, "deskbridge/service.py", "from deskbridge import events\n")
    write(tmp_path, "deskbridge/events.py", "def f():\n    from deskbridge import service\n")
    assert imports.main(["--root", str(tmp_path), "--former"]) == 0
    out = capsys.readouterr().out
    assert "events -> service[4] (in a function)" in out and "    events -> service -> events" in out
