"""The other processes of a ``publisher send`` that uses several
(``[mail] processes``, ``--processes``): each is ``publisher send --join
ISSUE``, started fresh (never a fork of this threaded process), and claims
leased batches of the issue as this one does.

    others = SenderProcesses(config.path, "daily", issue_id, count=2, quiet=False, verbose=0)
    others.start()
    ...                      # this process delivers its share
    others.signal(SIGTERM)   # on SIGTERM or SIGINT: they stop once their messages in flight are recorded
    for line in others.wait():
        print(line)          # how each that did not end well ended
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

EXIT_REJECTED, EXIT_ERROR = 1, 2


class SenderProcesses:
    """``count`` processes delivering one issue beside this one. Their
    stderr is this process's: their errors reach the user as they come,
    one line each. They run in a session of their own, so a Ctrl-C at the
    terminal reaches them once, through :meth:`signal`, not twice."""

    def __init__(
        self, config_path: Path, list_name: str, issue_id: int, *,
        count: int, quiet: bool, verbose: int, lock_fd: int | None = None,
    ):
        flags = ["-q"] if quiet else ["-v"] * verbose
        self.command = [
            sys.executable, "-m", "publisher", "--config", str(config_path), *flags,
            "send", "--list", list_name, "--join", str(issue_id), "--processes", str(count + 1),
        ]
        self.count = count
        # The send lock's file, open in each: should this process die first,
        # the scheduler is kept out until the last of them ends.
        self.pass_fds = () if lock_fd is None else (lock_fd,)
        self.processes: list[subprocess.Popen] = []
        self.signalled = False

    def start(self) -> None:
        for _ in range(self.count):
            self.processes.append(subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=self.pass_fds
            ))

    def signal(self, signum: int) -> None:
        """Pass ``signum`` on to those still running (safe in a signal handler)."""
        self.signalled = True
        for process in self.processes:
            if process.returncode is None:
                try:
                    process.send_signal(signum)
                except OSError:  # it has just ended
                    pass

    def wait(self) -> list[str]:
        """Wait for every one to end; a line for each that did not end well
        (a process killed by a signal this one did not pass on: what it had
        claimed goes to another once its lease runs out)."""
        lines = []
        for number, process in enumerate(self.processes, start=2):
            code = process.wait()
            if code < 0 and not self.signalled:
                name = signal.Signals(-code).name
                lines.append(
                    f"sending process {number} (pid {process.pid}) was ended by {name}; "
                    "the others take over what it held once its lease runs out"
                )
            elif code > EXIT_ERROR:  # exit 2 is an error it has told of itself
                lines.append(f"sending process {number} (pid {process.pid}) exited with code {code}")
        return lines

    @property
    def errors(self) -> bool:
        """Did one end with an error (exit code 2) rather than finish?"""
        return any(process.returncode is not None and process.returncode > EXIT_REJECTED for process in self.processes)
