"""What was tested is what deploys: the hash-pinned locks, their updates, and the GitHub workflow.

The locks are checked against the ranges they come from and against the
environment these tests run in (which scripts/bootstrap installed from the
dev lock). The workflow cannot run here; these tests check it parses and
that it runs what the README promises.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes) of a pip-compile lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text(encoding="utf-8")
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = entry.split("\\", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        name, _, version = first.partition("==")
        assert version, f"{path.name}: {first!r} is not pinned with =="
        pins[canonicalize_name(name)] = (version.strip(), re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
    return pins


def ranges(path: Path) -> list[Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_every_runtime_range_is_pinned_with_hashes_in_requirements_txt():
    """requirements.txt is the file the Flex Consumption remote build installs: it must be the lock."""
    pins = locked(ROOT / "requirements.txt")
    for requirement in ranges(ROOT / "requirements.in"):
        version, _ = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), f"{requirement} but {version} is pinned"
    for name, (version, hashes) in pins.items():
        assert hashes, f"{name}=={version} has no hash"
    assert "pytest" not in pins and "ruff" not in pins  # the app's dependencies only


def test_the_dev_lock_pins_the_runtime_at_the_very_same_versions():
    runtime, dev = locked(ROOT / "requirements.txt"), locked(ROOT / "requirements-dev.txt")
    for name, (version, hashes) in runtime.items():
        assert dev[name][0] == version, f"{name}: {dev[name][0]} tested, {version} deployed"
        assert set(dev[name][1]) == set(hashes)
    for requirement in ranges(ROOT / "requirements-dev.in"):
        version, hashes = dev[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version) and hashes, requirement
    dev_in = (ROOT / "requirements-dev.in").read_text(encoding="utf-8").splitlines()
    assert "-r requirements.in" in dev_in and "-c requirements.txt" in dev_in


def test_this_environment_is_the_dev_lock():
    """The tests run in what scripts/bootstrap installed: every locked package at its pinned version."""
    for name, (version, _) in locked(ROOT / "requirements-dev.txt").items():
        if name in ("pip", "setuptools"):
            continue  # the venv's own; pinned too, but a venv made by hand may keep its pip
        assert metadata.version(name) == version, name


def test_bootstrap_installs_the_lock_and_refuses_unhashed_files():
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text(encoding="utf-8")
    assert re.search(r"pip install .*--require-hashes -r requirements-dev\.txt", bootstrap)
    assert "--upgrade" not in bootstrap  # nothing newer than the lock
    lock = (ROOT / "scripts" / "lock").read_text(encoding="utf-8")
    assert "--generate-hashes" in lock
    for source, target in (("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt")):
        assert f"--output-file {target} {source}" in lock
        header = (ROOT / target).read_text(encoding="utf-8")
        assert "pip-compile --allow-unsafe --generate-hashes" in header and f"--output-file={target}" in header


def test_the_deployment_package_carries_the_runtime_lock_only():
    ignored = (ROOT / ".funcignore").read_text(encoding="utf-8").split()
    assert "requirements.txt" not in ignored
    assert {"requirements-dev.txt", "requirements.in", "requirements-dev.in", ".git*"} <= set(ignored)


def test_dependabot_updates_pip_npm_and_the_workflow_actions():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert config["version"] == 2
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(ecosystems) == {"pip", "npm", "github-actions"}
    assert all(update["directory"] == "/" and update["schedule"]["interval"] for update in config["updates"])
    [azurite] = ecosystems["npm"]["ignore"]  # 3.36+ need Node 22 (shared/reference/testing-notes.md)
    assert azurite["dependency-name"] == "azurite"


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]
    [command] = [c for c in commands if c.startswith("scripts/test")]
    return command


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def test_the_workflow_runs_the_readme_test_command_the_bicep_compiler_and_a_what_if():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    jobs = workflow["jobs"]
    assert set(jobs) == {"test", "bicep", "preview"}

    runs = [step.get("run", "") for step in _steps(jobs["test"])]
    assert _readme_test_command() in runs
    uses = {step.get("uses", "").split("@")[0]: step for step in _steps(jobs["test"])}
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert uses["actions/setup-node"]["with"]["node-version"] == "20"

    bicep = [step.get("run", "") for step in _steps(jobs["bicep"])]
    assert any(run.startswith("az bicep build --file infra/main.bicep") for run in bicep)
    assert "az bicep lint --file infra/main.bicep" in bicep

    preview = jobs["preview"]
    assert preview["if"] == "${{ vars.AZURE_CLIENT_ID != '' }}"
    assert preview["permissions"]["id-token"] == "write"
    login = next(step for step in _steps(preview) if step.get("uses", "").startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC: no client secret
    assert all(value.startswith("${{ vars.") for value in login["with"].values())
    preview_runs = [step.get("run", "") for step in _steps(preview)]
    assert any("--federated-credential-provider" in run for run in preview_runs)
    assert "azd provision --preview --no-prompt" in preview_runs
    # every value of the required parameters comes from a repository variable
    for name in ("AZURE_ENV_NAME", "AZURE_LOCATION", "POINT_URL", "POINT_API_APP_ID", "POINT_CLIENT_ID"):
        assert preview["env"][name] == f"${{{{ vars.{name} }}}}"


def test_the_workflow_holds_no_secret_and_ci_does_not_need_it():
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text
    for action in re.findall(r"uses:\s*(\S+)", text):
        assert re.fullmatch(r"(actions|azure|Azure)/[\w-]+@v\d+", action), action  # documented, versioned
    assert ".github" not in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
