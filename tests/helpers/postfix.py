"""A private Postfix (Debian's package) for the bounce tests: its own config,
queue and mail folders in a temp folder, SMTP on a free loopback port,
relaying nothing anywhere.

- ``local.test`` is a local domain that accepts every recipient at SMTP time
  (``local_recipient_maps`` empty): an unknown user there is bounced by
  local(8) with a real DSN (5.1.1) to the envelope sender;
- ``bounce.test`` is a virtual mailbox domain: ``bounces@bounce.test``
  (with ``+`` extensions, so VERP addresses) delivers to the Maildir
  ``mail/bounces/``, and each name in ``readers`` to ``mail/<name>/``;
- every other domain goes to the ``error`` transport: nothing leaves.

Postfix's master runs as root and its daemons as the ``postfix`` user, so
this needs root (as the test machines and CI run).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .waiting import wait_for

POSTFIX = "/usr/sbin/postfix"
NOBODY = 65534


@dataclass(frozen=True)
class PrivatePostfix:
    port: int
    root: Path
    bounces: Path  # the Maildir of bounces@bounce.test

    def mailbox(self, name: str) -> Path:
        return self.root / "mail" / name

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _main_cf(root: Path, readers: list[str]) -> str:
    boxes = " ".join(f"{name}@bounce.test={name}/" for name in ["bounces", *readers])
    return f"""compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.publisher.test
mydomain = publisher.test
myorigin = $myhostname
mydestination = local.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
virtual_mailbox_domains = bounce.test
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = inline:{{ {boxes} }}
virtual_uid_maps = static:{NOBODY}
virtual_gid_maps = static:{NOBODY}
relay_domains =
default_transport = error:5.7.1 this test server relays nothing
smtputf8_enable = no
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
"""


@contextmanager
def private_postfix(readers: list[str]) -> Iterator[PrivatePostfix]:
    """Start a private Postfix; stopped (and its folder removed) on exit."""
    if os.geteuid() != 0:
        raise RuntimeError("a private Postfix needs root (its master starts the daemons as the postfix user)")
    if not Path(POSTFIX).exists():
        raise RuntimeError("Postfix is not installed: `make test` installs Debian's postfix")
    # Not under pytest's tmp_path: its folders are private to root, and the
    # postfix user and the virtual delivery agent must reach theirs.
    root = Path(tempfile.mkdtemp(prefix="publisher-postfix-"))
    root.chmod(0o755)
    port = _free_port()
    try:
        for name in ("conf", "queue", "data", "mail"):
            (root / name).mkdir()
        shutil.chown(root / "data", "postfix")
        for name in ["bounces", *readers]:
            for sub in ("tmp", "new", "cur"):
                (root / "mail" / name / sub).mkdir(parents=True)
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root / "mail")], check=True)
        (root / "conf" / "main.cf").write_text(_main_cf(root, readers))
        master = Path("/etc/postfix/master.cf").read_text()
        master = master.replace("\nsmtp      inet", f"\n127.0.0.1:{port} inet", 1)
        (root / "conf" / "master.cf").write_text(master)
        conf = str(root / "conf")
        subprocess.run([POSTFIX, "-c", conf, "check"], check=True, timeout=60)
        subprocess.run([POSTFIX, "-c", conf, "start"], check=True, timeout=60)
        try:
            yield PrivatePostfix(port=port, root=root, bounces=root / "mail" / "bounces")
        finally:
            pid_file = root / "queue" / "pid" / "master.pid"
            master = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
            subprocess.run([POSTFIX, "-c", conf, "stop"], timeout=60)
            if master is not None:  # its folder goes only once the master (and so its daemons) has gone
                wait_for(lambda: not Path(f"/proc/{master}").exists(), what="Postfix's master to exit")
    finally:
        shutil.rmtree(root, ignore_errors=True)
