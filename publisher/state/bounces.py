"""What the store keeps of bounces and complaints: each message dealt with
(so one read twice counts once) and each event it recorded for a subscriber.

The rules (what a hard bounce, a soft one or a complaint does to the
subscriber) live in ``publisher.mail.bounces.actions``; this module stores
and loads.

    if not store.bounces.seen(key):
        with store.transaction():
            store.bounces.record(BounceEvent(...))
            store.bounces.remember_message(key, "maildir", "hard", "", now)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from publisher.state.database import Database
from publisher.state.schema import from_iso, iso

EVENT_KINDS = ("hard", "soft", "complaint")


@dataclass(frozen=True)
class BounceEvent:
    """A bounce or complaint recorded for one subscriber (``issue_id``: the
    issue it was about, when known; ``status``: the enhanced status code)."""

    message_key: str
    subscriber_id: int
    issue_id: int | None
    kind: str
    status: str
    diagnostic: str
    source: str
    at: datetime


@dataclass(frozen=True)
class DeliveryRef:
    """A delivery as a bounce names it: who got which issue."""

    id: int
    issue_id: int
    subscriber_id: int
    email: str
    message_id: str | None


class BounceRepository(Protocol):
    """Bounce messages dealt with, and the events they recorded."""

    def seen(self, key: str) -> bool: ...

    def remember_message(self, key: str, source: str, verdict: str, detail: str, now: datetime) -> bool: ...

    def delivery(self, delivery_id: int) -> DeliveryRef | None: ...

    def delivery_by_message_id(self, message_id: str) -> DeliveryRef | None: ...

    def record(self, event: BounceEvent) -> bool: ...

    def soft_score(self, subscriber_id: int, since: datetime) -> int: ...

    def events(self, subscriber_id: int) -> list[BounceEvent]: ...

    def summary(self, since: datetime) -> dict[str, int]: ...

    def last_message(self) -> datetime | None: ...


_EVENT_COLUMNS = "message_key, subscriber_id, issue_id, kind, status, diagnostic, source, at"
_DELIVERY_COLUMNS = "id, issue_id, subscriber_id, email, message_id"


def _event(row: tuple) -> BounceEvent:
    return BounceEvent(*row[:7], at=from_iso(row[7]))


class SqlBounceRepository:
    def __init__(self, database: Database):
        self._db = database

    def seen(self, key: str) -> bool:
        """Was the message (or notification) of ``key`` dealt with already?"""
        return self._db.query_one("SELECT 1 FROM bounce_messages WHERE key = ?", (key,)) is not None

    def remember_message(self, key: str, source: str, verdict: str, detail: str, now: datetime) -> bool:
        """Record a message as dealt with; False if it already was."""
        with self._db.change("record a bounce message"):
            return bool(
                self._db.execute(
                    """INSERT INTO bounce_messages (key, source, verdict, detail, at) VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT(key) DO NOTHING""",
                    (key, source, verdict, detail[:500], iso(now)),
                )
            )

    def delivery(self, delivery_id: int) -> DeliveryRef | None:
        row = self._db.query_one(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,))
        return DeliveryRef(*row) if row else None

    def delivery_by_message_id(self, message_id: str) -> DeliveryRef | None:
        row = self._db.query_one(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ? ORDER BY id LIMIT 1", (message_id,)
        )
        return DeliveryRef(*row) if row else None

    def record(self, event: BounceEvent) -> bool:
        """Record an event; False if this message already recorded one for this subscriber."""
        if event.kind not in EVENT_KINDS:
            raise ValueError(f"a bounce event is one of {', '.join(EVENT_KINDS)} (got {event.kind!r})")
        with self._db.change("record a bounce"):
            return bool(
                self._db.execute(
                    f"""INSERT INTO bounce_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(message_key, subscriber_id) DO NOTHING""",
                    (
                        event.message_key, event.subscriber_id, event.issue_id, event.kind,
                        event.status, event.diagnostic[:500], event.source, iso(event.at),
                    ),
                )
            )

    def soft_score(self, subscriber_id: int, since: datetime) -> int:
        """Soft bounces of the subscriber since ``since``: one per issue at most
        (the warnings and the final failure of one message count once)."""
        row = self._db.query_one(
            """SELECT COUNT(DISTINCT COALESCE('issue ' || issue_id, 'event ' || id)) FROM bounce_events
                WHERE subscriber_id = ? AND kind = 'soft' AND at >= ?""",
            (subscriber_id, iso(since)),
        )
        return int(row[0]) if row else 0

    def events(self, subscriber_id: int) -> list[BounceEvent]:
        """The subscriber's events, oldest first."""
        rows = self._db.query(
            f"SELECT {_EVENT_COLUMNS} FROM bounce_events WHERE subscriber_id = ? ORDER BY at, id", (subscriber_id,)
        )
        return [_event(row) for row in rows]

    def summary(self, since: datetime) -> dict[str, int]:
        """Events by kind since ``since``, and messages by verdict (keys ``message:VERDICT``)."""
        counts = dict(
            self._db.query("SELECT kind, COUNT(*) FROM bounce_events WHERE at >= ? GROUP BY kind", (iso(since),))
        )
        for verdict, count in self._db.query(
            "SELECT verdict, COUNT(*) FROM bounce_messages WHERE at >= ? GROUP BY verdict", (iso(since),)
        ):
            counts[f"message:{verdict}"] = count
        return counts

    def last_message(self) -> datetime | None:
        row = self._db.query_one("SELECT MAX(at) FROM bounce_messages")
        return from_iso(row[0]) if row and row[0] else None
