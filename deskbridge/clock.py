"""The one clock the bridge reads: wall time for records, monotonic time for budgets.

The runtime hands out one :class:`Clock`; every part that needs the time
asks it, so a test moves time forward (:meth:`ShiftedClock.advance`) instead
of sleeping past a threshold.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """The system's clock."""

    def now(self) -> datetime:
        """Wall time, timezone-aware UTC (record times, schedules)."""
        return datetime.now(UTC)

    def time(self) -> float:
        """Wall time as POSIX seconds (token expiry)."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds that never go back (budgets, durations, cache ages)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ShiftedClock(Clock):
    """The system's clock plus an offset that only grows: time runs, and tests can jump ahead."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset


SYSTEM = Clock()
