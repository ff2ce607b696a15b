"""The message builder ``MessageFactory`` is held to: ``email.message.EmailMessage``.

Each header value comes from ``publisher.mail.headers`` (folded there: the
email package's own folding garbles long encoded words and wraps URLs) and
is stored raw; the body parts, the Date, Message-ID and Content-Type
headers and the serialisation are the email package's, under
``headers.POLICY``.
"""

from __future__ import annotations

import email.errors
import hashlib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from publisher.mail.headers import (
    MAX_LINE,
    POLICY,
    MessageError,
    check_extra_header,
    checked_address,
    checked_message_id,
    header_text,
    list_id_value,
    mailbox_value,
    parse_mailbox,
    text_value,
    unsubscribe_mailto_word,
    unsubscribe_url_word,
    words_value,
)
from publisher.mail.mime import lf_lines
from publisher.model import Personal


def build_message_reference(
    rendered_subject: str,
    html: str,
    text: str,
    *,
    sender: str,
    to: Personal,
    reply_to: str | None,
    list_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None,
    message_id: str,
    date: datetime,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """What ``build_message`` gives, built with ``email.message.EmailMessage``.

    The specification ``MessageFactory`` is held to: tests check that both
    give the same bytes, and the benchmarks use it as the plain library
    pipeline. The arguments, the result and the errors are ``build_message``'s.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise MessageError(f"Date: needs a timezone-aware datetime (got {date!r})")
    message_id = checked_message_id(message_id)

    msg = EmailMessage(policy=POLICY)
    _set(msg, "From", mailbox_value("From", parse_mailbox(sender, "From")))
    _set(msg, "To", mailbox_value("To", checked_address(to.name, to.email, "To")))
    if reply_to:
        _set(msg, "Reply-To", mailbox_value("Reply-To", parse_mailbox(reply_to, "Reply-To")))
    _set(msg, "Subject", text_value("Subject", header_text(rendered_subject)))
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    _set(msg, "List-Id", list_id_value(list_id))
    _set(msg, "List-Unsubscribe", words_value("List-Unsubscribe", _unsubscribe_words(unsubscribe_url, unsubscribe_mailto)))
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in (extra_headers or {}).items():
        check_extra_header(name)
        _set(msg, name, text_value(name, header_text(value)))

    msg.set_content(lf_lines(text), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(lf_lines(html), subtype="html", charset="utf-8", cte="quoted-printable")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # belongs on the message alone
    # Quoted-printable writes every '=' as "=3D" or a soft break, so a
    # boundary holding "=_" never occurs in a part. Deriving it from the
    # unique Message-ID keeps the bytes a function of the arguments.
    msg.set_boundary("=_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:32])
    try:
        return msg.as_bytes()
    except (ValueError, UnicodeError, email.errors.MessageError) as exc:
        raise MessageError(f"message {message_id} to {to.email!r} cannot be written: {exc}") from exc


def _set(msg: EmailMessage, name: str, value: str) -> None:
    """Store a folded ``value``; a line past RFC 5322's 998 octets is an error, not a wrap."""
    lines = f"{name}: {value}".split("\r\n")
    if any(len(line) > MAX_LINE for line in lines):
        raise MessageError(f"{name}: a value longer than {MAX_LINE} octets cannot be written on one line")
    msg.set_raw(name, value)


def _unsubscribe_words(url: str, mailto: str | None) -> list[str]:
    words = [unsubscribe_url_word(url)]
    if mailto:
        words[0] += ","
        words.append(unsubscribe_mailto_word(mailto))
    return words
