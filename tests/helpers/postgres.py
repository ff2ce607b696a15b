"""A PostgreSQL server of the test suite's own: Debian's binaries, a data
folder in a temporary folder, a free port, its socket in that folder.

    server = PostgresServer.start()
    url = server.create_database()      # postgresql://postgres@/t1?host=...&port=...
    server.restart()                    # pg_ctl restart: every connection is cut
    server.stop()

PostgreSQL refuses to run as root: when the tests do, the server runs as
the ``postgres`` user (made by Debian's package), which is given the folder.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

def _binaries() -> Path:
    """Debian's newest PostgreSQL binaries (/usr/lib/postgresql/VERSION/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


BIN = _binaries()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    def __init__(self, folder: Path, port: int, user: str | None):
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.user = user  # the account the server runs as, when the tests run as root
        self._names = itertools.count(1)

    @classmethod
    def start(cls) -> PostgresServer:
        if not (BIN / "initdb").exists():
            raise RuntimeError(f"{BIN}/initdb is missing: run `make test`, which installs Debian's postgresql")
        folder = Path(tempfile.mkdtemp(prefix="publisher-pg-"))
        user = "postgres" if os.geteuid() == 0 else None
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        server = cls(folder, _free_port(), user)
        server._run(
            BIN / "initdb", "-D", server.data, "-U", "postgres", "--auth=trust", "--locale=C.UTF-8",
            "--encoding=UTF8", "--no-sync",
        )
        server._ctl("start")
        return server

    def _run(self, *command: object) -> None:
        argv = [str(part) for part in command]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.folder)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")

    def _ctl(self, action: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses='' -c unix_socket_directories='{self.folder}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w", "-m", "fast",
                  "-o", options, action)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.folder))}&port={self.port}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self) -> None:
        self._ctl("restart")

    def stop_server(self) -> None:
        self._ctl("stop")

    def start_server(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        try:
            self._ctl("stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
