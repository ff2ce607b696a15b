"""The clock every command reads time from, so tests can fix it.

Code that needs the time takes a ``Clock`` (or a ``now`` it was given)
instead of calling ``datetime.now()``: the command line builds one
``SystemClock`` per invocation, and tests pass their own.

    clock = SystemClock()
    started = clock.now()          # aware, UTC
    clock.sleep(0.5)               # retries and rate limits wait through it
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clock: UTC wall time, a monotonic timer, real sleeps."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
