"""Azure Resource Manager stand-in, for ``python -m deskbridge setup`` and ``doctor --deployed``.

One subscription, one resource group, one function app (its functions, their keys, its app settings) and
one vault, whose secrets ARM writes into the Key Vault stand-in (the control plane writes the same vault
the data plane reads). Calls need a bearer token the Entra ID stand-in issued for ARM
(``https://management.azure.com``) and the api-version each resource provider takes.

Also :class:`FunctionAppHealth`: the deployed app's anonymous ``/api/health``.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from devtools.entra import EntraStandIn
from devtools.keyvault import KeyVaultStandIn
from devtools.standin import Call, Reply, StandIn, bearer

ARM_RESOURCE = "https://management.azure.com"
API_VERSIONS = {"Microsoft.Web": "2024-11-01", "Microsoft.KeyVault": "2023-07-01"}
FUNCTIONS = ("provision", "jira", "servicenow", "point_events", "request_status", "health", "openapi")

_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/(?P<provider>Microsoft\.[A-Za-z]+)"
    r"/(?P<rest>.+)$"
)


class ArmStandIn(StandIn):
    name = "azure-resource-manager"

    def __init__(
        self,
        entra: EntraStandIn,
        vault: KeyVaultStandIn,
        subscription: str,
        group: str,
        app: str,
        vault_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entra = entra
        self.vault = vault
        self.subscription, self.group, self.app, self.vault_name = subscription, group, app, vault_name
        entra.resources.add(ARM_RESOURCE)
        self.function_keys: dict[str, dict[str, str]] = {f: {"default": secrets.token_urlsafe(40)} for f in FUNCTIONS}
        self.app_settings: dict[str, str] = {}
        self.deployed = True  # False: provisioned, code not deployed yet (no functions, as after azd provision)

    # -- what tests look at -------------------------------------------------
    def key_creations(self) -> list[Call]:
        return [c for c in self.calls_to("PUT") if "/functions/" in c.path and "/keys/" in c.path]

    def secret_writes(self) -> list[Call]:
        return [c for c in self.calls_to("PUT") if "/Microsoft.KeyVault/vaults/" in c.path]

    # -- HTTP ---------------------------------------------------------------
    def handle(self, call: Call) -> Reply:
        info = self.entra.token_info(bearer(call))
        if info is None or info.resource != ARM_RESOURCE:
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        match = _PATH.match(call.path)
        if match is None or match["sub"] != self.subscription:
            return _error(404, "SubscriptionNotFound", f"The subscription of {call.path} could not be found.")
        if match["group"].lower() != self.group.lower():
            return _error(404, "ResourceGroupNotFound", f"Resource group '{match['group']}' could not be found.")
        version = (call.query.get("api-version") or [""])[0]
        if version != API_VERSIONS.get(match["provider"]):
            return _error(
                400, "NoRegisteredProviderFound", f"No registered resource provider found for API version '{version}'."
            )
        parts = match["rest"].split("/")
        if match["provider"] == "Microsoft.KeyVault":
            return self._vault(call, parts)
        if parts[:2] != ["sites", self.app]:
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{parts[1]}' was not found.")
        rest = parts[2:]
        if call.method == "POST" and rest == ["config", "appsettings", "list"]:
            return Reply(200, {"id": call.path, "name": "appsettings", "properties": dict(self.app_settings)})
        if len(rest) >= 3 and rest[0] == "functions":
            keys = self.function_keys.get(rest[1]) if self.deployed else None
            if keys is None:
                return _error(404, "NotFound", f"Error retrieving function {rest[1]}.")
            if call.method == "POST" and rest[2:] == ["listKeys"]:
                return Reply(200, {"id": call.path, "properties": dict(keys)})
            if call.method == "PUT" and rest[2] == "keys" and len(rest) == 4:
                body = call.json() or {}
                given = (body.get("properties") or {}).get("value") or body.get("value")
                existed = rest[3] in keys
                keys[rest[3]] = given or secrets.token_urlsafe(40)
                return Reply(
                    200 if existed else 201,
                    {"id": call.path, "name": rest[3], "properties": {"name": rest[3], "value": keys[rest[3]]}},
                )
        return _error(404, "NotFound", f"No route {call.method} {call.path}")

    def _vault(self, call: Call, parts: list[str]) -> Reply:
        if parts[:2] != ["vaults", self.vault_name]:
            return _error(
                404, "ResourceNotFound", f"The Resource 'Microsoft.KeyVault/vaults/{parts[1]}' was not found."
            )
        if call.method == "PUT" and len(parts) == 4 and parts[2] == "secrets":
            value = ((call.json() or {}).get("properties") or {}).get("value")
            if not isinstance(value, str) or not value:
                return _error(400, "BadRequest", "properties.value is required.")
            self.vault.set_secret(parts[3], value)
            return Reply(200, {"id": call.path, "name": parts[3], "properties": {"contentType": "text/plain"}})
        return _error(404, "NotFound", f"No route {call.method} {call.path}")


class FunctionAppHealth(StandIn):
    """The deployed function app, as far as setup sees it without ARM: GET /api/health answers 200."""

    name = "function-app"
    healthy = True

    def handle(self, call: Call) -> Reply:
        if call.method == "GET" and call.path == "/api/health":
            return Reply(200, {"status": "ok"}) if self.healthy else Reply(503, {"status": "starting"})
        return Reply(404, {"error": "not found"})


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


FAKE_AZD = '''#!{python}
"""A stand-in for the azd command: what setup and AzureDeveloperCliCredential ask of it, nothing else."""
import json, os, sys

args = sys.argv[1:]
if args[:2] == ["auth", "token"]:
    scopes = [args[i + 1] for i, a in enumerate(args) if a == "--scope"]
    if scopes != ["{resource}/.default"]:
        sys.stderr.write(json.dumps({{"error": "fake azd: no token for " + " ".join(scopes)}}) + "\\n")
        sys.exit(1)
    print(json.dumps({{"token": os.environ["FAKE_AZD_TOKEN"], "expiresOn": "2099-01-01T00:00:00Z"}}))
elif args[:2] == ["env", "get-values"]:
    with open(os.environ["FAKE_AZD_ENV_FILE"], encoding="utf-8") as env:
        sys.stdout.write(env.read())
else:
    sys.stderr.write("fake azd: not supported: " + " ".join(args) + "\\n")
    sys.exit(2)
'''


def write_fake_azd(directory: Any, python: str) -> Any:
    """Write an ``azd`` program into ``directory`` (put it first on PATH): ``auth token`` prints the token in
    FAKE_AZD_TOKEN for ARM's scope (as ``azd auth token --output json`` does), ``env get-values`` prints the
    file FAKE_AZD_ENV_FILE. The real AzureDeveloperCliCredential runs it."""
    from pathlib import Path

    path = Path(directory) / "azd"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_AZD.format(python=python, resource=ARM_RESOURCE))
    path.chmod(0o755)
    return path


def dotenv(values: dict[str, str]) -> str:
    """Values as ``azd env get-values`` prints them (NAME="value", Go-quoted)."""
    import json

    return "".join(f"{name}={json.dumps(value)}\n" for name, value in values.items())
