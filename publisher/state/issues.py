"""Issues and their deliveries, as stored.

An issue is one list's digest: the posts it carried (so the next issue of
that list leaves them out) and, once sending starts, its rendering, frozen.
Each recipient has one delivery, moved from pending to sent, failed or
skipped, committed as it happens (``publisher.mail.send`` decides which).
Every write runs inside ``change()`` (the caller's transaction, or one of
its own) and is refused by a read-only store.
"""

from __future__ import annotations

from datetime import datetime

from publisher.errors import StateError
from publisher.state.database import Database
from publisher.state.records import IssueInfo, PendingDelivery
from publisher.state.schema import from_iso, from_optional_iso, iso
from publisher.state.subscribers import AUDIENCE

_ISSUE_COLUMNS = "id, list, number, created, subject, status, rendered, finished"
_ISSUE_COLUMNS_UNRENDERED = "id, list, number, created, subject, status, NULL, finished"


def _issue(row: tuple) -> IssueInfo:
    return IssueInfo(row[0], row[1], row[2], from_iso(row[3]), row[4], row[5], row[6], from_optional_iso(row[7]))


class SqlIssueRepository:
    def __init__(self, database: Database):
        self._db = database

    def posted_ids(self, list_name: str) -> set[str]:
        """Ids of the posts an earlier issue of ``list_name`` carried."""
        rows = self._db.query(
            "SELECT p.post_id FROM issue_posts p JOIN issues i ON i.id = p.issue_id WHERE i.list = ?", (list_name,)
        )
        return {row[0] for row in rows}

    def last_cutoff(self, list_name: str) -> datetime | None:
        """The cut-off of the list's last issue (its creation, for an issue
        recorded before cut-offs were), or None before its first."""
        row = self._db.query_one("SELECT MAX(COALESCE(cutoff, created)) FROM issues WHERE list = ?", (list_name,))
        return from_optional_iso(row[0])

    def register_lists(self, names: list[str], *, now: datetime) -> None:
        """Record ``now`` as the creation of each list not recorded yet (all
        recorded: nothing is written)."""
        known = {row[0] for row in self._db.query("SELECT name FROM lists")}
        new = [(name, iso(now)) for name in names if name not in known]
        if new:
            with self._db.change("record a list"):
                self._db.executemany("INSERT INTO lists (name, created) VALUES (?, ?) ON CONFLICT(name) DO NOTHING", new)

    def list_created(self, list_name: str) -> datetime | None:
        """When the list first appeared in the config, or None if never recorded."""
        row = self._db.query_one("SELECT created FROM lists WHERE name = ?", (list_name,))
        return from_iso(row[0]) if row else None

    def next_number(self, list_name: str) -> int:
        row = self._db.query_one("SELECT MAX(number) FROM issues WHERE list = ?", (list_name,))
        return (row[0] or 0) + 1

    def create(
        self,
        list_name: str,
        number: int,
        created: datetime,
        subject: str,
        post_ids: list[str],
        *,
        cutoff: datetime | None = None,
    ) -> int:
        """Record an issue and its posts; returns its id. ``cutoff`` (default
        ``created``): the next issue of the list takes the posts after it."""
        with self._db.change("record an issue"):
            issue_id = self._db.insert(
                "INSERT INTO issues (list, number, created, subject, cutoff) VALUES (?, ?, ?, ?, ?)",
                (list_name, number, iso(created), subject, iso(cutoff or created)),
            )
            self._db.executemany(
                "INSERT INTO issue_posts (issue_id, post_id, position) VALUES (?, ?, ?)",
                [(issue_id, post_id, position) for position, post_id in enumerate(post_ids)],
            )
        return issue_id

    def unfinished(self, list_name: str) -> int | None:
        """The id of the list's issue still being sent, if any."""
        row = self._db.query_one(
            "SELECT id FROM issues WHERE list = ? AND status = 'sending' ORDER BY number LIMIT 1", (list_name,)
        )
        return row[0] if row else None

    def info(self, issue_id: int) -> IssueInfo:
        """The issue, with its rendering."""
        row = self._db.query_one(f"SELECT {_ISSUE_COLUMNS} FROM issues WHERE id = ?", (issue_id,))
        if row is None:
            raise StateError(f"{self._db.name}: no issue {issue_id}")
        return _issue(row)

    def all(self, list_name: str | None = None) -> list[IssueInfo]:
        """Every issue (of one list), newest first, without renderings."""
        rows = self._db.query(
            f"""SELECT {_ISSUE_COLUMNS_UNRENDERED} FROM issues
               WHERE ? IS NULL OR list = ? ORDER BY created DESC, id DESC""",
            (list_name, list_name),
        )
        return [_issue(row) for row in rows]

    def archived(self) -> list[IssueInfo]:
        """Issues with a frozen rendering (sent, or being sent), newest first, without it."""
        rows = self._db.query(
            f"""SELECT {_ISSUE_COLUMNS_UNRENDERED} FROM issues
               WHERE rendered IS NOT NULL ORDER BY created DESC, id DESC"""
        )
        return [_issue(row) for row in rows]

    def archived_one(self, list_name: str, number: int) -> IssueInfo | None:
        """Issue ``number`` of ``list_name`` with its rendering; None unless it has one."""
        row = self._db.query_one(
            f"SELECT {_ISSUE_COLUMNS} FROM issues WHERE list = ? AND number = ? AND rendered IS NOT NULL",
            (list_name, number),
        )
        return _issue(row) if row else None

    def finish(self, issue_id: int, *, now: datetime) -> bool:
        """Mark an issue sent once nothing is pending; False if something is."""
        with self._db.change("record an issue"):
            changed = self._db.execute(
                """UPDATE issues SET status = 'sent', finished = ?
                   WHERE id = ? AND status = 'sending'
                     AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = ? AND status = 'pending')""",
                (iso(now), issue_id, issue_id),
            )
        return changed == 1


class SqlDeliveryRepository:
    def __init__(self, database: Database):
        self._db = database

    def audience_size(self, list_name: str) -> int:
        """How many subscribers an issue of ``list_name`` would go to now."""
        row = self._db.query_one(f"SELECT COUNT(*) FROM subscribers s WHERE {AUDIENCE}", {"list": list_name})
        return row[0]

    def start(self, issue_id: int, rendered: str, list_name: str, *, now: datetime) -> int:
        """Freeze an issue's rendering and audience (the list's audience now,
        copied inside the database, never loaded into memory): one pending
        delivery each, in subscriber order. Returns how many."""
        with self._db.change("record deliveries"):
            self._db.execute("UPDATE issues SET rendered = ?, status = 'sending' WHERE id = ?", (rendered, issue_id))
            return self._db.execute(
                f"""INSERT INTO deliveries (issue_id, subscriber_id, email, name, changed)
                    SELECT :issue, s.id, s.email, s.name, :now FROM subscribers s WHERE {AUDIENCE} ORDER BY s.id""",
                {"issue": issue_id, "now": iso(now), "list": list_name},
            )

    def pending(self, issue_id: int, *, after: int = 0, limit: int | None = None) -> list[PendingDelivery]:
        """The issue's pending deliveries in id order: those with an id above
        ``after``, at most ``limit`` of them (None: all). Page through a large
        audience with ``after`` set to the last id of the page before."""
        rows = self._db.query(
            """SELECT id, subscriber_id, email, name, attempts FROM deliveries
               WHERE issue_id = ? AND status = 'pending' AND id > ? ORDER BY id LIMIT ?""",
            (issue_id, after, self._db.dialect.limit(limit)),
        )
        return [PendingDelivery(*row) for row in rows]

    def pending_count(self, issue_id: int) -> int:
        row = self._db.query_one(
            "SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND status = 'pending'", (issue_id,)
        )
        return row[0]

    def counts(self, issue_id: int) -> dict[str, int]:
        """How many of the issue's deliveries are in each status."""
        rows = self._db.query("SELECT status, COUNT(*) FROM deliveries WHERE issue_id = ? GROUP BY status", (issue_id,))
        return {status: count for status, count in rows}

    def deliverable(self, delivery_id: int) -> bool:
        """Is the delivery's address still active, and still on the issue's list?"""
        row = self._db.query_one(
            """SELECT 1 FROM deliveries d
               JOIN issues i ON i.id = d.issue_id
               JOIN subscribers s ON s.id = d.subscriber_id AND s.status = 'active'
               JOIN subscriptions l ON l.subscriber_id = s.id AND l.list = i.list AND l.status = 'active'
               WHERE d.id = ?""",
            (delivery_id,),
        )
        return row is not None

    def deliverable_of(self, delivery_ids: list[int]) -> set[int]:
        """Those of ``delivery_ids`` that are ``deliverable``, in one query."""
        if not delivery_ids:
            return set()
        marks = ", ".join("?" * len(delivery_ids))
        # Subqueries per delivery, not joins: a join lets PostgreSQL's planner,
        # misled by the statistics of an audience inserted a moment ago, scan
        # an issue's deliveries once per subscription (seconds for 128 ids).
        rows = self._db.query(
            f"""SELECT d.id FROM deliveries d
               WHERE d.id IN ({marks})
                 AND (SELECT s.status FROM subscribers s WHERE s.id = d.subscriber_id) = 'active'
                 AND (SELECT l.status FROM subscriptions l JOIN issues i ON i.list = l.list
                       WHERE i.id = d.issue_id AND l.subscriber_id = d.subscriber_id) = 'active'""",
            tuple(delivery_ids),
        )
        return {row[0] for row in rows}

    def mark_sent(self, sent: list[tuple[int, int, str | None]], *, now: datetime) -> int:
        """``mark`` each (delivery id, attempts, message id) of ``sent`` as
        sent, in one statement run for all; how many were pending."""
        if not sent:
            return 0
        with self._db.change("record deliveries"):
            return self._db.executemany(
                """UPDATE deliveries SET status = 'sent', attempts = ?, code = NULL, error = NULL,
                       message_id = COALESCE(?, message_id), changed = ?
                   WHERE id = ? AND status = 'pending'""",
                [(attempts, message_id, iso(now), delivery_id) for delivery_id, attempts, message_id in sent],
            )

    def mark(
        self,
        delivery_id: int,
        status: str,
        *,
        attempts: int,
        now: datetime,
        code: int | None = None,
        error: str | None = None,
        message_id: str | None = None,
    ) -> bool:
        """Move a pending delivery to ``status``; False if it was not pending."""
        with self._db.change("record deliveries"):
            changed = self._db.execute(
                """UPDATE deliveries SET status = ?, attempts = ?, code = ?, error = ?,
                       message_id = COALESCE(?, message_id), changed = ?
                   WHERE id = ? AND status = 'pending'""",
                (status, attempts, code, error, message_id, iso(now), delivery_id),
            )
        return changed == 1

    def claim(self, issue_id: int, owner: str, *, limit: int, now: datetime, until: datetime) -> list[PendingDelivery]:
        """Claim up to ``limit`` of the issue's pending deliveries that no
        sender holds (or whose holder's lease ran out before ``now``) for
        ``owner`` until ``until``, in id order. Two senders claiming at once
        get different deliveries (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        with self._db.change("claim deliveries"):
            rows = self._db.query(
                f"""UPDATE deliveries SET lease_owner = :owner, lease_until = :until
                    WHERE id IN (
                        SELECT id FROM deliveries
                         WHERE issue_id = :issue AND status = 'pending'
                           AND (lease_until IS NULL OR lease_until <= :now)
                         ORDER BY id LIMIT :limit {self._db.dialect.skip_locked})
                    RETURNING id, subscriber_id, email, name, attempts""",
                {"owner": owner, "until": iso(until), "issue": issue_id, "now": iso(now), "limit": limit},
            )
        return sorted((PendingDelivery(*row) for row in rows), key=lambda delivery: delivery.id)

    def extend(self, issue_id: int, owner: str, *, until: datetime) -> int:
        """Keep ``owner``'s pending claims until ``until``; how many."""
        with self._db.change("claim deliveries"):
            return self._db.execute(
                "UPDATE deliveries SET lease_until = ? WHERE issue_id = ? AND lease_owner = ? AND status = 'pending'",
                (iso(until), issue_id, owner),
            )

    def release(self, issue_id: int, owner: str) -> int:
        """Give up ``owner``'s pending claims (another sender may take them now); how many."""
        with self._db.change("claim deliveries"):
            return self._db.execute(
                """UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
                   WHERE issue_id = ? AND lease_owner = ? AND status = 'pending'""",
                (issue_id, owner),
            )

    def next_lease_end(self, issue_id: int, owner: str) -> datetime | None:
        """When the first claim another sender holds on a pending delivery runs out (None: it holds none)."""
        row = self._db.query_one(
            """SELECT MIN(lease_until) FROM deliveries
               WHERE issue_id = ? AND status = 'pending' AND lease_owner IS NOT NULL AND lease_owner <> ?""",
            (issue_id, owner),
        )
        return from_optional_iso(row[0]) if row else None

    def note_attempt(self, delivery_id: int, *, attempts: int, now: datetime, code: int | None, error: str) -> None:
        """A transient failure: the delivery stays pending, with the reason."""
        with self._db.change("record deliveries"):
            self._db.execute(
                """UPDATE deliveries SET attempts = ?, code = ?, error = ?, changed = ?
                   WHERE id = ? AND status = 'pending'""",
                (attempts, code, error, iso(now), delivery_id),
            )
