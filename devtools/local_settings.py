"""The local stack's ``local.settings.json``, written without ever losing one the user wrote.

``func start`` reads its settings from ``local.settings.json`` in the app
folder and cannot be pointed at another file (environment variables win over
the file's values, but cannot blank one out), so the stack has to write that
very file. It keeps the user's:

1. a file the stack did not write is *moved* aside to ``local.settings.json.yours``
   (a rename: its bytes, and even its inode, stay as they were);
2. the stack's settings are written to a temporary file and renamed into place;
3. when the stack stops, ``local.settings.json.yours`` is renamed back over the
   stack's file; with no file of the user's, the stack's own file is removed.

A stack killed before step 3 (SIGKILL, a power cut) leaves the user's file in
``local.settings.json.yours``; the next start, or ``python -m devtools.stack
--restore-settings``, puts it back before anything else. The stack's file says
what it is in a top-level ``LocalStack`` entry (Core Tools ignores unknown
entries), so a file the user wrote is never taken for the stack's.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "LocalStack"


def yours_path(path: Path) -> Path:
    """Where the user's own file waits while the stack runs."""
    return path.with_name(path.name + ".yours")


def stack_marker(path: Path) -> dict[str, Any] | None:
    """The ``LocalStack`` entry of a file the stack wrote; None for any other file (or none)."""
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    marker = content.get(MARKER) if isinstance(content, dict) else None
    return marker if isinstance(marker, dict) and marker.get("run") else None


def _alive(pid: Any) -> bool:
    """Whether the stack that wrote a file still runs (best effort: a pid reused by another program is not)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"devtools.stack" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def _aside_name(path: Path) -> Path:
    return path.with_name(f"{yours_path(path).name}.{time.strftime('%Y%m%d-%H%M%S')}")


class SettingsBusy(RuntimeError):
    """Another running stack holds this settings file."""


def restore(path: Path) -> list[str]:
    """Put back a file of the user's that a stack which did not stop cleanly left aside. Says what it did."""
    said: list[str] = []
    yours = yours_path(path)
    marker = stack_marker(path)
    if marker is not None and _alive(marker.get("pid")) and marker.get("pid") != os.getpid():
        raise SettingsBusy(
            f"a local stack (pid {marker['pid']}) is running with {path}; stop it first (Ctrl+C in its terminal, "
            f"or kill {marker['pid']}): it puts back any file of yours when it stops"
        )
    if not yours.exists():
        return said
    if marker is not None or not path.exists():
        os.replace(yours, path)
        said.append(f"Put your {path.name} back from {yours.name} (a local stack had not stopped cleanly).")
    else:
        # Both are the user's: one left aside by a killed stack, and one written since. Keep both.
        kept = _aside_name(path)
        os.replace(yours, kept)
        said.append(
            f"Found an older {path.name} of yours left aside by a local stack that did not stop cleanly, "
            f"besides your current one: kept it as {kept.name}."
        )
    return said


@dataclass
class StackSettings:
    """The stack's hold on one settings file: ``take()`` when it starts, ``release()`` when it stops."""

    path: Path
    run: str = field(default_factory=lambda: secrets.token_hex(8))
    moved_aside: bool = False
    written: bool = False

    @property
    def yours(self) -> Path:
        return yours_path(self.path)

    def take(self, values: dict[str, str]) -> list[str]:
        """Write the stack's settings to ``path``, keeping any file of the user's. Says what it did."""
        said = restore(self.path)
        if self.path.exists() and stack_marker(self.path) is None:
            os.replace(self.path, self.yours)
            self.moved_aside = True
            said.append(
                f"Your {self.path.name} is kept, unchanged, in {self.yours.name} while the stack runs; "
                "it comes back when the stack stops."
            )
        note = (
            f"Written by python -m devtools.stack for its stand-ins (ports of this run only). "
            f"{'Your own file is in ' + self.yours.name + ' until' if self.moved_aside else 'Removed when'} "
            "the stack stops."
        )
        content = {"IsEncrypted": False, MARKER: {"run": self.run, "pid": os.getpid(), "note": note}, "Values": values}
        temporary = self.path.with_name(f".{self.path.name}.{self.run}.tmp")
        temporary.write_text(json.dumps(content, indent=2) + "\n")
        os.replace(temporary, self.path)
        self.written = True
        if not self.moved_aside:
            said.append(f"Wrote {self.path.name} for the stand-ins; it is removed when the stack stops.")
        return said

    def release(self) -> list[str]:
        """Put the user's file back, or remove the stack's own. Safe to call more than once."""
        said: list[str] = []
        ours = self._ours()
        if self.moved_aside and self.yours.exists():
            if ours or not self.path.exists():
                os.replace(self.yours, self.path)
                said.append(f"Put your {self.path.name} back, byte for byte.")
            else:  # someone wrote a new file over the stack's while it ran: keep that one too
                kept = _aside_name(self.path)
                os.replace(self.yours, kept)
                said.append(
                    f"{self.path.name} was rewritten while the stack ran: left it as it is, and kept your "
                    f"earlier one as {kept.name}."
                )
        elif ours:
            self.path.unlink()
            said.append(f"Removed the stack's {self.path.name}.")
        self.moved_aside = self.written = False
        return said

    def _ours(self) -> bool:
        marker = stack_marker(self.path)
        return marker is not None and marker.get("run") == self.run
