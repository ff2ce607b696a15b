"""Pending subscribe requests (double opt-in), each found by the hash of the
random token its confirmation link carries. The token itself is never
stored: a copy of the database confirms nobody.

A request carries the name typed into the form; nothing of it touches the
subscriber until the owner confirms (``publisher.mail.optin``). Confirming
marks the request confirmed, so a link acts once (a second click only finds
it done); an expired one never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from publisher.state.database import Database
from publisher.state.records import PendingConfirmation
from publisher.state.schema import from_iso, from_optional_iso, iso


def mailbox(email: str) -> str:
    """The key of a mailbox: the address in lower case (providers ignore the local part's case)."""
    return email.lower()


class SqlConfirmationRepository:
    def __init__(self, database: Database):
        self._db = database

    def add(
        self, token_hash: str, email: str, lists: Sequence[str], name: str, *, now: datetime, expires: datetime
    ) -> int:
        """Record a request; its id."""
        with self._db.change("record a subscribe request"):
            return self._db.insert(
                """INSERT INTO confirmations (token_hash, mailbox, email, lists, name, created, expires)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (token_hash, mailbox(email), email, " ".join(lists), name, iso(now), iso(expires)),
            )

    def find(self, token_hash: str, *, now: datetime) -> PendingConfirmation | None:
        """The request whose token hashes to ``token_hash``, if it has not expired."""
        row = self._db.query_one(
            """SELECT id, email, lists, name, created, expires, confirmed FROM confirmations
                WHERE token_hash = ? AND expires > ?""",
            (token_hash, iso(now)),
        )
        if row is None:
            return None
        return PendingConfirmation(
            row[0], row[1], tuple(row[2].split()), row[3], from_iso(row[4]), from_iso(row[5]), from_optional_iso(row[6])
        )

    def consume(self, confirmation_id: int, now: datetime) -> bool:
        """Mark the request confirmed; False if it already was (confirmed twice at once)."""
        with self._db.change("confirm a subscribe request"):
            return (
                self._db.execute(
                    "UPDATE confirmations SET confirmed = ? WHERE id = ? AND confirmed IS NULL", (iso(now), confirmation_id)
                )
                == 1
            )

    def withdraw(self, email: str) -> int:
        """Void every request for the mailbox of ``email``; how many."""
        with self._db.change("void subscribe requests"):
            return self._db.execute("DELETE FROM confirmations WHERE mailbox = ?", (mailbox(email),))

    def purge(self, now: datetime) -> int:
        """Drop the expired requests, and the pending addresses left with
        none (they never confirmed, and joined no list); how many addresses."""
        with self._db.change("purge unconfirmed requests"):
            self._db.execute("DELETE FROM confirmations WHERE expires <= ?", (iso(now),))
            return self._db.execute(
                """DELETE FROM subscribers
                    WHERE status = 'pending'
                      AND NOT EXISTS (SELECT 1 FROM subscriptions l WHERE l.subscriber_id = subscribers.id)
                      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber_id = subscribers.id)
                      AND NOT EXISTS (SELECT 1 FROM confirmations c WHERE c.mailbox = lower(subscribers.email))""",
            )
