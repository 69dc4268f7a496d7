"""doctor's machinery: a check is a named function returning a :class:`Result`, run in order.

Each check returns ``ok``, ``warn``, ``fail`` or ``skip``, a message, and a
hint saying what to do. They run in the order registered; a check whose
prerequisite failed is skipped, so the first failure is the one to fix.
Adding a check (deskbridge.doctor and deskbridge.desk_doctor do)::

    from deskbridge.checks import Context, Result, check

    @check("secret expiry", after="key vault", requires=("key vault",))
    def secret_expiry(ctx: Context) -> Result:
        ...
        return Result.warn("point-client-secret expires in 12 days", "create a new secret and put it in Key Vault")

Nothing here knows what is checked; :func:`run` never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deskbridge.runtime import Runtime
from deskbridge.settings import SETTINGS_HINT, ConfigurationError, Settings

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Result:
    state: str  # ok, warn, fail or skip
    message: str
    hint: str = ""

    @classmethod
    def ok(cls, message: str) -> Result:
        return cls(OK, message)

    @classmethod
    def warn(cls, message: str, hint: str = "") -> Result:
        return cls(WARN, message, hint)

    @classmethod
    def fail(cls, message: str, hint: str = "") -> Result:
        return cls(FAIL, message, hint)

    @classmethod
    def skip(cls, message: str) -> Result:
        return cls(SKIP, message)


@dataclass
class Context:
    """What the checks share: the runtime (settings and clients) and what earlier checks found."""

    runtime: Runtime
    found: dict[str, Any] = field(default_factory=dict)  # e.g. "templates": the list Syskit Point returned

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


CheckFunction = Callable[[Context], Result]


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFunction
    requires: tuple[str, ...] = ()


CHECKS: list[Check] = []


def check(
    name: str, *, requires: Sequence[str] = (), after: str | None = None
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check. ``requires``: checks that must not have failed; ``after``: run right after that one."""

    def register(function: CheckFunction) -> CheckFunction:
        entry = Check(name, function, tuple(requires))
        CHECKS[:] = [c for c in CHECKS if c.name != name]  # re-registering replaces
        index = next((i + 1 for i, c in enumerate(CHECKS) if c.name == after), len(CHECKS)) if after else len(CHECKS)
        CHECKS.insert(index, entry)
        return function

    return register


@dataclass(frozen=True)
class Outcome:
    name: str
    state: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "state": self.state, "message": self.message, "hint": self.hint}


def run(runtime: Runtime, checks: Sequence[Check] | None = None) -> list[Outcome]:
    """Run every check (or those given) in order; never raises."""
    context = Context(runtime)
    outcomes: list[Outcome] = []
    blocked: set[str] = set()
    for entry in list(CHECKS if checks is None else checks):
        waiting_on = [name for name in entry.requires if name in blocked]
        if waiting_on:
            blocked.add(entry.name)
            outcomes.append(Outcome(entry.name, SKIP, f"not checked: {', '.join(waiting_on)} failed", ""))
            continue
        try:
            result = entry.run(context)
        except ConfigurationError as exc:
            result = Result.fail(f"setting {exc.setting} {exc.problem}", SETTINGS_HINT)
        except Exception as exc:  # a check must say what broke, not crash the others
            result = Result.fail(f"{type(exc).__name__}: {first_line(exc)}")
        if result.state == FAIL:
            blocked.add(entry.name)
        outcomes.append(Outcome(entry.name, result.state, result.message, result.hint))
    return outcomes


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "no detail"
