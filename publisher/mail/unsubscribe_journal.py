"""Unsubscribes that could not wait: a journal file beside the state store.

RFC 8058 one-click unsubscribes come from mail providers that do not retry:
an unsubscribe answered with an error is lost. When the state store is busy
(another process holds its write lock past ``[serve] store_wait``), the web
server appends the unsubscribe here (fsynced, 0600), answers 200, and
applies the journal when the lock frees (``UnsubscribeJournal.apply``,
tried by the server every second while the journal exists, and by
``publisher send`` before it picks an issue's audience and delivers).

    journal = UnsubscribeJournal(config.state.path)
    journal.record("reader@example.org", "daily", now=now)
    applied = journal.apply(store, now=now)       # raises if the store is still busy
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path

from publisher.files import PRIVATE_FILE, fsync_folder, private_folder
from publisher.mail.subscribers import remove_subscriber
from publisher.state import StateStore
from publisher.text import mask_email

log = logging.getLogger("publisher.unsubscribe")


class UnsubscribeJournal:
    """The journal of the state store at ``state_path`` (``<state>.unsubscribes``)."""

    def __init__(self, state_path: Path):
        self.path = state_path.with_name(state_path.name + ".unsubscribes")
        self._lock = threading.Lock()

    def record(self, email: str, list_name: str | None, *, now: datetime) -> None:
        """Append one unsubscribe, durably (raises ``OSError`` if it cannot be written)."""
        line = json.dumps({"email": email, "list": list_name, "at": now.isoformat()}) + "\n"
        with self._lock:
            private_folder(self.path.parent)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_folder(self.path.parent)
        log.warning("unsubscribe of %s journaled: the state store is busy", mask_email(email))

    def pending(self) -> bool:
        return self.path.exists()

    def apply(self, store: StateStore, *, now: datetime) -> int:
        """Apply every journaled unsubscribe in one transaction, then empty
        the journal; how many. The store's errors (busy still) propagate and
        the journal is kept for the next try."""
        with self._lock:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return 0
            entries = []
            for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                try:
                    entry = json.loads(line)
                    entries.append((str(entry["email"]), entry.get("list"), datetime.fromisoformat(entry["at"])))
                except (ValueError, KeyError, TypeError):
                    log.error("%s:%d: not a journaled unsubscribe; skipped", self.path, number)
            with store.transaction():
                for email, list_name, at in entries:
                    remove_subscriber(store.subscribers, email, list_name, now=min(at, now))
                    store.confirmations.withdraw(email)
            self.path.unlink()
        if entries:
            log.info("applied %d journaled unsubscribes", len(entries))
        return len(entries)
