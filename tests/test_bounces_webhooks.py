"""The webhooks of Amazon SES (through SNS), Mailgun and Postmark: signed
requests act, forged or unsigned ones get 4xx and change nothing.

Mailgun and Postmark go through a real `publisher serve` process; SES's
signed path runs in-process, with the SNS certificate handed to the app
(the real one lives on an amazonaws.com host no test can reach)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.state import StateStore

from .conftest import NOW
from .helpers.web_server import Client, WebServer, free_port, make_web_site, server_env

MAILGUN_KEY = "key-mailgun-signing-0123456789"
POSTMARK_PASSWORD = "postmark-hook-password"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
READERS = ["ann@example.net", "bob@example.net", "cat@example.net", "dan@example.net"]
HOOKS = (
    f'\n[bounces]\nses_topics = ["{TOPIC}"]\nmailgun_key_env = "TEST_MAILGUN_KEY"\n'
    'postmark_password_env = "TEST_POSTMARK_PASSWORD"\n'
)


def _site(tmp_path: Path, port: int) -> Path:
    root = make_web_site(tmp_path / "site", port, HOOKS)
    config = load_config(root / "publisher.toml")
    store = StateStore.open(config.state.path)
    with store.transaction():
        for email in READERS:
            add_subscriber(store.subscribers, email, "", ["daily"], source="test", now=NOW)
    store.close()
    return root


def _statuses(root: Path) -> dict[str, str]:
    store = StateStore.open(load_config(root / "publisher.toml").state.path)
    try:
        return {s.email: s.status for s in store.subscribers.matching()}
    finally:
        store.close()


def _event_count(root: Path) -> int:
    store = StateStore.open(load_config(root / "publisher.toml").state.path)
    try:
        return store.database.query_one("SELECT COUNT(*) FROM bounce_events")[0]
    finally:
        store.close()


def _mailgun(event: dict, *, key: str = MAILGUN_KEY, timestamp: int | None = None, token: str = "t" * 50) -> bytes:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event}).encode()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def served(tmp_path: Path):
    port = free_port()
    root = _site(tmp_path, port)
    env = {**server_env(), "TEST_MAILGUN_KEY": MAILGUN_KEY, "TEST_POSTMARK_PASSWORD": POSTMARK_PASSWORD}
    with WebServer(root / "publisher.toml", port, env) as server:
        yield root, Client(server.port)


JSON = {"Content-Type": "application/json"}


@pytest.mark.slow
def test_mailgun_signed_events_act_and_forged_ones_change_nothing(served) -> None:
    root, client = served
    failed = {"id": "ev-1", "event": "failed", "severity": "permanent", "recipient": "ann@example.net",
              "delivery-status": {"code": 550, "message": "5.1.1 no such user"}}
    forged = _mailgun(failed, key="not-the-key")
    assert client.request("POST", "/hooks/mailgun", forged, JSON).status == 403
    unsigned = json.dumps({"event-data": failed}).encode()
    assert client.request("POST", "/hooks/mailgun", unsigned, JSON).status == 403
    replayed = _mailgun(failed, timestamp=int(time.time()) - 3600)
    assert client.request("POST", "/hooks/mailgun", replayed, JSON).status == 403
    assert client.request("POST", "/hooks/mailgun", b"not json", JSON).status in (400, 403)
    assert set(_statuses(root).values()) == {"active"} and _event_count(root) == 0

    signed = _mailgun(failed)
    reply = client.request("POST", "/hooks/mailgun", signed, JSON)
    assert reply.status == 200 and "hard ann@example.net" in reply.text
    assert client.request("POST", "/hooks/mailgun", signed, JSON).text.startswith("duplicate")
    complained = {"id": "ev-2", "event": "complained", "recipient": "bob@example.net"}
    assert client.request("POST", "/hooks/mailgun", _mailgun(complained, token="u" * 50), JSON).status == 200
    assert _statuses(root) == {
        "ann@example.net": "bounced", "bob@example.net": "complained",
        "cat@example.net": "active", "dan@example.net": "active",
    }
    assert _event_count(root) == 2


@pytest.mark.slow
def test_postmark_needs_its_basic_auth_and_then_acts(served) -> None:
    root, client = served
    bounce = json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "ID": 42, "Email": "cat@example.net",
                         "Details": "smtp;550 5.1.1 The email account does not exist"}).encode()
    assert client.request("POST", "/hooks/postmark", bounce, JSON).status == 401
    wrong = {**JSON, "Authorization": _basic("postmark", "guess")}
    reply = client.request("POST", "/hooks/postmark", bounce, wrong)
    assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Basic")
    assert set(_statuses(root).values()) == {"active"}

    right = {**JSON, "Authorization": _basic("postmark", POSTMARK_PASSWORD)}
    assert client.request("POST", "/hooks/postmark", bounce, right).status == 200
    spam = json.dumps({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 43, "Email": "dan@example.net"})
    assert client.request("POST", "/hooks/postmark", spam.encode(), right).status == 200
    auto = json.dumps({"RecordType": "Bounce", "Type": "AutoResponder", "ID": 44, "Email": "ann@example.net"})
    assert client.request("POST", "/hooks/postmark", auto.encode(), right).text.strip() == "nothing to do"
    statuses = _statuses(root)
    assert (statuses["cat@example.net"], statuses["dan@example.net"], statuses["ann@example.net"]) == (
        "bounced", "complained", "active"
    )


@pytest.mark.slow
def test_unknown_hooks_and_sns_messages_from_elsewhere_are_refused(served) -> None:
    root, client = served
    assert client.request("POST", "/hooks/sendgrid", b"{}", JSON).status == 404
    # A body announced over the limit is refused before it is read.
    with socket.create_connection(("127.0.0.1", client.port), timeout=10) as raw:
        raw.sendall(
            b"POST /hooks/mailgun HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2000000\r\n\r\n{" + b" " * 1000
        )
        assert raw.recv(100).startswith(b"HTTP/1.1 413")
    assert client.request("GET", "/hooks/mailgun").status in (404, 405)
    # A certificate URL off SNS's hosts is refused before anything is fetched.
    message = _sns_notification("ann@example.net", cert_url="https://evil.example/cert.pem")
    message["Signature"] = base64.b64encode(b"x" * 256).decode()
    reply = client.request("POST", "/hooks/ses", json.dumps(message).encode(), JSON)
    assert reply.status == 403 and "not an SNS certificate" in reply.text
    assert set(_statuses(root).values()) == {"active"}


# --- SES through SNS, signed with a certificate handed to the app -------------------------------


def _certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=timezone.utc)).sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


def _sns_notification(email: str, *, kind: str = "Bounce", cert_url: str = CERT_URL, topic: str = TOPIC) -> dict:
    if kind == "Bounce":
        body = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1", "action": "failed",
                                       "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}, "mail": {}}
    else:
        body = {"notificationType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": email}],
                "complaintFeedbackType": "abuse"}, "mail": {}}
    return {"Type": "Notification", "MessageId": f"msg-{email}-{kind}", "TopicArn": topic,
            "Message": json.dumps(body), "Timestamp": "2026-11-29T12:00:00.000Z", "SignatureVersion": "1",
            "SigningCertURL": cert_url}


def _sign(message: dict, key: rsa.RSAPrivateKey, version: str = "1") -> dict:
    fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    if message["Type"] != "Notification":
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def test_ses_notifications_signed_by_sns_act_and_others_change_nothing(tmp_path: Path, monkeypatch) -> None:
    from publisher.app.web import create_app
    from publisher.app.web.hooks import SNS_FETCH

    monkeypatch.setenv("TEST_PUBLISHER_WEB_SECRET", "a-web-test-secret-that-is-long-enough")
    root = _site(tmp_path, 8080)
    key, pem = _certificate()
    other_key, _ = _certificate()
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    app = create_app(load_config(root / "publisher.toml"), clock=lambda: NOW + timedelta(hours=1))
    app.extensions[SNS_FETCH] = fetch
    client = app.test_client()

    def post(message: dict):
        return client.post("/hooks/ses", data=json.dumps(message), content_type="text/plain; charset=UTF-8")

    forged = _sign(_sns_notification("ann@example.net"), other_key)
    assert post(forged).status_code == 403
    altered = _sign(_sns_notification("ann@example.net"), key)
    altered["Message"] = altered["Message"].replace("ann@", "bob@")
    assert post(altered).status_code == 403
    assert post(_sign(_sns_notification("ann@example.net", topic="arn:aws:sns:eu-west-1:999:other"), key)).status_code == 403
    assert set(_statuses(root).values()) == {"active"}

    assert post(_sign(_sns_notification("ann@example.net"), key)).status_code == 200
    assert post(_sign(_sns_notification("bob@example.net", kind="Complaint"), key, version="2")).status_code == 200
    assert post(_sign(_sns_notification("bob@example.net", kind="Complaint"), key, version="2")).get_data(as_text=True).startswith("duplicate")
    statuses = _statuses(root)
    assert (statuses["ann@example.net"], statuses["bob@example.net"], statuses["cat@example.net"]) == (
        "bounced", "complained", "active"
    )
    assert set(fetched) == {CERT_URL}

    # A verified subscription request is confirmed by fetching its SNS SubscribeURL.
    confirm = {"Type": "SubscriptionConfirmation", "MessageId": "sub-1", "TopicArn": TOPIC, "Token": "tok",
               "Message": "You have chosen to subscribe", "Timestamp": "2026-11-29T12:00:00.000Z",
               "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok",
               "SigningCertURL": CERT_URL}
    assert post(_sign(confirm, key)).status_code == 200
    assert fetched[-1].startswith("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription")
