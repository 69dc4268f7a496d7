"""Everything the bridge talks to, on this machine: Entra ID, Key Vault, Syskit Point,
Jira and ServiceNow stand-ins over HTTPS, and Azurite.

``LocalStack(...).start()`` returns the stack; ``stack.settings`` are the app
settings that point the bridge at it. ``python -m devtools.stack`` runs it in
the foreground and writes ``local.settings.json`` for ``func start``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devtools.azurite import Azurite
from devtools.desks import CallbackReceiver, JiraStandIn, ServiceNowStandIn
from devtools.entra import EntraStandIn
from devtools.keyvault import KeyVaultStandIn
from devtools.point_simulator import PointSimulator
from devtools.tls import local_tls

ROOT = Path(__file__).resolve().parent.parent

TENANT_ID = "8f0a6c1e-0000-4000-8000-00000000c0de"
POINT_API_APP_ID = "api://syskit-point-local"
BRIDGE_APP_ID = "5b1d6e2a-0000-4000-8000-0000000b41d6"  # the integration app (client id)
VAULT_READER_ID = "0c3e7f11-0000-4000-8000-00000000a0a7"  # stands for the function's identity

# The sample Jira project's custom fields (tests/fixtures/jira_*.json use these ids).
SAMPLE_JIRA_FIELDS = {
    "JIRA_FIELD_DISPLAY_NAME": "customfield_10054",
    "JIRA_FIELD_DESCRIPTION": "description",
    "JIRA_FIELD_OWNERS": "customfield_10060",
    "JIRA_FIELD_MEMBERS": "customfield_10061",
    "JIRA_FIELD_WORKSPACE_TYPE": "customfield_10070",
    "JIRA_FIELD_PRIVACY": "customfield_10071",
}


class LocalStack:
    def __init__(self, workdir: Path, *, storage_location: Path | None = None, with_azurite: bool = True) -> None:
        self.workdir = workdir
        self.tls = local_tls(workdir / "tls")
        context = self.tls.server_context
        self.entra = EntraStandIn(TENANT_ID, tls=context)
        self.vault = KeyVaultStandIn(self.entra, tls=context)
        self.point = PointSimulator(self.entra, POINT_API_APP_ID, tls=context)
        self.client_secret = "cs-" + secrets.token_urlsafe(24)
        self.vault_reader_secret = "vr-" + secrets.token_urlsafe(24)
        self.jira_token = "jt-" + secrets.token_urlsafe(24)
        self.servicenow_password = "sp-" + secrets.token_urlsafe(24)
        self.jira = JiraStandIn("bridge@contoso.com", self.jira_token, tls=context)
        self.servicenow = ServiceNowStandIn("bridge.integration", self.servicenow_password, tls=context)
        self.callbacks = CallbackReceiver(tls=context)
        self.azurite = Azurite(workdir / "azurite.log", storage_location) if with_azurite else None
        self._standins = (self.entra, self.vault, self.point, self.jira, self.servicenow, self.callbacks)

    def start(self) -> LocalStack:
        for standin in self._standins:
            standin.start()
        if self.azurite:
            self.azurite.start()
        app = self.entra.register(BRIDGE_APP_ID, self.client_secret, roles={"Point.Provisioning", "Point.Admin"})
        app.federated_subject = self.entra.managed_identity_id
        self.entra.register(VAULT_READER_ID, self.vault_reader_secret)
        self.vault.set_secret("point-client-secret", self.client_secret)
        self.vault.set_secret("point-webhook-key", self.point.signature_key)
        self.vault.set_secret("jira-api-token", self.jira_token)
        self.vault.set_secret("servicenow-password", self.servicenow_password)
        self._initial_secrets = dict(self.vault.secrets)
        return self

    def reset(self) -> None:
        """Back to the state start() left: no calls, faults, registrations or rotated secrets."""
        for standin in self._standins:
            standin.clear()
            standin.clear_faults()
        self.point.provisioned.clear()
        self.point.webhooks.clear()
        self.point.fail_names.clear()
        self.point.deliveries.clear()
        self.point.reset_behaviour()
        self.jira.clear_records()
        self.servicenow.clear_records()
        self.callbacks.clear_records()
        app = self.entra.apps[BRIDGE_APP_ID]
        app.secret, app.secret_expired, app.roles = self.client_secret, False, {"Point.Provisioning", "Point.Admin"}
        app.federated_subject = self.entra.managed_identity_id
        self.vault.secrets = dict(self._initial_secrets)  # drops secrets a test added, undoes rotations

    def stop(self) -> None:
        for standin in self._standins:
            standin.stop()
        if self.azurite:
            self.azurite.stop()

    def secret_values(self) -> list[str]:
        """Every secret the stack handed out (for leak checks)."""
        return [
            self.client_secret,
            self.vault_reader_secret,
            self.jira_token,
            self.servicenow_password,
            self.point.signature_key,
        ]

    @property
    def process_environment(self) -> dict[str, str]:
        """What the bridge's process needs besides its app settings: trust and identity."""
        return {
            "REQUESTS_CA_BUNDLE": str(self.tls.ca_bundle),
            "AZURE_AUTHORITY_HOST": self.entra.url,
            "AZURE_TENANT_ID": TENANT_ID,
            "AZURE_CLIENT_ID": VAULT_READER_ID,
            "AZURE_CLIENT_SECRET": self.vault_reader_secret,
            # The managed identity endpoint, as Azure Functions sets it (federated mode).
            "IDENTITY_ENDPOINT": f"{self.entra.url}/msi/token",
            "IDENTITY_HEADER": self.entra.identity_header,
        }

    @property
    def settings(self) -> dict[str, str]:
        values = {
            "POINT_URL": self.point.url,
            "POINT_TENANT_ID": TENANT_ID,
            "POINT_API_APP_ID": POINT_API_APP_ID,
            "POINT_CLIENT_ID": BRIDGE_APP_ID,
            "POINT_TEMPLATE_IDS": "7,8,9,10",
            "POINT_DEFAULT_TEMPLATE_ID": "teams=7,sites=8,groups=9,yammer=10",
            "POINT_DEFAULT_WORKSPACE_TYPE": "teams",
            "POINT_WEBHOOK_KEY_SECRET_NAME": "point-webhook-key",
            "KEY_VAULT_URL": self.vault.url,
            "JIRA_URL": self.jira.url,
            "JIRA_EMAIL": self.jira.email,
            "JIRA_API_TOKEN_SECRET_NAME": "jira-api-token",
            "SERVICENOW_URL": self.servicenow.url,
            "SERVICENOW_USERNAME": self.servicenow.username,
            "SERVICENOW_PASSWORD_SECRET_NAME": "servicenow-password",
        }
        if self.azurite:
            values["AzureWebJobsStorage"] = self.azurite.connection_string
        return values | self.process_environment


def write_local_settings(stack: LocalStack, path: Path) -> None:
    from deskbridge.settings import SETTINGS

    values: dict[str, Any] = {spec.name: spec.default or "" for spec in SETTINGS}
    values.update(stack.settings)
    values["FUNCTIONS_WORKER_RUNTIME"] = "python"
    values["AzureWebJobsFeatureFlags"] = "EnableWorkerIndexing"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=__doc__)
    parser.add_argument(
        "--write-settings",
        type=Path,
        default=ROOT / "local.settings.json",
        help="where to write the app settings for func start (default: local.settings.json)",
    )
    parser.add_argument(
        "--register-webhook",
        default="http://localhost:7071/api/point/events",
        help="register this URL with the simulator for its events ('' for none)",
    )
    args = parser.parse_args(argv)
    stack = LocalStack(ROOT / ".local").start()
    if args.register_webhook:
        stack.point.webhooks[args.register_webhook] = ["*"]
    write_local_settings(stack, args.write_settings)
    print(
        f"Entra ID      {stack.entra.url}\nKey Vault     {stack.vault.url}\nSyskit Point  {stack.point.url}\n"
        f"Jira          {stack.jira.url}\nServiceNow    {stack.servicenow.url}\n"
        f"Azurite       {stack.azurite.connection_string.split(';')[3] if stack.azurite else '-'}\n"
        f"Settings      {args.write_settings}\nReady. Ctrl+C stops.",
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
