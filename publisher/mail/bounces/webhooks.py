"""The bounce and complaint notifications of sending services, verified
before anything is believed: Amazon SES (through SNS), Mailgun and Postmark.

- **SES via SNS**: the SNS message's signature (SignatureVersion 1,
  SHA1withRSA, or 2, SHA256withRSA) is checked against the certificate at
  ``SigningCertURL``, which must be an ``https://sns.<region>.amazonaws.com/…pem``
  URL (fetched over TLS with certificate checks, then kept), and its
  ``TopicArn`` must be one of ``[bounces] ses_topics``. A verified
  ``SubscriptionConfirmation`` is confirmed by fetching its ``SubscribeURL``
  (an SNS host too).
- **Mailgun**: ``signature`` is HMAC-SHA256 of ``timestamp + token`` under
  the webhook signing key; a timestamp more than 15 minutes away is refused
  (a replay).
- **Postmark** signs nothing: the webhook URL carries HTTP basic
  authentication (``https://postmark:PASSWORD@example.org/hooks/postmark``),
  checked by the web layer before this module is called.

Each parser turns a verified body into ``ProviderEvent``s; anything that
does not verify raises ``WebhookRejected`` with the HTTP status to answer.

    events = mailgun_events(body, key=b"…", now=now)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 1_000_000
MAILGUN_WINDOW = timedelta(minutes=15)
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")


class WebhookRejected(Exception):
    """A request that is not believed: ``status`` is the HTTP answer (400, 401, 403)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class ProviderEvent:
    """One recipient's bounce or complaint as a service reports it. ``key``
    is the notification's own id (one notification counts once);
    ``message_id``: our Message-ID, when the service echoes it."""

    key: str
    email: str
    kind: str
    status: str = ""
    diagnostic: str = ""
    message_id: str | None = None


def _json(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise WebhookRejected(413, f"body over {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "the body is not a JSON object")
    return data


def _text(value: Any, limit: int = 300) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip()[:limit]


# --- Amazon SES through SNS -------------------------------------------------------------

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def sns_url_allowed(url: str) -> bool:
    """Is ``url`` an https URL on an SNS host (where certificates and confirmations live)?"""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.fullmatch(parts.hostname or "")) and parts.port in (None, 443)


def _sns_string_to_sign(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    if kind not in _SIGNED_FIELDS:
        raise WebhookRejected(400, f"unknown SNS message type {kind!r}")
    lines = []
    for name in _SIGNED_FIELDS[kind]:
        if name in message and message[name] is not None:
            lines += [name, str(message[name])]
        elif name != "Subject":
            raise WebhookRejected(400, f"the SNS message has no {name}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def verify_sns(message: dict[str, Any], fetch_certificate: Callable[[str], bytes]) -> None:
    """Raise ``WebhookRejected`` unless ``message`` is signed by SNS."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(message.get("SignatureVersion", ""))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        raise WebhookRejected(403, f"unsupported SNS SignatureVersion {version!r}")
    url = str(message.get("SigningCertURL", ""))
    if not sns_url_allowed(url) or not url.endswith(".pem"):
        raise WebhookRejected(403, f"SigningCertURL {url!r} is not an SNS certificate")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except ValueError:
        raise WebhookRejected(403, "the SNS signature is not base64") from None
    signed = _sns_string_to_sign(message)
    try:
        key = x509.load_pem_x509_certificate(fetch_certificate(url)).public_key()
    except (OSError, ValueError) as exc:
        raise WebhookRejected(403, f"the SNS certificate cannot be had: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected(403, "the SNS certificate's key is not RSA")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise WebhookRejected(403, "the SNS signature does not verify") from None


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message: a notification's SES events, or a subscription to confirm."""

    kind: str
    events: tuple[ProviderEvent, ...] = ()
    subscribe_url: str | None = None


def ses_events(body: bytes, *, topics: tuple[str, ...], fetch_certificate: Callable[[str], bytes]) -> SnsMessage:
    message = _json(body)
    verify_sns(message, fetch_certificate)
    if message.get("TopicArn") not in topics:
        raise WebhookRejected(403, f"topic {message.get('TopicArn')!r} is not in [bounces] ses_topics")
    kind = str(message["Type"])
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not sns_url_allowed(url):
            raise WebhookRejected(403, f"SubscribeURL {url!r} is not an SNS URL")
        return SnsMessage(kind, subscribe_url=url)
    if kind != "Notification":
        return SnsMessage(kind)
    try:
        notification = json.loads(str(message["Message"]))
    except ValueError:
        raise WebhookRejected(400, "the SNS Message is not an SES notification") from None
    if not isinstance(notification, dict):
        raise WebhookRejected(400, "the SNS Message is not an SES notification")
    return SnsMessage(kind, events=tuple(_ses_notification(notification, f"ses:{message['MessageId']}")))


def _ses_message_id(mail: dict[str, Any]) -> str | None:
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return _text(header.get("value"))
    return None


def _ses_notification(notification: dict[str, Any], key: str) -> list[ProviderEvent]:
    what = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    message_id = _ses_message_id(mail)
    if what == "Bounce":
        bounce = notification.get("bounce") or {}
        kind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        return [
            ProviderEvent(
                key, _text(r.get("emailAddress")), kind, _text(r.get("status")),
                _text(r.get("diagnosticCode") or bounce.get("bounceSubType")), message_id,
            )
            for r in bounce.get("bouncedRecipients") or []
            if isinstance(r, dict) and r.get("emailAddress")
        ]
    if what == "Complaint":
        complaint = notification.get("complaint") or {}
        if complaint.get("complaintFeedbackType") == "not-spam":
            return []
        return [
            ProviderEvent(key, _text(r.get("emailAddress")), "complaint", "", "spam complaint (SES)", message_id)
            for r in complaint.get("complainedRecipients") or []
            if isinstance(r, dict) and r.get("emailAddress")
        ]
    return []


# --- Mailgun ------------------------------------------------------------------------------


def mailgun_events(body: bytes, *, key: bytes, now: datetime) -> list[ProviderEvent]:
    data = _json(body)
    signature = data.get("signature") if isinstance(data.get("signature"), dict) else {}
    timestamp, token, given = (str(signature.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise WebhookRejected(403, "the Mailgun signature is missing")
    expected = hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise WebhookRejected(403, "the Mailgun signature does not verify")
    try:
        sent = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError):
        raise WebhookRejected(403, "the Mailgun timestamp is not a time") from None
    if abs(now - sent) > MAILGUN_WINDOW:
        raise WebhookRejected(403, "the Mailgun timestamp is more than 15 minutes away (a replay?)")
    event = data.get("event-data") if isinstance(data.get("event-data"), dict) else {}
    recipient = _text(event.get("recipient"))
    name = event.get("event")
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    headers = (event.get("message") or {}).get("headers") or {} if isinstance(event.get("message"), dict) else {}
    message_id = _text(headers.get("message-id")) or None if isinstance(headers, dict) else None
    if message_id and not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    key_id = f"mailgun:{_text(event.get('id')) or token}"
    if not recipient:
        return []
    if name == "complained":
        return [ProviderEvent(key_id, recipient, "complaint", "", "spam complaint (Mailgun)", message_id)]
    if name == "failed":
        kind = "hard" if event.get("severity") == "permanent" else "soft"
        code = _text(status.get("enhanced-code") or status.get("code"))
        diagnostic = _text(status.get("message") or status.get("description"))
        return [ProviderEvent(key_id, recipient, kind, code, diagnostic, message_id)]
    return []


# --- Postmark -----------------------------------------------------------------------------

_POSTMARK_HARD = {"HardBounce", "BadEmailAddress"}
_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "Blocked", "Undeliverable"}


def postmark_events(body: bytes) -> list[ProviderEvent]:
    """Postmark's bounce and spam-complaint webhooks (authenticated by the caller)."""
    data = _json(body)
    record, kind_name = data.get("RecordType"), data.get("Type")
    email = _text(data.get("Email"))
    key = f"postmark:{record}:{_text(data.get('ID'))}"
    if not email:
        return []
    if record == "SpamComplaint" or kind_name == "SpamComplaint":
        return [ProviderEvent(key, email, "complaint", "", "spam complaint (Postmark)")]
    if record != "Bounce":
        return []
    if kind_name in _POSTMARK_HARD:
        kind = "hard"
    elif kind_name in _POSTMARK_SOFT:
        kind = "soft"
    else:  # AutoResponder, Unsubscribe, … say nothing against the address
        return []
    return [ProviderEvent(key, email, kind, _text(kind_name), _text(data.get("Details") or data.get("Description")))]
