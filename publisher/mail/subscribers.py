"""Subscribers: who may be one, and the rules of what may happen to one.

This module decides what a valid subscriber is (``normalize_email``,
``clean_name``) and holds the status rules every way in obeys
(``add_subscriber``, ``remove_subscriber``, ``set_subscriber_status``, and
one function per way in: an import, the command line, the web form). The
store only keeps the records (``publisher.state``); reading and writing
subscriber files is ``publisher.mail.subscriber_csv``; the command line only
wires them together.

    parsed = read_subscriber_csv(data, "people.csv", known_lists=("daily",), default_lists=("daily",))
    report = import_subscribers(store, parsed.rows, source="import:people.csv", now=now)
    subscriber, created = add_by_owner(store.subscribers, "ann@example.org", "Ann", ["daily"], source="cli", now=now)

Addresses: the domain is lower-cased and IDNA-encoded (``bücher.example``
becomes ``xn--bcher-kva.example``); the local part is kept as written and
mail goes to it as written, but ``Someone@example.com`` and
``someone@example.com`` are one subscriber: RFC 5321 lets a server tell
them apart, yet every mailbox provider delivers both to one mailbox, so
identity, rate limits and dedupe ignore case (the state store finds a
subscriber by the address in lower case). Addresses that need SMTPUTF8 (a
non-ASCII local part) are refused: not every server on the way accepts them.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError, validate_email

from publisher.errors import PublisherError
from publisher.model import SUBSCRIBER_STATUSES, Subscriber
from publisher.text import mask_email

if TYPE_CHECKING:
    from publisher.mail.subscriber_csv import ImportRow
    from publisher.state import StateStore, SubscriberRepository

log = logging.getLogger("publisher.subscribers")
# Each change to a subscriber is logged under the name such lines have always had.
changes_log = logging.getLogger("publisher.store")

# An address in one of these states is never mailed, and an import never
# makes it active again.
SUPPRESSED = ("unsubscribed", "bounced", "complained")
NAME_MAX = 200


class SubscriberError(PublisherError):
    """An address, a name or a subscriber file that cannot be used."""


class SubscriberFileError(SubscriberError):
    """The file as a whole cannot be read (not UTF-8, no email column):
    nothing is imported."""


def normalize_email(text: str) -> str:
    """The address as stored: the local part as written, the domain in
    lower-case ASCII (IDNA). Raises ``SubscriberError`` with the reason.

    >>> normalize_email("Someone@EXAMPLE.COM")
    'Someone@example.com'
    >>> normalize_email("user@bücher.example")
    'user@xn--bcher-kva.example'
    """
    address = text.strip()
    if not address:
        raise SubscriberError("no email address")
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid address {address!r}: {exc}") from exc
    if valid.smtputf8:
        raise SubscriberError(
            f"invalid address {address!r}: the part before the @ has non-ASCII characters, "
            "which needs SMTPUTF8 that not every mail server supports"
        )
    if valid.ascii_email:
        return valid.ascii_email
    return f"{valid.local_part}@{valid.ascii_domain}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_name(text: str) -> str:
    """A display name on one line: control characters (and so CR/LF) become
    spaces, runs of whitespace one space, at most ``NAME_MAX`` characters."""
    flat = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", text)).split())
    if len(flat) > NAME_MAX:
        flat = flat[:NAME_MAX].rstrip()
    return flat


@dataclass(frozen=True)
class ImportReport:
    """What an import did: ``added`` new addresses, ``updated`` existing ones
    that changed (a list added, a name filled in, a status recorded),
    ``unchanged`` ones already there as the file says, and among those
    ``not_resubscribed``: addresses that left (or bounced) and stay so.
    ``duplicates`` counts rows repeating an address of an earlier row (their
    lists are added; they are in none of the other counts). ``suppressed``
    counts the rows the file itself marks unsubscribed, bounced or
    complained (another tool's opt-outs); they are in the other counts too."""

    added: int
    updated: int
    unchanged: int
    not_resubscribed: int
    duplicates: int
    suppressed: int = 0


# --- the status rules -----------------------------------------------------------------
#
# An address has its own status (SUBSCRIBER_STATUSES) and one subscription
# per list it joined, each active or unsubscribed. Only an active address's
# active subscriptions are mailed. These rules keep people who left from
# coming back, whichever way in (import, the command line, the web form)
# a change comes from:
#
# - a subscription someone left, and an address that left every list,
#   bounced or complained, stay so unless the way in names that status in
#   ``reactivate`` (the REACTIVATED_BY_* below);
# - leaving one's last list makes the address unsubscribed;
# - every change sets ``changed`` (of the subscription and the address).
#
# Each function makes its change in the caller's transaction, or in one of
# its own when called outside one.

# What each way in may bring back (``add_subscriber``'s ``reactivate``).
# An import never brings anyone back, nor does a request from the web form
# (``request_from_form``): a form anyone can fill in changes nothing about
# someone else.
REACTIVATED_BY_IMPORT: tuple[str, ...] = ()
REACTIVATED_BY_FORM: tuple[str, ...] = ()
# Following a confirmation link is explicit consent: pending becomes active,
# and lists left are joined again.
REACTIVATED_BY_CONFIRMATION = ("pending", "unsubscribed")
# `publisher subscribers add`: the owner adds the address on purpose; one
# that bounced or complained comes back only with --force.
REACTIVATED_BY_OWNER = ("unsubscribed", "pending")
REACTIVATED_BY_OWNER_FORCED = REACTIVATED_BY_OWNER + ("bounced", "complained")


def check_status(status: str) -> None:
    if status not in SUBSCRIBER_STATUSES:
        raise ValueError(f"subscriber status {status!r} is not one of {', '.join(SUBSCRIBER_STATUSES)}")


def add_subscriber(
    subscribers: SubscriberRepository,
    email: str,
    name: str,
    lists: Iterable[str],
    *,
    source: str,
    now: datetime,
    status: str = "active",
    created: datetime | None = None,
    reactivate: Collection[str] = (),
    update_name: bool = False,
) -> tuple[Subscriber, bool]:
    """Add ``email`` to ``lists``; returns the subscriber and whether it is new.

    ``email`` must already be normalised (``normalize_email``). A new
    address gets ``status`` and, unless that is "unsubscribed", an active
    subscription to each list; ``created`` defaults to ``now``. An existing
    address:

    - with ``status`` unsubscribed, bounced or complained: an active or
      pending address takes that status (unsubscribed also leaves every
      list); an address already suppressed keeps its first status;
    - otherwise, if it is unsubscribed, bounced or complained and that
      status is not in ``reactivate``, nothing changes at all;
    - otherwise it joins the lists it has no subscription to yet, and
      rejoins those it left only if "unsubscribed" is in ``reactivate``;
      a pending address becomes ``status`` only if "pending" is in
      ``reactivate``; an active one is never made pending.

    ``name`` fills in an empty name; with ``update_name`` a non-empty
    ``name`` replaces the stored one.
    """
    check_status(status)
    lists = tuple(dict.fromkeys(lists))
    with subscribers.change():
        subscribers.claim(email)
        found = subscribers.find(email)
        if found is None:
            joined = () if status == "unsubscribed" else lists
            added = subscribers.insert(email, name, status, joined, source=source, created=created or now, now=now)
            shown = ", ".join(lists) or "no list"
            changes_log.info("subscriber %s: added %s (%s) to %s", added.id, mask_email(email), status, shown)
            return added, True
        new_status, joining = _status_after_adding(found.status, status, reactivate)
        if found.status in SUPPRESSED and new_status == found.status and not joining:
            return found, False  # someone who left stays as they left it, name and all
        changed = False
        if new_status != found.status:
            subscribers.set_status(found.id, new_status)
            changes_log.info("subscriber %s: %s -> %s", found.id, found.status, new_status)
            changed = True
            if new_status == "unsubscribed":
                subscribers.leave(found.id, None, now)
        if joining:
            changed |= _join(subscribers, found.id, lists, now, rejoin="unsubscribed" in reactivate)
        if name and name != found.name and (update_name or not found.name):
            subscribers.set_name(found.id, name)
            changed = True
        if changed:
            subscribers.touch(found.id, now)
        return _reloaded(subscribers, email), False


def _status_after_adding(current: str, status: str, reactivate: Collection[str]) -> tuple[str, bool]:
    """What adding with ``status`` makes of an address that is ``current``,
    and whether it joins the lists (see ``add_subscriber``)."""
    if status in SUPPRESSED:
        return (status if current in ("active", "pending") else current), False
    if current in SUPPRESSED and current not in reactivate:
        return current, False
    if current == "active":
        return "active", True
    return (status if (current == status or current in reactivate) else current), True


def _join(
    subscribers: SubscriberRepository, subscriber_id: int, lists: tuple[str, ...], now: datetime, *, rejoin: bool
) -> bool:
    """Subscribe to ``lists``; those left before only when ``rejoin``. Did anything change?"""
    existing = subscribers.subscriptions(subscriber_id)
    joining = [name for name in lists if name not in existing or (existing[name] == "unsubscribed" and rejoin)]
    if not joining:
        return False
    subscribers.join(subscriber_id, joining, now)
    changes_log.info("subscriber %s: joined %s", subscriber_id, ", ".join(lists))
    return True


def _reloaded(subscribers: SubscriberRepository, email: str) -> Subscriber:
    found = subscribers.find(email)
    assert found is not None, email
    return found


def remove_subscriber(
    subscribers: SubscriberRepository, email: str, list_name: str | None = None, *, now: datetime
) -> Subscriber | None:
    """Unsubscribe ``email`` from ``list_name``, or from every list when it
    is None; returns the subscriber after (None if there is no such address).

    Leaving every list, or the last active one, makes an active or pending
    address unsubscribed; a bounced or complained one keeps that status.
    The subscriptions are kept, marked unsubscribed, so an import will not
    add them back.
    """
    with subscribers.change():
        found = subscribers.find(email)
        if found is None:
            return None
        changed = subscribers.leave(found.id, list_name, now) > 0
        remaining = sum(1 for state in subscribers.subscriptions(found.id).values() if state == "active")
        if found.status in ("active", "pending") and (list_name is None or (changed and remaining == 0)):
            subscribers.set_status(found.id, "unsubscribed")
            changed = True
        if changed:
            subscribers.touch(found.id, now)
            changes_log.info("subscriber %s: unsubscribed from %s", found.id, list_name or "every list")
        return _reloaded(subscribers, email)


def set_subscriber_status(subscribers: SubscriberRepository, email: str, status: str, *, now: datetime) -> bool:
    """Set the address's own status (a hard bounce, a complaint); its
    subscriptions are kept, so an address set active again is back on
    its lists. True if the status changed. To unsubscribe someone, use
    ``remove_subscriber``."""
    check_status(status)
    with subscribers.change():
        found = subscribers.find(email)
        if found is None or found.status == status:
            return False
        subscribers.set_status(found.id, status)
        subscribers.touch(found.id, now)
    changes_log.info("subscriber %s: status %s", mask_email(email), status)
    return True


def add_by_owner(
    subscribers: SubscriberRepository,
    email: str,
    name: str,
    lists: Iterable[str],
    *,
    source: str,
    now: datetime,
    force: bool = False,
) -> tuple[Subscriber, bool]:
    """`publisher subscribers add`: subscribe ``email`` to ``lists`` again
    if it had unsubscribed (and, with ``force``, if it bounced or
    complained); a non-empty ``name`` replaces the stored one."""
    reactivate = REACTIVATED_BY_OWNER_FORCED if force else REACTIVATED_BY_OWNER
    return add_subscriber(
        subscribers, email, name, lists, source=source, now=now, reactivate=reactivate, update_name=True
    )


def request_from_form(subscribers: SubscriberRepository, email: str, *, now: datetime) -> tuple[Subscriber, bool]:
    """A subscribe request from the web form: a new address is added as
    pending, with no name and on no list yet (it joins the lists, and takes
    the name its owner confirms, when it confirms). A known address is left
    as it is: a form anyone can fill in changes nothing about someone else."""
    return add_subscriber(
        subscribers, email, "", (), source="web", now=now, status="pending", reactivate=REACTIVATED_BY_FORM
    )


def confirm_from_link(
    subscribers: SubscriberRepository, email: str, lists: Iterable[str], *, now: datetime, name: str | None = None
) -> Subscriber:
    """A confirmation link followed: the address becomes active and joins
    ``lists``, rejoining any it had left; one that bounced or complained
    since stays so. ``name``, when given, is the name its owner confirmed."""
    with subscribers.change():
        subscriber, _ = add_subscriber(
            subscribers, email, "", lists, source="web", now=now, status="active", reactivate=REACTIVATED_BY_CONFIRMATION
        )
        if name is not None and subscriber.status == "active" and name != subscriber.name:
            subscribers.set_name(subscriber.id, name)
            subscribers.touch(subscriber.id, now)
            subscriber = _reloaded(subscribers, subscriber.email)
    return subscriber


def import_subscribers(store: StateStore, rows: Sequence[ImportRow], *, source: str, now: datetime) -> ImportReport:
    """Apply ``rows`` to ``store`` in one transaction.

    An import adds addresses and adds lists to existing ones; it never makes
    an unsubscribed, bounced or complained address active again, never
    re-adds a list someone left, and never overwrites a name. Importing the
    same rows twice changes nothing the second time.
    """
    added = updated = unchanged = not_resubscribed = duplicates = 0
    suppressed = sum(1 for row in rows if row.status in SUPPRESSED)
    seen: set[str] = set()
    with store.transaction():
        for row in rows:
            before = store.subscribers.find(row.email)
            after, created = add_subscriber(
                store.subscribers,
                row.email,
                row.name,
                row.lists,
                source=source,
                now=now,
                status=row.status,
                created=row.created,
                reactivate=REACTIVATED_BY_IMPORT,
            )
            if row.email.lower() in seen:
                # A second row for the same address adds its lists, and is
                # counted on its own.
                duplicates += 1
            elif created:
                added += 1
            elif after != before:
                updated += 1
                log.debug("import %s: subscriber %s changed (line %d)", source, after.id, row.line)
            else:
                unchanged += 1
                if row.status not in SUPPRESSED and after.status in SUPPRESSED:
                    not_resubscribed += 1
            seen.add(row.email.lower())
    log.info(
        "import %s: %d added, %d updated, %d unchanged (%d not resubscribed), %d duplicate rows, "
        "%d rows marked unsubscribed or bounced in the file",
        source, added, updated, unchanged, not_resubscribed, duplicates, suppressed,
    )
    return ImportReport(added, updated, unchanged, not_resubscribed, duplicates, suppressed)


def subscriber_record(subscriber: Subscriber) -> dict[str, object]:
    """A subscriber as JSON-ready values (times in UTC ISO 8601)."""
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "lists": list(subscriber.lists),
        "status": subscriber.status,
        "source": subscriber.source,
        "created": subscriber.created.astimezone(timezone.utc).isoformat(),
        "changed": subscriber.changed.astimezone(timezone.utc).isoformat(),
    }
