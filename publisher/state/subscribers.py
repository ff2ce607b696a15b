"""Subscribers as stored: an address with its own status and one
subscription per list it joined, each active or unsubscribed.

This module only stores and loads; who may join, leave or come back is
decided in ``publisher.mail.subscribers``. Every write runs inside
``change()`` (the caller's transaction, or one of its own) and is refused by
a read-only store.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime

from publisher.model import Subscriber
from publisher.state.database import Database
from publisher.state.schema import from_iso, iso

# Who an issue of the list ``:list`` goes to, as a condition on ``subscribers
# s``: an active address with an active subscription to that list.
_IN_LIST = """.status = 'active' AND EXISTS (
        SELECT 1 FROM subscriptions l
         WHERE l.subscriber_id = {0}.id AND l.list = :list AND l.status = 'active')"""
# One copy per mailbox: a store from before addresses were compared without
# regard to case may hold several spellings of one; the first one stored gets it.
# (One grouping, not a subquery per subscriber: linear on both backends.)
AUDIENCE = f"""s.id IN (SELECT MIN(o.id) FROM subscribers o
                         WHERE o{_IN_LIST.format("o")} GROUP BY lower(o.email))"""


def _subscriber(row: tuple) -> Subscriber:
    lists = tuple(sorted(row[7].split(" "))) if row[7] else ()
    return Subscriber(
        id=row[0],
        email=row[1],
        name=row[2],
        status=row[3],
        lists=lists,
        source=row[4],
        created=from_iso(row[5]),
        changed=from_iso(row[6]),
    )


class SqlSubscriberRepository:
    def __init__(self, database: Database):
        self._db = database
        # Each subscriber with the lists it is active on, space-separated.
        self._select = f"""
            SELECT s.id, s.email, s.name, s.status, s.source, s.created, s.changed,
                   (SELECT {database.dialect.list_agg("l.list", " ")} FROM subscriptions l
                     WHERE l.subscriber_id = s.id AND l.status = 'active')
              FROM subscribers s"""

    def change(self) -> AbstractContextManager[None]:
        """One change to subscribers, all or nothing: inside the caller's
        transaction, or one of its own."""
        return self._db.change("change subscribers")

    # -- loading ---------------------------------------------------------------------

    def claim(self, email: str) -> None:
        """Inside a transaction: wait for any other transaction adding or
        changing this mailbox, so two servers taking the first request of one
        address at once (in any letter case) make one subscriber."""
        self._db.serialize(f"mailbox {email.lower()}")

    def find(self, email: str) -> Subscriber | None:
        """The subscriber of this mailbox, if any: the address compared
        without regard to case (the first one stored, should a store from
        before that rule hold several spellings)."""
        row = self._db.query_one(self._select + " WHERE lower(s.email) = lower(?) ORDER BY s.id LIMIT 1", (email,))
        return _subscriber(row) if row else None

    def matching(self, list_name: str | None = None, status: str | None = None) -> list[Subscriber]:
        """Subscribers in the order they came, of any status unless ``status``
        is given; with ``list_name`` only those with an active subscription
        to that list."""
        rows = self._db.query(
            self._select
            + """ WHERE (:status IS NULL OR s.status = :status)
                    AND (:list IS NULL OR EXISTS (
                        SELECT 1 FROM subscriptions l
                         WHERE l.subscriber_id = s.id AND l.list = :list AND l.status = 'active'))
                  ORDER BY s.id""",
            {"status": status, "list": list_name},
        )
        return [_subscriber(row) for row in rows]

    def audience(self, list_name: str) -> list[Subscriber]:
        """Who an issue of ``list_name`` goes to (``AUDIENCE``), in the order they came."""
        rows = self._db.query(self._select + f" WHERE {AUDIENCE} ORDER BY s.id", {"list": list_name})
        return [_subscriber(row) for row in rows]

    def subscriptions(self, subscriber_id: int) -> dict[str, str]:
        """Each list the subscriber ever joined, and whether it is active or unsubscribed there."""
        return dict(self._db.query("SELECT list, status FROM subscriptions WHERE subscriber_id = ?", (subscriber_id,)))

    # -- storing ---------------------------------------------------------------------

    def insert(
        self, email: str, name: str, status: str, lists: Iterable[str], *, source: str, created: datetime, now: datetime
    ) -> Subscriber:
        """A new subscriber, with an active subscription to each of ``lists``."""
        stamp = iso(now)
        with self.change():
            subscriber_id = self._db.insert(
                """INSERT INTO subscribers (email, name, status, source, created, changed)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (email, name, status, source, iso(created), stamp),
            )
            self._db.executemany(
                "INSERT INTO subscriptions (subscriber_id, list, status, changed) VALUES (?, ?, 'active', ?)",
                [(subscriber_id, list_name, stamp) for list_name in lists],
            )
            return self._by_id(subscriber_id)

    def _by_id(self, subscriber_id: int) -> Subscriber:
        row = self._db.query_one(self._select + " WHERE s.id = ?", (subscriber_id,))
        assert row is not None, subscriber_id
        return _subscriber(row)

    def set_status(self, subscriber_id: int, status: str) -> None:
        """The address's own status (``touch`` records when it changed)."""
        with self.change():
            self._db.execute("UPDATE subscribers SET status = ? WHERE id = ?", (status, subscriber_id))

    def set_name(self, subscriber_id: int, name: str) -> None:
        with self.change():
            self._db.execute("UPDATE subscribers SET name = ? WHERE id = ?", (name, subscriber_id))

    def touch(self, subscriber_id: int, now: datetime) -> None:
        """Record that the subscriber changed at ``now``."""
        with self.change():
            self._db.execute("UPDATE subscribers SET changed = ? WHERE id = ?", (iso(now), subscriber_id))

    def join(self, subscriber_id: int, lists: Iterable[str], now: datetime) -> None:
        """Make the subscription to each of ``lists`` active, new or not."""
        stamp = iso(now)
        with self.change():
            self._db.executemany(
                """INSERT INTO subscriptions (subscriber_id, list, status, changed) VALUES (?, ?, 'active', ?)
                   ON CONFLICT(subscriber_id, list) DO UPDATE SET status = 'active', changed = excluded.changed""",
                [(subscriber_id, list_name, stamp) for list_name in lists],
            )

    def leave(self, subscriber_id: int, list_name: str | None, now: datetime) -> int:
        """Unsubscribe from one list (or all); how many subscriptions changed."""
        with self.change():
            return self._db.execute(
                """UPDATE subscriptions SET status = 'unsubscribed', changed = ?
                   WHERE subscriber_id = ? AND status = 'active' AND (? IS NULL OR list = ?)""",
                (iso(now), subscriber_id, list_name, list_name),
            )

    def mark_welcomed(self, subscriber_id: int, now: datetime) -> bool:
        """Record that the welcome email goes out now; False if it already did."""
        with self.change():
            return (
                self._db.execute(
                    "UPDATE subscribers SET welcomed = ? WHERE id = ? AND welcomed IS NULL", (iso(now), subscriber_id)
                )
                == 1
            )
