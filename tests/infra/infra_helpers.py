"""Paths, pycep helpers and fixtures shared by the infra tests.

Test modules import what they use by name (no package, no conftest.py: the
tests/ folder has its own conftest, and two of that name would clash). The
parse and the checkov run are cached: each happens once per session. The
tools are imported unconditionally: a CI job without them must fail, not
skip. None of these tests needs Azure or the Bicep compiler.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV_DIR = ROOT / ".checkov"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


def parse_bicep(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


@functools.cache
def parsed() -> dict[str, dict[str, Any]]:
    """pycep's parse of every .bicep file, keyed by path relative to infra/ ("main", "app/storage")."""
    return {str(path.relative_to(INFRA).with_suffix("")): parse_bicep(path) for path in BICEP_FILES}


@functools.cache
def checkov_report() -> dict[str, Any]:
    """One checkov run over infra/ with the project's custom checks (about 10 s)."""
    return _run_checkov(INFRA)


# The checks that hold storage and the vault to private access. With vnetEnabled
# off they are skipped (each skip says why); with it on they must pass.
NETWORK_CHECKS = {"CKV_AZURE_35", "CKV_AZURE_59", "CKV_AZURE_109", "CKV_AZURE_189"}


def with_network_isolation(target: Path) -> int:
    """Copy infra/ to target as ARM deploys it with vnetEnabled on; return how many expressions were resolved.

    checkov reads each file alone with the parameters' defaults and cannot follow
    `privateNetworkOnly ? 'Disabled' : 'Enabled'`: the copy turns the switch's
    defaults on, puts each such expression's true branch in its place, and drops
    the skips of NETWORK_CHECKS, so those checks judge the values deployed.
    """
    shutil.copytree(INFRA, target)
    resolved = 0
    for path in target.rglob("*.bicep"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("param vnetEnabled bool = false", "param vnetEnabled bool = true")
        text = text.replace("param privateNetworkOnly bool = false", "param privateNetworkOnly bool = true")
        text, count = re.subn(r"\bprivateNetworkOnly \? ('[^']*') : '[^']*'", r"\1", text)
        resolved += count
        skips = "|".join(sorted(NETWORK_CHECKS))
        text = re.sub(rf"^ *// checkov:skip=(?:{skips}):.*\n", "", text, flags=re.MULTILINE)
        path.write_text(text, encoding="utf-8")
    return resolved


@functools.cache
def checkov_report_with_network_isolation() -> dict[str, Any]:
    """One checkov run over infra/ as deployed with vnetEnabled on (about 10 s)."""
    target = Path(tempfile.mkdtemp(prefix="deskbridge-infra-vnet-")) / "infra"
    try:
        report = _run_checkov(target) if with_network_isolation(target) else {}
    finally:
        shutil.rmtree(target.parent)
    return report


def _run_checkov(directory: Path) -> dict[str, Any]:
    env = dict(os.environ, LOG_LEVEL="WARNING")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "checkov.main",
            "--directory",
            str(directory),
            "--framework",
            "bicep",
            "--external-checks-dir",
            str(CHECKOV_DIR),
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.stdout.strip(), f"checkov printed no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one entry per framework
        (report,) = [r for r in report if r.get("check_type") == "bicep"]
    report["exit_code"] = proc.returncode
    return report


def resource(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The body of a resource; for a loop, the body repeated; for `if (...)`, the body deployed."""
    config = doc["resources"][name]["config"]
    return config["config"] if "loop_type" in config or "condition" in config else config


def object_keys(node: Any, variables: dict[str, Any]) -> set[str]:
    """Keys of the object(s) an expression can produce: literals, union(), a ? b : c, variables."""
    if isinstance(node, str):
        variable = variables.get(node)
        return object_keys(variable["value"], variables) if variable else set()
    if not isinstance(node, dict):
        return set()
    if set(node) == {"function"}:
        keys: set[str] = set()
        for argument in (node["function"].get("parameters") or {}).values():
            keys |= object_keys(argument, variables)
        return keys
    if set(node) == {"operator"}:
        operands = node["operator"]["operands"]
        keys = set()
        for operand in (operands.get("true_value"), operands.get("false_value")):
            keys |= object_keys(operand, variables)
        return keys
    return set(node)
