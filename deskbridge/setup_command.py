"""``python -m deskbridge setup`` (azd's postprovision hook) and ``doctor --deployed``: their composition.

What each step does is :mod:`deskbridge.deployment`; this module finds the azd environment, builds the
clients the steps use (ARM with the deployer's azd sign-in, ``AzureDeveloperCliCredential``; Syskit Point
with an admin app given for this run only) and prints. deskbridge.cli registers the commands.

The azd environment is ``azd env get-values`` (the hook's and the deployer's own), else the file given
with ``--env-file`` (a copy of ``.azure/<env>/.env``). The admin app's secret is read from the
environment variable DESKBRIDGE_ADMIN_CLIENT_SECRET of this process or asked for at the prompt; it is kept
in memory for the run, and refused when it is found among the azd environment's (stored) values.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskbridge import deployment

ADMIN_ID_VARIABLE = "DESKBRIDGE_ADMIN_CLIENT_ID"
ADMIN_SECRET_VARIABLE = "DESKBRIDGE_ADMIN_CLIENT_SECRET"
# Sovereign clouds: ARM's address and the token's scope (e.g. https://management.usgovcloudapi.net and
# https://management.usgovcloudapi.net/.default); the tests point the address at their ARM stand-in.
MANAGEMENT_URL_VARIABLE = "DESKBRIDGE_MANAGEMENT_URL"
MANAGEMENT_SCOPE_VARIABLE = "DESKBRIDGE_MANAGEMENT_SCOPE"
AZD_TIMEOUT = 60  # seconds for an azd command (it may refresh its sign-in)


class Stop(Exception):
    """Setup cannot go on: what is wrong, and what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


# -- the azd environment ---------------------------------------------------------------


def azd_environment(env_file: str = "") -> dict[str, str]:
    """The azd environment's values: from ``env_file`` when given, else ``azd env get-values``."""
    if env_file:
        try:
            return deployment.parse_dotenv(Path(env_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise Stop(f"cannot read {env_file}: {exc.strerror}", "give the path of .azure/<env>/.env") from None
    azd = shutil.which("azd")
    if azd is None:
        raise Stop(
            "azd is not on PATH: the azd environment cannot be read",
            "install the Azure Developer CLI, or give --env-file .azure/<env>/.env",
        )
    try:
        done = subprocess.run(
            [azd, "env", "get-values", "--no-prompt"],
            capture_output=True,
            text=True,
            timeout=AZD_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Stop(f"azd env get-values did not finish in {AZD_TIMEOUT} s", "run it yourself to see why") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no detail"])[-1][:300]
        raise Stop(
            f"azd env get-values failed: {first}", "run it in the project folder, after azd init / azd env select"
        ) from None
    return deployment.parse_dotenv(done.stdout)


def _require_outputs(env: Mapping[str, str]) -> None:
    missing = [name for name in deployment.AZD_OUTPUTS if not env.get(name)]
    if missing:
        raise Stop(
            f"the azd environment has no {', '.join(missing)}",
            "run azd provision first (these are the template's outputs), in the project folder",
        )


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# -- the clients -------------------------------------------------------------------------


def _arm(env: Mapping[str, str], credential: Any = None) -> Any:
    from deskbridge.arm import DEFAULT_MANAGEMENT_SCOPE, DEFAULT_MANAGEMENT_URL, ArmClient

    if credential is None:
        from azure.identity import AzureDeveloperCliCredential

        credential = AzureDeveloperCliCredential(process_timeout=AZD_TIMEOUT)
    return ArmClient(
        credential,
        env["AZURE_SUBSCRIPTION_ID"],
        env["AZURE_RESOURCE_GROUP"],
        env["AZURE_FUNCTION_APP_NAME"],
        management_url=os.environ.get(MANAGEMENT_URL_VARIABLE) or DEFAULT_MANAGEMENT_URL,
        scope=os.environ.get(MANAGEMENT_SCOPE_VARIABLE) or DEFAULT_MANAGEMENT_SCOPE,
    )


def _health(url: str) -> int | None:
    from deskbridge.arm import health_status

    return health_status(url)


@dataclass(frozen=True)
class AdminInput:
    client_id: str
    secret: str = field(repr=False)


def admin_input(env: Mapping[str, str], client_id: str, ask: Callable[[str], str] | None) -> AdminInput | None:
    """The admin app for this run, or None (the webhook step is skipped). Its secret is never stored."""
    client_id = client_id or os.environ.get(ADMIN_ID_VARIABLE, "") or env.get(ADMIN_ID_VARIABLE, "")
    if not client_id:
        return None
    if env.get(ADMIN_SECRET_VARIABLE):
        raise Stop(
            f"{ADMIN_SECRET_VARIABLE} is stored in the azd environment; it must not be",
            f'azd env set {ADMIN_SECRET_VARIABLE} "" (or delete its line in .azure/<env>/.env), then give '
            "the secret at the prompt or in this shell's environment only",
        )
    secret = os.environ.get(ADMIN_SECRET_VARIABLE, "")
    if not secret and ask is not None:
        secret = ask(f"Client secret of the Syskit Point admin app {client_id} (not stored; empty: skip): ")
    return AdminInput(client_id, secret.strip()) if secret.strip() else None


def _admin_app(env: Mapping[str, str], given: AdminInput) -> deployment.AdminApp:
    from deskbridge.point import PointClient, client_secret_tokens, new_session
    from deskbridge.settings import ConfigurationError, Settings

    # As the template does: an empty POINT_TENANT_ID is the subscription's tenant (azd's AZURE_TENANT_ID).
    settings = Settings({"POINT_TENANT_ID": env.get("AZURE_TENANT_ID", "")} | {k: v for k, v in env.items() if v})
    try:
        timeouts = settings.point_timeouts
        tokens = client_secret_tokens(
            settings.point_tenant_id,
            given.client_id,
            settings.point_scope,
            lambda _refresh: given.secret,
            timeouts=timeouts,
        )
        point = PointClient(
            settings.point_url,
            tokens,
            timeouts=timeouts,
            budget_seconds=settings.point_retry_budget,
            session=new_session(),
        )
    except ConfigurationError as exc:
        raise Stop(
            f"the azd environment's {exc.setting} {exc.problem}",
            f"azd env set {exc.setting} <value>, azd provision, then setup again",
        ) from None
    return deployment.AdminApp(point, given.client_id)


def _prompt() -> Callable[[str], str] | None:
    if not sys.stdin.isatty():
        return None
    import getpass

    return getpass.getpass


# -- the commands ----------------------------------------------------------------------


def setup(args: Any, credential: Any = None) -> int:
    if args.local_settings:
        return write_local_settings(azd_environment(args.env_file), Path(args.output), force=args.force)
    env = azd_environment(args.env_file)
    _require_outputs(env)
    given = admin_input(env, args.point_admin_client_id, _prompt())
    admin = _admin_app(env, given) if given is not None else None
    as_json = getattr(args, "json", False)
    # With --json the running account goes to stderr and one JSON object to stdout, at the end.
    stream = sys.stderr if as_json else sys.stdout
    report = deployment.run_setup(
        env,
        _arm(env, credential),
        admin=admin,
        health=_health,
        say=lambda line: print(line, file=stream, flush=True),
        desks=args.desk or (),
        # the projects the bridge may write to (JIRA_PROJECT_KEYS), else the one doctor checks
        jira_projects=args.jira_project or _csv(env.get("JIRA_PROJECT_KEYS") or env.get("JIRA_PROJECT_KEY", "")),
    )
    if as_json:
        app_url = env["FUNCTION_APP_URL"]
        print(
            json.dumps(
                {
                    "ok": not report.failed,
                    "not_deployed": report.not_deployed,
                    "keys": [
                        {"function": k.function, "name": k.name, "created": k.created, "url": k.url(app_url)}
                        for k in report.keys
                        if k.function != deployment.EVENTS_FUNCTION or not k.created
                    ],
                    "webhook_registered": report.registered,
                    "signature_key_secret": report.stored_secret or None,
                    "checks": [c.__dict__ for c in report.checks],
                    "failed": report.failed,
                },
                indent=2,
            )
        )
    return 1 if report.failed else 0


def doctor_deployed(args: Any, credential: Any = None) -> int:
    env = azd_environment(getattr(args, "env_file", ""))
    _require_outputs(env)
    checks = deployment.check_deployed(_arm(env, credential), env, _health)
    failed = [c for c in checks if c.state == "fail"]
    if getattr(args, "json", False):
        print(json.dumps({"ok": not failed, "checks": [c.__dict__ for c in checks]}, indent=2))
        return 1 if failed else 0
    width = max(len(c.name) for c in checks)
    for item in checks:
        print(f"{deployment.MARKS[item.state]:<5} {item.name:<{width}}  {item.message}")
        if item.hint and item.state != "ok":
            print(f"{'':<5} {'':<{width}}  -> {item.hint}")
    print(f"\n{len(failed)} check(s) failed." if failed else "\nThe deployed app matches the azd environment.")
    return 1 if failed else 0


def write_local_settings(env: Mapping[str, str], path: Path, *, force: bool) -> int:
    values = deployment.local_settings(env)
    if path.exists() and not force:
        raise Stop(
            f"{path} exists; not overwritten",
            "add --force (your file is kept as " + path.name + ".bak), or --output another path",
        )
    if path.exists():
        os.replace(path, path.with_name(path.name + ".bak"))
    content = {
        "IsEncrypted": False,
        "Generated": "python -m deskbridge setup --local-settings, from the azd environment; "
        "change settings with azd env set, then run it again",
        "Values": values,
    }
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    names = sorted(values)
    print(f"Wrote {path} with {len(names)} settings from the azd environment: {', '.join(names)}.")
    if values.get("POINT_AUTH_MODE") == "federated":
        print(
            "Note: POINT_AUTH_MODE is federated: only the function's managed identity gets a Syskit Point token; "
            "a local run cannot (use a test app with a client secret for local runs)."
        )
    print(
        "Storage is local (Azurite: UseDevelopmentStorage=true); secrets stay in Key Vault, read with your "
        "az login account."
    )
    return 0
