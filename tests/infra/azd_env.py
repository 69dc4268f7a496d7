"""What azd does around one `azd provision`, computed from the template text.

azd reads infra/main.parameters.json, replaces each ``${NAME}`` (or
``${NAME=default}``) with the value of NAME in the azd environment
(``.azure/<env>/.env``), leaves out a parameter whose value comes out empty
so that the Bicep default applies (Azure/azure-dev#2896), deploys, and then
writes every output of main.bicep into the environment, over what was there
(``provisioning.Manager.UpdateEnvironment``). ``provision`` does the same
with the evaluator in bicep_eval.py: the secrets the vault module would
write, and the environment the next provision starts from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bicep_eval import Evaluation, Unsupported, bicep_file
from infra_helpers import INFRA, parsed

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}")


def parameters_file() -> dict[str, str]:
    """main.parameters.json: parameter -> the text azd substitutes."""
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    return {name: entry["value"] for name, entry in values.items()}


def env_names(text: str) -> list[str]:
    """The azd environment values a parameter's text refers to."""
    return [match.group(1) for match in REFERENCE.finditer(text)]


def parameter_values(env: dict[str, str]) -> dict[str, Any]:
    """The parameters azd passes for an environment, typed as main.bicep declares them."""
    types = {name: p["type"] for name, p in parsed()["main"]["parameters"].items()}
    given: dict[str, Any] = {}
    for name, text in parameters_file().items():
        value = REFERENCE.sub(lambda m: env[m.group(1)] if m.group(1) in env else (m.group(2) or ""), text)
        if value == "":
            continue  # azd leaves it out: the Bicep default applies
        if types[name] == "bool":
            given[name] = {"true": True, "false": False}[value.lower()]
        elif types[name] == "int":
            given[name] = int(value)
        else:
            given[name] = value
    return given


@dataclass
class Provisioned:
    secrets: list[dict[str, Any]]  # what the vault module writes: name, value, exp (epoch seconds)
    settings: dict[str, Any]  # the *_SECRET_NAME app settings
    env: dict[str, str]  # the azd environment after the provision


def provision(env: dict[str, str], now: datetime | None = None) -> Provisioned:
    main = Evaluation(bicep_file(INFRA / "main.bicep"), parameter_values(env), now=now)
    secrets = main.module_param("keyVault", "secrets")
    vault = Evaluation(bicep_file(INFRA / "app" / "keyvault.bicep"), {"secrets": secrets}, now=now)
    written = [
        {"name": name, "value": properties["value"], "exp": properties["attributes"]["exp"]}
        for name, properties in zip(
            vault.loop_items("secret", "name"), vault.loop_items("secret", "properties"), strict=True
        )
    ]
    after = dict(env)
    for name in main.file.outputs:
        try:
            value = main.output(name)
        except Unsupported:
            continue  # an output of a deployed resource (a module's output): see outputs_azd_reads_back
        after[name] = value if isinstance(value, str) else json.dumps(value)
    return Provisioned(written, main.var("secretNameSettings"), after)


def outputs_azd_reads_back() -> set[str]:
    """Outputs of main.bicep that main.parameters.json refers to: they feed the next provision."""
    referenced = {name for text in parameters_file().values() for name in env_names(text)}
    return referenced & set(bicep_file(INFRA / "main.bicep").outputs)
