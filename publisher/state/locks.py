"""Locks between processes sharing a state store: an exclusive ``flock`` on
a file next to ``state.db``, or, when the store is PostgreSQL (``[state]
url``), an advisory lock in the database, which holds across hosts
(``scheduler_lock`` and ``send_lock`` choose).

    with SchedulerLock(state_path):               # one scheduler per state store
        ...
    with SendLock(state_path, "daily"):           # one sender per list: `publisher send` and the scheduler
        ...

A file lock's file holds the PID of the holder, for the message the next one gets.
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
from typing import TYPE_CHECKING

from publisher.errors import PublisherError

if TYPE_CHECKING:
    from publisher.config import StateSettings
    from publisher.state.postgres import AdvisoryHold


class LockHeld(PublisherError):
    """Another process holds the lock."""

    def __init__(self, message: str, holder: int | None):
        super().__init__(message)
        self.holder = holder


class ProcessLock:
    """An exclusive lock on ``path``; ``acquire`` raises ``error`` when taken."""

    error: type[LockHeld] = LockHeld

    def __init__(self, path: Path | str, advisory: AdvisoryHold | None = None):
        self.path = path  # the file, or what the advisory lock is called
        self._fd: int | None = None
        self._advisory = advisory

    def held_by(self, holder: int | None) -> str:
        """The message for a refused ``acquire``."""
        return f"{self.path}: held by {_who(holder)}"

    def try_acquire(self) -> int | None:
        """Take the lock without waiting. None when taken; else the holder's
        PID (0 when the file does not say; an advisory lock's holder is
        "publisher PID@HOST")."""
        if self._advisory is not None:
            return self._advisory.try_acquire()
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

    @property
    def held(self) -> bool:
        """Does this process hold the lock (through this object)?"""
        return self._fd is not None or (self._advisory is not None and self._advisory.held)

    @property
    def fd(self) -> int | None:
        """The open lock file while this holds a file lock (None otherwise). A
        child process given it holds the lock with this one: the lock goes
        when the last of them ends (or on ``release``)."""
        return self._fd

    def release(self) -> None:
        if self._advisory is not None:
            self._advisory.release()
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

    def __init__(self, state_path: Path, advisory: AdvisoryHold | None = None):
        super().__init__(state_path.with_name(state_path.name + ".lock") if advisory is None else "the scheduler lock", advisory)

    def held_by(self, holder: int | None) -> str:
        return (
            f"{self.path}: another scheduler is running for this state store ({_who(holder)}); "
            f"stop it first (kill -TERM {_pid(holder)}), or let it do the work"
        )


class SendLocked(LockHeld):
    """Another process is sending the list."""


class SendLock(ProcessLock):
    """One sender per list, ``state.db.send-LIST.lock``: held from choosing
    the issue to its last delivery, so two processes never deliver the same
    pending messages, nor both make a new issue of the same posts."""

    error = SendLocked

    def __init__(self, state_path: Path, list_name: str, advisory: AdvisoryHold | None = None):
        where = state_path.with_name(f"{state_path.name}.send-{list_name}.lock") if advisory is None else "advisory"
        super().__init__(where, advisory)
        self.list_name = list_name

    def held_by(self, holder: int | None) -> str:
        return (
            f"list {self.list_name!r} is being sent by {_who(holder)} (lock {self.path}); "
            "it will deliver the issue: `publisher status` shows how far it is"
        )


def _who(holder: int | str | None) -> str:
    if isinstance(holder, str):
        return holder
    return f"process {holder}" if holder else "another process"


def _pid(holder: int | str | None) -> str:
    if isinstance(holder, str):
        found = holder.removeprefix("publisher ").split("@")
        return f"{found[0]} on {found[1]}" if len(found) == 2 else "PID"
    return str(holder or "PID")


def _advisory(settings: StateSettings, name: str) -> AdvisoryHold | None:
    if settings.url is None:
        return None
    from publisher.state.postgres import AdvisoryHold

    return AdvisoryHold(settings.url, settings.password, settings.timeout, name)


def scheduler_lock(settings: StateSettings) -> SchedulerLock:
    """One scheduler per state store: a file lock beside SQLite's file, an advisory lock in PostgreSQL."""
    return SchedulerLock(settings.path, _advisory(settings, "publisher scheduler"))


def send_lock(settings: StateSettings, list_name: str) -> SendLock:
    """One issue-maker per list: a file lock beside SQLite's file, an advisory lock in PostgreSQL."""
    return SendLock(settings.path, list_name, _advisory(settings, f"publisher send {list_name}"))


__all__ = [
    "LockHeld", "ProcessLock", "SchedulerLock", "SchedulerLocked", "SendLock", "SendLocked", "scheduler_lock", "send_lock",
]
