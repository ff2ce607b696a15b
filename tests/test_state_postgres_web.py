"""Two `publisher serve` processes on one PostgreSQL store, as behind a load
balancer: a mixed load over both gets no 500, a visitor may move from one
to the other, and the rate limits count across both."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.state.postgres import PostgresDatabase, close_pools

from .helpers.waiting import wait_for
from .helpers.web_server import SECRET, SECRET_ENV, Client, WebServer, confirm_link, confirmations_to, free_port, make_web_site

pytestmark = pytest.mark.slow  # real processes and a database server

PER_IP, PER_ADDRESS = 6, 2


def subscribe(client: Client, csrf: str, email: str):
    return client.post("/subscribe", {"csrf_token": csrf, "email": email, "name": "", "list": ["daily"], "website": ""})


def test_two_servers_share_everything_through_the_database(tmp_path, postgres_server, monkeypatch) -> None:
    url = postgres_server.create_database()
    ports = free_port(), free_port()
    site = make_web_site(
        tmp_path / "site", ports[0],
        extra=f'\n[serve]\nsubscribe_per_address = {PER_ADDRESS}\nsubscribe_per_ip = {PER_IP}\n\n[state]\nurl = "{url}"\n',
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "build"]).exit_code == 0
    outbox = site / "outbox"
    with WebServer(site / "publisher.toml", ports[0]) as first, WebServer(site / "publisher.toml", ports[1]) as second:
        servers = itertools.cycle((first.port, second.port))

        # A visitor gets the form (and its CSRF cookie) from one server and posts to the other.
        visitor = Client(first.port, forwarded_for="198.51.100.1")
        csrf = visitor.csrf()
        visitor.port = second.port
        assert subscribe(visitor, csrf, "mover@example.net").status == 200
        (message,) = wait_for(lambda: confirmations_to(outbox, "mover@example.net"), what="the confirmation")
        confirm = urlsplit(confirm_link(message))
        path = confirm.path + ("?" + confirm.query if confirm.query else "")
        reader = Client(first.port)
        page_csrf = reader.csrf(path)
        reader.port = second.port
        done = reader.post(path, {"csrf_token": page_csrf})
        assert done.status == 200 and "You are subscribed" in done.text

        # A mixed load over both: pages and feeds, and one address's IP
        # subscribing again and again, alternately on each server.
        def attempt(n: int) -> int:
            client = Client(next(servers), forwarded_for="203.0.113.9")
            client.cookies = dict(visitor.cookies)
            return subscribe(client, csrf, f"burst-{n}@example.net").status

        def page(n: int) -> int:
            path = ("/", "/feeds/rss.xml", "/feeds/atom.xml", "/issues/", "/feeds/feed.json")[n % 5]
            return Client(next(servers)).get(path).status

        with ThreadPoolExecutor(8) as pool:
            attempts = list(pool.map(attempt, range(4 * PER_IP)))
            pages = list(pool.map(page, range(60)))
        assert sorted(set(pages)) == [200]
        assert attempts.count(200) == PER_IP and attempts.count(429) == 3 * PER_IP  # the limit held across both
        for server in (first, second):
            assert "Traceback" not in server.output() and " 500 " not in server.output()

    database = PostgresDatabase.open(url)
    try:
        status = database.query_one("SELECT status FROM subscribers WHERE email = 'mover@example.net'")
        burst = database.query_one("SELECT COUNT(*) FROM subscribers WHERE email LIKE 'burst-%'")
    finally:
        database.close()
        close_pools()
    assert status == ("active",)
    assert burst == (PER_IP,)



def test_two_first_subscribes_of_one_address_at_once_make_one_subscriber(postgres_server) -> None:
    """Two servers take the first request of one address, in two letter
    cases, at the same moment: the second waits for the first's transaction
    (the mailbox is claimed before it is looked up), then finds its
    subscriber, where both would have found none and made two."""
    import threading

    from publisher.mail.subscribers import request_from_form
    from publisher.state import is_busy
    from publisher.state.store import StateStore

    from .conftest import NOW

    url = postgres_server.create_database()
    first, second = (StateStore.on(PostgresDatabase.open(url)) for _ in range(2))
    watcher = PostgresDatabase.open(url, check=False)
    results: list[object] = []

    def second_server() -> None:
        try:
            results.append(request_from_form(second.subscribers, "Race@example.net", now=NOW))
        except Exception as exc:
            results.append(exc)

    waiting = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    try:
        with first.transaction():
            made, added = request_from_form(first.subscribers, "race@example.net", now=NOW)
            assert added
            racer = threading.Thread(target=second_server)
            racer.start()
            wait_for(lambda: watcher.query(waiting)[0][0] > 0, what="the second server to wait on the first")
        racer.join(timeout=60)
        assert len(results) == 1 and not isinstance(results[0], Exception), results
        found, added = results[0]
        assert not added and found.id == made.id and found.email == "race@example.net"
        assert watcher.query("SELECT COUNT(*) FROM subscribers") == [(1,)]
        # A race lost on a unique key some other way is one to run again.
        with pytest.raises(Exception) as lost:
            first.subscribers.insert("race@example.net", "", "pending", (), source="web", created=NOW, now=NOW)
        assert is_busy(lost.value)
    finally:
        for store in (first, second):
            store.close()
        watcher.close()
        close_pools()
