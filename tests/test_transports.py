"""The transports: the outbox folder on disk, and SMTP against a real server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import os
import re
import smtplib
import socket
import subprocess
import sys
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.errors import DeliveryError, TransportError
from publisher.mail.mime import SmtpData
from publisher.mail.transports import Connection, OutboxTransport, SmtpTransport, Transport, _bare_address, dot_stuffed

from .helpers.smtp_server import SmtpServer

REPO = Path(__file__).resolve().parent.parent
SENDER = "news@example.org"
READER = "reader@example.net"


def make_message(n: int, to: str = READER) -> bytes:
    """A digest-like message whose body has what SMTP must carry unchanged:
    lines starting with a dot, a lone dot, long quoted-printable lines, non-ASCII."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"News <{SENDER}>"
    msg["To"] = to
    msg["Subject"] = f"Digest {n}: Søren’s notes"
    msg["Message-ID"] = f"<{n}.digest@example.org>"
    text = f"Message {n}\n.\n.leading dot\n..two dots\n" + "long line " * 40 + "\nSøren, 日本語\n"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(f"<p>Message {n}</p>\n<p>.{'x' * 300}</p>\n", subtype="html", cte="quoted-printable")
    data = msg.as_bytes()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    return data


def same_message(received: bytes, sent: bytes) -> None:
    assert received == sent  # the server undoes the dot-stuffing; the bytes are ours
    got = email.message_from_bytes(received, policy=email.policy.default)
    want = email.message_from_bytes(sent, policy=email.policy.default)
    assert got["Subject"] == want["Subject"]
    assert [p.get_content() for p in got.walk() if not p.is_multipart()] == [
        p.get_content() for p in want.walk() if not p.is_multipart()
    ]


# --- outbox ------------------------------------------------------------------

MAILDIR_NAME = re.compile(r"^\d+\.M\d+P\d+Q\d+\.[^/:]+\.eml$")


def test_outbox_writes_each_message_whole_into_new(tmp_path: Path):
    outbox = tmp_path / "outbox"
    transport = OutboxTransport(outbox)
    connection = transport.connect()
    sent = [make_message(n) for n in range(3)]
    for data in sent:
        connection.send(SENDER, READER, data)
    connection.close()

    files = sorted((outbox / "new").iterdir())
    assert len(files) == 3
    assert all(MAILDIR_NAME.match(f.name) for f in files)
    assert sorted(f.read_bytes() for f in files) == sorted(sent)  # as given: CRLF kept, nothing added
    for f in files:
        parsed = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        assert parsed["To"] == READER and parsed["Subject"].startswith("Digest ")
        assert parsed["Return-Path"] is None
    assert list((outbox / "tmp").iterdir()) == []
    assert (outbox / "cur").is_dir()


@pytest.mark.slow
def test_outbox_writers_on_four_threads_make_distinct_files(tmp_path: Path):
    transport = OutboxTransport(tmp_path / "outbox")
    sent = [make_message(n) for n in range(200)]
    errors: list[BaseException] = []

    def writer(share: list[bytes]) -> None:
        connection = transport.connect()
        try:
            for data in share:
                connection.send(SENDER, READER, data)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(sent[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert len({f.name for f in files}) == 200
    assert sorted(f.read_bytes() for f in files) == sorted(sent)
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []


def test_outbox_writers_in_two_processes_make_distinct_files(tmp_path: Path):
    outbox = tmp_path / "outbox"
    code = (
        "import sys; from pathlib import Path; from publisher.mail.transports import OutboxTransport\n"
        "c = OutboxTransport(Path(sys.argv[1])).connect()\n"
        "for n in range(50): c.send('a@example.org', 'b@example.net', f'Subject: {sys.argv[2]} {n}\\r\\n\\r\\nx\\r\\n'.encode())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(outbox), tag], env=env) for tag in ("one", "two")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    files = list((outbox / "new").iterdir())
    assert len(files) == 100
    assert len({f.read_bytes() for f in files}) == 100


def test_outbox_that_cannot_be_created_is_a_transport_error(tmp_path: Path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox's parent should be")
    with pytest.raises(TransportError, match="not-a-folder"):
        OutboxTransport(blocker / "outbox").connect()


def test_outbox_that_becomes_unwritable_is_a_transport_error(tmp_path: Path):
    outbox = tmp_path / "outbox"
    connection = OutboxTransport(outbox).connect()
    (outbox / "tmp").rmdir()
    (outbox / "tmp").write_text("no longer a folder")
    with pytest.raises(TransportError, match="cannot write"):
        connection.send(SENDER, READER, make_message(1))
    assert list((outbox / "new").iterdir()) == []


def test_both_transports_and_their_connections_are_what_the_protocols_say(tmp_path: Path):
    outbox = OutboxTransport(tmp_path / "outbox")
    assert isinstance(outbox, Transport) and isinstance(outbox.connect(), Connection)
    with SmtpServer() as server:
        smtp = SmtpTransport(server.settings())
        assert isinstance(smtp, Transport)
        connection = smtp.connect()
        try:
            assert isinstance(connection, Connection)
        finally:
            connection.close()
    assert (outbox.name, smtp.name) == ("outbox", "smtp")


# --- SMTP: delivery ------------------------------------------------------------


@pytest.mark.slow
def test_smtp_delivers_200_messages_over_one_session_intact():
    with SmtpServer() as server:
        transport = SmtpTransport(server.settings(messages_per_connection=0))
        assert transport.name == "smtp" and transport.connections == 4
        connection = transport.connect()
        sent = [make_message(n, to=f"reader{n}@example.net") for n in range(200)]
        for n, data in enumerate(sent):
            connection.send(SENDER, f"reader{n}@example.net", data)
        connection.close()

        received = server.messages
        assert server.connections == 1
        assert len(received) == 200
        for n, (mail_from, rcpt_tos, data) in enumerate(received):
            assert mail_from == SENDER
            assert rcpt_tos == (f"reader{n}@example.net",)
            same_message(data, sent[n])
        assert server.commands["RSET"] == 0  # nothing failed, nothing to reset


@pytest.mark.parametrize("offered", [True, False])
def test_smtp_pipelines_the_envelope_when_the_server_offers_it(offered: bool):
    with SmtpServer(pipelining=offered, reject={"gone@example.net"}) as server:
        connection = SmtpTransport(server.settings(messages_per_connection=0)).connect()
        sent = [make_message(n, to=f"reader{n}@example.net") for n in range(20)]
        for n, data in enumerate(sent[:10]):
            connection.send(SENDER, f"reader{n}@example.net", data)
        with pytest.raises(DeliveryError) as refused:
            connection.send(SENDER, "gone@example.net", make_message(99))
        for n, data in enumerate(sent[10:], start=10):
            connection.send(SENDER, f"reader{n}@example.net", data)
        connection.close()
        assert refused.value.permanent and refused.value.code == 550
        assert [m.rcpt_tos for m in server.messages] == [(f"reader{n}@example.net",) for n in range(20)]
        for received, data in zip(server.messages, sent):
            same_message(received.data, data)
        assert server.connections == 1 and server.commands["RSET"] == 1
        assert server.commands["MAIL pipelined"] == (21 if offered else 0)


def test_smtp_server_taking_data_after_a_refused_recipient_gets_no_message():
    """RFC 2920 says a server refuses DATA when no RCPT succeeded; one that
    says 354 anyway must get nothing, or it would send an empty message."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    after_354 = bytearray()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 sloppy.test ESMTP\r\n")
            assert lines.readline().upper().startswith(b"EHLO")
            conn.sendall(b"250-sloppy.test\r\n250 PIPELINING\r\n")
            assert lines.readline().startswith(b"MAIL FROM:")
            assert lines.readline().startswith(b"RCPT TO:")
            assert lines.readline() == b"DATA\r\n"
            conn.sendall(b"250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n")
            conn.settimeout(5)
            while chunk := lines.read1(65536):
                after_354.extend(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        connection = SmtpTransport(SmtpServer().settings(port=port, messages_per_connection=0)).connect()
        with pytest.raises(DeliveryError) as refused:
            connection.send(SENDER, READER, make_message(1))
        connection.close()
        thread.join(timeout=10)
    finally:
        listener.close()
    assert refused.value.permanent and refused.value.code == 550
    assert not thread.is_alive()
    assert bytes(after_354) == b""  # not the message, not even a QUIT the server would take for it


@pytest.mark.slow
def test_smtp_sessions_on_four_threads_deliver_everything_once():
    with SmtpServer() as server:
        transport = SmtpTransport(server.settings(messages_per_connection=0))
        addresses = [f"r{n}@example.net" for n in range(200)]
        errors: list[BaseException] = []

        def worker(share: list[str]) -> None:
            connection = transport.connect()
            try:
                for address in share:
                    connection.send(SENDER, address, make_message(0, to=address))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(addresses[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert server.connections == 4
        assert server.delivered() == {a: 1 for a in addresses}


def test_smtp_non_ascii_recipient_goes_with_smtputf8():
    with SmtpServer() as server:
        connection = SmtpTransport(server.settings()).connect()
        connection.send(SENDER, "søren@example.net", make_message(1, to="søren@example.net"))
        connection.close()
        assert server.messages[0].rcpt_tos == ("søren@example.net",)


# --- SMTP: reconnecting ----------------------------------------------------------


def test_smtp_reconnects_after_messages_per_connection():
    with SmtpServer() as server:
        connection = SmtpTransport(server.settings(messages_per_connection=3)).connect()
        for n in range(10):
            connection.send(SENDER, READER, make_message(n))
        connection.close()
        assert len(server.messages) == 10
        assert server.connections == 4  # 3 + 3 + 3 + 1
        assert server.commands["QUIT"] == 4  # each session ended politely


def test_smtp_reconnects_when_the_server_limits_messages_per_connection():
    with SmtpServer(max_messages_per_connection=2) as server:
        connection = SmtpTransport(server.settings(messages_per_connection=0)).connect()
        for n in range(5):
            connection.send(SENDER, READER, make_message(n))  # the 421 at MAIL is never seen
        connection.close()
        assert len(server.messages) == 5
        assert server.connections == 3


def test_smtp_reconnects_after_the_server_drops_an_idle_connection():
    with SmtpServer() as server:
        connection = SmtpTransport(server.settings()).connect()
        connection.send(SENDER, READER, make_message(1))
        server.drop_connections()
        assert server.open_connections == 0
        connection.send(SENDER, READER, make_message(2))
        connection.close()
        assert [email.message_from_bytes(m.data)["Message-ID"] for m in server.messages] == [
            "<1.digest@example.org>",
            "<2.digest@example.org>",
        ]
        assert server.connections == 2


# --- SMTP: what failures mean ------------------------------------------------------


def test_smtp_451_is_transient_with_its_code_and_the_session_goes_on():
    with SmtpServer(tempfail={"busy@example.net"}) as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, "busy@example.net", make_message(1))
        assert caught.value.permanent is False
        assert caught.value.code == 451
        assert "451" in str(caught.value) and "busy@example.net" in str(caught.value)
        connection.send(SENDER, READER, make_message(2))
        connection.close()
        assert server.delivered() == {READER: 1}
        assert server.commands["RSET"] == 1  # the failed transaction was reset
        assert server.connections == 1


def test_smtp_550_is_permanent_with_its_code():
    with SmtpServer(reject={"gone@example.net"}) as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, "gone@example.net", make_message(1))
        assert caught.value.permanent is True
        assert caught.value.code == 550
        connection.send(SENDER, READER, make_message(2))
        connection.close()
        assert server.delivered() == {READER: 1}


@pytest.mark.parametrize(
    ("reply", "permanent", "code"),
    [
        ("553 5.1.3 bad recipient address syntax", True, 553),
        ("551 5.1.6 user has moved", True, 551),
        ("452 4.2.2 mailbox full", False, 452),
    ],
)
def test_smtp_rcpt_replies_are_classified_by_their_code(reply: str, permanent: bool, code: int):
    with SmtpServer(reject={READER: reply}) as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, READER, make_message(1))
        connection.close()
        assert (caught.value.permanent, caught.value.code) == (permanent, code)


@pytest.mark.parametrize(
    ("reply", "permanent", "code"),
    [
        ("554 5.7.1 message looks like spam", True, 554),
        ("452 4.3.1 insufficient system storage", False, 452),
        ("421 4.3.2 shutting down", False, 421),
    ],
)
def test_smtp_data_replies_are_classified_and_the_next_message_goes(reply: str, permanent: bool, code: int):
    with SmtpServer(data_reply=reply) as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, READER, make_message(1))
        assert (caught.value.permanent, caught.value.code) == (permanent, code)
        server.faults.data_reply = None
        connection.send(SENDER, READER, make_message(2))
        connection.close()
        assert len(server.messages) == 1
        assert server.connections == (2 if code == 421 else 1)  # 421 ends the session


def test_smtp_connection_dropped_mid_data_is_transient_and_the_next_send_reconnects():
    with SmtpServer(drop_every=2) as server:
        connection = SmtpTransport(server.settings()).connect()
        connection.send(SENDER, READER, make_message(1))
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, READER, make_message(2))
        assert caught.value.permanent is False
        assert caught.value.code is None
        assert "may or may not have been delivered" in str(caught.value)  # the data had gone
        connection.send(SENDER, READER, make_message(3))
        connection.close()
        assert server.drops == 1
        assert len(server.messages) == 2
        assert server.connections == 2


def test_smtp_server_that_does_not_answer_data_in_time_is_transient():
    with SmtpServer(slow=5) as server:
        connection = SmtpTransport(server.settings(timeout=0.5)).connect()
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, READER, make_message(1))
        assert caught.value.permanent is False
        assert "no answer in time" in str(caught.value)
        server.faults.slow = 0
        connection.send(SENDER, READER, make_message(2))
        connection.close()
        assert server.delivered() == {READER: 1}


def test_smtp_server_that_never_answers_fails_within_the_timeout():
    with SmtpServer(hang=True) as server:
        transport = SmtpTransport(server.settings(timeout=0.5))
        with pytest.raises((TransportError, DeliveryError)):
            transport.connect().send(SENDER, READER, make_message(1))
        assert server.connections == 1


def test_smtp_closed_port_is_a_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SmtpServer() as server:
        settings = server.settings(port=port)
    with pytest.raises(TransportError, match=f"127.0.0.1:{port}: cannot connect"):
        SmtpTransport(settings).connect()


def test_smtp_recipient_that_cannot_be_a_command_is_permanent_and_the_session_goes_on():
    with SmtpServer() as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(DeliveryError) as caught:
            connection.send(SENDER, "x@example.net\r\nRCPT TO:<y@example.net>", make_message(1))
        assert caught.value.permanent is True and caught.value.code is None
        connection.send(SENDER, READER, make_message(2))
        connection.close()
        assert server.delivered() == {READER: 1}


def test_smtp_sender_the_server_refuses_stops_the_send():
    with SmtpServer() as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(TransportError, match="MAIL FROM.*553"):
            connection.send("news@@example.org", READER, make_message(1))
        connection.close()


# --- SMTP: login and TLS -------------------------------------------------------------


def test_smtp_login_with_the_right_password_delivers():
    with SmtpServer(auth=("news", "s3cret")) as server:
        connection = SmtpTransport(server.settings()).connect()
        connection.send(SENDER, READER, make_message(1))
        connection.close()
        assert server.commands["AUTH"] == 1
        assert len(server.messages) == 1


def test_smtp_login_refused_is_a_transport_error():
    with SmtpServer(auth=("news", "s3cret")) as server:
        transport = SmtpTransport(server.settings(password="wrong"))
        with pytest.raises(TransportError, match="login as 'news' refused: 535"):
            transport.connect()
        assert server.messages == []


def test_smtp_server_wanting_a_login_we_do_not_have_is_a_transport_error():
    with SmtpServer(auth=("news", "s3cret")) as server:
        connection = SmtpTransport(server.settings(username=None, password=None)).connect()
        with pytest.raises(TransportError, match="530"):
            connection.send(SENDER, READER, make_message(1))
        connection.close()


def test_smtp_username_without_password_names_the_variable_to_set():
    with SmtpServer() as server:
        transport = SmtpTransport(server.settings(username="news", password=None, password_env="SMTP_PW"))
        with pytest.raises(TransportError, match=r"set the environment variable SMTP_PW"):
            transport.connect()
        assert server.connections == 0


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_tls_with_verification_off_delivers(security: str):
    with SmtpServer(tls=security, auth=("news", "s3cret"), require_starttls=True) as server:
        connection = SmtpTransport(server.settings(verify_certificates=False)).connect()
        connection.send(SENDER, READER, make_message(1))
        connection.close()
        assert len(server.messages) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_smtp_tls_verifies_a_trusted_certificate_and_host(security: str, host: str, monkeypatch):
    with SmtpServer(tls=security) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.certificate))
        connection = SmtpTransport(server.settings(host=host, verify_certificates=True)).connect()
        connection.send(SENDER, READER, make_message(1))
        connection.close()
        assert len(server.messages) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_untrusted_certificate_is_a_transport_error(security: str):
    with SmtpServer(tls=security) as server:
        transport = SmtpTransport(server.settings(verify_certificates=True))
        with pytest.raises(TransportError, match="certificate is not trusted"):
            transport.connect()
        assert server.messages == []


def test_smtp_starttls_to_a_server_without_it_is_a_transport_error():
    with SmtpServer() as server:
        with pytest.raises(TransportError, match="does not offer STARTTLS"):
            SmtpTransport(server.settings(security="starttls")).connect()


def test_smtp_tls_to_a_plain_port_is_a_transport_error():
    with SmtpServer() as server:
        with pytest.raises(TransportError, match="TLS handshake failed"):
            SmtpTransport(server.settings(security="tls", verify_certificates=False)).connect()


def test_smtp_starttls_to_an_implicit_tls_port_is_a_transport_error():
    with SmtpServer(tls="tls") as server:
        with pytest.raises(TransportError, match="no answer within 0.5 s"):
            SmtpTransport(server.settings(security="starttls", timeout=0.5)).connect()


# --- the test server's own promises (the send tests rely on them) ----------------------


def send_with_retries(server: SmtpServer, addresses: list[str], tries: int = 20) -> None:
    """Send to each address until accepted, the way the orchestrator retries."""
    connection = SmtpTransport(server.settings()).connect()
    try:
        for address in addresses:
            for _ in range(tries):
                try:
                    connection.send(SENDER, address, make_message(0, to=address))
                    break
                except DeliveryError as exc:
                    assert not exc.permanent
            else:
                raise AssertionError(f"{address} never accepted")
    finally:
        connection.close()


def test_server_tempfail_first_fails_each_recipient_n_times_then_accepts():
    with SmtpServer(tempfail_first=2) as server:
        send_with_retries(server, ["a@example.net", "b@example.net"])
        assert server.rcpt_attempts == {"a@example.net": 3, "b@example.net": 3}
        assert server.delivered() == {"a@example.net": 1, "b@example.net": 1}


def test_server_faults_by_rate_are_reproducible_and_retries_deliver_once():
    addresses = [f"r{n}@example.net" for n in range(40)]
    runs = []
    for _ in range(2):
        with SmtpServer(tempfail_rate=0.3, drop_rate=0.2, seed=7) as server:
            send_with_retries(server, addresses)
            assert server.delivered() == {a: 1 for a in addresses}
            runs.append((server.rcpt_attempts, server.drops))
    assert runs[0] == runs[1]
    attempts, drops = runs[0]
    assert sum(attempts.values()) > len(addresses) and drops > 0  # the faults did happen


def test_server_deliver_dropped_keeps_the_message_whose_reply_was_lost():
    with SmtpServer(drop_every=1, deliver_dropped=True) as server:
        connection = SmtpTransport(server.settings()).connect()
        with pytest.raises(DeliveryError):
            connection.send(SENDER, READER, make_message(1))
        connection.close()
        assert server.delivered() == {READER: 1}


# --- DATA ----------------------------------------------------------------------


@given(st.lists(st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"x", b"From ", b"\r\n.\r\n"]), max_size=30).map(b"".join))
def test_dot_stuffing_is_what_smtplib_sends(message: bytes) -> None:
    expected = smtplib._quote_periods(message)
    if expected[-2:] != b"\r\n":
        expected += b"\r\n"
    assert dot_stuffed(message) == expected + b".\r\n"


@pytest.mark.parametrize("offered", [True, False])
def test_smtp_sends_a_message_composed_dot_stuffed_as_it_is(offered: bool) -> None:
    plain = [make_message(n) for n in range(3)]
    with SmtpServer(pipelining=offered) as server:
        connection = SmtpTransport(server.settings()).connect()
        for data in plain:
            wire = dot_stuffed(data)
            assert isinstance(wire, SmtpData) and dot_stuffed(wire) is wire  # never stuffed twice
            connection.send(SENDER, READER, wire)
        connection.close()
        received = server.messages
    assert len(received) == 3
    for got, sent in zip(received, plain):
        same_message(got.data, sent)


@pytest.mark.parametrize(
    "address",
    ["a@b", "first.last+tag@sub.example.co.uk", "bounce+x=y@example.org", "a..b@c", ".a@b", "a.@b", "a@b..c",
     "x@[1.2.3.4]", 'a"b@c', "üñí@x.de", "a@b.", "a b@c", "a@b <c@d>", "<a@b>", "a\r\nb@c", "", "@", "a@"],
)
def test_an_address_is_bare_exactly_when_smtplib_quotes_it_as_it_is(address: str) -> None:
    assert _bare_address(address) == (smtplib.quoteaddr(address) == f"<{address}>")


def test_the_outbox_helper_lists_messages_in_delivery_order(tmp_path: Path):
    from .helpers.web_server import outbox_messages

    new = tmp_path / "outbox" / "new"
    new.mkdir(parents=True)
    # Within one second, by name the later microsecond count sorts first.
    for name, subject in (("1796310802.M83348P1Q0.vm.eml", "first"), ("1796310802.M170173P1Q1.vm.eml", "second")):
        (new / name).write_bytes(f"Subject: {subject}\r\n\r\nbody\r\n".encode())
    assert [m["Subject"] for m in outbox_messages(tmp_path / "outbox")] == ["first", "second"]
