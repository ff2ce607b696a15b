"""What a bounce or complaint does to a subscriber, as Mailman does it.

- a hard bounce marks the address ``bounced`` at once;
- a soft bounce adds to a score that decays: the soft bounces of the last
  ``[bounces] soft_window`` (one per issue), and ``soft_threshold`` of them
  make it ``bounced``;
- a complaint unsubscribes it from every list, with status ``complained``
  (an import never makes it active again);
- an auto-reply, and anything that is not a bounce, changes nothing.

Who bounced is known from the VERP token of the address the bounce came
back to (``publisher.mail.bounces.verp``), else from the original message
the bounce quotes: its Message-ID is one we recorded for a delivery (a
random part makes it unguessable), and the failed recipient the bounce
names must be that delivery's. A bounce with a bad token, or naming an
address with neither proof, changes nothing: it is reported ``rejected``.
Each message is dealt with once, by the digest of its bytes.

    outcome = handle_message(store, rules_of(config), data, source="maildir", now=now)
    outcome.verdict   # "hard", "soft", "complaint", "auto-reply", "not a bounce", "rejected", "duplicate", …
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import getaddresses

from publisher.config import Config
from publisher.mail.bounces.classify import Classified, Failure, classify
from publisher.mail.bounces.verp import find_token, looks_like_verp
from publisher.mail.subscribers import remove_subscriber, set_subscriber_status
from publisher.schedules import parse_duration
from publisher.state import BounceEvent, DeliveryRef, StateStore

log = logging.getLogger("publisher.bounces")


@dataclass(frozen=True)
class BounceRules:
    """What the actions need of the configuration."""

    bounce_address: str | None
    secret: bytes | None
    soft_threshold: int = 3
    soft_window: timedelta = timedelta(days=7)


def rules_of(config: Config) -> BounceRules:
    return BounceRules(
        bounce_address=config.mail.bounce_address,
        secret=config.mail.secret,
        soft_threshold=config.bounces.soft_threshold,
        soft_window=parse_duration(config.bounces.soft_window),
    )


@dataclass(frozen=True)
class Outcome:
    """What one message did: its verdict, the addresses it concerned, and
    those whose status it changed."""

    verdict: str
    detail: str = ""
    emails: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """Who an event is about, and the issue when known."""

    subscriber_id: int
    email: str
    issue_id: int | None


def message_key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def handle_message(store: StateStore, rules: BounceRules, data: bytes, *, source: str, now: datetime) -> Outcome:
    """Classify one message, find whom it is about, act, and record it once."""
    key = message_key(data)
    if store.bounces.seen(key):
        return Outcome("duplicate", "read before")
    classified = classify(data)
    outcome = _judge(store, rules, classified, key=key, source=source, now=now)
    return outcome


def _judge(
    store: StateStore, rules: BounceRules, classified: Classified, *, key: str, source: str, now: datetime
) -> Outcome:
    if classified.kind not in ("bounce", "complaint"):
        outcome = Outcome(classified.kind, classified.reason)
        _remember(store, key, source, outcome, now)
        return outcome
    found = _identify(store, rules, classified)
    if isinstance(found, str):
        named = tuple(f.email for f in classified.failures if f.email)
        outcome = Outcome("rejected", found, named)
        log.info("bounce rejected (%s): %s", source, found)  # the caller reports it
        _remember(store, key, source, outcome, now)
        return outcome
    target, failure = found
    kind = "complaint" if classified.kind == "complaint" else failure.kind
    with store.transaction():
        if not store.bounces.remember_message(key, source, kind, failure.diagnostic, now):
            return Outcome("duplicate", "read before")
        changed = apply_event(store, rules, target, kind, failure, key=key, source=source, now=now)
    return Outcome(kind, failure.status or failure.diagnostic, (target.email,), (target.email,) if changed else ())


def _remember(store: StateStore, key: str, source: str, outcome: Outcome, now: datetime) -> None:
    with store.transaction():
        store.bounces.remember_message(key, source, outcome.verdict, outcome.detail, now)


def _target(delivery: DeliveryRef) -> Target:
    return Target(delivery.subscriber_id, delivery.email, delivery.issue_id)


def _identify(store: StateStore, rules: BounceRules, classified: Classified) -> tuple[Target, Failure] | str:
    """The delivery the report is about and its failure, or why none can be trusted."""
    worst = classified.worst or Failure("", "hard")
    if rules.bounce_address is not None:
        token = find_token(classified.envelope, rules.bounce_address)
        if token is not None:
            delivery = store.bounces.delivery(token.delivery_id)
            if delivery is None or rules.secret is None or not token.valid_for(delivery.email, rules.secret):
                return f"the VERP token of {token.address} is not valid (forged, or signed under another secret)"
            return _target(delivery), worst
        bad = [a for a in classified.envelope if looks_like_verp(a, rules.bounce_address)]
        if bad:
            return f"the VERP address {bad[0]} carries no valid token"
    delivery = store.bounces.delivery_by_message_id(classified.quoted_message_id) if classified.quoted_message_id else None
    named = [f for f in classified.failures if f.email]
    quoted_to = [a.lower() for _, a in getaddresses([classified.quoted_to or ""]) if a]
    if delivery is not None and quoted_to and delivery.email.lower() not in quoted_to:
        return f"quotes the Message-ID of a message to {delivery.email} in a message to {quoted_to[0]}"
    if delivery is None:
        who = ", ".join(f.email for f in named) or "nobody"
        return f"names {who} but carries no VERP token and quotes no message sent to them"
    if not named:  # a report that redacts the recipient (some feedback loops do)
        return _target(delivery), worst
    for failure in named:
        if failure.email.lower() == delivery.email.lower():
            return _target(delivery), failure
    return f"names {named[0].email} but quotes a message sent to someone else"


def apply_event(
    store: StateStore,
    rules: BounceRules,
    target: Target,
    kind: str,
    failure: Failure,
    *,
    key: str,
    source: str,
    now: datetime,
) -> bool:
    """Record the event and apply its rule, inside the caller's transaction;
    True when the subscriber's status changed."""
    subscriber = store.subscribers.find(target.email)
    if subscriber is None:
        return False
    event = BounceEvent(key, subscriber.id, target.issue_id, kind, failure.status, failure.diagnostic, source, now)
    if not store.bounces.record(event):
        return False
    log.info("subscriber %s: %s bounce event from %s (%s)", subscriber.id, kind, source, failure.status or "-")
    if kind == "complaint":
        remove_subscriber(store.subscribers, subscriber.email, None, now=now)
        return set_subscriber_status(store.subscribers, subscriber.email, "complained", now=now)
    if subscriber.status not in ("active", "pending"):
        return False
    if kind == "soft":
        score = store.bounces.soft_score(subscriber.id, now - rules.soft_window)
        if score < rules.soft_threshold:
            return False
    return set_subscriber_status(store.subscribers, subscriber.email, "bounced", now=now)


def handle_events(store: StateStore, rules: BounceRules, events: list, *, source: str, now: datetime) -> list[Outcome]:
    """Act on a verified notification's events (``webhooks.ProviderEvent``):
    the service is trusted for the address, so the subscriber is found by it;
    the issue too when the service echoes our Message-ID. A notification
    counts once, whatever it is retried."""
    outcomes = []
    keys = {event.key for event in events}
    if any(store.bounces.seen(key) for key in keys):
        return [Outcome("duplicate", "notified before")]
    with store.transaction():
        for event in events:
            subscriber = store.subscribers.find(event.email)
            if subscriber is None:
                outcomes.append(Outcome("unknown", f"{event.email} is no subscriber", (event.email,)))
                continue
            delivery = store.bounces.delivery_by_message_id(event.message_id) if event.message_id else None
            issue_id = delivery.issue_id if delivery and delivery.email.lower() == event.email.lower() else None
            target = Target(subscriber.id, subscriber.email, issue_id)
            failure = Failure(event.email, event.kind, event.status, event.diagnostic)
            changed = apply_event(store, rules, target, event.kind, failure, key=event.key, source=source, now=now)
            outcomes.append(Outcome(event.kind, event.status, (subscriber.email,), (subscriber.email,) if changed else ()))
        for key in keys:
            verdicts = sorted({o.verdict for o in outcomes}) or ["nothing"]
            store.bounces.remember_message(key, source, ",".join(verdicts), "", now)
    return outcomes
