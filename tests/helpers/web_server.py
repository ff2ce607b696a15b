"""A real ``publisher serve`` process on 127.0.0.1 for the web tests, and a
small HTTP client that keeps cookies and sends paths exactly as written.

    site = make_web_site(tmp_path / "site", port)
    with WebServer(site / "publisher.toml", port, env) as server:
        client = Client(server.port)
        reply = client.get("/")
        reply.status, reply.headers["Content-Type"], reply.body
"""

from __future__ import annotations

import email
import email.policy
import http.client
import os
import re
import socket
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

from ..conftest import REPO
from .state import pin_state

SECRET = "a-web-test-secret-that-is-long-enough"
SECRET_ENV = "TEST_PUBLISHER_WEB_SECRET"

# Three posts besides the seed (which has comments): tags and an author
# give tag and author feeds, items = 2 gives RFC 5005 archives.
POSTS = {
    "talks.txt": (
        '+++\ndate = 2024-01-01T10:00:00Z\ntags = ["Diplomacy"]\n+++\nTalks resume\n\n'
        "BBC News reports: They met in Geneva.\n"
    ),
    "ceasefire.txt": (
        '+++\ndate = 2024-01-02T10:00:00Z\ntags = ["Diplomacy", "Gaza"]\n+++\nA ceasefire holds\n\n'
        "Reuters reports: The guns fell silent.\n"
    ),
    "aid.txt": '+++\ndate = 2024-01-03T10:00:00Z\ntags = ["Gaza"]\n+++\nAid arrives\n\nThe first trucks crossed.\n',
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_web_site(root: Path, port: int, extra: str = "", *, pages: bool = False) -> Path:
    """A site whose public URL is the test server's, with an outbox transport.

    Without ``pages`` the build writes no web pages, so ``serve``'s own
    index (the form with its CSRF token) answers at /."""
    root.mkdir(parents=True, exist_ok=True)
    posts = root / "posts"
    posts.mkdir(exist_ok=True)
    for name in ("000_876ff53b270cd303.txt", "000_876ff53b270cd303.txt.meta.toml"):
        (posts / name).write_bytes((REPO / "seeds" / name).read_bytes())
    for name, text in POSTS.items():
        (posts / name).write_text(text, encoding="utf-8")
    (root / "publisher.toml").write_text(
        f'[site]\ntitle = "Web Test Site"\nurl = "http://127.0.0.1:{port}/"\ndescription = "Posts for the web tests"\n'
        'author = { name = "Editor", email = "editor@example.org" }\n\n'
        '[content]\npaths = ["posts"]\n\n'
        "[feeds]\nitems = 2\nstylesheet = true\n\n"
        f'[mail]\nfrom = "Web Test Site <news@example.org>"\nsecret_env = "{SECRET_ENV}"\ntransport = "outbox"\n\n'
        '[lists.daily]\ntitle = "Daily digest"\ndescription = "Every day\'s posts"\n'
        "backfill = 5\n\n"  # its first issue holds the site's posts
        '[lists.weekly]\ntitle = "Weekly roundup"\n'
        + ("" if pages else "\n[pages]\nenabled = false\n")
        + extra,
        encoding="utf-8",
    )
    return root


def server_env() -> dict[str, str]:
    return {**os.environ, SECRET_ENV: SECRET, "PYTHONUNBUFFERED": "1"}


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class WebServer:
    """``python -m publisher --config CONFIG serve --port PORT``, until stopped."""

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None, *, verbose: bool = False):
        self.config = config
        self.verbose = verbose
        self.port = port
        self.env = env or server_env()
        self.log = config.parent / "serve.log"
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> WebServer:
        pin_state(self.config)  # the PostgreSQL variant of a test: the test's database
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "publisher", "--config", str(self.config), *(["-v"] if self.verbose else []),
                    "serve", "--port", str(self.port),
                ],
                env=self.env,
                cwd=self.config.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Ctrl-C reaches it as it would from a terminal, even when these
                # tests run in the background, where the shell ignores SIGINT.
                preexec_fn=_sigint_as_in_a_terminal,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"publisher serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/")
                connection.getresponse().read()
                connection.close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"publisher serve did not answer within 30 s:\n{self.output()}") from None
                time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM (what systemd and Ctrl-C's handler do), then wait; the exit code."""
        if self.process is not None and self.returncode is None:
            self.process.terminate()
            try:
                self.returncode = self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.returncode = self.process.wait()
        return self.returncode if self.returncode is not None else -1

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Client:
    """HTTP/1.1 to 127.0.0.1, one connection per request; keeps cookies.

    Paths go on the request line exactly as given (no normalising of
    ``..`` or percent-escapes), which is what the traversal tests need.
    """

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    forwarded_for: str | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        sent = dict(headers or {})
        if self.cookies:
            sent.setdefault("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if self.forwarded_for:
            sent.setdefault("X-Forwarded-For", self.forwarded_for)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in sent.items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return Reply(response.status, response.headers, data)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def head(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("HEAD", path, headers=headers)

    def post(self, path: str, fields: dict[str, str | list[str]] | list[tuple[str, str]], headers: dict[str, str] | None = None) -> Reply:
        body = urlencode(fields, doseq=True).encode("ascii")
        sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, body=body, headers=sent)

    def csrf(self, path: str = "/") -> str:
        """The CSRF field of the form at ``path`` (fetching it sets the cookie)."""
        reply = self.get(path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', reply.text)
        assert match, f"no CSRF field on {path}"
        return match.group(1)


def outbox_messages(outbox: Path) -> list[EmailMessage]:
    """The outbox's messages in the order they were delivered."""
    folder = outbox / "new"
    if not folder.is_dir():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((p for p in folder.iterdir() if p.suffix == ".eml"), key=delivered)
    ]


_MAILDIR_NAME = re.compile(r"(\d+)\.M(\d+)P(\d+)Q(\d+)\.")


def delivered(path: Path) -> tuple[int, ...]:
    """The delivery order of a Maildir file ``<sec>.M<usec>P<pid>Q<seq>.<host>``:
    its numbers compared as numbers (by name, M83348 would come after M170173)."""
    match = _MAILDIR_NAME.match(path.name)
    assert match, f"not a Maildir name: {path.name}"
    return tuple(int(n) for n in match.groups())


def confirmations_to(outbox: Path, address: str) -> list[EmailMessage]:
    return [
        m
        for m in outbox_messages(outbox)
        if m["To"].addresses[0].addr_spec == address and m["Subject"].startswith("Confirm your subscription")
    ]


def confirm_link(message: EmailMessage) -> str:
    """The confirmation URL of a confirmation email (from its HTML part)."""
    html = message.get_body(("html",)).get_content()
    match = re.search(r'class="confirm-link" href="([^"]+)"', html)
    assert match, "no confirm link in the email"
    return match.group(1).replace("&amp;", "&")
