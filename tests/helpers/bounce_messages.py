"""Bounce messages made for the tests, as mail servers write them: a DSN
(RFC 3464), an ARF abuse report (RFC 5965), an out-of-office reply; and a
site with one sent issue whose deliveries they can name."""

from __future__ import annotations

from pathlib import Path

from publisher.config import Config, load_config
from publisher.state import StateStore

from ..conftest import NOW, SteppedClock, invoke
from .sites import make_site


def dsn(
    envelope_to: str,
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    quoted_message_id: str | None = None,
    quoted_return_path: str | None = None,
) -> bytes:
    """A Postfix-style DSN delivered to ``envelope_to`` for ``recipient``."""
    quoted = ""
    if quoted_message_id or quoted_return_path:
        quoted = (
            "--B\nContent-Type: message/rfc822\n\n"
            + (f"Return-Path: <{quoted_return_path}>\n" if quoted_return_path else "")
            + f"From: news@example.org\nTo: {recipient}\nSubject: Daily\n"
            + (f"Message-ID: {quoted_message_id}\n" if quoted_message_id else "")
            + "List-Id: Daily <daily.example.org>\n\nHello\n\n"
        )
    return (
        f"Return-Path: <>\nDelivered-To: {envelope_to}\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        f"To: {envelope_to}\nSubject: Undelivered Mail Returned to Sender\nAuto-Submitted: auto-replied\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: {diagnostic.format(r=recipient)}\n\n" + quoted + "--B--\n"
    ).encode()


def arf(recipient: str, *, return_path: str | None = None, message_id: str | None = None, to: str = "fbl@example.org") -> bytes:
    """An ARF abuse report (RFC 5965) quoting the message ``recipient`` complained of."""
    return (
        f"From: staff@hotmail.example\nTo: {to}\nSubject: complaint about message\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
        "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\n"
        f"Version: 1\nOriginal-Rcpt-To: {recipient}\n\n"
        "--F\nContent-Type: message/rfc822\n\n"
        + (f"Return-Path: <{return_path}>\n" if return_path else "")
        + f"From: news@example.org\nTo: {recipient}\nSubject: Daily\n"
        + (f"Message-ID: {message_id}\n" if message_id else "")
        + "\nHello\n\n--F--\n"
    ).encode()


def out_of_office(to: str) -> bytes:
    return (
        f"From: Ann <ann@example.net>\nTo: {to}\nSubject: Automatic reply: Daily\n"
        "Auto-Submitted: auto-replied\nX-Autoreply: yes\n\nI am out of the office until Monday.\n"
    ).encode()


def sent_site(root: Path, subscribers: int = 3, extra: str = "") -> Config:
    """A site (outbox transport, VERP on, a Maildir of bounces) whose issue 1 went to ``subscribers`` readers."""
    maildir = root / "bounces"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    make_site(
        root,
        None,
        subscribers,
        extra='bounce_address = "bounces@example.org"\n\n[bounces]\nmaildir = "bounces"\n' + extra,
    )
    result = invoke("--config", str(root / "publisher.toml"), "send", "--list", "daily", clock=SteppedClock(NOW))
    assert result.exit_code == 0, result.output + result.stderr
    return load_config(root / "publisher.toml")


def deliveries(config: Config) -> dict[str, tuple[int, str]]:
    """Each recipient's delivery id and Message-ID."""
    store = StateStore.open(config.state.path)
    try:
        rows = store.database.query("SELECT email, id, message_id FROM deliveries ORDER BY id")
    finally:
        store.close()
    return {email: (delivery_id, message_id) for email, delivery_id, message_id in rows}
