"""What a message that came back says: a bounce (hard or soft), a complaint,
an auto-reply, or nothing of ours.

Pure: bytes in, a ``Classified`` out; no store, no clock. Standard reports
are read with the standard library: delivery status notifications
(RFC 3464, ``multipart/report; report-type=delivery-status``) and abuse
reports (ARF, RFC 5965, ``report-type=feedback-report``). Everything else
goes to ``flufl.bounce``, Mailman's detectors for the formats of dozens of
mail servers that predate or ignore RFC 3464 (qmail, old Exim, Yahoo, …).

    found = classify(data)
    found.kind        # "bounce", "complaint", "auto-reply" or "not a bounce"
    found.failures    # (Failure("ann@example.net", "hard", "5.1.1", "550 5.1.1 user unknown"),)

Hard or soft follows the enhanced status code (RFC 3463): 5.x.x is hard,
4.x.x soft, except a full or over-quota mailbox (x.2.2), a message too
big for it (x.2.3) and a policy refusal (5.7.x: blocked as spam, say),
which say nothing against the address and are soft. A "delayed" DSN is
soft. A message with too many MIME parts (a MIME bomb) is not read past
its first ``MAX_PARTS`` and counts as not a bounce.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses

log = logging.getLogger("publisher.bounces.classify")

MAX_PARTS = 200
MAX_DEPTH = 12
# Headers of the bounce that may carry the address it was sent to (the VERP
# envelope): local delivery agents add Delivered-To and X-Original-To, Exim
# Envelope-To; a DSN's To is the original envelope sender.
ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "X-Delivered-To", "To")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|auto(matic)?[- ]?(reply|response|antwort)|abwesenheitsnotiz|"
    r"r[ée]ponse automatique|respuesta autom[aá]tica|risposta automatica|on vacation|vacation reply|away from)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports: ``kind`` hard or soft."""

    email: str
    kind: str
    status: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class Classified:
    """What a message says. ``envelope``: the addresses it was sent to and
    the quoted original's Return-Path (where a VERP token is looked for);
    ``quoted_*``: the original message's headers, when quoted."""

    kind: str
    failures: tuple[Failure, ...] = ()
    reason: str = ""
    envelope: tuple[str, ...] = ()
    quoted_message_id: str | None = None
    quoted_list_id: str | None = None
    quoted_to: str | None = None

    @property
    def worst(self) -> Failure | None:
        """The hard failure if there is one, else the first soft one."""
        return next((f for f in self.failures if f.kind == "hard"), self.failures[0] if self.failures else None)


def kind_of_status(status: str, action: str = "failed") -> str:
    """``hard`` or ``soft`` for an enhanced status code and a DSN action."""
    match = _STATUS.search(status or "")
    if action.lower() == "delayed":
        return "soft"
    if match is None:
        return "hard" if action.lower() == "failed" else "soft"
    klass, subject, detail = match.groups()
    if klass != "5" or (subject == "2" and detail in ("2", "3")) or subject == "7":
        return "soft"
    return "hard"


def _text(value: object) -> str:
    """A header value as one clean line, at most 300 characters."""
    return re.sub(r"\s+", " ", str(value or "")).strip()[:300]


def _address(field: str) -> str:
    """The address of a DSN field such as ``rfc822; ann@example.net``."""
    value = _text(field)
    if ";" in value:
        value = value.split(";", 1)[1]
    return value.strip().strip("<>").strip()


def _count_parts(message: Message) -> int:
    count = 0
    for _ in message.walk():
        count += 1
        if count > MAX_PARTS:
            break
    return count


def _depth(message: Message, level: int = 0) -> int:
    if level > MAX_DEPTH or not message.is_multipart():
        return level
    payload = message.get_payload()
    return max((_depth(part, level + 1) for part in payload if isinstance(part, Message)), default=level)


def parse(data: bytes) -> Message | None:
    """The message, or None when it is a MIME bomb (too many parts or too deep)."""
    # Each boundary line starts with "--": a cheap count before building thousands of parts.
    if data.count(b"\n--") > MAX_PARTS * 4:
        return None
    try:
        message = message_from_bytes(data, policy=compat32)
        if _count_parts(message) > MAX_PARTS or _depth(message) > MAX_DEPTH:
            return None
    except RecursionError:
        return None
    return message


def _quoted(message: Message) -> Message | None:
    """The original message (or its headers) a report quotes."""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload()
            if inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            payload = part.get_payload(decode=True) or b""
            return message_from_bytes(payload[:200_000].lstrip(), policy=compat32)
    return None


def _envelope(message: Message, quoted: Message | None) -> tuple[str, ...]:
    found = [str(v) for name in ENVELOPE_HEADERS for v in (message.get_all(name) or [])]
    if quoted is not None:
        found += [str(v) for v in (quoted.get_all("Return-Path") or [])]
    return tuple(_text(v) for v in found)


def _with_quoted(kind: str, message: Message, **fields: object) -> Classified:
    quoted = _quoted(message)
    return Classified(
        kind=kind,
        envelope=_envelope(message, quoted),
        quoted_message_id=_text(quoted.get("Message-ID")) or None if quoted is not None else None,
        quoted_list_id=_text(quoted.get("List-Id")) or None if quoted is not None else None,
        quoted_to=_text(quoted.get("To")) or None if quoted is not None else None,
        **fields,
    )


def _report_fields(message: Message, content_type: str) -> list[Message]:
    """The field groups of a report part: a DSN's per-message then per-recipient blocks."""
    for part in message.walk():
        if part.get_content_type() != content_type:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            return [p for p in payload if isinstance(p, Message)]
        text = part.get_payload(decode=True) or b""
        blocks = re.split(rb"\r?\n\s*\r?\n", text[:200_000])
        return [message_from_bytes(block.strip() + b"\n", policy=compat32) for block in blocks if block.strip()]
    return []


def _dsn(message: Message) -> Classified:
    failures = []
    for block in _report_fields(message, "message/delivery-status"):
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        action = _text(block.get("Action")).lower()
        if not recipient or action not in ("failed", "delayed"):
            continue
        status = _text(block.get("Status"))
        diagnostic = _text(block.get("Diagnostic-Code")).split(";", 1)[-1].strip()
        code = _STATUS.search(status)
        failures.append(Failure(recipient, kind_of_status(status, action), code.group(0) if code else "", diagnostic))
    if not failures:
        return _with_quoted("not a bounce", message, reason="a delivery report that reports no failure")
    return _with_quoted("bounce", message, failures=tuple(failures))


def _arf(message: Message) -> Classified:
    blocks = _report_fields(message, "message/feedback-report")
    report = blocks[0] if blocks else Message()
    feedback = _text(report.get("Feedback-Type")).lower()
    if feedback != "abuse":
        return _with_quoted("not a bounce", message, reason=f"a feedback report of type {feedback or 'none'!r}")
    quoted = _quoted(message)
    recipient = _address(report.get("Original-Rcpt-To") or report.get("Removal-Recipient") or "")
    if not recipient and quoted is not None:
        addresses = getaddresses([str(v) for v in quoted.get_all("To") or []])
        recipient = addresses[0][1] if addresses else ""
    if "@" not in recipient:  # redacted ("undisclosed recipient"), as many feedback loops do
        recipient = ""
    return _with_quoted(
        "complaint", message, failures=(Failure(recipient, "complaint", "", "spam complaint (ARF abuse report)"),)
    )


def _auto_reply(message: Message) -> str | None:
    """Why ``message`` is an automatic reply (RFC 3834 and the usual marks), or None."""
    auto = _text(message.get("Auto-Submitted")).lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if message.get(name) is not None:
            return f"{name} header"
    if _text(message.get("Precedence")).lower() == "auto_reply":
        return "Precedence: auto_reply"
    if _AUTO_SUBJECT.search(_text(message.get("Subject"))):
        return "an out-of-office subject"
    return None


def _detected(message: Message) -> Classified | None:
    """What flufl.bounce finds in a bounce of another format, or None."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector failing on odd input is no reason to stop
        log.debug("flufl.bounce failed on a message: %s", exc)
        return None
    if not temporary and not permanent:
        return None
    text = _body_text(message)
    status = _STATUS.search(text)
    failures = []
    for raw, kind in [(a, "hard") for a in sorted(permanent)] + [(a, "soft") for a in sorted(temporary)]:
        email = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        failures.append(Failure(email.strip("<>"), kind, status.group(0) if status else "", _diagnostic(text, email)))
    return _with_quoted("bounce", message, failures=tuple(failures))


def _body_text(message: Message) -> str:
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            chunks.append(payload[:100_000].decode(part.get_content_charset() or "latin-1", "replace"))
    return "\n".join(chunks)


def _diagnostic(text: str, email: str) -> str:
    """The line of the bounce that explains, near the address or the status code."""
    for line in text.splitlines():
        if _STATUS.search(line) or re.search(r"\b[45]\d\d\b", line):
            return _text(line)
    for line in text.splitlines():
        if email.lower() in line.lower():
            return _text(line)
    return ""


def classify(data: bytes) -> Classified:
    """What the message ``data`` says (see the module's docstring)."""
    message = parse(data)
    if message is None:
        return Classified("not a bounce", reason=f"too many MIME parts or too deep (more than {MAX_PARTS} or {MAX_DEPTH})")
    try:
        return _classify(message)
    except RecursionError:
        return Classified("not a bounce", reason="nested too deep to read")


def _classify(message: Message) -> Classified:
    ctype = message.get_content_type()
    report_type = (message.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    if report_type == "feedback-report":
        return _arf(message)
    if report_type == "delivery-status":
        return _dsn(message)
    if isinstance(message.get_payload(), list) or ctype.startswith("text/"):
        detected = _detected(message)
        if detected is not None and not _auto_reply_only(message):
            return detected
    reason = _auto_reply(message)
    if reason is not None:
        return _with_quoted("auto-reply", message, reason=reason)
    return _with_quoted("not a bounce", message, reason="no bounce, complaint or automatic reply found")


def _auto_reply_only(message: Message) -> bool:
    """An out-of-office reply from a person's address (not a mailer daemon) that flufl.bounce misread."""
    sender = _text(message.get("From")).lower()
    daemon = any(word in sender for word in ("mailer-daemon", "postmaster", "mail delivery", "mailer"))
    return not daemon and _AUTO_SUBJECT.search(_text(message.get("Subject"))) is not None
