"""Double opt-in without a server: who gets a confirmation email, what
confirming does (bound to its request, expiring, the name its owner
confirms), the per-mailbox limit on an injected clock, the mailer and its
bounded queue, the welcome email."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.config import Config, load_config
from publisher.errors import TransportError
from publisher.mail.optin import (
    confirm_subscription,
    confirmation_message,
    pending_request,
    request_subscription,
    token_hash,
)
from publisher.mail.optin_mailer import ConfirmationMailer, welcome_message
from publisher.mail.subscribers import add_subscriber, remove_subscriber, set_subscriber_status
from publisher.mail.transports import OutboxTransport
from publisher.model import DigestList
from publisher.state.store import StateStore

from .conftest import NOW
from .helpers.web_server import SECRET, SECRET_ENV, make_web_site, outbox_messages


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    site = make_web_site(tmp_path / "site", 8080, extra="\n[serve]\nsubscribe_per_address = 2\n")
    return load_config(site / "publisher.toml")


@pytest.fixture
def store(config: Config):
    opened = StateStore.open(config.state.path)
    yield opened
    opened.close()


def names(lists) -> list[str]:
    return [l.name for l in lists]


LATER = NOW + timedelta(hours=1)


def test_a_new_address_is_pending_on_no_list_and_nameless_until_it_confirms(config: Config, store: StateStore) -> None:
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    asked = request_subscription(config, store, "new@example.net", "Ann", [daily, weekly], now=NOW)
    assert names(asked.lists) == ["daily", "weekly"] and asked.email == "new@example.net"
    subscriber = store.subscribers.find("new@example.net")
    assert (subscriber.status, subscriber.lists, subscriber.name, subscriber.source) == ("pending", (), "", "web")
    assert store.subscribers.audience("daily") == []
    # The token is not stored, only its hash.
    rows = store.database.query("SELECT token_hash, name FROM confirmations")
    assert rows == [(token_hash(asked.token), "Ann")] and asked.token not in rows[0][0]


def test_who_gets_no_confirmation(config: Config, store: StateStore) -> None:
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    add_subscriber(store.subscribers, "on-daily@example.net", "Kept", ["daily"], source="test", now=NOW)
    add_subscriber(store.subscribers, "bounced@example.net", "", ["daily"], source="test", now=NOW, status="bounced")
    add_subscriber(store.subscribers, "complained@example.net", "", ["daily"], source="test", now=NOW, status="complained")
    assert request_subscription(config, store, "on-daily@example.net", "Changed", [daily], now=NOW) is None
    assert names(request_subscription(config, store, "on-daily@example.net", "", [daily, weekly], now=NOW).lists) == ["weekly"]
    assert request_subscription(config, store, "bounced@example.net", "", [daily], now=NOW) is None
    assert request_subscription(config, store, "complained@example.net", "", [daily], now=NOW) is None
    # A form anyone can fill in changes nothing about a known address.
    assert store.subscribers.find("on-daily@example.net").name == "Kept"
    assert store.subscribers.find("bounced@example.net").status == "bounced"


def test_someone_who_left_may_ask_again(config: Config, store: StateStore) -> None:
    daily = config.lists["daily"]
    add_subscriber(store.subscribers, "left@example.net", "", ["daily"], source="test", now=NOW)
    remove_subscriber(store.subscribers, "left@example.net", None, now=NOW)
    assert names(request_subscription(config, store, "left@example.net", "", [daily], now=LATER).lists) == ["daily"]
    assert store.subscribers.find("left@example.net").status == "unsubscribed", "asking is not consenting"


def test_confirmations_per_mailbox_per_day_whatever_the_case(config: Config, store: StateStore) -> None:
    daily = config.lists["daily"]
    spellings = ["much@example.net", "Much@example.net", "MUCH@example.net", "mUch@example.net"]
    sent = [request_subscription(config, store, a, "", [daily], now=NOW + timedelta(minutes=n)) for n, a in enumerate(spellings)]
    assert [bool(s) for s in sent] == [True, True, False, False]
    assert {s.email for s in sent if s} == {"much@example.net"}, "mailed as first written"
    assert len(store.subscribers.matching()) == 1, "one mailbox, one subscriber"
    assert request_subscription(config, store, "other@example.net", "", [daily], now=NOW), "per address"
    later = NOW + timedelta(days=1, minutes=1)
    assert request_subscription(config, store, "MUCH@example.net", "", [daily], now=later), "the window slides"
    # The table keeps keyed hashes, never the addresses.
    rows = store.database.query("SELECT key FROM web_events")
    assert rows and not any("@" in key for (key,) in rows)


def test_the_confirmation_email(config: Config) -> None:
    lists = [config.lists["daily"], config.lists["weekly"]]
    data = confirmation_message(config, "reader@example.net", lists, "a-random-token-of-the-request", now=NOW)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message.defects == []
    assert message["Subject"] == "Confirm your subscription to Web Test Site"
    assert str(message["To"]) == "reader@example.net"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Daily digest: Every day's posts" in text and "Weekly roundup" in text
    assert "Daily digest" in html and "Every day&#39;s posts" in html
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Confirm your subscription: "))
    assert link == "http://127.0.0.1:8080/confirm/a-random-token-of-the-request" and f'href="{link}"' in html


def test_confirming_sets_the_name_its_owner_confirms(config: Config, store: StateStore) -> None:
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    asked = request_subscription(config, store, "p@example.net", "A Stranger's Words", [daily, weekly], now=NOW)
    shown = pending_request(config, store, asked.token, now=NOW)
    assert (shown.email, names(shown.lists), shown.name) == ("p@example.net", ["daily", "weekly"], "A Stranger's Words")
    subscriber = confirm_subscription(config, store, asked.token, "Pat", now=LATER)
    assert (subscriber.status, subscriber.lists, subscriber.name) == ("active", ("daily", "weekly"), "Pat")
    again = confirm_subscription(config, store, asked.token, "Someone Else", now=LATER)
    assert again == subscriber, "pressing twice changes nothing"
    assert [s.email for s in store.subscribers.audience("weekly")] == ["p@example.net"]


def test_a_confirmation_is_bound_to_its_request(config: Config, store: StateStore) -> None:
    daily = config.lists["daily"]
    # Someone who left comes back only through a request made after leaving.
    add_subscriber(store.subscribers, "back@example.net", "", ["daily"], source="test", now=NOW)
    old = request_subscription(config, store, "back@example.net", "", [config.lists["weekly"]], now=NOW)
    remove_subscriber(store.subscribers, "back@example.net", None, now=LATER)
    assert pending_request(config, store, old.token, now=LATER) is None
    assert confirm_subscription(config, store, old.token, None, now=LATER) is None
    assert store.subscribers.find("back@example.net").status == "unsubscribed"
    new = request_subscription(config, store, "back@example.net", "", [daily], now=LATER + timedelta(minutes=1))
    subscriber = confirm_subscription(config, store, new.token, None, now=LATER + timedelta(minutes=2))
    assert (subscriber.status, subscriber.lists) == ("active", ("daily",))
    # A link expires ([serve] confirm_expiry, 2 days by default).
    late = request_subscription(config, store, "late@example.net", "", [daily], now=NOW)
    assert confirm_subscription(config, store, late.token, None, now=NOW + timedelta(days=2, seconds=1)) is None
    assert store.subscribers.find("late@example.net").status == "pending"
    # A guessed or altered token confirms nothing.
    assert confirm_subscription(config, store, late.token[:-1] + "x", None, now=NOW) is None
    # An address that bounced since it asked stays so.
    gone = request_subscription(config, store, "gone@example.net", "", [daily], now=NOW)
    set_subscriber_status(store.subscribers, "gone@example.net", "complained", now=LATER)
    assert confirm_subscription(config, store, gone.token, None, now=LATER) is None
    assert store.subscribers.find("gone@example.net").status == "complained"


def test_expired_requests_and_their_pending_addresses_are_purged(config: Config, store: StateStore) -> None:
    daily = config.lists["daily"]
    request_subscription(config, store, "never@example.net", "", [daily], now=NOW)
    kept = request_subscription(config, store, "kept@example.net", "", [daily], now=NOW + timedelta(days=1))
    assert store.confirmations.purge(NOW + timedelta(days=2, seconds=1)) == 1
    assert store.subscribers.find("never@example.net") is None
    assert store.subscribers.find("kept@example.net").status == "pending"
    assert pending_request(config, store, kept.token, now=NOW + timedelta(days=2, seconds=1)) is not None


def test_a_list_no_longer_configured_is_not_confirmed(config: Config, store: StateStore) -> None:
    gone = DigestList(name="gone", title="Gone")
    asked = request_subscription(config, store, "x@example.net", "", [gone], now=NOW)
    assert confirm_subscription(config, store, asked.token, None, now=NOW) is None
    assert store.subscribers.find("x@example.net").lists == ()


class _BrokenOnce:
    """A transport whose first connection cannot be opened."""

    name = "broken"
    connections = 1

    def __init__(self, folder: Path):
        self.outbox = OutboxTransport(folder)
        self.calls = 0

    def connect(self):
        self.calls += 1
        if self.calls == 1:
            raise TransportError("relay down")
        return self.outbox.connect()


def test_the_mailer_survives_a_failure_and_sends_what_is_queued(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    transport = _BrokenOnce(config.mail.outbox)
    mailer = ConfirmationMailer(config, transport)
    with caplog.at_level(logging.ERROR, logger="publisher.optin"):
        assert mailer.submit("first@example.net", "", ["daily"], now=NOW)
        assert mailer.submit("second@example.net", "", ["daily"], now=NOW)
        mailer.close()
    sent = [m["To"].addresses[0].addr_spec for m in outbox_messages(config.mail.outbox)]
    assert sent == ["second@example.net"]
    assert "relay down" in caplog.text
    with pytest.raises(RuntimeError):
        mailer.submit("late@example.net", "", ["daily"], now=NOW)


class _Held:
    """A transport whose connections wait until released: the queue fills up behind them."""

    name = "held"
    connections = 1

    def __init__(self, folder: Path):
        self.outbox = OutboxTransport(folder)
        self.release = threading.Event()

    def connect(self):
        self.release.wait(30)
        return self.outbox.connect()


def test_the_mailer_queue_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    site = make_web_site(tmp_path / "site", 8080, extra="\n[serve]\nmail_queue = 3\n")
    config = load_config(site / "publisher.toml")
    transport = _Held(config.mail.outbox)
    mailer = ConfirmationMailer(config, transport)
    with caplog.at_level(logging.WARNING, logger="publisher.optin"):
        accepted = [mailer.submit(f"q{n}@example.net", "", ["daily"], now=NOW) for n in range(10)]
        transport.release.set()
        mailer.close()
    # One is taken by the thread (held at connect), three wait; the rest are shed.
    assert 3 <= accepted.count(True) <= 4 and accepted[:3] == [True] * 3 and accepted[-1] is False
    assert len(outbox_messages(config.mail.outbox)) == accepted.count(True)
    assert "shed" in caplog.text


def test_the_welcome_email_goes_once(config: Config, store: StateStore) -> None:
    asked = request_subscription(config, store, "w@example.net", "", [config.lists["daily"]], now=NOW)
    confirm_subscription(config, store, asked.token, "Wendy", now=NOW)
    mailer = ConfirmationMailer(config, OutboxTransport(config.mail.outbox))
    assert mailer.welcome("w@example.net", ["daily"], now=NOW)
    assert mailer.welcome("W@example.net", ["daily"], now=NOW)
    mailer.close()
    (message,) = outbox_messages(config.mail.outbox)
    assert message["Subject"] == "Welcome to Web Test Site"
    assert message["To"].addresses[0].addr_spec == "w@example.net"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Welcome, Wendy!" in message.get_body(("plain",)).get_content()
    assert "Daily digest" in message.get_body(("html",)).get_content()


def test_the_welcome_email_can_be_overridden_or_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    site = make_web_site(tmp_path / "site", 8080)
    (site / "templates" / "email").mkdir(parents=True)
    (site / "templates" / "email" / "welcome.html").write_text("<p>Our own hello to {{ name }}</p>", encoding="utf-8")
    (site / "templates" / "email" / "welcome.txt").write_text("Our own hello to {{ name }}", encoding="utf-8")
    config = load_config(site / "publisher.toml")
    data = welcome_message(config, "o@example.net", "Olga", [config.lists["daily"]], now=NOW)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert "Our own hello to Olga" in message.get_body(("plain",)).get_content()
    off = replace(config, mail=replace(config.mail, welcome=False))
    mailer = ConfirmationMailer(off, OutboxTransport(off.mail.outbox))
    assert mailer.welcome("o@example.net", ["daily"], now=NOW) is False
    mailer.close()
    assert outbox_messages(config.mail.outbox) == []


@pytest.mark.sqlite_only  # an old SQLite file, made by hand
def test_a_store_from_before_drops_strangers_names_and_mails_a_mailbox_once(tmp_path: Path) -> None:
    import sqlite3

    from publisher.state.schema import MIGRATIONS

    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:9]:
        for statement in migration.split(";"):
            if statement.strip():
                old.execute(statement)
    old.execute("PRAGMA user_version = 9")
    stamp = NOW.isoformat()
    rows = [("p@example.net", "A Stranger's Words", "pending"), ("b@example.net", "Bee", "active"), ("B@example.net", "Bee Two", "active")]
    for number, (address, name, status) in enumerate(rows, 1):
        old.execute("INSERT INTO subscribers VALUES (?, ?, ?, ?, 'test', ?, ?)", (number, address, name, status, stamp, stamp))
    old.executemany("INSERT INTO subscriptions VALUES (?, 'daily', 'active', ?)", [(2, stamp), (3, stamp)])
    old.close()
    store = StateStore.open(path)
    try:
        assert store.subscribers.find("p@example.net").name == ""
        assert [s.email for s in store.subscribers.audience("daily")] == ["b@example.net"]
        assert store.deliveries.audience_size("daily") == 1
        assert store.subscribers.find("B@EXAMPLE.NET").name == "Bee"
    finally:
        store.close()
