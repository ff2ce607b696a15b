"""The mail stage: a list's next issue, rendered once, made into each
recipient's message and delivered exactly once; subscribers and opt-in."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "compose": "digest",
        "next_issue": "digest",
        "next_issues": "digest",
        "recipient": "digest",
        "ConfirmationMailer": "optin_mailer",
        "UnsubscribeJournal": "unsubscribe_journal",
        "pending_request": "optin",
        "confirm_subscription": "optin",
        "event_key": "optin",
        "request_subscription": "optin",
        "requested_lists": "optin",
        "personalize": "render",
        "render_issue": "render",
        "SendReport": "send",
        "frozen_issue": "send",
        "deliver_issue": "send",
        "dry_run": "send",
        "nothing_to_send": "send",
        "prepare_issue": "send",
        "send_test": "send",
        "SUPPRESSED": "subscribers",
        "SubscriberError": "subscribers",
        "add_by_owner": "subscribers",
        "add_subscriber": "subscribers",
        "clean_name": "subscribers",
        "export_csv": "subscriber_csv",
        "import_subscribers": "subscribers",
        "normalize_email": "subscribers",
        "read_subscriber_csv": "subscriber_csv",
        "remove_subscriber": "subscribers",
        "set_subscriber_status": "subscribers",
        "subscriber_record": "subscribers",
        "TokenClaims": "tokens",
        "sign_token": "tokens",
        "verify_token": "tokens",
        "verify_token_ring": "tokens",
        "write_secret": "tokens",
        "OutboxTransport": "transports",
        "SmtpTransport": "transports",
        "Transport": "transports",
    },
)

__all__ = [
    "ConfirmationMailer",
    "UnsubscribeJournal",
    "pending_request",
    "OutboxTransport",
    "SUPPRESSED",
    "SendReport",
    "SmtpTransport",
    "SubscriberError",
    "TokenClaims",
    "Transport",
    "add_by_owner",
    "add_subscriber",
    "clean_name",
    "compose",
    "confirm_subscription",
    "deliver_issue",
    "dry_run",
    "event_key",
    "export_csv",
    "frozen_issue",
    "import_subscribers",
    "next_issue",
    "next_issues",
    "normalize_email",
    "nothing_to_send",
    "personalize",
    "prepare_issue",
    "send_test",
    "read_subscriber_csv",
    "recipient",
    "remove_subscriber",
    "render_issue",
    "request_subscription",
    "requested_lists",
    "set_subscriber_status",
    "sign_token",
    "subscriber_record",
    "verify_token",
    "verify_token_ring",
    "write_secret",
]

if TYPE_CHECKING:
    from publisher.mail.digest import compose, next_issue, next_issues, recipient
    from publisher.mail.optin import (
        confirm_subscription,
        event_key,
        pending_request,
        request_subscription,
        requested_lists,
    )
    from publisher.mail.optin_mailer import ConfirmationMailer
    from publisher.mail.unsubscribe_journal import UnsubscribeJournal
    from publisher.mail.render import personalize, render_issue
    from publisher.mail.send import (
        SendReport,
        deliver_issue,
        dry_run,
        frozen_issue,
        nothing_to_send,
        prepare_issue,
        send_test,
    )
    from publisher.mail.subscriber_csv import export_csv, read_subscriber_csv
    from publisher.mail.subscribers import (
        SUPPRESSED,
        SubscriberError,
        add_by_owner,
        add_subscriber,
        clean_name,
        import_subscribers,
        normalize_email,
        remove_subscriber,
        set_subscriber_status,
        subscriber_record,
    )
    from publisher.mail.tokens import TokenClaims, sign_token, verify_token, verify_token_ring, write_secret
    from publisher.mail.transports import OutboxTransport, SmtpTransport, Transport
