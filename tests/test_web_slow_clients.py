"""Slow clients against a real ``publisher serve``: hundreds of half-open
connections that trickle a header now and then (slowloris) neither stop the
server answering others nor stay open past ``[serve] request_timeout``."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main

from .helpers.waiting import wait_for
from .helpers.web_server import SECRET, SECRET_ENV, Client, WebServer, free_port, make_web_site

pytestmark = pytest.mark.slow

SLOW_SOCKETS = 300


class Trickler(threading.Thread):
    """Keeps ``sockets`` half-open: one more header line each, every ``every`` seconds."""

    def __init__(self, sockets: list[socket.socket], every: float):
        super().__init__(daemon=True)
        self.sockets = sockets
        self.every = every
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.wait(self.every):
            n += 1
            for sock in self.sockets:
                try:
                    sock.send(f"X-Slow-{n}: {n}\r\n".encode("ascii"))
                except OSError:
                    pass


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_clients_neither_block_others_nor_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    # The trickle (every second) is faster than read_timeout, so only the
    # absolute request_timeout can close these connections.
    site = make_web_site(tmp_path / "site", port, extra="\n[serve]\nread_timeout = 3\nrequest_timeout = 4\n")
    monkeypatch.setenv(SECRET_ENV, SECRET)
    result = CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "build"])
    assert result.exit_code == 0, result.output
    sockets: list[socket.socket] = []
    with WebServer(site / "publisher.toml", port) as server:
        try:
            for _ in range(SLOW_SOCKETS):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                sockets.append(sock)
            trickler = Trickler(sockets, every=1.0)
            trickler.start()
            client = Client(port)
            started = time.monotonic()
            reply = client.get("/rss.xml")  # the client gives up after 10 s: waitress's defaults never answer
            elapsed = time.monotonic() - started
            assert reply.status == 200
            assert client.get("/").status == 200
            print(f"\n{SLOW_SOCKETS} slow sockets open: a feed GET answered in {elapsed * 1000:.0f} ms")
            # Every slow connection is closed by the server, trickling or not.
            for sock in sockets:
                sock.setblocking(False)
            wait_for(lambda: all(closed_by_server(s) for s in sockets), timeout=60, what="the slow sockets to be closed")
            trickler.halt.set()
            assert client.get("/rss.xml").status == 200
        finally:
            for sock in sockets:
                sock.close()
        assert server.stop() == 0
    assert "Traceback" not in server.output()
