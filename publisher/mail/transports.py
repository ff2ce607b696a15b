"""The transports: where finished message bytes go, an outbox folder or an SMTP relay.

A transport opens ``connections``; a connection sends one message at a time
to one envelope recipient and is reused for many. The send orchestrator owns
the pool, the rate limit and the retries; a transport only says what became
of each message: it returns (accepted), raises ``DeliveryError`` (this
message was not accepted; ``permanent`` and the SMTP ``code`` say whether to
retry) or raises ``TransportError`` (nothing can be sent this way now; stop
and leave the rest pending).

    transport = SmtpTransport(config.mail.smtp)        # or OutboxTransport(config.mail.outbox)
    connection = transport.connect()
    try:
        connection.send("news@example.org", "reader@example.net", data)
    finally:
        connection.close()

A connection is used by one thread at a time; open one per worker.

smtplib lives here and nowhere else. The transaction is hand-written for speed (RFC 2920
pipelining, dot-stuffing by ``bytes.replace``, or none at all for a message composed as
``mime.SmtpData``): ``smtplib.SMTP.sendmail`` takes 1.3-1.8x as
long a message on loopback, more across a network (``python -m bench handwritten``).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from publisher.config import SmtpSettings
from publisher.errors import DeliveryError, TransportError
from publisher.files import PRIVATE_FILE, fsync_folder, private_folder
from publisher.mail.mime import SmtpData, dot_stuffed
from publisher.text import mask_email

log = logging.getLogger("publisher.transports")

__all__ = ["Connection", "Transport", "OutboxTransport", "SmtpTransport"]


@runtime_checkable
class Connection(Protocol):
    """One open way to hand messages over: a session with an SMTP relay, or
    the outbox folder. Used by one thread at a time, for many messages."""

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Hand over ``message`` for the envelope ``sender`` and ``recipient``.

        Returns once it is accepted; raises ``DeliveryError`` when this
        message was not (``permanent`` and ``code`` say whether to retry), or
        ``TransportError`` when nothing can be sent this way now.
        """

    def close(self) -> None:
        """End the session; never raises."""


@runtime_checkable
class Transport(Protocol):
    """Where messages go: what ``deliver_issue`` and the opt-in mailer need of one."""

    #: Its kind as the config names it: ``"outbox"`` or ``"smtp"`` (the rate
    #: limit applies to ``"smtp"``).
    name: str
    #: How many connections may be open at once (the send's worker threads).
    connections: int

    def connect(self) -> Connection:
        """Open a connection; raises ``TransportError`` when the transport cannot be used."""


# --- the outbox ------------------------------------------------------------


class OutboxTransport:
    """A Maildir-style folder: each message becomes ``new/<unique>.eml``.

    The bytes are stored exactly as given (CRLF line ends kept, no
    Return-Path added). A message is written to ``tmp/``, fsynced and then
    linked into ``new/``, so a reader of ``new/`` never sees half a message;
    names follow the Maildir convention ``<sec>.M<usec>P<pid>Q<seq>.<host>``
    and are unique across threads and processes. ``tmp/``, ``new/`` and
    ``cur/`` are created on first use.
    """

    name = "outbox"

    def __init__(self, folder: Path, *, connections: int = 4):
        self.folder = Path(folder)
        # Several writers overlap their fsyncs; more gains nothing on one disk.
        self.connections = connections
        self._ready = False
        self._preparing = threading.Lock()  # the workers connect at once; the folders are made once

    def connect(self) -> OutboxConnection:
        with self._preparing:
            if not self._ready:
                self._prepare()
        return OutboxConnection(self.folder)

    def _prepare(self) -> None:
        try:
            # Each message holds its recipient's unsubscribe and confirm
            # links: the folders are the owner's alone (fixed, with a
            # warning, when they were not), the files 0600.
            for sub in ("", "tmp", "new", "cur"):
                private_folder(self.folder / sub)
            _private_messages(self.folder)
        except OSError as exc:
            raise TransportError(f"outbox {self.folder}: cannot create it: {exc.strerror or exc}") from exc
        if not os.access(self.folder / "tmp", os.W_OK) or not os.access(self.folder / "new", os.W_OK):
            raise TransportError(f"outbox {self.folder}: not writable (check its owner and permissions)")
        self._ready = True


def _private_messages(folder: Path) -> None:
    """Make the messages already in the outbox 0600 (older versions wrote them 0644)."""
    fixed = 0
    for sub in ("new", "cur", "tmp"):
        with os.scandir(folder / sub) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mode & 0o077:
                        os.chmod(entry.path, PRIVATE_FILE)
                        fixed += 1
                except FileNotFoundError:
                    continue  # delivered (tmp -> new) or read (new -> cur) while we looked
    if fixed:
        log.warning("outbox %s: %d messages were readable by others; now 0600", folder, fixed)


_sequence = itertools.count()
_sequence_lock = threading.Lock()


def _unique_name() -> str:
    """``<sec>.M<usec>P<pid>Q<seq>.<host>``, per https://cr.yp.to/proto/maildir.html."""
    with _sequence_lock:
        seq = next(_sequence)
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
    return f"{seconds}.M{micros}P{os.getpid()}Q{seq}.{host}"


class OutboxConnection:
    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        try:
            path = self._deliver(message)
        except OSError as exc:
            raise TransportError(f"outbox {self.folder}: cannot write a message: {exc.strerror or exc}") from exc
        log.debug("outbox: message to %s written to %s", mask_email(recipient), path)

    def _deliver(self, message: bytes) -> Path:
        while True:
            name = _unique_name() + ".eml"
            tmp = self.folder / "tmp" / name
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            except FileExistsError:
                continue  # a clash needs a clock step back and a recycled pid: just pick again
            try:
                try:
                    view = memoryview(message)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                new = self.folder / "new" / name
                # link() refuses to replace an existing file, rename() would not.
                try:
                    os.link(tmp, new)
                except FileExistsError:
                    os.unlink(tmp)
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                        raise
                    os.rename(tmp, new)  # a file system without hard links
                else:
                    os.unlink(tmp)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            # The link is only durable once the folder is: the caller records
            # "sent" as soon as this returns. The message is in new/ by now,
            # so a failing fsync is no reason to report it unsent.
            try:
                fsync_folder(new.parent)
            except OSError:
                pass
            return new

    def close(self) -> None:
        pass


# --- SMTP --------------------------------------------------------------------

# Replies that say the session is not allowed to send at all: authentication
# required (530, also "STARTTLS first"), temporary or permanent auth failure
# (454 is not here: it is also "TLS not available"), encryption required.
_SESSION_REFUSED = {530, 534, 535, 538}


class SmtpTransport:
    """An SMTP relay reached with smtplib; ``connections`` sessions at once.

    ``security`` is ``none``, ``starttls`` (upgrade after EHLO) or ``tls``
    (TLS from the first byte, port 465). Certificates and host names are
    verified against the system's trust store (``SSL_CERT_FILE`` names
    another) unless ``verify_certificates`` is false. The password is
    ``settings.password``, which the config reads from ``password_env``.
    """

    name = "smtp"
    #: ``send`` takes a message composed as ``mime.SmtpData`` as it is
    #: (``deliver_issue`` composes them so for this transport).
    takes_smtp_data = True

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.connections = settings.connections
        self.password_env = settings.password_env

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def connect(self) -> SmtpConnection:
        connection = SmtpConnection(self)
        connection.open()
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_certificates:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open_session(self) -> smtplib.SMTP:
        """One logged-in session, ready for MAIL; raises ``TransportError``."""
        s = self.settings
        if s.username and not s.password:
            raise TransportError(
                f"SMTP {self.server}: [mail.smtp] username is {s.username!r} but no password was given: "
                f"set the environment variable {self.password_env}"
            )
        session: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                session = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls_context())
            else:
                session = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            self._greet(session)
        except Exception as exc:
            _discard(session)
            error = self._failure(exc)
            if error is None or error is exc:
                raise
            raise error from exc
        log.debug("SMTP %s: session opened", self.server)
        return session

    def _greet(self, session: smtplib.SMTP) -> None:
        """EHLO, STARTTLS when asked for, and login: the session's opening, raising what smtplib raises."""
        s = self.settings
        session.ehlo_or_helo_if_needed()
        if s.security == "starttls":
            if not session.has_extn("starttls"):
                raise TransportError(
                    f"SMTP {self.server}: the server does not offer STARTTLS "
                    '(use security = "tls" for a TLS port such as 465, or "none" for a trusted local relay)'
                )
            session.starttls(context=self._tls_context())  # a refusal raises SMTPResponseException
            session.ehlo_or_helo_if_needed()  # what was said before TLS no longer counts
        if s.username:
            session.login(s.username, s.password or "")

    def _failure(self, exc: Exception) -> TransportError | None:
        """The one-line ``TransportError`` for a failure to open a session (None: a bug, let it rise)."""
        s = self.settings
        if isinstance(exc, TransportError):
            return exc
        if isinstance(exc, ssl.SSLCertVerificationError):
            return TransportError(
                f"SMTP {self.server}: the server's certificate is not trusted: {exc.verify_message or exc} "
                "(set SSL_CERT_FILE to its CA, or verify_certificates = false for a server you trust)"
            )
        if isinstance(exc, ssl.SSLError):
            hint = ' (is this a plain port? security = "tls" is for ports such as 465)' if s.security == "tls" else ""
            return TransportError(f"SMTP {self.server}: TLS handshake failed: {exc.reason or exc}{hint}")
        if isinstance(exc, smtplib.SMTPConnectError):
            return _refused(self.server, "the greeting", (exc.smtp_code, exc.smtp_error))
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return TransportError(
                f"SMTP {self.server}: login as {s.username!r} refused: {_reply_text(exc.smtp_code, exc.smtp_error)} "
                f"(check [mail.smtp] username and ${self.password_env})"
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            hint = ' (many servers offer AUTH only after STARTTLS: security = "starttls")' if s.security == "none" else ""
            return TransportError(f"SMTP {self.server}: the server does not offer login: {exc}{hint}")
        if isinstance(exc, smtplib.SMTPResponseException):
            return _refused(self.server, "the session", (exc.smtp_code, exc.smtp_error))
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if isinstance(exc.__context__, TimeoutError):
                hint = ' (port 465 speaks TLS first: security = "tls")' if s.port == 465 and s.security != "tls" else ""
                return TransportError(f"SMTP {self.server}: no answer within {s.timeout:g} s{hint}")
            return TransportError(f"SMTP {self.server}: the server closed the connection: {exc}")
        if isinstance(exc, smtplib.SMTPException):  # "No suitable authentication method found", …
            return TransportError(f"SMTP {self.server}: {exc}")
        if isinstance(exc, TimeoutError):
            return TransportError(f"SMTP {self.server}: no answer within {s.timeout:g} s")
        if isinstance(exc, OSError):  # refused, unreachable, unknown host
            return TransportError(f"SMTP {self.server}: cannot connect: {exc.strerror or exc}")
        return None


class _Stale(Exception):
    """The session died before this message was handed over: safe to resend."""


class SmtpConnection:
    """One SMTP session at a time, reused for many messages.

    The session is replaced without the caller noticing after
    ``messages_per_connection`` transactions, and when a reused session
    turns out to be dead at MAIL FROM (the server dropped it while idle,
    said 421, or stopped answering): nothing of the message had been sent,
    so it is sent again on a new session, once. A connection lost after
    that point is a transient ``DeliveryError``: the message may or may not
    have been delivered, the caller decides; the next ``send`` reconnects.
    """

    def __init__(self, transport: SmtpTransport):
        self.transport = transport
        self._session: smtplib.SMTP | None = None
        self._transactions = 0  # on the current session
        self._dirty = False  # a failed transaction left state behind: RSET first

    def open(self) -> None:
        self._session = self.transport.open_session()
        self._transactions = 0
        self._dirty = False

    def close(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.quit()
        except (smtplib.SMTPException, OSError):
            pass
        _discard(session)

    def _drop(self) -> None:
        session, self._session = self._session, None
        _discard(session)

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        limit = self.transport.settings.messages_per_connection
        if self._session is not None and limit and self._transactions >= limit:
            log.debug("SMTP %s: %d messages on this session, reconnecting", self.transport.server, limit)
            self.close()
        if self._session is None:
            self.open()
            self._transaction(sender, recipient, message)
            return
        try:
            self._transaction(sender, recipient, message)
        except _Stale as exc:
            log.debug("SMTP %s: the session was gone (%s), reconnecting", self.transport.server, exc)
            self.open()
            self._transaction(sender, recipient, message)

    def _transaction(self, sender: str, recipient: str, message: bytes) -> None:
        server = self.transport.server
        # smtplib quietly rewrites what it cannot quote ("a\r\nb <c@d>" goes to c@d): refuse instead.
        if not _bare_address(sender):
            raise TransportError(f"SMTP {server}: {sender!r} is not a bare address usable as the sender")
        if not recipient or not _bare_address(recipient):
            raise DeliveryError(f"{recipient!r} is not a bare address usable as a recipient", permanent=True)
        session = self._session
        assert session is not None
        fresh = self._transactions == 0
        self._transactions += 1
        stage = "MAIL FROM"
        try:
            if self._dirty:
                self._dirty = False
                code, text = session.rset()
                if code != 250:
                    raise smtplib.SMTPServerDisconnected(f"RSET answered {code}")
            options = _mail_options(session, sender, recipient, message)
            if session.has_extn("pipelining"):
                # RFC 2920: MAIL, RCPT and DATA in one write, then their
                # three replies: one round trip to the server instead of three.
                session.send(_envelope(sender, recipient, options))
                mail = session.getreply()
                if mail[0] == 421:  # the server closes: RCPT and DATA get no reply
                    self._check_mail(mail, sender, fresh)  # raises
                stage = "RCPT TO"
                rcpt = session.getreply()
                stage = "DATA"
                data = session.getreply()
                if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
                    # DATA taken without a valid envelope: leave before any byte of the message.
                    self._drop()
                stage = "MAIL FROM"
                self._check_mail(mail, sender, fresh)
                stage = "RCPT TO"
                if rcpt[0] not in (250, 251):
                    raise self._refused(stage, recipient, *rcpt)
                stage = "DATA"
                if data[0] != 354:
                    raise self._refused(stage, recipient, *data)
                session.send(dot_stuffed(message))
                code, text = session.getreply()
            else:
                self._check_mail(session.mail(sender, options), sender, fresh)
                stage = "RCPT TO"
                code, text = session.rcpt(recipient)
                if code not in (250, 251):
                    raise self._refused(stage, recipient, code, text)
                stage = "DATA"
                code, text = _data(session, message)
            if code != 250:
                raise self._refused(stage, recipient, code, text)
        except smtplib.SMTPNotSupportedError as exc:  # SMTPUTF8 needed but not offered; nothing was sent
            if not sender.isascii():
                raise TransportError(
                    f"SMTP {server}: sender {sender!r} needs SMTPUTF8, which the server does not offer"
                ) from exc
            raise DeliveryError(
                f"{recipient}: the address needs SMTPUTF8, which the server does not offer", permanent=True
            ) from exc
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
            # SMTPResponseException here is a garbled reply; OSError a timeout or reset.
            self._drop()
            if stage == "MAIL FROM" and not fresh:
                raise _Stale(str(exc) or type(exc).__name__) from exc
            reason = "no answer in time" if _timed_out(exc) else f"connection lost ({exc or type(exc).__name__})"
            outcome = "it may or may not have been delivered" if stage == "DATA" else "it was not sent"
            raise DeliveryError(f"{recipient}: {reason} during {stage}; {outcome}", permanent=False) from exc

    def _check_mail(self, reply: tuple[int, bytes], sender: str, fresh: bool) -> None:
        """Raise for a refused MAIL FROM: _Stale when a reused session is
        closing (421: resend on a new one), else what ``_refused`` says."""
        code, text = reply
        if code == 250:
            return
        if code == 421 and not fresh:
            self._drop()
            raise _Stale(_reply_text(code, text))
        raise self._refused("MAIL FROM", sender, code, text)

    def _refused(self, stage: str, address: str, code: int, text: bytes | str) -> Exception:
        """Turn a non-success reply into the error the caller acts on."""
        reply = _reply_text(code, text)
        server = self.transport.server
        if code == 421 or code < 0:  # the server is closing this session
            self._drop()
        else:
            self._dirty = True
        if code in _SESSION_REFUSED:
            return TransportError(f"SMTP {server}: {stage} refused: {reply} (the server wants login or TLS first)")
        if 500 <= code < 600 and stage == "MAIL FROM":
            # About the sender or the message, not the recipient: every message would fail alike.
            return TransportError(f"SMTP {server}: MAIL FROM:<{address}> refused: {reply}")
        permanent = 500 <= code < 600
        return DeliveryError(f"{stage}:<{address}> refused: {reply}", permanent=permanent, code=code if code > 0 else None)


def _data(session: smtplib.SMTP, message: bytes) -> tuple[int, bytes]:
    """``session.data(message)`` for bytes, with the dot-stuffing done by
    ``bytes.replace`` instead of smtplib's per-message regex (the same result:
    a "." that starts a line is doubled); a refused DATA is returned, not raised."""
    session.putcmd("data")
    code, text = session.getreply()
    if code != 354:
        return code, text
    session.send(dot_stuffed(message))
    return session.getreply()


def _envelope(sender: str, recipient: str, options: list[str]) -> bytes:
    """MAIL FROM, RCPT TO and DATA as one pipelined write, with the MAIL
    parameters ``smtplib`` would send (``options`` from ``_mail_options``)."""
    parameters = "".join(f" {option}" for option in options)
    text = f"MAIL FROM:<{sender}>{parameters}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n"
    return text.encode("utf-8" if "SMTPUTF8" in options else "ascii")


def _mail_options(session: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> list[str]:
    """The MAIL FROM parameters ``sendmail`` would use, plus SMTPUTF8 and 8BITMIME when needed."""
    options: list[str] = []
    if not session.does_esmtp:
        return options
    if session.has_extn("size"):
        # An ``SmtpData``'s own length, less the end of data: an estimate, as SIZE may be (RFC 1870).
        options.append(f"SIZE={len(message) - 3 if isinstance(message, SmtpData) else len(message)}")
    if not message.isascii() and session.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if not (sender.isascii() and recipient.isascii()):
        if not session.has_extn("smtputf8"):  # as smtplib's mail() would
            raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
        options.append("SMTPUTF8")
    return options


# A dot-atom address, which smtplib quotes as it is: most addresses, checked
# without the email package's parser (which costs more than the rest of a transaction).
_DOT_ATOM_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _bare_address(address: str) -> bool:
    """Would smtplib send ``address`` as it is, as ``<address>``?"""
    return _DOT_ATOM_ADDRESS.fullmatch(address) is not None or smtplib.quoteaddr(address) == f"<{address}>"


def _reply_text(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _refused(server: str, what: str, reply: tuple[int, bytes | str]) -> TransportError:
    return TransportError(f"SMTP {server}: {what} refused: {_reply_text(*reply)}")


def _timed_out(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__context__  # smtplib re-raises read errors as SMTPServerDisconnected
    return False


def _discard(session: smtplib.SMTP | None) -> None:
    if session is not None:
        try:
            session.close()
        except OSError:
            pass
