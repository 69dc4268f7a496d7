"""Everything the bridge talks to, on this machine: Entra ID, Key Vault, Syskit Point,
Jira and ServiceNow stand-ins over HTTPS, and Azurite.

``LocalStack(...).start()`` returns the stack; ``stack.settings`` are the app
settings that point the bridge at it. ``python -m devtools.stack`` runs it in
the foreground and writes ``local.settings.json`` for ``func start``; a
``local.settings.json`` of yours is kept aside, byte for byte, and put back
when the stack stops (see devtools/local_settings.py).
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from pathlib import Path

from devtools.azurite import Azurite, stop_leftover
from devtools.desks import CallbackReceiver, JiraStandIn, ServiceNowStandIn
from devtools.entra import EntraStandIn
from devtools.keyvault import KeyVaultStandIn
from devtools.local_settings import SettingsBusy, StackSettings, restore, yours_path
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
        self.azurite = (
            Azurite(workdir / "azurite.log", storage_location, pid_file=workdir / "azurite.pid")
            if with_azurite
            else None
        )
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
        self.jira.reset_access()
        self.servicenow.clear_records()
        self.servicenow.reset_access()
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
            "JIRA_PROJECT_KEY": "HR",
            "SERVICENOW_URL": self.servicenow.url,
            "SERVICENOW_USERNAME": self.servicenow.username,
            "SERVICENOW_PASSWORD_SECRET_NAME": "servicenow-password",
            # The callback receiver listens on 127.0.0.1: a local run allows loopback callbacks, Azure never.
            "BRIDGE_CALLBACK_ALLOW_LOOPBACK": "true",
        }
        if self.azurite:
            values["AzureWebJobsStorage"] = self.azurite.connection_string
        return values | self.process_environment


def local_settings_values(stack: LocalStack) -> dict[str, str]:
    """The ``Values`` of the local.settings.json that points ``func start`` at the stack."""
    from deskbridge.settings import SETTINGS

    values: dict[str, str] = {spec.name: spec.default or "" for spec in SETTINGS}
    values.update(stack.settings)
    values["FUNCTIONS_WORKER_RUNTIME"] = "python"
    values["AzureWebJobsFeatureFlags"] = "EnableWorkerIndexing"
    return values


def make_storage(values: dict[str, str]) -> str:
    """The bridge's tables and queues in Azurite, as the infra templates make them in Azure; what was made."""
    from deskbridge.runtime import Runtime
    from deskbridge.settings import Settings

    report = Runtime(Settings(values)).ensure_storage()
    return f"tables {', '.join(report.tables)}; queues {', '.join(report.queues)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--write-settings",
        type=Path,
        default=ROOT / "local.settings.json",
        help="where to write the app settings for func start (default: local.settings.json); a file of yours "
        "there is kept aside, unchanged, and put back when the stack stops",
    )
    parser.add_argument(
        "--register-webhook",
        default="http://localhost:7071/api/point/events",
        help="register this URL with the simulator for its events ('' for none)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / ".local",
        help="where the certificates and Azurite's log go (default: .local)",
    )
    parser.add_argument(
        "--restore-settings",
        action="store_true",
        help="only put back a settings file of yours that a killed stack left aside (and stop the Azurite it "
        "left running), then exit",
    )
    args = parser.parse_args(argv)
    if args.restore_settings:
        try:
            said = restore(args.write_settings)
        except SettingsBusy as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if stop_leftover(args.workdir / "azurite.pid"):
            said.append("Stopped the Azurite that the killed stack left running.")
        print("\n".join(said) or f"Nothing to put back: no {yours_path(args.write_settings).name} here.")
        return 0

    # Every way of stopping (Ctrl+C, SIGTERM from scripts/run-local, a closed terminal) ends in the
    # finally below, which puts the user's settings back; SIGKILL cannot, so the next start does.
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopped.set())
    held = StackSettings(args.write_settings)
    try:
        said = restore(args.write_settings)  # before anything starts: a stack still running refuses here
        stack = LocalStack(args.workdir).start()
    except SettingsBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.register_webhook:
            stack.point.webhooks[args.register_webhook] = ["*"]
        values = local_settings_values(stack)
        said += held.take(values)
        made = make_storage(values) if stack.azurite else "-"
        webhook = f"{args.register_webhook} (func start listens there)" if args.register_webhook else "none"
        print(
            f"Entra ID      {stack.entra.url}\nKey Vault     {stack.vault.url}\nSyskit Point  {stack.point.url}\n"
            f"Jira          {stack.jira.url}\nServiceNow    {stack.servicenow.url}\n"
            f"Azurite       {stack.azurite.connection_string.split(';')[3] if stack.azurite else '-'}\n"
            f"Storage       {made}\n"
            f"Webhooks to   {webhook}\nCA bundle     {stack.tls.ca_bundle}\n"
            f"Settings      {args.write_settings}\n"
            + "".join(f"              {line}\n" for line in said)
            + "Ready. Ctrl+C stops.",
            flush=True,
        )
        stopped.wait()
    finally:
        said = held.release()
        stack.stop()
        print("Stopped." + "".join(f" {line}" for line in said), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
