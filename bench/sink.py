"""postfix's ``smtp-sink`` on 127.0.0.1: an SMTP server that accepts and discards.

``ensure_smtp_sink()`` installs it from Debian's ``postfix`` package when it
is missing: non-interactively, with "No configuration" preseeded so no MTA is
set up, and with postfix stopped afterwards should the package scripts have
started it (nothing is left listening on port 25).

    with SmtpSink() as sink:
        ... send to 127.0.0.1:sink.port ...
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

_CANDIDATES = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


def find_smtp_sink() -> str | None:
    found = shutil.which("smtp-sink")
    if found:
        return found
    return next((path for path in _CANDIDATES if Path(path).is_file()), None)


def ensure_smtp_sink() -> str:
    """The path of ``smtp-sink``, installing postfix from Debian's packages if needed."""
    found = find_smtp_sink()
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    preseed = "postfix postfix/main_mailer_type select No configuration\npostfix postfix/mailname string localhost\n"
    subprocess.run([*sudo, "debconf-set-selections"], input=preseed.encode(), check=True, env=env)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"], check=True, env=env
    )
    # "No configuration" should keep postfix from starting; make sure nothing does.
    subprocess.run([*sudo, "postfix", "stop"], check=False, env=env, capture_output=True)
    found = find_smtp_sink()
    if not found:
        raise RuntimeError("postfix was installed but smtp-sink was not found")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """``smtp-sink`` on a free port of 127.0.0.1 for the life of the ``with`` block."""

    def __init__(self, backlog: int = 256):
        self.binary = ensure_smtp_sink()
        self.backlog = backlog
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> SmtpSink:
        self.port = _free_port()
        command = [self.binary, "-c", f"127.0.0.1:{self.port}", str(self.backlog)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "nobody"]  # it refuses to run as root otherwise
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    if connection.recv(100).startswith(b"220"):
                        return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"smtp-sink exited: {self.process.stderr.read().decode(errors='replace')}")
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("smtp-sink did not answer within 10 s")

    def __exit__(self, *exc_info) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
