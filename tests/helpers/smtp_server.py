"""A real SMTP server for tests, on 127.0.0.1, that fails on request.

``SmtpServer`` runs aiosmtpd in a thread on a free port and records what it
accepted. Faults are keyword arguments; every random decision is a hash of
(seed, recipient, attempt number), so a run is reproducible whatever order
the client's threads send in.

    with SmtpServer(reject={"gone@example.net"}, tempfail_first=1) as server:
        transport = SmtpTransport(server.settings(messages_per_connection=10))
        ...
        assert server.delivered()["reader@example.net"] == 1
        mail_from, rcpt_tos, data = server.messages[0]

Faults (all may be changed while the server runs, through ``server.faults``):

- ``tempfail``: addresses whose RCPT is always answered 451;
  ``tempfail_rate``: the share of RCPTs answered 451;
  ``tempfail_first``: each recipient's first N RCPTs are answered 451, then accepted.
- ``reject``: addresses answered 550 at RCPT, or a mapping address → reply line.
- ``data_reply``: the reply to every DATA instead of 250 (e.g. "554 5.7.1 spam").
- ``drop_rate`` / ``drop_every``: close the connection after the message
  data arrived, without a reply (the share of DATAs, or every Nth DATA);
  ``deliver_dropped``: record such a message anyway (the reply was lost,
  the mail was not).
- ``slow``: seconds to wait before answering DATA; ``slow_rate``: the share
  of DATAs that wait (all of them by default).
- ``shutdown_rate``: the share of MAILs answered 421 (service shutting down),
  the connection then closed, as a server going down for maintenance does.
- ``auth``: ``(username, password)``: AUTH PLAIN/LOGIN is offered (also
  without TLS) and required before MAIL (530); a wrong password gets 535.
- ``max_messages_per_connection``: once N messages were accepted on a
  connection, the next MAIL gets 421 and the connection is closed.
- ``hang``: accept connections and never say anything.
- ``pause_after``: once N messages were accepted (on all connections), every
  later MAIL is left unanswered until ``pause_after`` is set back to 0 (or the
  connection goes); ``server.paused`` is set when the first one
  arrives, so a test can meet a send at that point whatever the machine's
  speed, then stop the server or let the client time out.
- ``tls``: ``"starttls"`` or ``"tls"`` (implicit TLS) with a self-signed
  certificate for localhost and 127.0.0.1, made for this server
  (``server.certificate`` is the file to trust); ``require_starttls``
  answers 530 to anything but EHLO/STARTTLS/QUIT before TLS.
- ``pipelining``: offer PIPELINING (RFC 2920) in the EHLO reply (the
  default, as most servers do); False for a server that does not.

Addresses are compared case-insensitively. Only 127.0.0.1 is bound, on
``port`` (0: one the system picks); ``stop()`` then ``start()`` listens on
the same port again, so a client sees connections refused in between.
Leaving the ``with`` block closes every connection and stops the server.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ipaddress
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from publisher.config import SmtpSettings

HOST = "127.0.0.1"


class Received(NamedTuple):
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # as the server has it: dot-stuffing undone, CRLF line ends


@dataclass
class Faults:
    tempfail: set[str] = field(default_factory=set)
    tempfail_rate: float = 0.0
    tempfail_first: int = 0
    reject: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    drop_rate: float = 0.0
    drop_every: int = 0
    deliver_dropped: bool = False
    slow: float = 0.0
    slow_rate: float = 1.0
    shutdown_rate: float = 0.0
    auth: tuple[str, str] | None = None
    max_messages_per_connection: int = 0
    hang: bool = False
    pause_after: int = 0
    seed: int = 0


def _chance(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by the seed and the key."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SmtpServer:
    """A fault-injecting SMTP server on 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        *,
        tempfail: Iterable[str] = (),
        tempfail_rate: float = 0.0,
        tempfail_first: int = 0,
        reject: Iterable[str] | Mapping[str, str] = (),
        data_reply: str | None = None,
        drop_rate: float = 0.0,
        drop_every: int = 0,
        deliver_dropped: bool = False,
        slow: float = 0.0,
        slow_rate: float = 1.0,
        shutdown_rate: float = 0.0,
        auth: tuple[str, str] | None = None,
        max_messages_per_connection: int = 0,
        hang: bool = False,
        tls: str | None = None,
        require_starttls: bool = False,
        pipelining: bool = True,
        seed: int = 0,
        port: int = 0,
    ):
        if tls not in (None, "starttls", "tls"):
            raise ValueError(f"tls must be None, 'starttls' or 'tls', not {tls!r}")
        if isinstance(reject, Mapping):
            rejects = {a.lower(): reply for a, reply in reject.items()}
        else:
            rejects = {a.lower(): f"550 5.1.1 <{a}>: Recipient address rejected: User unknown" for a in reject}
        self.faults = Faults(
            tempfail={a.lower() for a in tempfail},
            tempfail_rate=tempfail_rate,
            tempfail_first=tempfail_first,
            reject=rejects,
            data_reply=data_reply,
            drop_rate=drop_rate,
            drop_every=drop_every,
            deliver_dropped=deliver_dropped,
            slow=slow,
            slow_rate=slow_rate,
            shutdown_rate=shutdown_rate,
            auth=auth,
            max_messages_per_connection=max_messages_per_connection,
            hang=False,  # set after start: the controller's own probe must get a greeting
            seed=seed,
        )
        self._hang = hang
        self.paused = threading.Event()  # a MAIL arrived after ``pause_after`` messages
        self.tls = tls
        self.require_starttls = require_starttls
        self.pipelining = pipelining  # offer PIPELINING (RFC 2920), as most servers do
        self.host = HOST
        self.port = port
        self.certificate: Path | None = None
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._commands: collections.Counter[str] = collections.Counter()
        self._rcpt_attempts: collections.Counter[str] = collections.Counter()
        self._data_by_rcpt: collections.Counter[str] = collections.Counter()
        self._connections = 0
        self._drops = 0
        self._mail_attempts: collections.Counter[str] = collections.Counter()
        self._shutdowns = 0
        self._open: set[_FaultySMTP] = set()  # touched only in the server's thread
        self._controller: _Controller | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # --- lifecycle ---

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        kwargs: dict[str, Any] = {"server_hostname": "smtp.test", "ident": "publisher test SMTP"}
        if self.faults.auth is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = False
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="smtp-server-")
            cert, key = make_certificate(Path(self._tmp.name))
            self.certificate = cert
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            if self.tls == "tls":
                kwargs["ssl_context"] = context
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = self.require_starttls
        self._controller = _Controller(self, _Handler(self), port=self.port, **kwargs)
        self._controller.start()
        self.port = self._controller.port
        with self._lock:  # forget the controller's start-up probe
            self._connections = 0
        self.faults.hang = self._hang

    def stop(self) -> None:
        if self._controller is not None:
            try:
                self.drop_connections()
            finally:
                self._controller.stop()
                self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- what happened ---

    @property
    def messages(self) -> list[Received]:
        """The accepted messages, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    @property
    def commands(self) -> collections.Counter[str]:
        """How often each of MAIL, RCPT, DATA, RSET, NOOP, QUIT, AUTH was received;
        "MAIL pipelined": the MAILs whose RCPT had arrived with them (RFC 2920)."""
        with self._lock:
            return collections.Counter(self._commands)

    @property
    def rcpt_attempts(self) -> collections.Counter[str]:
        """RCPT commands per (lower-cased) address, whatever the answer."""
        with self._lock:
            return collections.Counter(self._rcpt_attempts)

    @property
    def data_attempts(self) -> int:
        """Messages whose data arrived, whatever became of them."""
        with self._lock:
            return self._commands["DATA"]

    @property
    def connections(self) -> int:
        """Connections accepted since the server started."""
        with self._lock:
            return self._connections

    @property
    def drops(self) -> int:
        """Connections closed mid-DATA by ``drop_rate``/``drop_every``."""
        with self._lock:
            return self._drops

    @property
    def shutdowns(self) -> int:
        """MAILs answered 421 by ``shutdown_rate`` (their connection closed)."""
        with self._lock:
            return self._shutdowns

    @property
    def open_connections(self) -> int:
        return self._in_loop(self._count_open)

    def delivered(self) -> collections.Counter[str]:
        """Accepted messages per (lower-cased) recipient."""
        counts: collections.Counter[str] = collections.Counter()
        for received in self.messages:
            counts.update(r.lower() for r in received.rcpt_tos)
        return counts

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait for the server's side of things to catch up; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"SMTP test server: condition not met within {timeout} s")
            time.sleep(0.005)

    def settings(self, **overrides: Any) -> SmtpSettings:
        """``SmtpSettings`` that reach this server (security, login and trust to match)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.tls or "none",
            "username": self.faults.auth[0] if self.faults.auth else None,
            "password": self.faults.auth[1] if self.faults.auth else None,
            "password_env": "PUBLISHER_SMTP_PASSWORD",
            "connections": 4,
            "rate": 0.0,
            "timeout": 5.0,
            "verify_certificates": self.tls is None,
            "messages_per_connection": 100,
        }
        values.update(overrides)
        return SmtpSettings(**values)

    # --- faults the test triggers ---

    def drop_connections(self) -> None:
        """Close every open connection now, as a server restart or idle timeout would."""

        async def drop() -> None:
            doomed = list(self._open)
            for protocol in doomed:
                if protocol.transport is not None:
                    protocol.transport.close()
            deadline = time.monotonic() + 5
            while any(p in self._open for p in doomed) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)

        assert self._controller is not None, "the server is not running"
        asyncio.run_coroutine_threadsafe(drop(), self._controller.loop).result(timeout=10)

    # --- inside the server's thread ---

    def _in_loop(self, fn: Callable[[], Any]) -> Any:
        assert self._controller is not None, "the server is not running"

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._controller.loop).result(timeout=10)

    def _count_open(self) -> int:
        return len(self._open)

    def _opened(self, protocol: _FaultySMTP) -> None:
        self._open.add(protocol)
        with self._lock:
            self._connections += 1

    def _closed(self, protocol: _FaultySMTP) -> None:
        self._open.discard(protocol)

    def _count(self, command: str) -> None:
        with self._lock:
            self._commands[command] += 1

    def _authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        expected = self.faults.auth
        login = getattr(auth_data, "login", None)
        password = getattr(auth_data, "password", None)
        ok = expected is not None and (login, password) == (expected[0].encode(), expected[1].encode())
        return AuthResult(success=ok, handled=False)


class _Handler:
    """aiosmtpd hooks: each answers with a fault, or MISSING for the normal reply."""

    def __init__(self, owner: SmtpServer):
        self.owner = owner

    async def handle_MAIL(self, server: _FaultySMTP, session: Any, envelope: Any, address: str, options: list[str]) -> Any:
        owner, faults = self.owner, self.owner.faults
        owner._count("MAIL")
        waiting = getattr(getattr(server, "_reader", None), "_buffer", b"")
        if bytes(waiting[:8]).upper() == b"RCPT TO:":  # sent in the same write as the MAIL
            owner._count("MAIL pipelined")
        if faults.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if faults.pause_after:
            with owner._lock:
                reached = len(owner._messages) >= faults.pause_after
            if reached:
                owner.paused.set()
                while faults.pause_after:  # until resumed (pause_after = 0) or the connection goes
                    await asyncio.sleep(0.005)
        if faults.shutdown_rate:
            with owner._lock:
                owner._mail_attempts[address.lower()] += 1
                attempt = owner._mail_attempts[address.lower()]
            if _chance(faults.seed, "mail", address.lower(), attempt) < faults.shutdown_rate:
                with owner._lock:
                    owner._shutdowns += 1
                assert server.transport is not None
                server.loop.call_soon(server.transport.close)  # after the reply is written
                return "421 4.3.2 smtp.test Service shutting down, closing transmission channel"
        limit = faults.max_messages_per_connection
        if limit and server.accepted >= limit:
            assert server.transport is not None
            server.loop.call_soon(server.transport.close)  # after the reply is written
            return "421 4.7.0 smtp.test Too many messages on this connection, closing"
        return MISSING

    async def handle_RCPT(self, server: _FaultySMTP, session: Any, envelope: Any, address: str, options: list[str]) -> Any:
        owner, faults = self.owner, self.owner.faults
        key = address.lower()
        with owner._lock:
            owner._commands["RCPT"] += 1
            owner._rcpt_attempts[key] += 1
            attempt = owner._rcpt_attempts[key]
        if key in faults.reject:
            return faults.reject[key]
        if (
            key in faults.tempfail
            or attempt <= faults.tempfail_first
            or (faults.tempfail_rate and _chance(faults.seed, "rcpt", key, attempt) < faults.tempfail_rate)
        ):
            return f"451 4.3.0 <{address}>: Temporary failure, try again later"
        return MISSING

    async def handle_DATA(self, server: _FaultySMTP, session: Any, envelope: Any) -> Any:
        owner, faults = self.owner, self.owner.faults
        key = ",".join(sorted(r.lower() for r in envelope.rcpt_tos))
        with owner._lock:
            owner._commands["DATA"] += 1
            count = owner._commands["DATA"]
            owner._data_by_rcpt[key] += 1
            attempt = owner._data_by_rcpt[key]
        if faults.slow and (faults.slow_rate >= 1 or _chance(faults.seed, "slow", key, attempt) < faults.slow_rate):
            await asyncio.sleep(faults.slow)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content))
        drop = (faults.drop_every and count % faults.drop_every == 0) or (
            faults.drop_rate and _chance(faults.seed, "data", key, attempt) < faults.drop_rate
        )
        if drop:
            with owner._lock:
                owner._drops += 1
                if faults.deliver_dropped:
                    owner._messages.append(received)
            assert server.transport is not None
            server.transport.close()
            await server.loop.create_future()  # connection_lost() cancels this: no reply is sent
        if faults.data_reply:
            return faults.data_reply
        with owner._lock:
            owner._messages.append(received)
        server.accepted += 1
        return "250 2.0.0 OK: queued"

    async def handle_EHLO(self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.owner.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RSET(self, server: SMTP, session: Any, envelope: Any) -> Any:
        self.owner._count("RSET")
        return MISSING

    async def handle_NOOP(self, server: SMTP, session: Any, envelope: Any, arg: str) -> Any:
        self.owner._count("NOOP")
        return MISSING

    async def handle_QUIT(self, server: SMTP, session: Any, envelope: Any) -> Any:
        self.owner._count("QUIT")
        return MISSING

    async def handle_AUTH(self, server: SMTP, session: Any, envelope: Any, args: list[str]) -> Any:
        self.owner._count("AUTH")
        return MISSING


class _FaultySMTP(SMTP):
    """One connection: tells the owner it opened and closed, and can hang."""

    def __init__(self, handler: _Handler, owner: SmtpServer, **kwargs: Any):
        self.owner = owner
        self.accepted = 0  # messages accepted on this connection
        super().__init__(handler, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None  # STARTTLS calls this a second time
        super().connection_made(transport)
        if first:
            self.owner._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.owner._closed(self)

    async def _handle_client(self) -> None:
        if self.owner.faults.hang:
            await self.loop.create_future()  # until the connection goes
        await super()._handle_client()


class _Controller(Controller):
    """aiosmtpd's Controller on 127.0.0.1 and the port given (0: one the system picks)."""

    def __init__(self, owner: SmtpServer, handler: _Handler, *, port: int = 0, **kwargs: Any):
        super().__init__(handler, hostname=HOST, port=port, **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        return _FaultySMTP(self.handler, self.owner, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Bound to port 0; learn the real port before the start-up probe connects.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def make_certificate(folder: Path, hostname: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for ``hostname`` and 127.0.0.1: ``(cert.pem, key.pem)``.

    The certificate is its own CA, so trusting it (``SSL_CERT_FILE``) makes
    verification with host-name checking succeed.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
