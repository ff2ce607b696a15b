"""A private Dovecot (Debian's dovecot-imapd and dovecot-pop3d) for the
bounce-mailbox tests: IMAPS and POP3S (and IMAP and POP3 with STARTTLS required) on free loopback ports, TLS only, with
a self-signed certificate made for it (trust ``server.certificate`` through
``SSL_CERT_FILE``), one user whose password is known, Maildir storage, all in
a temp folder; run in the foreground and stopped by its own process id.

    with private_dovecot("bounces", "secret") as server:
        server.imaps, server.pop3s, server.certificate

Dovecot's master runs as root and its login processes as ``dovenull``
(so this needs root, as the test machines and CI run); mail is kept as
``nobody``.
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

from .smtp_server import make_certificate
from .waiting import wait_for

DOVECOT = "/usr/sbin/dovecot"
NOBODY = 65534


@dataclass(frozen=True)
class PrivateDovecot:
    imaps: int
    pop3s: int
    imap: int  # STARTTLS (ssl = required: no login before it)
    pop3: int  # STARTTLS (STLS)
    certificate: Path
    root: Path

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _config(root: Path, imaps: int, pop3s: int, imap: int, pop3: int) -> str:
    return f"""base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
default_internal_user = dovecot
default_login_user = dovenull
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""


@contextmanager
def private_dovecot(user: str, password: str) -> Iterator[PrivateDovecot]:
    if os.geteuid() != 0:
        raise RuntimeError("a private Dovecot needs root (its login processes run as dovenull)")
    if not Path(DOVECOT).exists():
        raise RuntimeError("Dovecot is not installed: `make test` installs Debian's dovecot-imapd and dovecot-pop3d")
    # Not under pytest's tmp_path: its folders are private to root.
    root = Path(tempfile.mkdtemp(prefix="publisher-dovecot-"))
    root.chmod(0o755)
    imaps, pop3s, imap, pop3 = _free_port(), _free_port(), _free_port(), _free_port()
    process = None
    try:
        cert, key = make_certificate(root)
        (root / "home" / user).mkdir(parents=True)
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root / "home")], check=True)
        (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
        (root / "dovecot.conf").write_text(_config(root, imaps, pop3s, imap, pop3))
        process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stderr=subprocess.PIPE)
        wait_for(
            lambda: process.poll() is not None or all(_listening(port) for port in (imaps, pop3s, imap, pop3)),
            what="Dovecot listening",
        )
        if process.poll() is not None:
            raise RuntimeError(f"Dovecot did not start: {process.stderr.read().decode(errors='replace')}")
        yield PrivateDovecot(imaps=imaps, pop3s=pop3s, imap=imap, pop3=pop3, certificate=cert, root=root)
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
