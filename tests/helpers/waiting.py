"""Waiting for an event: a thread that reads files while they are replaced, and a poll with a deadline."""

from __future__ import annotations

import threading
import time
from pathlib import Path


def wait_for(predicate, timeout: float = 60.0, what: str = "the condition"):
    """Poll ``predicate`` until it returns something true, and return that.

    The deadline only turns a hang into a failure; no test passes or fails by it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Poller(threading.Thread):
    """Reads files in a loop until stopped; records every read it could not accept."""

    def __init__(self, paths: list[Path], accept):
        super().__init__(daemon=True)
        self.paths = paths
        self.accept = accept
        self.stop = threading.Event()
        self.reads = 0
        self.first_read = threading.Event()
        self.wanted: int | None = None
        self.enough = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for path in self.paths:
                try:
                    data = path.read_bytes()
                    self.accept(path, data)
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    self.failures.append(f"{path.name}: {exc!r}")
                self.reads += 1
            self.first_read.set()
            if self.wanted is not None and self.reads >= self.wanted:
                self.enough.set()

    def finish(self) -> None:
        # Let it read every file at least once more after the last write, then stop.
        self.wanted = self.reads + 2 * len(self.paths)
        assert self.enough.wait(60), "the reader thread stopped reading"
        self.stop.set()
        self.join()

