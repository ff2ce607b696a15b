"""An HTTP server on 127.0.0.1 that serves feeds by route and records every request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    """An HTTP server on 127.0.0.1 whose routes a test sets; it records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.status = 0
                self.recorded = False
                route = server.routes.get(self.path)
                try:
                    if route is None:
                        self.reply(404, b"not found")
                    else:
                        route(self)
                except OSError:
                    pass  # the client hung up (the size cap, a timeout): expected
                if not self.recorded:  # a route that never answered (a hang-up, a timeout)
                    server.seen.append(Seen(self.path, dict(self.headers), self.status))

            def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.status = status
                # Recorded before the client can read the answer: a test that
                # looks once the build is done finds it, however busy the machine.
                server.seen.append(Seen(self.path, dict(self.headers), status))
                self.recorded = True
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

