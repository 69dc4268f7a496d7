"""Operator commands: ``python -m deskbridge COMMAND``.

Every command has ``--help``, exits non-zero when it fails, and prints a
table for people or JSON with ``--json``. Settings come from the environment,
or from ``local.settings.json`` (its ``Values``) when that file is present
and a setting is not already set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Setup = Callable[[argparse.ArgumentParser], None]
_COMMANDS: dict[str, tuple[str, Setup]] = {}


def command(name: str, help: str) -> Callable[[Setup], Setup]:
    """Register ``setup(parser)`` for a sub-command; ``setup`` names the handler with ``set_defaults(func=...)``."""

    def register(setup: Setup) -> Setup:
        _COMMANDS[name] = (help, setup)
        return setup

    return register


class Failure(Exception):
    """A command failed for a reason the operator can act on."""


def load_local_settings(path: Path = Path("local.settings.json")) -> None:
    """Values from local.settings.json, for settings the environment does not set."""
    if not path.is_file():
        return
    try:
        values = json.loads(path.read_text()).get("Values", {})
    except (ValueError, AttributeError):
        raise Failure(f"{path} is not valid JSON") from None
    for key, value in values.items():
        if isinstance(value, str) and value and key not in os.environ:
            os.environ[key] = value


def runtime() -> Any:
    from deskbridge import runtime as runtimes

    return runtimes.current()


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

@command("list", "list requests by status (a table: source, ticket, status, attempts, last error, next attempt)")
def _list_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append",
                        choices=["pending", "submitted", "queued", "rejected", "uncertain", "failed",
                                 "provisioning", "completed", "point_failed"],
                        help="only these statuses (repeat for several); default: queued, failed, uncertain")
    parser.add_argument("--all", action="store_true", help="every status")
    parser.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    statuses = None if args.all else tuple(args.status or ("queued", "failed", "uncertain"))
    records = sorted(runtime().ledger.by_status(statuses), key=lambda r: r.created_at)
    rows = [{"source": r.source, "ticket": r.ticket, "status": r.status, "attempts": r.attempts,
             "last_error": r.last_error, "next_attempt": r.next_attempt_at, "created": r.created_at}
            for r in records]
    emit(args, rows, rows, ("source", "ticket", "status", "attempts", "last_error", "next_attempt"))
    return 0


@command("replay", "queue a failed, uncertain or rejected request for another attempt (after checking Syskit Point)")
def _replay_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="jira, servicenow, provision, ...")
    parser.add_argument("ticket", help="the ticket id, e.g. HR-42 or RITM0010452")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    from deskbridge import operator

    current = runtime()
    record = current.ledger.get(args.source, args.ticket)
    if record is None:
        raise Failure(f"no request is recorded for {args.source}/{args.ticket}")
    if not args.yes:
        print(f"{args.source}/{args.ticket} is {record.status} (last error: {record.last_error or '-'}).")
        if record.status == "uncertain":
            print("It may already exist in Syskit Point: check there first, or it may be provisioned twice.")
        if not sys.stdin.isatty():
            raise Failure("not confirmed: run it in a terminal, or add --yes")
        if input("Send it to Syskit Point again? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing done.")
            return 1
    try:
        replayed = operator.replay(current, args.source, args.ticket)
    except (ValueError, LookupError) as exc:
        raise Failure(str(exc)) from None
    emit(args, replayed.summary() if args.json else f"{args.source}/{args.ticket} queued for an attempt now.")
    return 0


# -- Syskit Point -----------------------------------------------------------------

@command("templates", "list Syskit Point's provisioning templates")
def _templates_setup(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=_templates)


def _templates(args: argparse.Namespace) -> int:
    from deskbridge.point import PointError

    try:
        templates = runtime().point.templates()
    except PointError as exc:
        raise Failure(str(exc)) from None
    rows = [{"id": t.get("id"), "name": t.get("name") or t.get("displayName"),
             "type": t.get("workspaceType") or t.get("type")} for t in templates]
    emit(args, templates, rows, ("id", "name", "type"))
    return 0


@command("webhooks", "register, list or delete Syskit Point webhook endpoints (needs Point.Admin)")
def _webhooks_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["register", "list", "delete"])
    parser.add_argument("url", nargs="?", help="the bridge's /api/point/events URL, with ?code=<function key>")
    parser.add_argument("--types", default="*", help="event types, comma-separated (default: all)")
    parser.set_defaults(func=_webhooks)


def _webhooks(args: argparse.Namespace) -> int:
    from deskbridge.point import PointError

    point = runtime().point
    if args.action != "list" and not args.url:
        raise Failure(f"webhooks {args.action} needs the endpoint URL")
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
        if exc.status == 403:
            raise Failure("Syskit Point refused (403): webhook registration needs the Point.Admin application "
                          "permission on the integration app, with admin consent") from None
        if exc.status == 404 and args.action == "delete":
            raise Failure(f"no webhook is registered for {_hide_code(args.url)}") from None
        raise Failure(str(exc)) from None
    return 0


def _hide_code(url: str) -> str:
    """A function key in a URL is a secret: never print it."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, "***" if k.lower() == "code" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


# -- entry point -------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m deskbridge", description="Point Desk Bridge operator commands.")
    subcommands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help, setup) in _COMMANDS.items():
        sub = subcommands.add_parser(name, help=help, description=help)
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        setup(sub)
    return top


def _load_plugins() -> None:
    """Commands that live in their own modules (doctor, demo) register on import."""
    import importlib

    for module in ("deskbridge.doctor", "deskbridge.demo"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    _load_plugins()
    args = parser().parse_args(argv)
    try:
        if args.command not in ("demo",):
            load_local_settings()
        return int(args.func(args) or 0)
    except Failure as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a setting or a service: say which, never a traceback of secrets
        from deskbridge.settings import ConfigurationError

        if isinstance(exc, ConfigurationError):
            print(f"error: setting {exc.setting} {exc.problem}", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}", file=sys.stderr)
        return 1
