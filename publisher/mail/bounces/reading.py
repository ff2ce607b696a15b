"""``publisher bounces``: read every configured bounce mailbox and act on what came back.

    report = read_bounces(config, store, now=now)
    report.counts      # {"hard": 2, "soft": 1, "auto-reply": 3, …}
    report.reported    # one line per message set aside: rejected, too large, unreadable

A message is moved out of the way once its outcome is committed, so a crash
between the two means it is read again next time, and counted once (by the
digest of its bytes).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from publisher.config import Config
from publisher.errors import PublisherError
from publisher.mail.bounces.actions import Outcome, handle_message, rules_of
from publisher.mail.bounces.mailboxes import Imap, Mailbox, MailboxError, Maildir, Mbox, Pop3
from publisher.state import StateStore

log = logging.getLogger("publisher.bounces.reading")


class NoBounceMailbox(PublisherError):
    """No bounce mailbox is configured."""


@dataclass
class BounceRunReport:
    """What one run read: outcomes by verdict, addresses whose status
    changed, and a line for each message set aside or mailbox that failed."""

    counts: Counter = field(default_factory=Counter)
    changed: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    failed_mailboxes: list[str] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(self.counts.values())


def configured_mailboxes(config: Config) -> list[tuple[str, object]]:
    """The configured sources as (kind, what opens it)."""
    settings = config.bounces
    found: list[tuple[str, object]] = []
    if settings.maildir is not None:
        found.append(("maildir", settings.maildir))
    if settings.mbox is not None:
        found.append(("mbox", settings.mbox))
    if settings.imap is not None:
        found.append(("imap", settings.imap))
    if settings.pop3 is not None:
        found.append(("pop3", settings.pop3))
    return found


def _open(kind: str, where: object, processed: str) -> Mailbox:
    opener = {"maildir": Maildir, "mbox": Mbox, "imap": Imap, "pop3": Pop3}[kind]
    return opener(where, processed)  # type: ignore[arg-type]


def read_bounces(config: Config, store: StateStore, *, now: datetime) -> BounceRunReport:
    """Read each configured mailbox in turn; one that cannot be read is
    reported and the others are still read."""
    sources = configured_mailboxes(config)
    if not sources:
        raise NoBounceMailbox(
            f"{config.path}: no bounce mailbox; set [bounces] maildir, mbox, or a [bounces.imap] or [bounces.pop3] table"
        )
    report = BounceRunReport()
    for kind, where in sources:
        try:
            box = _open(kind, where, config.bounces.processed)
        except MailboxError as exc:
            report.failed_mailboxes.append(str(exc))
            log.debug("%s", exc)  # the caller reports it
            continue
        try:
            read_mailbox(config, store, box, kind, report, now=now)
        except MailboxError as exc:
            report.failed_mailboxes.append(str(exc))
            log.debug("%s", exc)  # the caller reports it
        finally:
            box.close()
    return report


def read_mailbox(
    config: Config, store: StateStore, box: Mailbox, kind: str, report: BounceRunReport, *, now: datetime
) -> None:
    rules = rules_of(config)
    limit = config.bounces.max_bytes
    for item in box.messages(limit):
        if item.data is None:
            outcome = Outcome("too large", f"{item.size} bytes, over [bounces] max_bytes ({limit}); set aside unread")
        else:
            outcome = handle_message(store, rules, item.data, source=kind, now=now)
        report.counts[outcome.verdict] += 1
        report.changed.extend(outcome.changed)
        if outcome.verdict in ("rejected", "too large"):
            label = getattr(item.key, "name", item.key)  # a Maildir file's name, an mbox key, an IMAP uid
            report.reported.append(f"{box.name}: message {label}: {outcome.verdict}: {outcome.detail}")
        box.done(item)
