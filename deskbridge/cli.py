"""Operator commands: ``python -m deskbridge COMMAND``.

Every command has ``--help``, exits non-zero when it fails, and prints a
table for people or JSON with ``--json``. Settings come from the environment,
or from ``local.settings.json`` (its ``Values``) when that file is present
and a setting is not already set.

Errors come from one place: whatever a command raises is turned into
:class:`Problem` s by :func:`problems_from` and printed by :func:`report`,
as ``error:`` lines with what to do (``->``) on stderr, or with ``--json`` as
one JSON object on stdout: ``{"ok": false, "error": ..., "problems": [...]}``.
A command names the settings it needs (``needs=``): all of them that are
missing or malformed are named before it runs.

Commands whose code is not part of a deployment (the demo lives in devtools/,
which .funcignore leaves out) are offered only where their module is found:
:data:`WHEN_PRESENT` names each by its module, which is imported, by name,
only when the command is chosen. Nothing here imports devtools.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from deskbridge.runtime import Runtime

Setup = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    setup: Setup
    needs: tuple[str, ...]  # setting groups (deskbridge.settings.SETTING_GROUPS) checked before it runs
    settings: bool  # reads local.settings.json


_COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, *, needs: Sequence[str] = (), settings: bool = True
) -> Callable[[Setup], Setup]:
    """Register ``setup(parser)`` for a sub-command; ``setup`` names the handler with ``set_defaults(func=...)``.

    ``needs``: the setting groups the command uses, all checked (and every problem named) before it runs;
    ``settings=False``: the command brings its own settings (the demo) and reads no local.settings.json.
    """

    def register(setup: Setup) -> Setup:
        _COMMANDS[name] = Command(name, help, setup, tuple(needs), settings)
        return setup

    return register


# -- errors: one form, from one place ------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing that is wrong, and what to do about it."""

    message: str
    hint: str = ""
    setting: str = ""

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value or key == "message"}


class Failure(Exception):
    """A command failed for reasons the operator can act on (one or more :class:`Problem` s)."""

    def __init__(self, *problems: Problem | str, exit_code: int = 1, details: dict[str, Any] | None = None) -> None:
        self.problems = [p if isinstance(p, Problem) else Problem(p) for p in problems]
        self.exit_code = exit_code
        self.details = details or {}  # more for the JSON form (the demo's steps so far)
        super().__init__("; ".join(p.message for p in self.problems))


def settings_problems(errors: Sequence[Any]) -> Failure:
    """Missing or malformed settings (ConfigurationError), all in one failure."""
    from deskbridge.settings import SETTINGS_HINT

    problems = [Problem(f"setting {e.setting} {e.problem}", SETTINGS_HINT, e.setting) for e in errors]
    return Failure(*problems, exit_code=2)


# The service behind a bare SDK error, by the setting group a command needs.
_SERVICES = {"storage": ("storage", "AzureWebJobsStorage"), "point": ("Syskit Point", "POINT_URL")}


def problems_from(exc: BaseException, needs: Sequence[str] = ()) -> Failure:
    """Whatever a command raised, as problems with what to do. Never a traceback, never a secret."""
    from deskbridge.causes import diagnose, in_full
    from deskbridge.errors import PointError, SecretUnavailable, TokenError
    from deskbridge.settings import ConfigurationError

    doctor = "python -m deskbridge doctor checks the settings and each service in turn, and says what to fix"
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, ConfigurationError):
        return settings_problems([exc])
    if isinstance(exc, TokenError) and exc.secret is not None:
        exc = exc.secret  # the operator is told which secret; the record and the answers are not
    if isinstance(exc, SecretUnavailable):
        from deskbridge.doctor import secret_hint

        hint = secret_hint(exc, "the *_SECRET_NAME setting", "KEY_VAULT_URL")
        return Failure(Problem(in_full(str(exc), exc.unreachable), hint))
    if isinstance(exc, PointError):
        from deskbridge.doctor import point_problem

        return Failure(Problem(*point_problem(exc, runtime().settings.raw("POINT_URL") or "not set")))
    if isinstance(exc, TokenError):
        return Failure(Problem(in_full(str(exc), exc.unreachable), exc.unreachable.hint if exc.unreachable else doctor))
    service, setting = next((_SERVICES[group] for group in needs if group in _SERVICES), ("a service", ""))
    cause = diagnose(exc, service=service, setting=setting)
    if cause is not None:
        return Failure(Problem(cause.message, cause.hint))
    lines = str(exc).strip().splitlines()
    return Failure(Problem(f"{type(exc).__name__}: {lines[0][:300] if lines else 'no detail'}", doctor))


def report(failure: Failure, as_json: bool, usage: str = "") -> int:
    """Print a failure in the form asked for; returns the exit code."""
    if as_json:
        body: dict[str, Any] = {"ok": False, "error": str(failure), "problems": [p.as_dict() for p in failure.problems]}
        body |= failure.details
        if usage:
            body["usage"] = usage.strip()
        print(json.dumps(body, indent=2, default=str))
        return failure.exit_code
    if usage:
        print(usage.rstrip(), file=sys.stderr)
    problems = failure.problems
    for index, problem in enumerate(problems):
        print(f"error: {problem.message}", file=sys.stderr)
        following = problems[index + 1].hint if index + 1 < len(problems) else None
        if problem.hint and problem.hint != following:  # a hint shared by the next problems is said once, after them
            print(f"  -> {problem.hint}", file=sys.stderr)
    return failure.exit_code


class _Parser(argparse.ArgumentParser):
    """An argument error is reported like every other error (text, or JSON with --json)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self, message)


class _UsageError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


# -- settings ------------------------------------------------------------------------------


def load_local_settings(path: Path = Path("local.settings.json")) -> None:
    """Values from local.settings.json, for settings the environment does not set."""
    from deskbridge.causes import LocalSettings, note_local_settings

    if not path.is_file():
        note_local_settings(None)
        return
    try:
        content = json.loads(path.read_text())
    except ValueError:
        content = None
    values = content.get("Values", {}) if isinstance(content, dict) else None
    if not isinstance(values, dict):
        raise Failure(Problem(f"{path} is not valid JSON with a Values object",
                              "correct it (local.settings.example.json shows the form), or move it away to use the "
                              "environment alone"), exit_code=2)
    for key, value in values.items():
        if isinstance(value, str) and value and key not in os.environ:
            os.environ[key] = value
    bundle = values.get("REQUESTS_CA_BUNDLE")
    note_local_settings(LocalSettings(str(path), bundle if isinstance(bundle, str) else "", "LocalStack" in content))


def runtime() -> Runtime:
    from deskbridge import runtime as runtimes

    return runtimes.current()


# -- output --------------------------------------------------------------------------------


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [min(60, max(len(c), *(len(r[i]) for r in cells))) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def emit(args: argparse.Namespace, data: Any, rows: Sequence[dict[str, Any]] | None = None,
         columns: Sequence[str] = ()) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    elif rows is not None:
        print_table(rows, columns)
    else:
        print(data if isinstance(data, str) else json.dumps(data, indent=2, default=str))


# -- list and replay -------------------------------------------------------------

STATUSES = ["pending", "submitted", "queued", "rejected", "uncertain", "failed", "provisioning", "completed",
            "point_failed"]


@command("list", "list requests by status (a table: source, ticket, status, attempts, last error, next attempt)",
         needs=("storage",))
def _list_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append", choices=STATUSES,
                        help="only these statuses (repeat for several); default: queued, failed, uncertain")
    parser.add_argument("--all", action="store_true", help="every status")
    parser.add_argument("--source", default="", help="only this source (jira, servicenow, ...)")
    parser.add_argument("--since", default="", help="only requests created at or after this time (ISO 8601, UTC "
                                                     "unless it says otherwise), e.g. 2026-12-01")
    parser.add_argument("--overdue", action="store_true",
                        help="only requests with no outcome from Syskit Point after BRIDGE_OUTCOME_OVERDUE_SECONDS")
    parser.set_defaults(func=_list)


def operator_name() -> str:
    """Who runs a command, for the operator log line: the local account (never verified; the routes log the
    key and the signed-in principal instead)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


def _list(args: argparse.Namespace) -> int:
    from deskbridge import operator
    from deskbridge.ledger import AWAITING_OUTCOME

    if args.all or args.overdue:
        statuses = tuple(args.status) if args.status else None
    else:
        statuses = tuple(args.status or ("queued", "failed", "uncertain"))
    try:
        since = operator.parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise Failure(Problem(str(exc), "python -m deskbridge list --help")) from None
    page = operator.find(runtime(), statuses, args.source, since, args.overdue)
    records = sorted(page.records, key=lambda r: r.created_at)
    rows = [{"source": r.source, "ticket": r.ticket, "status": r.status, "attempts": r.attempts,
             "last_error": r.last_error, "next_attempt": r.next_attempt_at, "created": r.created_at,
             "request_id": r.point_request_id or ("(none: events only)" if r.status in AWAITING_OUTCOME else ""),
             "overdue_since": r.overdue_at if r.status in AWAITING_OUTCOME else ""}
            for r in records]
    columns = ["source", "ticket", "status", "attempts", "last_error", "next_attempt"]
    if args.overdue or any(r["request_id"].startswith("(none") for r in rows):
        columns.append("request_id")
    if args.overdue:
        columns.append("overdue_since")
    emit(args, rows, rows, columns)
    return 0


@command("replay", "queue a failed, uncertain, rejected or point_failed request for another attempt (after checking "
         "Syskit Point), or write a ticket update that was given up again", needs=("storage",))
def _replay_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="jira, servicenow, provision, ...")
    parser.add_argument("ticket", help="the ticket id, e.g. HR-42 or RITM0010452")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (needed with --json)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--request", dest="what", action="store_const", const="request",
                       help="a new attempt at Syskit Point, even when a ticket update was given up")
    which.add_argument("--desk", dest="what", action="store_const", const="desk",
                       help="only the ticket updates that were given up, written again")
    parser.set_defaults(func=_replay, what="auto")


def _replay(args: argparse.Namespace) -> int:
    from deskbridge import operator

    if args.json and not args.yes:
        raise Failure(Problem("replay --json does not ask for confirmation", "add --yes"))
    current = runtime()
    record = current.ledger.get(args.source, args.ticket)
    if record is None:
        raise Failure(Problem(f"no request is recorded for {args.source}/{args.ticket}",
                              "python -m deskbridge list --all shows what is recorded"))
    from deskbridge.writeback import given_up

    desk = given_up(record)
    to_desk = args.what == "desk" or (args.what == "auto" and operator.desk_first(record))
    if not args.yes:
        print(f"{args.source}/{args.ticket} is {record.status} (last error: {record.last_error or '-'}).")
        if to_desk:
            question = f"Write the ticket update(s) given up ({', '.join(desk) or 'none'}) again? [y/N] "
        else:
            if record.status == "uncertain":
                print("It may already exist in Syskit Point: check there first, or it may be provisioned twice.")
            if desk:
                print(f"Ticket update(s) given up: {', '.join(desk)} (replay --desk writes them again).")
            question = "Send it to Syskit Point again? [y/N] "
        if not sys.stdin.isatty():
            raise Failure(Problem("not confirmed: there is no terminal to ask in",
                                  "run it in a terminal, or add --yes"))
        if input(question).strip().lower() not in ("y", "yes"):
            print("Nothing done.")
            return 1
    try:
        replayed = operator.replay(current, args.source, args.ticket, operator_name(),
                                   "desk" if to_desk else "request")
    except (ValueError, LookupError) as exc:
        raise Failure(str(exc)) from None
    done = (f"{args.source}/{args.ticket}: ticket update(s) {', '.join(desk)} queued to be written again."
            if to_desk else f"{args.source}/{args.ticket} queued for an attempt now.")
    emit(args, replayed.summary() if args.json else done)
    return 0


@command("erase", "remove the people (owners, members, reporter) from one request's record now, keeping its audit "
                  "fields (as the reconciler does after BRIDGE_RECORD_RETENTION_DAYS)", needs=("storage",))
def _erase_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="jira, servicenow, provision, ...")
    parser.add_argument("ticket", help="the ticket id, e.g. HR-42 or RITM0010452")
    parser.set_defaults(func=_erase)


def _erase(args: argparse.Namespace) -> int:
    from deskbridge import operator

    try:
        record, removed = operator.erase(runtime(), args.source, args.ticket, operator_name())
    except (ValueError, LookupError) as exc:
        raise Failure(str(exc)) from None
    if args.json:
        emit(args, {"erased": removed, "record": operator.detail(record)})
    else:
        done = f"removed {', '.join(removed)}" if removed else "nothing left to remove"
        print(f"{args.source}/{args.ticket}: {done}; erased at {record.erased_at}.")
    return 0


# -- Syskit Point -----------------------------------------------------------------

@command("templates", "list Syskit Point's provisioning templates", needs=("point",))
def _templates_setup(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=_templates)


def _templates(args: argparse.Namespace) -> int:
    templates = runtime().point.templates()
    rows = [{"id": t.get("id"), "name": t.get("name") or t.get("displayName"),
             "type": t.get("workspaceType") or t.get("type")} for t in templates]
    emit(args, templates, rows, ("id", "name", "type"))
    return 0


_REGISTER_HELP = """\
Register the bridge's /api/point/events URL with Syskit Point, so that it
sends the bridge its provisioning started, completed and failed events.
Needs the Point.Admin application permission on the integration app.

URL is https://<app>.azurewebsites.net/api/point/events?code=<key>, where
<key> is a function key of the point_events function:
  az functionapp function keys list -g <resource group> -n <app> --function-name point_events
Syskit Point gets the whole URL; the key is never printed."""


@command("webhooks", "register, list or delete Syskit Point webhook endpoints (needs Point.Admin)", needs=("point",))
def _webhooks_setup(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    register = actions.add_parser("register", help="register the bridge's events URL with Syskit Point",
                                  description=_REGISTER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    register.add_argument("url", metavar="URL", help="the events URL, function key included (see above)")
    register.add_argument("--types", default="*",
                          help="event types, comma-separated, e.g. ProvisioningCompleted,ProvisioningFailed "
                               "(default: * for all)")
    actions.add_parser("list", help="list the registered webhook endpoints (function keys hidden)",
                       description="List the webhook endpoints registered with Syskit Point, and their event types. "
                                   "Function keys in the URLs are shown as ***.")
    delete = actions.add_parser("delete", help="delete a registered webhook endpoint",
                                description="Delete a webhook endpoint registered with Syskit Point.")
    delete.add_argument("url", metavar="URL", help="the endpoint URL exactly as registered, function key included")
    parser.set_defaults(func=_webhooks)


def _webhooks(args: argparse.Namespace) -> int:
    from deskbridge.errors import PointError

    point = runtime().point
    try:
        if args.action == "list":
            listed = point.call("GET", "/v1.0/webhooks/endpoints") or []
            rows = [{"endpoint": _hide_code(e.get("endpoint", "")), "types": ",".join(e.get("types") or [])}
                    for e in listed if isinstance(e, dict)]
            emit(args, rows, rows, ("endpoint", "types"))
        elif args.action == "register":
            types = [t.strip() for t in args.types.split(",") if t.strip()]
            point.call("POST", "/v1.0/webhooks/endpoints", json={"endpoint": args.url, "types": types})
            emit(args, {"registered": _hide_code(args.url), "types": types} if args.json
                 else f"Registered {_hide_code(args.url)} for {', '.join(types)}.")
        else:
            point.call("DELETE", "/v1.0/webhooks/endpoints", json={"endpoint": args.url})
            emit(args, {"deleted": _hide_code(args.url)} if args.json else f"Deleted {_hide_code(args.url)}.")
    except PointError as exc:
        if exc.http_status == 403:
            raise Failure(Problem("Syskit Point refused (403): webhook registration needs the Point.Admin "
                                  "application permission on the integration app, with admin consent",
                                  "in Entra ID, app POINT_CLIENT_ID > API permissions: add Point.Admin of the "
                                  "Syskit Point API and grant admin consent; or register the webhook in Syskit "
                                  "Point yourself")) from None
        if exc.http_status == 404 and args.action == "delete":
            raise Failure(Problem(f"no webhook is registered for {_hide_code(args.url)}",
                                  "python -m deskbridge webhooks list shows the registered ones")) from None
        raise
    return 0


def _hide_code(url: str) -> str:
    """A function key in a URL is a secret: never print it."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, "***" if k.lower() == "code" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


# -- doctor ------------------------------------------------------------------------

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@command("doctor", "check settings, Key Vault, the Syskit Point token, templates, webhooks and storage; "
                   "say what to fix")
def _doctor_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployed", action="store_true",
                        help="check the deployed app instead: its settings (read through Azure Resource Manager with "
                             "your azd sign-in) against the azd environment, names only, and its health route")
    parser.add_argument("--env-file", default="", help=argparse.SUPPRESS)
    parser.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    import logging

    from deskbridge import doctor

    if args.deployed:
        return _setup_step("doctor_deployed", args)

    # doctor reports each failure itself; the SDK's own warning about it is noise here.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    from deskbridge import __version__

    outcomes = doctor.run_checks(runtime())
    failed = [o for o in outcomes if o.state == doctor.FAIL]
    if args.json:
        emit(args, {"ok": not failed, "version": __version__, "checks": [o.as_dict() for o in outcomes]})
        return 1 if failed else 0
    print(f"Point Desk Bridge {__version__}")
    width = max(len(o.name) for o in outcomes)
    for outcome in outcomes:
        print(f"{_MARK[outcome.state]:<5} {outcome.name:<{width}}  {outcome.message}")
        if outcome.hint and outcome.state in (doctor.FAIL, doctor.WARN):
            print(f"{'':<5} {'':<{width}}  -> {outcome.hint}")
    if failed:
        print(f"\n{len(failed)} check(s) failed; fix the first one first: {failed[0].name}.")
        return 1
    warned = any(o.state == doctor.WARN for o in outcomes)
    print("\nNo check failed (see WARN)." if warned else "\nAll checks passed.")
    return 0


# -- setup (azd's postprovision hook) ---------------------------------------------------

_SETUP_HELP = """\
After azd provision (azd runs it after provision and after deploy; safe to repeat):
one function key per desk route (added once, its URL printed that once), the
Syskit Point webhook and its signature key in Key Vault when a Syskit Point
admin app is given for this run (its secret is asked for, never stored), the
deployed app checked against the azd environment, and the desk's side to do.

Reads the azd environment (azd env get-values) and uses your azd sign-in.
--local-settings instead writes local.settings.json for a local run, from the
same azd environment."""


@command("setup", "after azd provision: function keys, the Syskit Point webhook, checks, the desk's side to do",
         settings=False)
def _setup_setup(parser: argparse.ArgumentParser) -> None:
    parser.description = _SETUP_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--desk", action="append", choices=("jira", "servicenow", "provision"),
                        help="a desk route to key (repeat); default: the desks the azd environment configures")
    parser.add_argument("--jira-project", action="append", metavar="KEY",
                        help="a Jira project key for the webhook's JQL (repeat)")
    parser.add_argument("--point-admin-client-id", default="", metavar="ID",
                        help="a Syskit Point admin app (Point.Admin) for this run: registers the webhook and stores "
                             "its signature key; its secret is asked for (or DESKBRIDGE_ADMIN_CLIENT_SECRET)")
    parser.add_argument("--local-settings", action="store_true",
                        help="only write local.settings.json for a local run, from the azd environment")
    parser.add_argument("--output", default="local.settings.json", help="with --local-settings: where to write")
    parser.add_argument("--force", action="store_true",
                        help="with --local-settings: replace an existing file (kept as .bak)")
    parser.add_argument("--env-file", default="", metavar="PATH",
                        help="read the azd environment from this file (.azure/<env>/.env) instead of azd")
    parser.set_defaults(func=lambda args: _setup_step("setup", args))


def _setup_step(name: str, args: argparse.Namespace) -> int:
    from deskbridge import setup_command

    try:
        return int(getattr(setup_command, name)(args))
    except setup_command.Stop as exc:
        raise Failure(Problem(str(exc), exc.hint)) from None


# -- commands outside the deployment ---------------------------------------------------

# name -> (its module, which registers the command with @command when imported; the help shown before that).
WHEN_PRESENT: dict[str, tuple[str, str]] = {
    "demo": ("devtools.demo", "run a Jira and a ServiceNow approval end to end on this machine (no Azure, no Core "
                              "Tools; a checkout: devtools/ is not deployed)"),
}


def _present(module: str) -> bool:
    """Whether ``module`` (package.name) can be imported here, found without importing anything."""
    import importlib.util

    package, _, name = module.partition(".")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    locations = spec.submodule_search_locations if spec else None
    return bool(locations) and any((Path(where) / f"{name}.py").is_file() for where in locations)


def _load_when_present(name: str) -> None:
    """Import the module of a command outside the deployment (by name): it registers the command."""
    import importlib

    module, _help = WHEN_PRESENT[name]
    if name not in _COMMANDS and _present(module):
        importlib.import_module(module)


# -- entry point -------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m deskbridge", description="Point Desk Bridge operator commands.")
    subcommands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in _COMMANDS.values():
        sub = subcommands.add_parser(entry.name, help=entry.help, description=entry.help)
        entry.setup(sub)
        _add_json(sub)
    for name, (module, help_text) in WHEN_PRESENT.items():
        if name not in _COMMANDS and _present(module):  # listed; its module loads when it is chosen
            subcommands.add_parser(name, help=help_text, description=help_text)
    return top


def _add_json(parser: argparse.ArgumentParser) -> None:
    """--json on every command that runs (the leaves: on ``webhooks register``, not on ``webhooks``)."""
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not nested:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table (errors too)")
    for action in nested:
        for child in dict.fromkeys(action.choices.values()):
            _add_json(child)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in argv if not arg.startswith("-")), "")
    if chosen in WHEN_PRESENT:
        _load_when_present(chosen)
    try:
        args = parser().parse_args(argv)
    except _UsageError as exc:
        hint = f"{exc.parser.prog} --help says what it takes"
        return report(Failure(Problem(str(exc), hint), exit_code=2), "--json" in argv, exc.parser.format_usage())
    as_json = getattr(args, "json", False)
    entry = _COMMANDS[args.command]
    try:
        if entry.settings and not getattr(args, "deployed", False):  # doctor --deployed: the azd environment
            load_local_settings()
        if entry.needs:
            from deskbridge.settings import check_all

            errors = check_all(runtime().settings, entry.needs)
            if errors:
                raise settings_problems(errors)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure, in one form
        return report(problems_from(exc, entry.needs), as_json)
