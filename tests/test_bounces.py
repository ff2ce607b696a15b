"""Bounces read from a Maildir or an mbox and acted on, against a real
SQLite store: VERP, the fallback to the quoted message, Mailman's rules,
idempotence, and hostile messages that must change nothing."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.mail.bounces.verp import verp_sender
from publisher.state import StateStore

from .conftest import NOW, SteppedClock, invoke
from .helpers.bounce_messages import arf, deliveries, dsn, out_of_office, sent_site
from .helpers.sites import SECRET

# Each test sends an issue through the command line first.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)


def _verp(config, email: str) -> str:
    delivery_id, _ = deliveries(config)[email]
    return verp_sender("bounces@example.org", delivery_id, email, SECRET.encode())


def _drop(config, name: str, data: bytes) -> Path:
    path = config.bounces.maildir / "new" / name
    path.write_bytes(data)
    return path


def _bounces(config, when=NOW):
    return invoke("--config", str(config.path), "bounces", clock=SteppedClock(when))


def _state(config) -> dict[str, str]:
    store = StateStore.open(config.state.path)
    try:
        return {s.email: s.status for s in store.subscribers.matching()}
    finally:
        store.close()


def _events(config, email: str) -> list:
    store = StateStore.open(config.state.path)
    try:
        return store.bounces.events(store.subscribers.find(email).id)
    finally:
        store.close()


def test_a_hard_bounce_to_the_verp_address_bounces_that_subscriber_at_once(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    _drop(config, "1", dsn(_verp(config, "reader1@example.net"), "reader1@example.net"))
    result = _bounces(config)
    assert result.exit_code == 0, result.stderr
    assert "Read 1 message: 1 hard; status changed for 1 address" in result.output
    assert _state(config) == {
        "reader0@example.net": "active", "reader1@example.net": "bounced", "reader2@example.net": "active"
    }
    (event,) = _events(config, "reader1@example.net")
    assert (event.kind, event.status, event.issue_id, event.source) == ("hard", "5.1.1", 1, "maildir")
    assert "User unknown" in event.diagnostic
    # The message is out of new/, in the Maildir++ folder .processed.
    assert list((config.bounces.maildir / "new").iterdir()) == []
    assert [p.name for p in (config.bounces.maildir / ".processed" / "cur").iterdir()] == ["1:2,S"]


def test_the_verp_token_wins_over_what_the_bounce_names(tmp_path: Path) -> None:
    """A forwarding address bounces under another name: the token says who it was."""
    config = sent_site(tmp_path / "site")
    _drop(config, "1", dsn(_verp(config, "reader0@example.net"), "old-address@forwarded.example"))
    _bounces(config)
    assert _state(config)["reader0@example.net"] == "bounced"


def test_soft_bounces_decay_and_three_within_the_window_bounce(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    store = StateStore.open(config.state.path)
    # Two more issues went to the same readers (soft bounces count once per issue).
    with store.transaction():
        for number in (2, 3):
            issue_id = store.issues.create("daily", number, NOW, f"Issue {number}", [])
            store.deliveries.start(issue_id, "{}", "daily", now=NOW)
    rows = store.database.query("SELECT id, issue_id FROM deliveries WHERE email = 'reader2@example.net' ORDER BY id")
    store.close()
    email = "reader2@example.net"
    senders = [verp_sender("bounces@example.org", delivery_id, email, SECRET.encode()) for delivery_id, _ in rows]

    def soft(n: int, sender: str, status: str = "4.2.2") -> bytes:
        return dsn(sender, email, status=status, diagnostic=f"smtp; 452 {status} mailbox full ({n})")

    # Day 0 and day 8: the first has decayed by the second.
    _drop(config, "a", soft(1, senders[0]))
    _bounces(config, NOW)
    _drop(config, "b", soft(2, senders[1]))
    _bounces(config, NOW + timedelta(days=8))
    # A second warning about the same issue counts once.
    _drop(config, "c", soft(3, senders[1], status="4.4.7"))
    _bounces(config, NOW + timedelta(days=8, hours=1))
    assert _state(config)[email] == "active"
    _drop(config, "d", soft(4, senders[2]))
    _bounces(config, NOW + timedelta(days=9))
    assert _state(config)[email] == "active"  # 2 issues within 7 days
    events = _events(config, email)
    assert [e.kind for e in events] == ["soft"] * 4
    # The threshold: a third issue soft-bounced within 7 days of the others.
    store = StateStore.open(config.state.path)
    with store.transaction():
        issue_id = store.issues.create("daily", 4, NOW, "Issue 4", [])
        store.deliveries.start(issue_id, "{}", "daily", now=NOW)
    (delivery_id,) = store.database.query_one(
        "SELECT id FROM deliveries WHERE email = ? AND issue_id = ?", (email, issue_id)
    )
    store.close()
    _drop(config, "e", soft(5, verp_sender("bounces@example.org", delivery_id, email, SECRET.encode())))
    result = _bounces(config, NOW + timedelta(days=10))
    assert "1 soft; status changed for 1 address" in result.output
    assert _state(config)[email] == "bounced"


def test_mailbox_full_and_policy_refusals_are_soft_even_with_5xx(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    _drop(config, "1", dsn(_verp(config, "reader0@example.net"), "reader0@example.net", status="5.2.2"))
    _drop(config, "2", dsn(_verp(config, "reader1@example.net"), "reader1@example.net", status="5.7.1"))
    result = _bounces(config)
    assert "2 soft" in result.output
    assert set(_state(config).values()) == {"active"}


def test_a_complaint_unsubscribes_with_complained_and_import_never_brings_it_back(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    email = "reader0@example.net"
    # Feedback loops send the report to their own registered address; the
    # quoted original still carries its VERP Return-Path.
    _drop(config, "1", arf(email, return_path=_verp(config, email)))
    result = _bounces(config)
    assert "1 complaint" in result.output
    assert _state(config)[email] == "complained"
    store = StateStore.open(config.state.path)
    assert store.subscribers.find(email).lists == ()
    store.close()
    csv = tmp_path / "people.csv"
    csv.write_text(f"email,name\n{email},Reader\n")
    invoke("--config", str(config.path), "subscribers", "import", str(csv), clock=SteppedClock(NOW))
    assert _state(config)[email] == "complained"
    shown = invoke("--config", str(config.path), "subscribers", "show", email)
    assert "status: complained" in shown.output and "complaint  -  daily #1  maildir" in shown.output


def test_without_verp_the_quoted_message_id_identifies_the_delivery(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    _, message_id = deliveries(config)["reader2@example.net"]
    _drop(config, "1", dsn("bounces@example.org", "reader2@example.net", quoted_message_id=message_id))
    _bounces(config)
    assert _state(config)["reader2@example.net"] == "bounced"


def test_a_quoted_message_id_of_someone_else_proves_nothing(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    _, message_id = deliveries(config)["reader2@example.net"]
    _drop(config, "1", dsn("bounces@example.org", "reader1@example.net", quoted_message_id=message_id))
    result = _bounces(config)
    assert result.exit_code == 1 and "1 rejected" in result.output
    assert "quotes the Message-ID of a message to reader2@example.net" in result.stderr
    assert set(_state(config).values()) == {"active"}


def test_auto_replies_and_other_mail_change_nothing(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    _drop(config, "1", out_of_office(_verp(config, "reader0@example.net")))
    _drop(config, "2", b"From: someone@example.net\nTo: bounces@example.org\nSubject: hello\n\nJust saying hi.\n")
    _drop(config, "3", dsn(_verp(config, "reader1@example.net"), "reader1@example.net", action="delivered", status="2.0.0"))
    result = _bounces(config)
    assert result.exit_code == 0
    assert "1 auto-reply, 2 not a bounce" in result.output
    assert set(_state(config).values()) == {"active"}


def test_a_message_read_twice_counts_once(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    data = dsn(_verp(config, "reader1@example.net"), "reader1@example.net", status="4.2.2")
    _drop(config, "1", data)
    _bounces(config)
    _drop(config, "1-again", data)  # delivered again, or left behind by a crash before the move
    result = _bounces(config)
    assert "1 duplicate" in result.output
    assert len(_events(config, "reader1@example.net")) == 1


# --- hostile messages: each changes nothing and is reported ----------------------


def test_a_forged_verp_token_changes_nothing_and_is_reported(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    real = _verp(config, "reader1@example.net")
    local, domain = real.split("@")
    forged = local[:-4] + ("aaaa" if not local.endswith("aaaa") else "bbbb") + "@" + domain
    # A token made for one reader, used in a bounce about another.
    delivery_of_0 = deliveries(config)["reader0@example.net"][0]
    borrowed = f"bounces+{format(delivery_of_0, 'x')}.{real.split('.')[1].split('@')[0]}@example.org"
    _drop(config, "forged", dsn(forged, "reader1@example.net"))
    _drop(config, "borrowed", dsn(borrowed, "reader0@example.net"))
    _drop(config, "no-proof", dsn("bounces@example.org", "reader2@example.net"))
    result = _bounces(config)
    assert result.exit_code == 1
    assert "3 rejected" in result.output
    assert result.stderr.count("rejected") == 3 and "is not valid" in result.stderr
    assert "carries no VERP token and quotes no message" in result.stderr
    assert set(_state(config).values()) == {"active"}
    store = StateStore.open(config.state.path)
    assert store.database.query_one("SELECT COUNT(*) FROM bounce_events")[0] == 0
    store.close()


def test_a_50_mb_bounce_is_set_aside_unread(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    big = dsn(_verp(config, "reader1@example.net"), "reader1@example.net") + b"x" * (50 * 1024 * 1024)
    _drop(config, "huge", big)
    result = _bounces(config)
    assert result.exit_code == 1
    assert "too large: 52429" in result.stderr and "new/huge:" not in result.stderr
    assert set(_state(config).values()) == {"active"}
    assert (config.bounces.maildir / ".processed" / "cur" / "huge:2,S").exists()


def test_a_mime_bomb_is_not_read(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    verp = _verp(config, "reader1@example.net")
    parts = "".join("--B\nContent-Type: text/plain\n\nx\n" for _ in range(20_000))
    wide = f"To: {verp}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n{parts}--B--\n"
    deep = f"To: {verp}\nMIME-Version: 1.0\n" + "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(500)
    ) + "Content-Type: text/plain\n\nx\n"
    _drop(config, "wide", wide.encode())
    _drop(config, "deep", deep.encode())
    result = _bounces(config)
    assert result.exit_code == 0
    assert "2 not a bounce" in result.output
    assert set(_state(config).values()) == {"active"}


# --- mbox -----------------------------------------------------------------------------


def test_an_mbox_is_read_under_its_lock_and_emptied_into_processed_mbox(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site", extra='mbox = "bounces.mbox"\n')
    box = mailbox.mbox(tmp_path / "site" / "bounces.mbox")
    box.add(dsn(_verp(config, "reader0@example.net"), "reader0@example.net"))
    box.add(out_of_office(_verp(config, "reader1@example.net")))
    box.flush()
    box.close()
    result = _bounces(config)
    assert "Read 2 messages: 1 hard, 1 auto-reply" in result.output
    assert _state(config)["reader0@example.net"] == "bounced"
    assert len(mailbox.mbox(tmp_path / "site" / "bounces.mbox")) == 0
    assert len(mailbox.mbox(tmp_path / "site" / "processed.mbox")) == 2
    assert "Read 0 messages" in _bounces(config).output


def test_no_mailbox_configured_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    from .helpers.sites import make_site

    make_site(tmp_path / "site", None, 1)
    result = invoke("--config", str(tmp_path / "site" / "publisher.toml"), "bounces")
    assert result.exit_code == 2
    assert "no bounce mailbox; set [bounces] maildir" in result.stderr


def test_a_missing_maildir_is_named_and_exit_2(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site")
    for sub in ("new", "cur", "tmp"):
        (config.bounces.maildir / sub).rmdir()
    result = _bounces(config)
    assert result.exit_code == 2
    assert "not a Maildir" in result.stderr


# --- the envelope sender of a real SMTP send ---------------------------------------------


def test_each_delivery_leaves_with_its_own_signed_verp_envelope_sender(tmp_path: Path) -> None:
    import base64
    from email import message_from_bytes

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from publisher.config import load_config
    from publisher.mail.bounces.verp import find_token

    from .helpers.sites import make_site
    from .helpers.smtp_server import SmtpServer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    with SmtpServer() as server:
        root = make_site(tmp_path / "site", server.port, 3)
        (root / "dkim.pem").write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        text = (root / "publisher.toml").read_text()
        (root / "publisher.toml").write_text(
            text.replace('transport = "smtp"', 'transport = "smtp"\nbounce_address = "bounces@example.org"')
            + '\n[mail.dkim]\ndomain = "example.org"\nselector = "news"\nkey_file = "dkim.pem"\n'
        )
        result = invoke("--config", str(root / "publisher.toml"), "send", clock=SteppedClock(NOW))
        assert result.exit_code == 0, result.stderr
        messages = server.messages
    config = load_config(root / "publisher.toml")
    ids = deliveries(config)
    assert len(messages) == 3
    for received in messages:
        (recipient,) = received.rcpt_tos
        token = find_token([received.mail_from], "bounces@example.org")
        assert token is not None and token.delivery_id == ids[recipient][0]
        assert token.valid_for(recipient, SECRET.encode())
        assert len(received.mail_from.split("@")[0]) <= 64
        # Only the envelope changed: the From header is the site's, and the
        # DKIM signature still verifies once the receiver adds Return-Path.
        assert message_from_bytes(received.data)["From"] == "Test Site <news@example.org>"
        delivered = f"Return-Path: <{received.mail_from}>\r\n".encode() + received.data
        assert dkim.verify(delivered, dnsfunc=dns)
    assert len({r.mail_from for r in messages}) == 3


def test_the_scheduler_reads_bounces_as_a_job(tmp_path: Path) -> None:
    config = sent_site(tmp_path / "site", extra='\n[jobs]\nbounces = "every 15 minutes"\n')
    first = invoke("--config", str(config.path), "run", "--once", clock=SteppedClock(NOW))
    assert first.exit_code == 0, first.stderr
    _drop(config, "1", dsn(_verp(config, "reader2@example.net"), "reader2@example.net"))
    later = NOW + timedelta(minutes=16)
    second = invoke("--config", str(config.path), "run", "--once", clock=SteppedClock(later))
    assert second.exit_code == 0, second.stderr
    assert _state(config)["reader2@example.net"] == "bounced"
    status = invoke("--config", str(config.path), "status", clock=SteppedClock(later))
    assert "job bounces (every 15 minutes): last run" in status.output
    assert "ok (Read 1 message: 1 hard; status changed for 1 address)" in status.output
