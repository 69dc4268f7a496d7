"""What every benchmark shares: the local stack, the registered functions, and an honest meter.

The meter wraps ``requests.adapters.HTTPAdapter.send``, the one place every
outbound HTTP request of the bridge passes: the ``requests.Session`` of the
Syskit Point client and azure-core's ``RequestsTransport`` (Key Vault,
Entra ID through azure-identity, Azure Tables, queues) alike. Inside the
wrapper the body is read too (unless the caller streams), so the time
counted covers connecting, sending, waiting and reading the whole answer.
Time and calls are kept per thread and per destination port, so the
bridge's own time is its wall time minus the time its thread spent there.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- the meter ----------------------------------------------------------------
@dataclass
class Tally:
    """One thread's outbound HTTP since it was last reset."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this thread's CPU time inside HTTPAdapter.send (TLS, HTTP parsing)
    calls: Counter[int] = field(default_factory=Counter)  # by destination port
    seconds_by_port: Counter[int] = field(default_factory=Counter)
    connections: Counter[int] = field(default_factory=Counter)  # new TCP connections, by port
    streamed: int = 0  # answers whose body was read after the meter stopped (should stay 0)
    region: str = ""  # the outermost region this thread is in now
    region_seconds: Counter[str] = field(default_factory=Counter)  # wall time inside each region
    region_http: Counter[str] = field(default_factory=Counter)  # of which inside HTTPAdapter.send


class Meter:
    """Counts and times every request that goes through ``HTTPAdapter.send``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all_lock = threading.Lock()
        self.total: Counter[int] = Counter()  # every thread, by port
        self._installed = False
        self.original_send: Any = None  # the unwrapped HTTPAdapter.send, for the direct floor

    def tally(self) -> Tally:
        current = getattr(self._local, "tally", None)
        if current is None:
            current = self._local.tally = Tally()
        return current

    def reset(self) -> Tally:
        """Start a fresh tally for this thread; returns it."""
        self._local.tally = Tally()
        return self._local.tally

    def install(self) -> Meter:
        if self._installed:
            return self
        from requests.adapters import HTTPAdapter

        original = self.original_send = HTTPAdapter.send
        meter = self

        def send(adapter: Any, request: Any, stream: bool = False, **kwargs: Any) -> Any:
            port = urlsplit(request.url).port or 0
            cpu_started = time.thread_time()
            started = time.perf_counter()
            try:
                response = original(adapter, request, stream=stream, **kwargs)
                if not stream:
                    response.content  # noqa: B018 - read the body inside the measured window
            finally:
                spent = time.perf_counter() - started
                tally = meter.tally()
                tally.cpu_seconds += time.thread_time() - cpu_started
                tally.seconds += spent
                tally.calls[port] += 1
                tally.seconds_by_port[port] += spent
                tally.region_http[tally.region] += spent
                with meter._all_lock:
                    meter.total[port] += 1
            if stream:
                tally.streamed += 1
            return response

        HTTPAdapter.send = send  # type: ignore[method-assign]

        from urllib3.connection import HTTPConnection

        new_conn = HTTPConnection._new_conn

        def counted_new_conn(connection: Any) -> Any:
            meter.tally().connections[connection.port or 0] += 1
            return new_conn(connection)

        HTTPConnection._new_conn = counted_new_conn  # type: ignore[method-assign]
        self._installed = True
        return self

    def region(self, name: str, owner: type, method: str) -> None:
        """Time ``owner.method`` as region ``name`` (outermost region only), to split own time by library."""
        original = getattr(owner, method)
        meter = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            tally = meter.tally()
            if tally.region:
                return original(*args, **kwargs)
            tally.region = name
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                tally.region_seconds[name] += time.perf_counter() - started
                tally.region = ""

        timed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, method, timed)


METER = Meter()


def bare_session() -> Any:
    """A plain ``requests.Session`` whose adapter is not metered (the floor)."""
    import requests
    from requests.adapters import HTTPAdapter

    class Bare(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return (METER.original_send or HTTPAdapter.send)(self, request, **kwargs)

    session = requests.Session()
    session.mount("https://", Bare())
    session.mount("http://", Bare())
    return session


# -- the stack and the app ----------------------------------------------------
@contextmanager
def local_stack() -> Iterator[Any]:
    """The loopback stand-ins and Azurite, with the process environment the SDKs read."""
    from devtools.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        stack = LocalStack(Path(workdir)).start()
        os.environ.update(stack.process_environment)
        try:
            yield stack
        finally:
            stack.stop()


# Makes the tables and queues in a process of its own, as the infra templates do in Azure: the process
# measured never loads what it would not load anyway (the queue SDK, for one, is 10 MiB resident).
_MAKE_STORAGE = (
    "import json, sys\n"
    "from deskbridge.runtime import Runtime\n"
    "from deskbridge.settings import Settings\n"
    "Runtime(Settings(json.load(sys.stdin))).ensure_storage()\n"
)


def make_storage(settings: dict[str, str]) -> None:
    import subprocess

    subprocess.run([sys.executable, "-c", _MAKE_STORAGE], input=json.dumps(settings), text=True, cwd=ROOT,
                   check=True, capture_output=True, timeout=120)


def app_settings(stack: Any, tag: str) -> dict[str, str]:
    """The stack's settings with tables and queues of this run's own, made before anything is timed (the
    bridge never creates them on the way)."""
    pid = os.getpid()
    settings = (
        dict(os.environ)
        | stack.settings
        | {
            "BRIDGE_LEDGER_TABLE": f"benchledger{tag}{pid}",
            "BRIDGE_DELIVERIES_TABLE": f"benchdeliveries{tag}{pid}",
            "BRIDGE_RETRY_QUEUE": f"bench-retries-{tag}-{pid}",
            "BRIDGE_RETRY_POISON_QUEUE": f"bench-retries-{tag}-{pid}-poison",
            "BRIDGE_DESK_QUEUE": f"bench-desk-{tag}-{pid}",
            "BRIDGE_DESK_POISON_QUEUE": f"bench-desk-{tag}-{pid}-poison",
        }
    )
    make_storage(settings)
    return settings


_FUNCTIONS: dict[str, Any] = {}


def registered(name: str) -> Any:
    """The user function behind a registered trigger, as the host would call it."""
    if not _FUNCTIONS:
        import function_app

        _FUNCTIONS.update({f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()})
    return _FUNCTIONS[name]


def http_request(route: str, body: dict[str, Any]) -> Any:
    """What the Functions host hands the worker for a POST (built outside any timed window)."""
    import azure.functions as func

    return func.HttpRequest(
        "POST",
        f"http://localhost:7071/api/{route}",
        headers={"Content-Type": "application/json"},
        params={},
        route_params={},
        body=json.dumps(body).encode("utf-8"),
    )


def syskit_body(n: int, prefix: str = "BENCH") -> dict[str, Any]:
    """The body Syskit documents for its Jira recipe, for a distinct ticket ``{prefix}-{n}``."""
    key = f"{prefix}-{n}"
    return {
        "templateId": 7,
        "displayName": f"Campaign workspace {n}",
        "desiredUrl": key.lower(),
        "owners": ["olga.owner@contoso.com"],
        "members": ["mark.member@contoso.com", "mia.member@contoso.com"],
        "description": f"Planning workspace for campaign {n}",
        "comment": f"Generated by JIRA Issue {key}",
        "metadata": {},
        "isPrivate": False,
    }


def standin_calls(stack: Any) -> dict[str, int]:
    return {
        "point": len(stack.point.provision_calls()),
        "point_all": len(stack.point.calls),
        "entra": len(stack.entra.calls),
        "entra_tokens": len(stack.entra.calls_to("POST")),
        "vault": len(stack.vault.calls),
    }


def storage_ports(stack: Any) -> set[int]:
    return set(stack.azurite.ports.values())


# -- figures --------------------------------------------------------------------
def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": ms(percentile(values, 0.50)),
        "p90": ms(percentile(values, 0.90)),
        "p99": ms(percentile(values, 0.99)),
        "max": ms(max(values)),
        "mean": ms(statistics.fmean(values)),
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "load_1min": round(os.getloadavg()[0], 2),  # other work on the machine inflates wall times
    }


def rss_mib() -> float:
    """Resident memory now (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(figures: dict[str, Any]) -> None:
    """One JSON line of figures on stdout."""
    print(json.dumps(figures, separators=(",", ":")), flush=True)


def quiet_logging(level: str = "INFO") -> None:
    """Log as the Functions worker does: records at INFO formatted by a handler (here into nothing).

    ``BENCH_LOG_LEVEL=WARNING`` measures without the INFO records.
    """
    import logging

    class Discard(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.format(record)

    root = logging.getLogger()
    root.handlers[:] = [Discard()]
    root.setLevel(os.environ.get("BENCH_LOG_LEVEL", level))
