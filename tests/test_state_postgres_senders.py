"""Several processes on one PostgreSQL store: two `publisher send`
processes sharing an issue, one killed mid-send, and the database
restarted under a send."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from publisher.state.postgres import PostgresDatabase, close_pools
from publisher.state.store import StateStore

from .conftest import DATA, NOW
from .helpers.sites import env, make_site, publisher
from .helpers.smtp_server import SmtpServer
from .helpers.waiting import wait_for

pytestmark = pytest.mark.slow  # real processes, a database server, thousands of messages


def add_readers(url: str, count: int) -> set[str]:
    store = StateStore.on(PostgresDatabase.open(url))
    everyone = {f"reader{n}@example.net" for n in range(count)}
    try:
        with store.transaction():
            store.database.executemany(
                "INSERT INTO subscribers (email, name, status, source, created, changed) VALUES (?, '', 'active', 'test', ?, ?)",
                [(email, NOW.isoformat(), NOW.isoformat()) for email in sorted(everyone)],
            )
            store.database.execute(
                "INSERT INTO subscriptions (subscriber_id, list, status, changed) SELECT id, 'daily', 'active', ? FROM subscribers",
                (NOW.isoformat(),),
            )
        assert store.deliveries.audience_size("daily") == count
    finally:
        store.close()
    return everyone


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    database = PostgresDatabase.open(url, check=False)
    try:
        return database.query(sql, params)
    finally:
        database.close()


@pytest.fixture
def url(postgres_server) -> str:
    yield postgres_server.create_database()
    close_pools()


def test_two_senders_and_one_killed_deliver_to_everyone_once_but_for_its_connections(tmp_path: Path, url: str) -> None:
    total, pool = 10_000, 4
    with SmtpServer() as server:
        site = make_site(
            tmp_path / "site", server.port, 0, connections=pool, extra=f'\n[state]\nurl = "{url}"\nlease = 3\nbatch = 100\n'
        )
        everyone = add_readers(url, total)
        first = subprocess.Popen(publisher(site, "send"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        second = subprocess.Popen(publisher(site, "send"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        owner = f"%:{first.pid}:%"

        def first_holds_claims() -> bool:
            held = query(url, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND lease_owner LIKE ?", (owner,))
            return len(server.delivered()) >= 1500 and held[0][0] > 0

        wait_for(lambda: first_holds_claims() or first.poll() is not None, timeout=300, what="the first sender mid-send")
        assert first.poll() is None, first.stderr.read()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        orphaned = {row[0] for row in query(url, "SELECT id FROM deliveries WHERE status = 'pending' AND lease_owner LIKE ?", (owner,))}
        assert orphaned  # the dead sender's claimed batch

        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err
        assert "Traceback" not in err
        delivered = server.delivered()

    assert set(delivered) == everyone
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= pool  # at most the messages the killed sender had in flight
    assert f"Issue 1 of 'daily': {total} sent" in out
    rows = query(url, "SELECT status, COUNT(*) FROM deliveries GROUP BY status")
    assert rows == [("sent", total)]
    assert query(url, "SELECT status FROM issues") == [("sent",)]
    # The dead sender's batch was taken over by the other when its lease ran out.
    takers = query(url, f"SELECT DISTINCT lease_owner FROM deliveries WHERE id IN ({', '.join(map(str, orphaned))})")
    assert len(takers) == 1 and f":{second.pid}:" in takers[0][0]
    # Both senders did a share of the work.
    owners = query(url, "SELECT lease_owner, COUNT(*) FROM deliveries GROUP BY lease_owner")
    assert len(owners) == 2 and min(count for _, count in owners) > 0


@pytest.fixture(scope="module")
def own_server():
    """A server of this module's own, to restart without touching the suite's."""
    from .helpers.postgres import PostgresServer

    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_restart_of_the_database_mid_send_loses_nothing_and_the_send_goes_on(tmp_path: Path, own_server) -> None:
    url = own_server.create_database()
    total = 600
    with SmtpServer() as server:
        server.faults.pause_after = 200
        site = make_site(tmp_path / "site", server.port, 0, extra=f'\n[state]\nurl = "{url}"\n')
        everyone = add_readers(url, total)
        sender = subprocess.Popen(publisher(site, "send"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: server.paused.is_set() or sender.poll() is not None, timeout=300, what="the send to pause")
        assert sender.poll() is None
        own_server.restart()  # every connection of the sender is cut
        server.faults.pause_after = 0
        out, err = sender.communicate(timeout=300)
        delivered = server.delivered()
    close_pools()
    assert sender.returncode == 0, err
    assert "lost the connection" in err and "Traceback" not in err
    assert set(delivered) == everyone and max(delivered.values()) == 1
    assert f"Issue 1 of 'daily': {total} sent" in out
    assert query(url, "SELECT status, COUNT(*) FROM deliveries GROUP BY status") == [("sent", total)]


def test_a_build_without_its_database_exits_2_and_the_next_one_publishes(tmp_path: Path, own_server) -> None:
    url = own_server.create_database()
    site = make_site(tmp_path / "site", None, 0, extra=f'\n[state]\nurl = "{url}"\nreconnect = 1\n')
    own_server.stop_server()
    try:
        down = subprocess.run(publisher(site, "build"), env=env(), capture_output=True, text=True, timeout=120)
    finally:
        own_server.start_server()
    assert down.returncode == 2
    assert "cannot connect to the state database" in down.stderr and "Traceback" not in down.stderr
    assert not (site / "feeds" / "rss.xml").exists()
    up = subprocess.run(publisher(site, "build"), env=env(), capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    assert (site / "feeds" / "rss.xml").exists()
    close_pools()


def test_a_send_joins_the_issue_the_scheduler_is_sending(tmp_path: Path, url: str) -> None:
    from datetime import datetime, timedelta, timezone

    from publisher.config import load_config
    from publisher.state import JobRun

    from .helpers.sites import scheduled_site

    total = 400
    with SmtpServer() as server:
        server.faults.pause_after = 50
        site = scheduled_site(tmp_path, schedule="every 1 minute", subscribers=0, port=server.port)
        config_path = site / "publisher.toml"
        config_path.write_text(
            config_path.read_text(encoding="utf-8").replace("[lists.daily]", f'[state]\nurl = "{url}"\n\n[lists.daily]'),
            encoding="utf-8",
        )
        everyone = add_readers(url, total)
        store = StateStore.connect(load_config(config_path).state)
        try:
            day_ago = datetime.now(timezone.utc) - timedelta(days=1)
            store.jobs.record(JobRun("digest:daily", day_ago, day_ago, day_ago, "ok", None))  # due now
        finally:
            store.close()
        scheduler = subprocess.Popen(publisher(site, "run", "--once"), env=env(), stderr=subprocess.PIPE, text=True)
        wait_for(lambda: server.paused.is_set() or scheduler.poll() is not None, timeout=300, what="the scheduler mid-send")
        assert scheduler.poll() is None, scheduler.stderr.read()
        sender = subprocess.Popen(publisher(site, "send"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        owner = f"%:{sender.pid}:%"
        # The send claims a batch of the issue while the scheduler still sends it.
        wait_for(
            lambda: query(url, "SELECT COUNT(*) FROM deliveries WHERE lease_owner LIKE ?", (owner,))[0][0] > 0
            or sender.poll() is not None,
            timeout=300, what="the send to join",
        )
        assert scheduler.poll() is None and sender.poll() is None
        server.faults.pause_after = 0
        _, scheduled_err = scheduler.communicate(timeout=300)
        out, err = sender.communicate(timeout=300)
        delivered = server.delivered()
    assert scheduler.returncode == 0, scheduled_err
    assert sender.returncode == 0, err
    assert set(delivered) == everyone and max(delivered.values()) == 1
    assert query(url, "SELECT status, COUNT(*) FROM deliveries GROUP BY status") == [("sent", total)]
    assert query(url, "SELECT COUNT(*) FROM issues") == [(1,)]
    owners = query(url, "SELECT lease_owner, COUNT(*) FROM deliveries GROUP BY lease_owner")
    assert len(owners) == 2


def test_a_restart_of_the_database_mid_build_loses_nothing_and_the_build_goes_on(tmp_path: Path, own_server) -> None:
    """The build is held on its feed source (after it has written to the
    store: the list's creation), the database restarts under it, then the
    source answers: the build reconnects, publishes, and records it all."""
    import threading

    from .helpers.feed_server import FeedServer

    url = own_server.create_database()
    asked, answer = threading.Event(), threading.Event()
    body = (DATA / "feeds" / "atom.xml").read_bytes()

    def held(handler) -> None:
        asked.set()
        answer.wait(timeout=300)
        handler.reply(200, body, {"Content-Type": "application/atom+xml"})

    feeds = FeedServer()
    feeds.routes["/atom.xml"] = held
    feeds.start()
    try:
        extra = f'\n[state]\nurl = "{url}"\n\n[[content.feeds]]\nurl = "{feeds.url("/atom.xml")}"\n'
        site = make_site(tmp_path / "site", None, 0, extra=extra)
        config = site / "publisher.toml"  # the source may take as long as the restart does
        config.write_text(config.read_text().replace('paths = ["posts"]', 'paths = ["posts"]\nfetch_timeout = 300'))
        builder = subprocess.Popen(publisher(site, "build"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: asked.is_set() or builder.poll() is not None, timeout=300, what="the build to fetch its source")
        assert builder.poll() is None, builder.stderr.read()
        own_server.restart()  # every connection of the build is cut
        answer.set()
        out, err = builder.communicate(timeout=300)
        assert builder.returncode == 0, err
        # The next build finds everything as the first left it.
        again = subprocess.run(publisher(site, "build"), env=env(), capture_output=True, text=True, timeout=300)
    finally:
        answer.set()
        feeds.stop()
    close_pools()
    assert "lost the connection" in err and "Traceback" not in err  # the restart was met, and waited out
    rss = (site / "feeds" / "rss.xml").read_text(encoding="utf-8")
    assert "Talks resume" in rss and "Rockets and rhetoric" in rss
    assert (site / "public" / "index.html").exists()
    assert query(url, "SELECT COUNT(*) FROM builds")[0][0] == 1
    posts = query(url, "SELECT COUNT(*) FROM posts")[0][0]
    assert posts >= 3  # the file's post and the source's
    assert again.returncode == 0, again.stderr
    assert query(url, "SELECT COUNT(*) FROM posts")[0][0] == posts
    assert query(url, "SELECT COUNT(*) FROM builds")[0][0] == 1  # it wrote nothing
    close_pools()


def test_a_sender_held_up_longer_than_its_lease_keeps_its_claims(tmp_path: Path, url: str) -> None:
    """The relay stops answering for longer than a lease (each connection
    waits out its SMTP timeout, 5 s, against a 4 s lease): the sender keeps
    renewing what it holds all along, so no claim of a live sender lapses
    for another to take, and everyone gets one message."""
    from datetime import datetime, timedelta, timezone

    total, lease = 200, 4
    with SmtpServer() as server:
        server.faults.pause_after = 20
        site = make_site(
            tmp_path / "site", server.port, 0, connections=2, extra=f'\n[state]\nurl = "{url}"\nlease = {lease}\nbatch = 50\n'
        )
        everyone = add_readers(url, total)
        sender = subprocess.Popen(publisher(site, "send"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: server.paused.is_set() or sender.poll() is not None, timeout=300, what="the relay to stop answering")
        assert sender.poll() is None, sender.stderr.read()
        owner = f"%:{sender.pid}:%"
        first: list[datetime] = []

        def renewed_for_two_leases() -> bool:
            rows = query(url, "SELECT lease_until FROM deliveries WHERE status = 'pending' AND lease_owner LIKE ?", (owner,))
            ends = [datetime.fromisoformat(row[0]) for row in rows]
            assert ends and min(ends) > datetime.now(timezone.utc), "a claim lapsed while its sender held it"
            first.append(min(ends))
            return min(ends) >= first[0] + timedelta(seconds=2 * lease)

        wait_for(renewed_for_two_leases, timeout=300, what="the claims to be renewed through two leases")
        server.faults.pause_after = 0
        out, err = sender.communicate(timeout=300)
        delivered = server.delivered()
    assert sender.returncode == 0, err
    assert set(delivered) == everyone and max(delivered.values()) == 1
    assert f"Issue 1 of 'daily': {total} sent" in out
