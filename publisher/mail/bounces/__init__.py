"""Bounces and complaints: VERP envelope senders, reading the bounce
mailboxes, classifying what came back and acting on it, and the events
kept of it.

- ``verp``: the signed per-delivery envelope sender, and finding it again;
- ``classify``: a message's bytes -> hard, soft, complaint, auto-reply, or not a bounce;
- ``actions``: who it is about and what it does to them (Mailman's rules);
- ``mailboxes``: Maildir, mbox, IMAP and POP3;
- ``reading``: ``publisher bounces``, every mailbox in turn;
- ``webhooks``: the notifications of Amazon SES, Mailgun and Postmark.

Only ``verp`` is imported by the send; the rest load when bounces are read.
"""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "BounceRules": "actions",
        "Outcome": "actions",
        "handle_events": "actions",
        "handle_message": "actions",
        "rules_of": "actions",
        "Classified": "classify",
        "classify": "classify",
        "MailboxError": "mailboxes",
        "BounceRunReport": "reading",
        "NoBounceMailbox": "reading",
        "read_bounces": "reading",
        "envelope_sender": "verp",
        "find_token": "verp",
        "verp_sender": "verp",
        "MAX_BODY": "webhooks",
        "ProviderEvent": "webhooks",
        "WebhookRejected": "webhooks",
        "mailgun_events": "webhooks",
        "postmark_events": "webhooks",
        "ses_events": "webhooks",
        "sns_url_allowed": "webhooks",
    },
)

__all__ = [
    "BounceRules", "BounceRunReport", "Classified", "MAX_BODY", "MailboxError", "NoBounceMailbox", "Outcome",
    "ProviderEvent", "WebhookRejected", "classify", "envelope_sender", "find_token", "handle_events",
    "handle_message", "mailgun_events", "postmark_events", "read_bounces", "rules_of", "ses_events",
    "sns_url_allowed", "verp_sender",
]

if TYPE_CHECKING:
    from publisher.mail.bounces.actions import BounceRules, Outcome, handle_events, handle_message, rules_of
    from publisher.mail.bounces.classify import Classified, classify
    from publisher.mail.bounces.mailboxes import MailboxError
    from publisher.mail.bounces.reading import BounceRunReport, NoBounceMailbox, read_bounces
    from publisher.mail.bounces.verp import envelope_sender, find_token, verp_sender
    from publisher.mail.bounces.webhooks import (
        MAX_BODY,
        ProviderEvent,
        WebhookRejected,
        mailgun_events,
        postmark_events,
        ses_events,
        sns_url_allowed,
    )
