"""``python -m devtools.stack`` (what scripts/run-local runs) never loses a local.settings.json the user wrote.

Each test runs the stack as its own process, as scripts/run-local does, with a
settings path and work folder of its own, and stops it the ways a person or a
machine does: SIGTERM (scripts/run-local when func exits), Ctrl+C, a closed
terminal, and SIGKILL followed by another start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.azurite import stop_leftover
from devtools.local_settings import StackSettings, restore, stack_marker, yours_path

ROOT = Path(__file__).resolve().parent.parent

# A file as a person writes it: their own order, spacing, a trailing space, no final newline.
USERS_FILE = (
    b'{\r\n  "IsEncrypted": false,\r\n  "Values": {\r\n    "FUNCTIONS_WORKER_RUNTIME": "python",\r\n'
    b'    "POINT_URL": "https://contoso.point.syskit.com", \r\n    "MARKER": "mine \xc3\xa9"\r\n  }\r\n}'
)


_STARTED: list[RunningStack] = []  # stopped by the fixture below if a test fails before it stops them


class RunningStack:
    def __init__(self, settings: Path, workdir: Path) -> None:
        _STARTED.append(self)
        self.settings = settings
        self.workdir = workdir
        self.log = workdir / "stack.out"
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.stack", "--write-settings", str(settings), "--workdir", str(workdir)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while b"\nReady." not in self.log.read_bytes():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stop(self, signum: int) -> str:
        self.process.send_signal(signum)
        return self.wait()

    def wait(self) -> str:
        try:
            self.process.wait(timeout=30)
        finally:
            self._log.close()
        return self.log.read_text()


@pytest.fixture(autouse=True)
def no_stack_outlives_its_test():
    """A test that fails before it stops its stack must not leave it (and its Azurite) holding the next run's
    files and ports."""
    yield
    while _STARTED:
        stack = _STARTED.pop()
        if stack.process.poll() is None:
            stack.process.kill()
            stack.wait()
        stop_leftover(stack.workdir / "azurite.pid")


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "app"


def second_stack(path: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Another stack started on the same settings file: it must refuse and change nothing."""
    return subprocess.run(
        [sys.executable, "-m", "devtools.stack", "--write-settings", str(path), "--workdir", str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def users_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "local.settings.json"
    path.write_bytes(USERS_FILE)
    return path


def stack_values(path: Path) -> dict:
    return json.loads(path.read_text())["Values"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "Ctrl+C", "hangup"])
def test_the_users_file_comes_back_byte_for_byte_however_the_stack_stops(folder, tmp_path, signum):
    path = users_file(folder)
    inode = path.stat().st_ino
    stack = RunningStack(path, tmp_path / "work")
    # While it runs, func start finds the stack's settings; the user's file waits, untouched, beside it.
    assert stack_values(path)["POINT_URL"].startswith("https://127.0.0.1:")
    assert yours_path(path).read_bytes() == USERS_FILE
    assert "kept, unchanged, in local.settings.json.yours" in stack.log.read_text()
    out = stack.stop(signum)
    assert stack.process.returncode == 0, out
    assert path.read_bytes() == USERS_FILE and path.stat().st_ino == inode
    assert not yours_path(path).exists()
    assert "Put your local.settings.json back, byte for byte." in out
    assert sorted(p.name for p in folder.iterdir()) == ["local.settings.json"]


def azurite_left_by(workdir: Path) -> int:
    """The process id of the Azurite a stack started in ``workdir``, if it still runs (else 0)."""
    pid_file = workdir / "azurite.pid"
    if not pid_file.exists():
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return 0
    return pid


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_after_sigkill_the_next_start_puts_the_users_file_back_first(folder, tmp_path):
    path = users_file(folder)
    killed = RunningStack(path, tmp_path / "work")
    killed.stop(signal.SIGKILL)
    assert stack_marker(path) is not None and yours_path(path).read_bytes() == USERS_FILE
    orphan = azurite_left_by(tmp_path / "work")
    assert orphan  # SIGKILL leaves the stack no time to stop it...

    again = RunningStack(path, tmp_path / "work")
    assert wait_gone(orphan)  # ...the next start does
    first_lines = again.log.read_text()
    assert "Put your local.settings.json back from local.settings.json.yours" in first_lines
    assert yours_path(path).read_bytes() == USERS_FILE  # and set aside again for this run
    again.stop(signal.SIGTERM)
    assert path.read_bytes() == USERS_FILE and not yours_path(path).exists()


def test_after_sigkill_restore_settings_alone_puts_it_back(folder, tmp_path):
    path = users_file(folder)
    RunningStack(path, tmp_path / "work").stop(signal.SIGKILL)
    orphan = azurite_left_by(tmp_path / "work")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.stack",
            "--write-settings",
            str(path),
            "--restore-settings",
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Put your local.settings.json back" in done.stdout
    assert path.read_bytes() == USERS_FILE and not yours_path(path).exists()
    assert "Stopped the Azurite" in done.stdout and wait_gone(orphan)


def test_a_second_stack_does_not_take_a_file_another_one_holds(folder, tmp_path):
    path = users_file(folder)
    first = RunningStack(path, tmp_path / "one")
    held = path.read_bytes()
    second = second_stack(path, tmp_path / "two")
    assert second.returncode == 1 and f"pid {first.process.pid}" in second.stderr
    assert path.read_bytes() == held and yours_path(path).read_bytes() == USERS_FILE
    first.stop(signal.SIGTERM)
    assert path.read_bytes() == USERS_FILE


def test_a_second_stack_does_not_take_the_file_of_a_running_one_either(folder, tmp_path):
    folder.mkdir()
    path = folder / "local.settings.json"
    first = RunningStack(path, tmp_path / "one")
    held = path.read_bytes()
    second = second_stack(path, tmp_path / "two")
    assert second.returncode == 1 and f"kill {first.process.pid}" in second.stderr
    assert path.read_bytes() == held
    first.stop(signal.SIGTERM)
    assert not path.exists()


def test_without_a_users_file_the_stack_removes_its_own(folder, tmp_path):
    folder.mkdir()
    path = folder / "local.settings.json"
    stack = RunningStack(path, tmp_path / "work")
    assert "removed when the stack stops" in stack.log.read_text()
    assert stack_values(path)["FUNCTIONS_WORKER_RUNTIME"] == "python"
    out = stack.stop(signal.SIGTERM)
    assert "Removed the stack's local.settings.json." in out
    assert list(folder.iterdir()) == []


# -- the same rules, in process (no stack needed) ---------------------------------------


def test_a_file_written_over_the_stacks_while_it_runs_is_kept_too(tmp_path):
    path = users_file(tmp_path)
    held = StackSettings(path)
    held.take({"POINT_URL": "https://127.0.0.1:1"})
    path.write_text('{"Values": {"WRITTEN": "during the run"}}')
    said = held.release()
    assert json.loads(path.read_text())["Values"] == {"WRITTEN": "during the run"}
    [kept] = [p for p in tmp_path.iterdir() if p.name.startswith("local.settings.json.yours.")]
    assert kept.read_bytes() == USERS_FILE and kept.name in " ".join(said)


def test_a_users_file_is_never_taken_for_the_stacks(tmp_path):
    path = tmp_path / "local.settings.json"
    # Close to the stack's shape, but not the stack's marker.
    path.write_text('{"IsEncrypted": false, "LocalStack": "mine", "Values": {}}')
    before = path.read_bytes()
    held = StackSettings(path)
    held.take({})
    assert yours_path(path).read_bytes() == before
    held.release()
    assert path.read_bytes() == before


def test_restore_keeps_both_when_the_user_wrote_a_new_file_after_a_crash(tmp_path):
    path = users_file(tmp_path)
    yours_path(path).write_bytes(b'{"Values": {"OLDER": "1"}}')  # left by a killed stack
    said = restore(path)
    assert path.read_bytes() == USERS_FILE
    [kept] = [p for p in tmp_path.iterdir() if p.name.startswith("local.settings.json.yours.")]
    assert kept.read_bytes() == b'{"Values": {"OLDER": "1"}}' and "kept it as" in said[0]
