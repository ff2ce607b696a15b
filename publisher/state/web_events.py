"""The events the web server's rate limits count: a kind such as
"subscribe-ip", a key the caller chooses (a keyed hash, never an address),
and when."""

from __future__ import annotations

from datetime import datetime

from publisher.state.database import Database
from publisher.state.schema import iso


class SqlWebEventRepository:
    def __init__(self, database: Database):
        self._db = database

    def take(self, kind: str, key: str, *, limit: int, since: datetime, now: datetime) -> bool:
        """Record one event of ``kind`` for ``key`` unless ``limit`` of them
        happened since ``since``; True if recorded (the caller may go on).

        Counting and recording happen in one transaction (the caller's, or
        one of its own), so two requests at once cannot both take the last
        place. Refused events are not recorded: a client over the limit is
        let in again as its old events age out of the window.
        """
        with self._db.change("record web events"):
            self._db.serialize(f"web_events {kind} {key}")  # several servers count the same key
            row = self._db.query_one(
                "SELECT COUNT(*) FROM web_events WHERE kind = ? AND key = ? AND at > ?", (kind, key, iso(since))
            )
            if row[0] >= limit:
                return False
            self._db.execute("INSERT INTO web_events (kind, key, at) VALUES (?, ?, ?)", (kind, key, iso(now)))
            return True

    def forget(self, before: datetime) -> int:
        """Drop events older than ``before`` (no window reaches back so far); how many."""
        return self._db.execute("DELETE FROM web_events WHERE at < ?", (iso(before),))
