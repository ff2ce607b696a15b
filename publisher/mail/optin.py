"""Double opt-in: what a subscribe request does, and the link that confirms it.

A request from the web form never subscribes anyone: it records the address
as ``pending`` (a new one; a known address keeps its status) and, when a
confirmation is due, returns the email to send. Its link carries the address
and the lists asked for, signed for the purpose "confirm"; only following it
and pressing the button (``confirm_subscription``) makes the subscription
active. So nobody can subscribe someone else, and the rules that keep people
who left from coming back (``publisher.mail.subscribers``) still hold: an
address that unsubscribed may confirm again (that is explicit consent); one
that bounced or complained gets no email at all.

    mailer = ConfirmationMailer(config, transport)
    lists = request_subscription(config, store, "reader@example.org", "Ann", [daily], now=now)
    if lists:
        mailer.submit("reader@example.org", lists, now=now)   # built and sent in the background
    ...
    subscriber = confirm_subscription(config, store, claims, now=now)

The confirmation token's list field holds the names of the lists asked for,
separated by spaces (list names have none), so one link confirms them all.

How many confirmation emails one address may get is limited per day
(``[serve] subscribe_per_address``), counted in the store's ``web_events``
under a keyed hash of the address, not the address itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from publisher.config import Config
from publisher.mail.digest import dkim_signed
from publisher.errors import ConfigError, DeliveryError, PublisherError, TransportError
from publisher.mail.message import build_message, list_id, make_message_id
from publisher.model import DigestList, Personal, Subscriber
from publisher.mail.render import render_confirmation
from publisher.mail.subscribers import confirm_from_link, request_from_form
from publisher.state import StateStore
from publisher.mail.tokens import TokenClaims, sign_token

log = logging.getLogger("publisher.optin")

CONFIRM = "confirm"
CONFIRM_EMAIL_EVENT = "confirm-email"
ADDRESS_WINDOW = timedelta(days=1)
# Never mailed a confirmation: the address itself asked not to be mailed.
_NO_CONFIRMATION = ("bounced", "complained")


def _secret(config: Config) -> bytes:
    if config.mail.secret is None:
        raise ConfigError(
            str(config.path),
            [f"[mail]: no secret to sign links: set ${config.mail.secret_env} or create {config.mail.secret_file}"],
        )
    return config.mail.secret


def event_key(config: Config, value: str) -> str:
    """What ``web_events`` stores for an address or an IP: a keyed hash, so
    the table holds no personal data and cannot be matched against a list."""
    return hmac.new(_secret(config), b"web-event." + value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def confirm_url(config: Config, email: str, lists: Sequence[DigestList]) -> str:
    """The link that confirms ``email`` for ``lists``."""
    names = " ".join(dict.fromkeys(l.name for l in lists))
    return f"{config.site.url}confirm/{sign_token(_secret(config), email, names, purpose=CONFIRM)}"


def requested_lists(config: Config, claims: TokenClaims) -> list[DigestList]:
    """The configured lists a confirmation token asks for (a list removed
    from the config since is left out)."""
    names = dict.fromkeys(claims.list_name.split(" "))
    return [config.lists[name] for name in names if name in config.lists]


def confirmation_message(config: Config, email: str, lists: Sequence[DigestList], *, now: datetime) -> bytes:
    """The confirmation email to ``email`` for ``lists``.

    Addressed to the bare address: the name typed into the form is not
    repeated in an email to an address that has not confirmed anything, so
    the form cannot be used to send someone a message of a stranger's words.
    """
    if not lists:
        raise ValueError("a confirmation needs at least one list")
    secret = _secret(config)
    site = config.site.url
    first = lists[0]
    subject, html, text = render_confirmation(
        config.site_info, lists, confirm_url(config, email, lists), templates=config.mail.templates / "email"
    )
    personal = Personal(
        email=email,
        name="",
        unsubscribe_url=f"{site}unsubscribe/{sign_token(secret, email, first.name)}",
        preferences_url=f"{site}preferences/{sign_token(secret, email, first.name, purpose='preferences')}",
        view_url=site,
    )
    host = urlsplit(site).hostname or "localhost"
    data = build_message(
        subject,
        html,
        text,
        sender=config.mail.sender,
        to=personal,
        reply_to=config.mail.reply_to,
        list_id=list_id(first.name, first.title, host),
        unsubscribe_url=personal.unsubscribe_url,
        unsubscribe_mailto=config.mail.unsubscribe_mailto,
        message_id=make_message_id(host, CONFIRM, email, now.isoformat()),
        date=now,
    )
    return dkim_signed(config, data)


def request_subscription(
    config: Config, store: StateStore, email: str, name: str, lists: Sequence[DigestList], *, now: datetime
) -> tuple[DigestList, ...]:
    """Record a request to join ``lists``; the lists a confirmation email
    should now ask about (none: send nothing).

    ``email`` is normalised and ``name`` cleaned (``publisher.mail.subscribers``).
    A new address is added as pending, on no list yet (it joins the lists
    when it confirms). A known address keeps its status and its name: a form
    anyone can fill in changes nothing about someone else. No email when the
    address bounced or complained, when it is already active on every list
    asked for, or when it had ``subscribe_per_address`` confirmations in the
    last day.
    """
    subscriber, created = request_from_form(store.subscribers, email, name, now=now)
    if created:
        log.info("subscriber %s: pending, asked for %s", subscriber.id, ", ".join(l.name for l in lists))
    if subscriber.status in _NO_CONFIRMATION:
        log.info("subscriber %s: %s, so no confirmation email", subscriber.id, subscriber.status)
        return ()
    wanted = tuple(l for l in lists if not (subscriber.status == "active" and l.name in subscriber.lists))
    if not wanted:
        log.info("subscriber %s: already on %s", subscriber.id, ", ".join(l.name for l in lists))
        return ()
    allowed = store.web_events.take(
        CONFIRM_EMAIL_EVENT,
        event_key(config, email),
        limit=config.serve.subscribe_per_address,
        since=now - ADDRESS_WINDOW,
        now=now,
    )
    if not allowed:
        log.warning(
            "subscriber %s: %d confirmation emails in a day already ([serve] subscribe_per_address); none sent",
            subscriber.id,
            config.serve.subscribe_per_address,
        )
        return ()
    return wanted


def confirm_subscription(config: Config, store: StateStore, claims: TokenClaims, *, now: datetime) -> Subscriber | None:
    """Activate the subscription a verified confirmation token asks for.

    The address becomes active and joins the lists, rejoining any it had
    left (following the link is explicit consent). None when nothing can be
    confirmed: none of the lists is configured any more, or the address
    bounced or complained since. Confirming twice changes nothing the
    second time.
    """
    lists = requested_lists(config, claims)
    if not lists:
        return None
    subscriber = confirm_from_link(store.subscribers, claims.subscriber, [l.name for l in lists], now=now)
    if subscriber.status != "active" or not {l.name for l in lists} <= set(subscriber.lists):
        log.info("subscriber %s: %s, so the confirmation changes nothing", subscriber.id, subscriber.status)
        return None
    log.info("subscriber %s: confirmed %s", subscriber.id, ", ".join(l.name for l in lists))
    return subscriber


class ConfirmationMailer:
    """Builds and sends confirmation emails in one background thread.

    A subscribe request queues its address and answers at once, so the
    answer takes as long whether an email goes out or not (its timing tells
    nothing about the address) and a slow SMTP relay never holds a request.
    The connection is opened when there is mail and closed when the queue
    runs dry. A message that cannot be built or is refused is logged and
    dropped: the person can ask again.

        mailer = ConfirmationMailer(config, transport)
        mailer.submit("reader@example.org", lists, now=now)
        mailer.close()          # sends what is queued, then stops
    """

    def __init__(self, config: Config, transport):
        self.config = config
        self.transport = transport
        self.sender = config.mail.sender_address
        self._queue: queue.Queue[tuple[str, tuple[DigestList, ...], datetime] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, recipient: str, lists: Sequence[DigestList], *, now: datetime) -> None:
        """Queue the email asking ``recipient`` to confirm ``lists``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the confirmation mailer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="confirmation-mailer", daemon=True)
                self._thread.start()
            self._queue.put((recipient, tuple(lists), now))

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued (waiting at most ``timeout`` seconds), then stop."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        connection = None
        while (item := self._queue.get()) is not None:
            recipient, lists, now = item
            try:
                message = confirmation_message(self.config, recipient, lists, now=now)
                if connection is None:
                    connection = self.transport.connect()
                connection.send(self.sender, recipient, message)
                log.info("confirmation email handed to the %s transport", self.transport.name)
            except TransportError as exc:
                log.error("confirmation email not sent: %s", exc)
                connection = self._drop(connection)
            except DeliveryError as exc:
                log.warning("confirmation email refused: %s", exc)
            except PublisherError as exc:
                log.error("confirmation email not sent: %s", exc)
            except Exception:  # the thread must outlive one bad message
                log.exception("confirmation email not sent")
                connection = self._drop(connection)
            if self._queue.empty():
                connection = self._drop(connection)
        self._drop(connection)

    @staticmethod
    def _drop(connection) -> None:
        if connection is not None:
            connection.close()
        return None
