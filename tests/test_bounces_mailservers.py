"""Bounce mail read from a real IMAP and POP3 server (a private Dovecot):
TLS with the certificate checked, messages moved (IMAP) or deleted (POP3)
once read, and nothing changed when the server cannot be trusted."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from imapclient import IMAPClient

from publisher.mail.bounces.verp import verp_sender
from publisher.state import StateStore

from .conftest import NOW, SteppedClock, invoke
from .helpers.bounce_messages import deliveries, dsn, out_of_office, sent_site
from .helpers.dovecot import private_dovecot
from .helpers.sites import SECRET

pytestmark = pytest.mark.slow
PASSWORD = "bounce-mailbox-password"


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)
    monkeypatch.setenv("TEST_BOUNCES_PASSWORD", PASSWORD)
    with private_dovecot("bounces", PASSWORD) as server:
        yield server


def _server_table(kind: str, port: int, extra: str = "") -> str:
    return (
        f'\n[bounces.{kind}]\nhost = "127.0.0.1"\nport = {port}\nuser = "bounces"\n'
        f'password_env = "TEST_BOUNCES_PASSWORD"\n{extra}'
    )


def _append(server, *messages: bytes) -> None:
    client = IMAPClient("127.0.0.1", port=server.imaps, ssl=True, ssl_context=_trusting(server))
    client.login("bounces", PASSWORD)
    for message in messages:
        client.append("INBOX", message.replace(b"\n", b"\r\n"))
    client.logout()


def _trusting(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.certificate))


def _folder_sizes(server) -> dict[str, int]:
    client = IMAPClient("127.0.0.1", port=server.imaps, ssl=True, ssl_context=_trusting(server))
    client.login("bounces", PASSWORD)
    sizes = {}
    for _, _, name in client.list_folders():
        sizes[name] = client.folder_status(name, ["MESSAGES"])[b"MESSAGES"]
    client.logout()
    return sizes


def _verp(config, email: str) -> str:
    return verp_sender("bounces@example.org", deliveries(config)[email][0], email, SECRET.encode())


def _status(config, email: str) -> str:
    store = StateStore.open(config.state.path)
    try:
        return store.subscribers.find(email).status
    finally:
        store.close()


def test_imap_over_tls_reads_moves_and_acts(tmp_path: Path, dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    config = sent_site(tmp_path / "site", extra=_server_table("imap", dovecot.imaps))
    _append(
        dovecot,
        dsn(_verp(config, "reader1@example.net"), "reader1@example.net"),
        out_of_office(_verp(config, "reader2@example.net")),
    )
    # The server's certificate is not trusted yet: nothing is read, nothing changes.
    refused = invoke("--config", str(config.path), "bounces", clock=SteppedClock(NOW))
    assert refused.exit_code == 2
    assert "certificate is not trusted" in refused.stderr and "SSL_CERT_FILE" in refused.stderr
    assert _folder_sizes(dovecot)["INBOX"] == 2

    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))
    result = invoke("--config", str(config.path), "bounces", clock=SteppedClock(NOW))
    assert result.exit_code == 0, result.stderr
    assert "Read 2 messages: 1 hard, 1 auto-reply" in result.output
    assert _status(config, "reader1@example.net") == "bounced"
    assert _status(config, "reader2@example.net") == "active"
    assert _folder_sizes(dovecot) == {"INBOX": 0, "processed": 2}
    assert "Read 0 messages" in invoke("--config", str(config.path), "bounces", clock=SteppedClock(NOW)).output


def test_imap_with_a_wrong_password_says_so(tmp_path: Path, dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))
    monkeypatch.setenv("TEST_BOUNCES_PASSWORD", "wrong")
    config = sent_site(tmp_path / "site", extra=_server_table("imap", dovecot.imaps))
    result = invoke("--config", str(config.path), "bounces", clock=SteppedClock(NOW))
    assert result.exit_code == 2
    assert f"IMAP 127.0.0.1:{dovecot.imaps}:" in result.stderr and "Traceback" not in result.stderr


def test_pop3_over_tls_reads_and_deletes(tmp_path: Path, dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))
    config = sent_site(tmp_path / "site", extra=_server_table("pop3", dovecot.pop3s))
    _append(dovecot, dsn(_verp(config, "reader0@example.net"), "reader0@example.net", status="4.2.2"))
    _append(dovecot, dsn(_verp(config, "reader2@example.net"), "reader2@example.net"))
    result = invoke("--config", str(config.path), "bounces", clock=SteppedClock(NOW))
    assert result.exit_code == 0, result.stderr
    assert "Read 2 messages: 1 hard, 1 soft" in result.output
    assert (_status(config, "reader0@example.net"), _status(config, "reader2@example.net")) == ("active", "bounced")
    assert _folder_sizes(dovecot)["INBOX"] == 0


@pytest.mark.parametrize("kind", ["imap", "pop3"])
def test_starttls_is_used_and_checked_too(tmp_path: Path, dovecot, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))
    port = dovecot.imap if kind == "imap" else dovecot.pop3
    config = sent_site(tmp_path / "site", extra=_server_table(kind, port, 'security = "starttls"\n'))
    _append(dovecot, dsn(_verp(config, "reader1@example.net"), "reader1@example.net"))
    result = invoke("--config", str(config.path), "bounces", clock=SteppedClock(NOW))
    assert result.exit_code == 0, result.stderr
    assert "Read 1 message: 1 hard" in result.output
    assert _status(config, "reader1@example.net") == "bounced"
    # The plain port refuses any login before STARTTLS (ssl = required), and Dovecot logs each login's TLS.
    logins = [line for line in dovecot.log().splitlines() if f"{kind}-login: Info: Login: user=<bounces>" in line]
    assert logins and all("TLS" in line for line in logins)
