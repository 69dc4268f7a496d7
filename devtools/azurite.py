"""Start and stop Azurite (the Azure Storage emulator, from npm) on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# The emulator's published, well-known development key (not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")


class AzuriteError(RuntimeError):
    pass


def azurite_command() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise AzuriteError("Azurite is not installed: run `npm ci` in the project folder (it needs Node.js 20)")


class Azurite:
    """One Azurite process. In memory by default; ``location`` keeps data on disk across restarts."""

    def __init__(
        self,
        log_path: Path,
        location: Path | None = None,
        ports: dict[str, int] | None = None,
        pid_file: Path | None = None,
    ) -> None:
        self.log_path = log_path
        self.location = location
        self.ports: dict[str, int] = dict(ports or {})
        # Where its process id is kept while it runs: an Azurite left running by a process that was
        # killed (SIGKILL: no stop()) is stopped by the next start with the same pid file.
        self.pid_file = pid_file
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Azurite:
        args = [azurite_command(), "--skipApiVersionCheck", "--disableTelemetry", "--loose"]
        args += ["--location", str(self.location)] if self.location else ["--inMemoryPersistence"]
        for service in ("blob", "queue", "table"):
            args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(self.ports.get(service, 0))]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.location:
            self.location.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.pid_file)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the process owns it until it stops
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.location or ROOT))
        if self.pid_file:
            self.pid_file.write_text(str(self._process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {m.group(1).lower(): int(m.group(2)) for m in _LISTENING.finditer(self.log_path.read_text())}
            if len(found) == 3:
                self.ports = found
                return self
            if self._process.poll() is not None:
                raise AzuriteError(f"Azurite exited with {self._process.returncode}; see {self.log_path}")
            time.sleep(0.05)
        self.stop()
        raise AzuriteError(f"Azurite did not start within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None
        if self.pid_file:
            self.pid_file.unlink(missing_ok=True)

    def restart(self) -> Azurite:
        """Stop and start again on the same ports (data survives only with ``location``)."""
        self.stop()
        return self.start()

    @property
    def connection_string(self) -> str:
        endpoints = ";".join(
            f"{service.capitalize()}Endpoint=http://127.0.0.1:{self.ports[service]}/{ACCOUNT}"
            for service in ("blob", "queue", "table")
        )
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};{endpoints};"


def stop_leftover(pid_file: Path | None) -> bool:
    """Stop the Azurite a killed process left running (named by ``pid_file``); True if there was one."""
    if pid_file is None or not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        pid = 0
    pid_file.unlink(missing_ok=True)
    if pid <= 0 or not _is_azurite(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _is_azurite(pid: int) -> bool:
    """Whether ``pid`` runs Azurite (never signal a process id some other program has taken since)."""
    try:
        if Path("/proc/self").is_dir():  # Linux
            cmdline = Path(f"/proc/{pid}/cmdline")
            return cmdline.exists() and b"azurite" in cmdline.read_bytes()
        shown = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, check=False)
        return "azurite" in shown.stdout
    except OSError:
        return False
