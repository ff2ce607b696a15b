"""Where bounce mail is read from: a Maildir, an mbox file, an IMAP folder or
a POP3 mailbox. Each gives its messages one at a time and moves each one
out of the way once it is dealt with, so the next run reads only new mail.

- Maildir: ``new/`` and ``cur/``; a message read goes to the Maildir++
  folder ``.<processed>/cur/`` beside them (a rename: nothing is copied).
- mbox: read under the mailbox's locks (dot-lock and fcntl, as delivery
  agents take them); the messages read are appended to ``<processed>.mbox``
  beside it, then taken out of it.
- IMAP (imapclient): the folder's messages; each one read is moved to the
  folder ``<processed>`` (created when missing), with MOVE where the server
  has it, else COPY, delete and expunge.
- POP3 (poplib): each message read is deleted when the session ends
  (POP3 has no folders).

IMAP and POP3 use TLS (implicit, or STARTTLS) with the certificate checked
against the system's trust store (``SSL_CERT_FILE`` names another) unless
``verify_certificates`` is false. A message larger than ``max_bytes`` is
not read at all; it is moved away all the same, and reported.

    with open_mailbox(Maildir(path, "processed")) as box:
        for item in box.messages(max_bytes):
            ...            # item.data is None when the message is too large
            box.done(item)
"""

from __future__ import annotations

import logging
import mailbox
import os
import poplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from publisher.config import MailboxServerSettings
from publisher.errors import PublisherError

log = logging.getLogger("publisher.bounces.mailboxes")


class MailboxError(PublisherError):
    """A bounce mailbox cannot be read (missing, refused, unreachable)."""


@dataclass(frozen=True)
class Item:
    """One message: ``key`` is the mailbox's own name for it; ``data`` None when over the size limit."""

    key: Any
    data: bytes | None
    size: int


class Mailbox(Protocol):
    name: str

    def messages(self, max_bytes: int) -> Iterator[Item]: ...

    def done(self, item: Item) -> None: ...

    def close(self) -> None: ...


def _read_capped(path: Path, max_bytes: int) -> tuple[bytes | None, int]:
    size = path.stat().st_size
    if size > max_bytes:
        return None, size
    with path.open("rb") as handle:
        return handle.read(max_bytes + 1), size


class Maildir:
    """A Maildir folder; read messages go to its ``.<processed>`` folder."""

    def __init__(self, path: Path, processed: str):
        self.path = path
        self.name = f"maildir {path}"
        self.target = path / f".{processed}"
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise MailboxError(f"{path}: not a Maildir (no new/ and cur/ folders)")

    def messages(self, max_bytes: int) -> Iterator[Item]:
        for sub in ("new", "cur"):
            for entry in sorted(os.scandir(self.path / sub), key=lambda e: e.name):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    data, size = _read_capped(Path(entry.path), max_bytes)
                except FileNotFoundError:  # another reader took it meanwhile
                    continue
                yield Item(Path(entry.path), data, size)

    def done(self, item: Item) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.target / sub).mkdir(parents=True, exist_ok=True)
        source: Path = item.key
        name = source.name if ":2," in source.name else source.name + ":2,S"
        try:
            os.rename(source, self.target / "cur" / name)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        pass


class Mbox:
    """An mbox file, read under its locks; read messages go to ``<processed>.mbox`` beside it."""

    def __init__(self, path: Path, processed: str):
        if not path.is_file():
            raise MailboxError(f"{path}: no such mbox file")
        self.path = path
        self.name = f"mbox {path}"
        self.box = mailbox.mbox(path, create=False)
        self.archive = mailbox.mbox(path.parent / f"{processed}.mbox", create=True)
        self.read: list[str] = []
        try:
            self.box.lock()
        except mailbox.ExternalClashError as exc:
            raise MailboxError(f"{path}: locked by another program ({exc})") from exc

    def messages(self, max_bytes: int) -> Iterator[Item]:
        for key in list(self.box.keys()):
            data = self.box.get_bytes(key)
            yield Item(key, data if len(data) <= max_bytes else None, len(data))

    def done(self, item: Item) -> None:
        self.read.append(item.key)

    def close(self) -> None:
        """Append what was read to the archive, then take it out of the mbox."""
        try:
            if self.read:
                self.archive.lock()
                try:
                    for key in self.read:
                        self.archive.add(self.box.get_bytes(key))
                    self.archive.flush()
                finally:
                    self.archive.unlock()
                for key in self.read:
                    self.box.discard(key)
                self.box.flush()
        finally:
            self.box.unlock()
            self.box.close()
            self.archive.close()


def tls_context(settings: MailboxServerSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not settings.verify_certificates:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _server_error(what: str, settings: MailboxServerSettings, exc: BaseException) -> MailboxError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (
            f"the server's certificate is not trusted: {exc.verify_message or exc} "
            "(set SSL_CERT_FILE to its CA, or verify_certificates = false for a server you trust)"
        )
    else:
        reason = str(exc) or type(exc).__name__
    return MailboxError(f"{what} {settings.host}:{settings.port}: {reason}")


class Imap:
    """An IMAP folder (imapclient); read messages are moved to the folder ``processed``."""

    def __init__(self, settings: MailboxServerSettings, processed: str):
        from imapclient import IMAPClient
        from imapclient.exceptions import IMAPClientError

        self.settings = settings
        self.processed = processed
        self.name = f"imap {settings.user}@{settings.host}/{settings.folder}"
        port = settings.port or (993 if settings.security == "tls" else 143)
        self.settings = settings = _with_port(settings, port)
        context = tls_context(settings)
        try:
            self.client = IMAPClient(
                settings.host, port=port, ssl=settings.security == "tls", ssl_context=context, timeout=settings.timeout
            )
            if settings.security == "starttls":
                self.client.starttls(context)
            self.client.login(settings.user, settings.password or "")
            self.client.select_folder(settings.folder)
            if not self.client.folder_exists(processed):
                self.client.create_folder(processed)
        except (IMAPClientError, OSError) as exc:
            raise _server_error("IMAP", settings, exc) from exc
        self._error = IMAPClientError

    def messages(self, max_bytes: int) -> Iterator[Item]:
        try:
            uids = self.client.search(["NOT", "DELETED"])
            sizes = self.client.fetch(uids, ["RFC822.SIZE"]) if uids else {}
            for uid in uids:
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                if size > max_bytes:
                    yield Item(uid, None, size)
                    continue
                fetched = self.client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
                data = fetched.get(b"BODY[]")
                if data is not None:
                    yield Item(uid, bytes(data), len(data))
        except (self._error, OSError) as exc:
            raise _server_error("IMAP", self.settings, exc) from exc

    def done(self, item: Item) -> None:
        try:
            if self.client.has_capability("MOVE"):
                self.client.move([item.key], self.processed)
            else:
                self.client.copy([item.key], self.processed)
                self.client.delete_messages([item.key])
                self.client.expunge()
        except (self._error, OSError) as exc:
            raise _server_error("IMAP", self.settings, exc) from exc

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # the session is over either way
            log.debug("IMAP logout failed", exc_info=True)


class Pop3:
    """A POP3 mailbox (poplib); read messages are deleted as the session ends."""

    def __init__(self, settings: MailboxServerSettings, processed: str):
        port = settings.port or (995 if settings.security == "tls" else 110)
        self.settings = settings = _with_port(settings, port)
        self.name = f"pop3 {settings.user}@{settings.host}"
        context = tls_context(settings)
        try:
            if settings.security == "tls":
                self.client: poplib.POP3 = poplib.POP3_SSL(settings.host, port, context=context, timeout=settings.timeout)
            else:
                self.client = poplib.POP3(settings.host, port, timeout=settings.timeout)
                self.client.stls(context)
            self.client.user(settings.user)
            self.client.pass_(settings.password or "")
        except (poplib.error_proto, OSError) as exc:
            raise _server_error("POP3", settings, exc) from exc

    def messages(self, max_bytes: int) -> Iterator[Item]:
        try:
            _, listing, _ = self.client.list()
            for line in listing:
                number, size = (int(x) for x in line.split()[:2])
                if size > max_bytes:
                    yield Item(number, None, size)
                    continue
                _, lines, _ = self.client.retr(number)
                data = b"\r\n".join(lines) + b"\r\n"
                yield Item(number, data, len(data))
        except (poplib.error_proto, OSError) as exc:
            raise _server_error("POP3", self.settings, exc) from exc

    def done(self, item: Item) -> None:
        try:
            self.client.dele(item.key)
        except (poplib.error_proto, OSError) as exc:
            raise _server_error("POP3", self.settings, exc) from exc

    def close(self) -> None:
        try:
            self.client.quit()  # the deletions take effect here
        except (poplib.error_proto, OSError):
            log.debug("POP3 quit failed", exc_info=True)


def _with_port(settings: MailboxServerSettings, port: int) -> MailboxServerSettings:
    from dataclasses import replace

    return replace(settings, port=port)
