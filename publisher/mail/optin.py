"""Double opt-in: what a subscribe request does, and the link that confirms it.

A request from the web form never subscribes anyone and changes nothing
about a known address: a new address is recorded as ``pending`` (with no
name), and the request itself (the lists and the name asked for) is kept
apart, in ``store.confirmations``, under the hash of a random token that
only the confirmation email carries. Following the link and pressing the
button (``confirm_subscription``) makes the subscription active and sets
the name the owner confirms on that page, so a stranger can neither
subscribe someone nor choose the words they are greeted with.

A confirmation link works once, until ``[serve] confirm_expiry``, and only
for the request it was issued for: one issued before the address last left
a list it asks for is void, so only a new request and a new confirmation
bring someone back. People who bounced or complained get no email at all.

    found = request_subscription(config, store, "reader@example.org", "Ann", [daily], now=now)
    if found is not None:
        data = confirmation_message(config, found.email, found.lists, found.token, now=now)
    ...
    subscriber = confirm_subscription(config, store, token, "Ann", now=now)

How many confirmation emails one mailbox may get is limited per day
(``[serve] subscribe_per_address``), counted in the store's ``web_events``
under a keyed hash of the address in lower case, never the address itself.
The web server runs all of this off the request's path
(``publisher.mail.optin_mailer``), so the answer's timing tells nothing
about the address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from publisher.config import Config
from publisher.errors import ConfigError
from publisher.mail.digest import dkim_signed
from publisher.mail.message import build_message, list_id, make_message_id
from publisher.mail.render import render_confirmation
from publisher.mail.subscribers import clean_name, confirm_from_link, request_from_form
from publisher.mail.tokens import sign_token
from publisher.model import DigestList, Personal, Subscriber
from publisher.schedules import parse_duration
from publisher.state import StateStore
from publisher.text import mask_email

log = logging.getLogger("publisher.optin")

CONFIRM_EMAIL_EVENT = "confirm-email"
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


def token_hash(token: str) -> str:
    """What the store keeps of a confirmation token."""
    return hashlib.sha256(b"confirm." + token.encode("ascii", "replace")).hexdigest()


def confirm_url(config: Config, token: str) -> str:
    return f"{config.site.url}confirm/{token}"


def requested_lists(config: Config, names: Iterable[str]) -> list[DigestList]:
    """The configured lists among ``names`` (a list removed from the config since is left out)."""
    return [config.lists[name] for name in dict.fromkeys(names) if name in config.lists]


@dataclass(frozen=True)
class ConfirmationRequest:
    """A confirmation email to send: to ``email`` (as first written), for ``lists``, with ``token``."""

    email: str
    lists: tuple[DigestList, ...]
    token: str


@dataclass(frozen=True)
class PendingRequest:
    """What the confirmation page shows: the address, the lists, and the
    name to confirm (the one asked for, else the one the subscriber has)."""

    email: str
    lists: tuple[DigestList, ...]
    name: str


def confirmation_message(config: Config, email: str, lists: Sequence[DigestList], token: str, *, now: datetime) -> bytes:
    """The confirmation email to ``email`` for ``lists``, its link carrying ``token``.

    Addressed to the bare address: the name typed into the form is not
    repeated in an email to an address that has not confirmed anything, so
    the form cannot be used to send someone a message of a stranger's words.
    """
    if not lists:
        raise ValueError("a confirmation needs at least one list")
    secret = _secret(config)
    first = lists[0]
    subject, html, text = render_confirmation(
        config.site_info, lists, confirm_url(config, token), templates=config.mail.templates / "email"
    )
    return list_message(config, secret, email, "", first, (subject, html, text), kind="confirm", now=now)


def list_message(
    config: Config, secret: bytes, email: str, name: str, first: DigestList, parts: tuple[str, str, str],
    *, kind: str, now: datetime,
) -> bytes:
    """A one-off email about ``first`` (a confirmation, a welcome) to one
    address, with the list's headers and its signed unsubscribe link; DKIM
    signed when configured. ``parts``: subject, HTML and text."""
    site = config.site.url
    subject, html, text = parts
    personal = Personal(
        email=email,
        name=name,
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
        message_id=make_message_id(host, kind, email, now.isoformat()),
        date=now,
    )
    return dkim_signed(config, data)


def request_subscription(
    config: Config, store: StateStore, email: str, name: str, lists: Sequence[DigestList], *, now: datetime
) -> ConfirmationRequest | None:
    """Record a request to join ``lists``; the confirmation email to send
    now, or None (send nothing).

    ``email`` is normalised and ``name`` cleaned (``publisher.mail.subscribers``).
    A new address is added as pending, with no name and on no list yet; a
    known one is left as it is. The request (lists, name) is kept until the
    owner confirms or it expires. Nothing is sent when the address bounced
    or complained, when it is already active on every list asked for, or
    when its mailbox had ``subscribe_per_address`` confirmations in the last day.
    """
    with store.transaction():
        subscriber, created = request_from_form(store.subscribers, email, now=now)
        if created:
            log.info("subscriber %s: pending, asked for %s", subscriber.id, ", ".join(l.name for l in lists))
        if subscriber.status in _NO_CONFIRMATION:
            log.info("subscriber %s: %s, so no confirmation email", subscriber.id, subscriber.status)
            return None
        wanted = tuple(l for l in lists if not (subscriber.status == "active" and l.name in subscriber.lists))
        if not wanted:
            log.info("subscriber %s: already on %s", subscriber.id, ", ".join(l.name for l in lists))
            return None
        allowed = store.web_events.take(
            CONFIRM_EMAIL_EVENT,
            event_key(config, subscriber.email.lower()),
            limit=config.serve.subscribe_per_address,
            since=now - parse_duration("1 day"),
            now=now,
        )
        if not allowed:
            log.warning(
                "subscriber %s: %d confirmation emails in a day already ([serve] subscribe_per_address); none sent",
                subscriber.id,
                config.serve.subscribe_per_address,
            )
            return None
        token = secrets.token_urlsafe(32)
        expires = now + parse_duration(config.serve.confirm_expiry)
        names = [l.name for l in wanted]
        store.confirmations.add(token_hash(token), subscriber.email, names, clean_name(name), now=now, expires=expires)
    return ConfirmationRequest(subscriber.email, wanted, token)


def pending_request(config: Config, store: StateStore, token: str, *, now: datetime) -> PendingRequest | None:
    """The request ``token`` confirms, if it still can be confirmed."""
    found = store.confirmations.find(token_hash(token), now=now)
    if found is None:
        return None
    lists = requested_lists(config, found.lists)
    subscriber = store.subscribers.find(found.email)
    if not lists or subscriber is None or _void(store, subscriber, found.confirmed or found.created, found.lists):
        return None
    return PendingRequest(subscriber.email, tuple(lists), found.name or subscriber.name)


def _void(store: StateStore, subscriber: Subscriber, since: datetime, names: Iterable[str]) -> bool:
    """Did the address leave (a list asked for, or every list) after the
    request was made (or confirmed)?"""
    if subscriber.changed <= since:
        return False
    if subscriber.status in ("unsubscribed", *_NO_CONFIRMATION):
        return True
    subscriptions = store.subscribers.subscriptions(subscriber.id)
    return any(subscriptions.get(name) == "unsubscribed" for name in names)


def confirm_subscription(
    config: Config, store: StateStore, token: str, name: str | None, *, now: datetime
) -> Subscriber | None:
    """Confirm the request ``token`` was issued for: the address becomes
    active and joins its lists (rejoining any it had left before the
    request: following the link is explicit consent), with ``name`` (when
    not None) as its name. The request is used up.

    None when nothing can be confirmed: no such request (a wrong token, one
    used or expired), none of its lists is configured any more, or the
    address left, bounced or complained since the request.
    """
    with store.transaction():
        found = store.confirmations.find(token_hash(token), now=now)
        if found is None:
            return None
        lists = requested_lists(config, found.lists)
        names = [l.name for l in lists]
        subscriber = store.subscribers.find(found.email)
        if not lists or subscriber is None or _void(store, subscriber, found.confirmed or found.created, names):
            return None
        if found.confirmed is not None or not store.confirmations.consume(found.id, now):
            # Pressed twice: done already, and nothing has changed since.
            return subscriber if subscriber.status == "active" and set(names) <= set(subscriber.lists) else None
        subscriber = confirm_from_link(
            store.subscribers, subscriber.email, names, now=now, name=None if name is None else clean_name(name)
        )
    if subscriber.status != "active" or not set(names) <= set(subscriber.lists):
        log.info("subscriber %s: %s, so the confirmation changes nothing", subscriber.id, subscriber.status)
        return None
    log.info("subscriber %s (%s): confirmed %s", subscriber.id, mask_email(subscriber.email), ", ".join(names))
    return subscriber
