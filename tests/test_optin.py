"""Double opt-in without a server: who gets a confirmation email, what
confirming does, the per-address limit on an injected clock, the mailer."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.config import Config, load_config
from publisher.errors import TransportError
from publisher.mail.optin import (
    ConfirmationMailer,
    confirm_subscription,
    confirmation_message,
    request_subscription,
)
from publisher.mail.subscribers import add_subscriber, remove_subscriber
from publisher.state.store import StateStore
from publisher.mail.tokens import verify_token
from publisher.mail.transports import OutboxTransport

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


def test_a_new_address_is_pending_on_no_list_until_it_confirms(config: Config, store: StateStore) -> None:
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    asked = request_subscription(config, store, "new@example.net", "Ann", [daily, weekly], now=NOW)
    assert names(asked) == ["daily", "weekly"]
    subscriber = store.subscribers.find("new@example.net")
    assert (subscriber.status, subscriber.lists, subscriber.name, subscriber.source) == ("pending", (), "Ann", "web")
    assert store.subscribers.audience("daily") == []


def test_who_gets_no_confirmation(config: Config, store: StateStore) -> None:
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    add_subscriber(store.subscribers, "on-daily@example.net", "Kept", ["daily"], source="test", now=NOW)
    add_subscriber(store.subscribers, "bounced@example.net", "", ["daily"], source="test", now=NOW, status="bounced")
    add_subscriber(store.subscribers, "complained@example.net", "", ["daily"], source="test", now=NOW, status="complained")
    assert request_subscription(config, store, "on-daily@example.net", "Changed", [daily], now=NOW) == ()
    assert names(request_subscription(config, store, "on-daily@example.net", "", [daily, weekly], now=NOW)) == ["weekly"]
    assert request_subscription(config, store, "bounced@example.net", "", [daily], now=NOW) == ()
    assert request_subscription(config, store, "complained@example.net", "", [daily], now=NOW) == ()
    # A form anyone can fill in changes nothing about a known address.
    assert store.subscribers.find("on-daily@example.net").name == "Kept"
    assert store.subscribers.find("bounced@example.net").status == "bounced"


def test_someone_who_left_may_ask_again(config: Config, store: StateStore) -> None:
    daily = config.lists["daily"]
    add_subscriber(store.subscribers, "left@example.net", "", ["daily"], source="test", now=NOW)
    remove_subscriber(store.subscribers, "left@example.net", None, now=NOW)
    assert names(request_subscription(config, store, "left@example.net", "", [daily], now=NOW)) == ["daily"]
    assert store.subscribers.find("left@example.net").status == "unsubscribed", "asking is not consenting"


def test_confirmations_per_address_per_day(config: Config, store: StateStore) -> None:
    daily = config.lists["daily"]
    sent = [request_subscription(config, store, "much@example.net", "", [daily], now=NOW + timedelta(minutes=n)) for n in range(4)]
    assert [bool(s) for s in sent] == [True, True, False, False]
    assert request_subscription(config, store, "other@example.net", "", [daily], now=NOW), "per address"
    later = NOW + timedelta(days=1, minutes=1)
    assert request_subscription(config, store, "much@example.net", "", [daily], now=later), "the window slides"
    # The table keeps keyed hashes, never the addresses.
    rows = store.database.query("SELECT key FROM web_events")
    assert rows and not any("@" in key for (key,) in rows)


def test_the_confirmation_email(config: Config) -> None:
    lists = [config.lists["daily"], config.lists["weekly"]]
    data = confirmation_message(config, "reader@example.net", lists, now=NOW)
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
    assert link.startswith("http://127.0.0.1:8080/confirm/") and f'href="{link}"' in html
    claims = verify_token(SECRET.encode(), link.rsplit("/", 1)[1], "confirm")
    assert (claims.subscriber, claims.list_name) == ("reader@example.net", "daily weekly")
    assert verify_token(SECRET.encode(), link.rsplit("/", 1)[1], "unsubscribe") is None


def test_confirming(config: Config, store: StateStore) -> None:
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    request_subscription(config, store, "p@example.net", "", [daily, weekly], now=NOW)
    claims = verify_token(SECRET.encode(), _token(config, "p@example.net", [daily, weekly]), "confirm")
    subscriber = confirm_subscription(config, store, claims, now=NOW)
    assert (subscriber.status, subscriber.lists) == ("active", ("daily", "weekly"))
    assert confirm_subscription(config, store, claims, now=NOW) == subscriber, "twice changes nothing"
    assert [s.email for s in store.subscribers.audience("weekly")] == ["p@example.net"]

    # Someone who left comes back by confirming, to the lists they confirm.
    add_subscriber(store.subscribers, "back@example.net", "", ["daily", "weekly"], source="test", now=NOW)
    remove_subscriber(store.subscribers, "back@example.net", None, now=NOW)
    claims = verify_token(SECRET.encode(), _token(config, "back@example.net", [daily]), "confirm")
    subscriber = confirm_subscription(config, store, claims, now=NOW)
    assert (subscriber.status, subscriber.lists) == ("active", ("daily",))

    add_subscriber(store.subscribers, "gone@example.net", "", ["daily"], source="test", now=NOW, status="complained")
    claims = verify_token(SECRET.encode(), _token(config, "gone@example.net", [daily]), "confirm")
    assert confirm_subscription(config, store, claims, now=NOW) is None
    assert store.subscribers.find("gone@example.net").status == "complained"


def _token(config: Config, address: str, lists) -> str:
    from publisher.mail.optin import confirm_url

    return confirm_url(config, address, lists).rsplit("/", 1)[1]


def test_a_list_no_longer_configured_is_not_confirmed(config: Config, store: StateStore) -> None:
    from publisher.mail.tokens import sign_token

    claims = verify_token(SECRET.encode(), sign_token(SECRET.encode(), "x@example.net", "gone", purpose="confirm"), "confirm")
    assert confirm_subscription(config, store, claims, now=NOW) is None
    assert store.subscribers.find("x@example.net") is None


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
    daily = [config.lists["daily"]]
    with caplog.at_level(logging.ERROR, logger="publisher.optin"):
        mailer.submit("first@example.net", daily, now=NOW)
        mailer.submit("second@example.net", daily, now=NOW)
        mailer.close()
    sent = [m["To"].addresses[0].addr_spec for m in outbox_messages(config.mail.outbox)]
    assert sent == ["second@example.net"]
    assert "relay down" in caplog.text
    with pytest.raises(RuntimeError):
        mailer.submit("late@example.net", daily, now=NOW)
