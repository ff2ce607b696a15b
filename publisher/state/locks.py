"""Locks between processes sharing a state store: an exclusive ``flock`` on
a file next to ``state.db``.

    with SchedulerLock(state_path):               # one scheduler per state store
        ...
    with SendLock(state_path, "daily"):           # one sender per list: `publisher send` and the scheduler
        ...

The file holds the PID of the holder, for the message the next one gets.
The operating system drops the lock when the process ends, however it ends,
so a crash never leaves a stale lock behind; the file itself stays
(removing it would let two processes lock two different files). ``flock``
locks belong to an open file, so two opens in one process exclude each
other too.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path

from publisher.errors import PublisherError


class LockHeld(PublisherError):
    """Another process holds the lock."""

    def __init__(self, message: str, holder: int | None):
        super().__init__(message)
        self.holder = holder


class ProcessLock:
    """An exclusive lock on ``path``; ``acquire`` raises ``error`` when taken."""

    error: type[LockHeld] = LockHeld

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def held_by(self, holder: int | None) -> str:
        """The message for a refused ``acquire``."""
        return f"{self.path}: held by {_who(holder)}"

    def try_acquire(self) -> int | None:
        """Take the lock without waiting. None when taken; else the holder's
        PID (0 when the file does not say)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockHeld(f"{self.path}: cannot open the lock file: {exc.strerror}", None) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            return int(holder) if holder.isdigit() else 0
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return None

    def acquire(self) -> None:
        holder = self.try_acquire()
        if holder is not None:
            raise self.error(self.held_by(holder or None), holder or None)

    def wait(
        self,
        stop: threading.Event,
        *,
        poll: float = 1.0,
        on_wait: Callable[[int | None], None] | None = None,
    ) -> bool:
        """Take the lock, waiting as long as another process has it; False
        if ``stop`` is set first. ``on_wait`` is told once who holds it."""
        told = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                return True
            if not told and on_wait is not None:
                on_wait(holder or None)
                told = True
            if stop.wait(poll):
                return False

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class SchedulerLocked(LockHeld):
    """Another scheduler holds the state store's lock."""


class SchedulerLock(ProcessLock):
    """One scheduler per state store: ``state.db.lock``."""

    error = SchedulerLocked

    def __init__(self, state_path: Path):
        super().__init__(state_path.with_name(state_path.name + ".lock"))

    def held_by(self, holder: int | None) -> str:
        return (
            f"{self.path}: another scheduler is running for this state store ({_who(holder)}); "
            f"stop it first (kill -TERM {holder or 'PID'}), or let it do the work"
        )


class SendLocked(LockHeld):
    """Another process is sending the list."""


class SendLock(ProcessLock):
    """One sender per list, ``state.db.send-LIST.lock``: held from choosing
    the issue to its last delivery, so two processes never deliver the same
    pending messages, nor both make a new issue of the same posts."""

    error = SendLocked

    def __init__(self, state_path: Path, list_name: str):
        super().__init__(state_path.with_name(f"{state_path.name}.send-{list_name}.lock"))
        self.list_name = list_name

    def held_by(self, holder: int | None) -> str:
        return (
            f"list {self.list_name!r} is being sent by {_who(holder)} (lock {self.path}); "
            "it will deliver the issue: `publisher status` shows how far it is"
        )


def _who(holder: int | None) -> str:
    return f"process {holder}" if holder else "another process"


__all__ = ["LockHeld", "ProcessLock", "SchedulerLock", "SchedulerLocked", "SendLock", "SendLocked"]
