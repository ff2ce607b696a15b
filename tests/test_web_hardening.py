"""What a hostile internet user tried on ``publisher serve``, each against a
real server process: choosing a stranger's name, replaying old confirmation
links, letter-case variants of one mailbox, IPv6 floods, a held write lock,
a forged Host header, readable files, a lost secret, addresses in logs."""

from __future__ import annotations

import html
import re
import sqlite3
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.mail.tokens import sign_token
from publisher.state.store import StateStore

from .conftest import NOW
from .helpers.waiting import wait_for
from .helpers.web_server import (
    SECRET,
    SECRET_ENV,
    Client,
    WebServer,
    confirm_link,
    confirmations_to,
    free_port,
    make_web_site,
    outbox_messages,
)

pytestmark = pytest.mark.slow

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


class Site:
    def __init__(self, root: Path, server: WebServer):
        self.root = root
        self.server = server
        self.config = load_config(root / "publisher.toml")
        self.db = self.config.state.path
        self.outbox = self.config.mail.outbox
        self._ips = iter(range(1, 250))

    def client(self) -> Client:
        return Client(self.server.port, forwarded_for=f"203.0.113.{next(self._ips)}")

    def subscribe(self, address: str, name: str = "", lists=("daily",), client: Client | None = None) -> int:
        client = client or self.client()
        fields = {"csrf_token": client.csrf(), "email": address, "name": name, "list": list(lists), "website": ""}
        return client.post("/subscribe", fields).status

    def link(self, address: str, count: int = 1) -> str:
        """The path of the newest confirmation link mailed to ``address`` (waiting for the ``count``-th email)."""
        found = wait_for(lambda: len(confirmations_to(self.outbox, address)) >= count and confirmations_to(self.outbox, address))
        return "/" + confirm_link(found[-1])[len(self.server.url) :]

    def confirm(self, path: str, name: str | None = None) -> tuple[int, str]:
        """Open the link, press the button (with ``name`` in the name field); the answer and the page's name field."""
        browser = Client(self.server.port)
        page = browser.get(path)
        if page.status != 200:
            return page.status, ""
        shown = html.unescape(re.search(r'name="name" value="([^"]*)"', page.text).group(1))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return browser.post(path, {"csrf_token": csrf, "name": shown if name is None else name}).status, shown

    def row(self, address: str) -> tuple | None:
        db = sqlite3.connect(self.db)
        try:
            return db.execute(
                "SELECT email, name, status FROM subscribers WHERE lower(email) = lower(?)", (address,)
            ).fetchall() or None
        finally:
            db.close()

    def unsubscribe(self, address: str) -> int:
        token = sign_token(SECRET.encode(), address, "daily")
        return Client(self.server.port).post(f"/unsubscribe/{token}", ONE_CLICK).status


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    root = make_web_site(
        tmp_path_factory.mktemp("hardening") / "site",
        port,
        extra="\n[serve]\nsubscribe_per_address = 3\nsubscribe_per_ip = 3\nstore_wait = 30\n",
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(SECRET_ENV, SECRET)
        assert CliRunner().invoke(main, ["--config", str(root / "publisher.toml"), "build"]).exit_code == 0
    # Left from before: a rate-limit event older than any window, which the server's upkeep drops.
    config = load_config(root / "publisher.toml")
    store = StateStore.open(config.state.path)
    store.web_events.take("subscribe-ip", "old", limit=1, since=NOW - timedelta(days=30), now=NOW - timedelta(days=30))
    store.close()
    with WebServer(root / "publisher.toml", port, verbose=True) as server:
        yield Site(root, server)
        assert server.stop() == 0
    assert "Traceback" not in server.output(), server.output()


def test_a_stranger_cannot_choose_the_name(site: Site) -> None:
    address = "named@example.net"
    assert site.subscribe(address, name="Stranger's Words") == 200
    path = site.link(address)
    assert site.row(address) == [(address, "", "pending")], "the form's name is not stored on the subscriber"
    status, shown = site.confirm(path, name="Vera")
    assert status == 200 and shown == "Stranger's Words", "the owner sees it, and may change it"
    assert site.row(address) == [(address, "Vera", "active")]
    # A form filled in for a known address changes nothing about it.
    assert site.subscribe(address, name="Other Words", lists=("weekly",)) == 200
    assert site.row(address) == [(address, "Vera", "active")]


def test_an_old_link_never_brings_back_someone_who_left(site: Site) -> None:
    address = "replay@example.net"
    assert site.subscribe(address) == 200
    first = site.link(address)
    assert site.confirm(first)[0] == 200
    assert site.subscribe(address, lists=("weekly",)) == 200
    unused = site.link(address, count=2)
    assert site.unsubscribe(address) == 200
    assert site.row(address)[0][2] == "unsubscribed"
    for path in (first, unused):  # confirmed before, and issued but never used
        assert site.confirm(path)[0] == 400
    assert site.row(address)[0][2] == "unsubscribed"
    # A new request and a new confirmation do.
    assert site.subscribe(address) == 200
    assert site.confirm(site.link(address, count=3))[0] == 200
    assert site.row(address)[0][2] == "active"


def test_letter_case_does_not_make_another_mailbox(site: Site) -> None:
    spellings = ["Victim@example.net", "vIctim@example.net", "VICTIM@example.net", "victim@EXAMPLE.net"]
    for address in spellings:
        assert site.subscribe(address) == 200
    site.subscribe("case-sentinel@example.net")
    site.link("case-sentinel@example.net")  # the mailer works in order: everything before it is done
    mailed = [m for m in outbox_messages(site.outbox) if m["To"].addresses[0].addr_spec.lower() == "victim@example.net"]
    assert len(mailed) == 3, "[serve] subscribe_per_address counts the mailbox"
    assert {m["To"].addresses[0].addr_spec for m in mailed} == {"Victim@example.net"}, "sent as first written"
    assert site.row("victim@example.net") == [("Victim@example.net", "", "pending")]
    # An owner's add of another spelling updates that subscriber.
    result = CliRunner().invoke(
        main,
        ["--config", str(site.root / "publisher.toml"), "subscribers", "add", "VICTIM@example.net", "--name", "Vic", "--list", "daily"],
        env={SECRET_ENV: SECRET},
    )
    assert result.exit_code == 0, result.output
    assert site.row("victim@example.net") == [("Victim@example.net", "Vic", "active")]


def test_ipv6_clients_are_counted_per_64(site: Site) -> None:
    statuses = [
        site.subscribe(f"v6-{n}@example.net", client=Client(site.server.port, forwarded_for=f"2001:db8:16:1::{n:x}"))
        for n in range(1, 6)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    neighbour = Client(site.server.port, forwarded_for="2001:db8:16:2::1")
    assert site.subscribe("v6-other@example.net", client=neighbour) == 200


def test_a_held_write_lock_answers_503_and_keeps_one_click_unsubscribes(site: Site) -> None:
    leaving = "held-lock@example.net"
    store = StateStore.open(site.db)
    add_subscriber(store.subscribers, leaving, "", ["daily"], source="test", now=NOW)
    store.close()
    clients = [site.client() for _ in range(8)]
    tokens = [c.csrf() for c in clients]
    holder = sqlite3.connect(site.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for as long as it likes
    answers: list[int] = []
    replies: list[object] = []
    try:
        assert site.unsubscribe(leaving) == 200, "RFC 8058 senders do not retry: answered, and kept"
        assert site.row(leaving)[0][2] == "active"

        def post(client: Client, csrf: str, n: int) -> None:
            reply = client.post("/subscribe", {"csrf_token": csrf, "email": f"held-{n}@example.net", "list": "daily"})
            replies.append(reply)
            answers.append(reply.status)

        threads = [threading.Thread(target=post, args=(c, t, n)) for n, (c, t) in enumerate(zip(clients, tokens))]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answers) >= 2, what="the subscribe requests beyond the store's six")
        # Six requests wait on the store; threads are left for the feeds.
        assert Client(site.server.port).get("/rss.xml").status == 200
        assert Client(site.server.port).get("/").status == 200
        assert len(answers) == 2, "the six others are still waiting for the lock"
        assert answers == [503, 503]
        assert all(r.headers["Retry-After"] == "5" for r in replies)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == [200] * 6 + [503] * 2, "never a 500"
    wait_for(lambda: site.row(leaving)[0][2] == "unsubscribed", what="the journaled unsubscribe to be applied")
    # The journal goes once what it held is in the store (a moment after the row changes).
    wait_for(lambda: not Path(str(site.db) + ".unsubscribes").exists(), what="the journal to be removed")


def test_the_host_header_is_never_reflected(site: Site) -> None:
    client = Client(site.server.port)
    for path in ("/issues", "/subscribe"):
        reply = client.get(path, {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
        assert reply.status in (301, 303, 308)
        location = reply.headers["Location"]
        assert "evil" not in location
        assert location.startswith(site.server.url) or location.startswith("/"), location


def test_the_store_and_outbox_are_private(site: Site) -> None:
    assert site.subscribe("private@example.net") == 200
    site.link("private@example.net")
    assert stat.S_IMODE(site.db.stat().st_mode) == 0o600
    assert stat.S_IMODE(site.db.parent.stat().st_mode) == 0o700
    for folder in (site.outbox, site.outbox / "new", site.outbox / "tmp"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    messages = list((site.outbox / "new").iterdir())
    assert messages and all(stat.S_IMODE(m.stat().st_mode) == 0o600 for m in messages)


def test_the_log_masks_addresses(site: Site) -> None:
    address = "loggedperson@example.net"
    assert site.subscribe(address) == 200
    site.link(address)
    log = site.server.output()
    assert "pending, asked for daily" in log, "the server runs with -v"
    assert "confirmation email to l***@e***.net" in log
    assert "loggedperson" not in log


def test_upkeep_drops_old_rate_limit_events(site: Site) -> None:
    def old_events() -> int:
        db = sqlite3.connect(site.db)
        try:
            return db.execute("SELECT COUNT(*) FROM web_events WHERE key = 'old'").fetchone()[0]
        finally:
            db.close()

    wait_for(lambda: old_events() == 0, what="the old event to be dropped")


def test_the_welcome_email_goes_once(site: Site) -> None:
    address = "welcome-once@example.net"
    assert site.subscribe(address, name="Wanda") == 200
    path = site.link(address)
    assert site.confirm(path)[0] == 200
    assert site.confirm(path)[0] == 200, "pressing twice is harmless"

    def welcomes():
        return [m for m in outbox_messages(site.outbox) if m["To"].addresses[0].addr_spec == address and m["Subject"].startswith("Welcome")]

    (message,) = wait_for(welcomes, what="the welcome email")
    assert "Welcome, Wanda!" in message.get_body(("plain",)).get_content()
    site.subscribe("welcome-sentinel@example.net")
    site.link("welcome-sentinel@example.net")
    assert len(welcomes()) == 1


def test_a_flood_beyond_the_mailer_queue_is_shed_with_the_same_answer(tmp_path: Path) -> None:
    import socket

    # An SMTP relay that accepts connections and never greets: the mailer's
    # thread waits on the first request while the queue fills behind it.
    relay = socket.socket()
    relay.bind(("127.0.0.1", 0))
    relay.listen(8)
    port = free_port()
    root = make_web_site(
        tmp_path / "site",
        port,
        extra=(
            f'\n[serve]\nmail_queue = 3\nsubscribe_per_ip = 100\n\n[mail.smtp]\nhost = "127.0.0.1"\n'
            f'port = {relay.getsockname()[1]}\nsecurity = "none"\ntimeout = 60\n'
        ),
    )
    text = (root / "publisher.toml").read_text(encoding="utf-8").replace('transport = "outbox"', 'transport = "smtp"')
    (root / "publisher.toml").write_text(text, encoding="utf-8")
    try:
        with WebServer(root / "publisher.toml", port) as server:
            client = Client(port)
            csrf = client.csrf()
            bodies = set()
            for n in range(10):
                reply = client.post("/subscribe", {"csrf_token": csrf, "email": f"flood-{n}@example.net", "list": "daily"})
                assert reply.status == 200
                bodies.add(reply.body)
            assert len(bodies) == 1, "shed or not, the same answer"
            wait_for(lambda: server.output().count("subscribe request shed") >= 6, what="the requests beyond the queue to be shed")
            relay.close()  # the waiting connection fails: the mailer drains and the server stops at once
            assert server.stop() == 0
    finally:
        relay.close()
    assert server.output().count("subscribe request shed") in (6, 7)
