"""Every .bicep file parses with tree-sitter-bicep and with pycep (the parser checkov bundles).

CI cannot install the Bicep compiler, so these parsers are the syntax check.
"""

from __future__ import annotations

import json
import re

import pytest
import tree_sitter
import tree_sitter_bicep
from infra_helpers import BICEP_FILES, INFRA, ROOT, parse_bicep

BICEP = tree_sitter.Language(tree_sitter_bicep.language())


def _problems(node: tree_sitter.Node, source: bytes) -> list[str]:
    found = []
    if node.type == "ERROR" or node.is_missing:
        kind = "MISSING" if node.is_missing else "ERROR"
        line, column = node.start_point
        found.append(f"{kind} at {line + 1}:{column + 1}: {source[node.start_byte : node.end_byte][:60]!r}")
    for child in node.children:
        found.extend(_problems(child, source))
    return found


def test_the_expected_files_are_there():
    names = {str(path.relative_to(INFRA)) for path in BICEP_FILES}
    assert {"main.bicep", "app/function.bicep", "app/storage.bicep", "app/keyvault.bicep"} <= names
    assert (INFRA / "abbreviations.json").is_file()
    assert (INFRA / "main.parameters.json").is_file()
    assert (ROOT / "azure.yaml").is_file()


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_tree_sitter_parses_without_error_or_missing_nodes(path):
    source = path.read_bytes()
    tree = tree_sitter.Parser(BICEP).parse(source)
    assert tree.root_node.type == "infrastructure"
    assert _problems(tree.root_node, source) == []


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_pycep_parses(path):
    doc = parse_bicep(path)
    assert doc["resources"] or doc.get("modules")


@pytest.mark.parametrize("path", sorted(INFRA.rglob("*.json")), ids=lambda p: str(p.relative_to(INFRA)))
def test_json_files_are_valid(path):
    json.loads(path.read_text(encoding="utf-8"))


def test_no_syntax_that_checkovs_pycep_cannot_read():
    # user-defined functions, imports, nullable types and spread are newer than
    # the pycep checkov bundles; registry modules would hide resources from it.
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", line).split("//")[0]  # strings out, then comments
            where = f"{path.relative_to(INFRA)}:{number}"
            assert not code.lstrip().startswith(("func ", "import ", "type ")), where
            assert "..." not in code, where
            assert "br:" not in code and "br/" not in code, where
            assert "?:" not in code and not code.rstrip().endswith("?"), where
