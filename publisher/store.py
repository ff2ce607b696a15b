"""The state store: what publisher remembers between runs, in one SQLite file.

It owns identity (each post's guid and slug, fixed the first time the post
is published), dates (first seen; updated when the content hash changes) and
the record of builds. Every change happens inside ``transaction()``, so a
crash leaves the file as it was before or after, never in between.

    store = StateStore.open(Path(".publisher/state.db"))
    with store.transaction():
        record = store.recall("seeds/a.txt")
        store.remember(PostRecord(...))
    store.close()
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from publisher.errors import StateError

log = logging.getLogger(__name__)

# Each entry moves the schema from version N to N+1 (PRAGMA user_version).
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE posts (
        source TEXT PRIMARY KEY,
        guid TEXT NOT NULL UNIQUE,
        slug TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY,
        finished TEXT NOT NULL,
        posts INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        written INTEGER NOT NULL
    );
    """,
    # 2: the last good body of each fetched feed source, for conditional GET
    # and for publishing from when its upstream fails.
    """
    CREATE TABLE fetch_cache (
        url TEXT PRIMARY KEY,
        final_url TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        body BLOB NOT NULL,
        fetched TEXT NOT NULL
    );
    """,
    # 3: digests. An issue is one list's digest; issue_posts records which
    # posts it carried, so the next issue of that list leaves them out.
    """
    CREATE TABLE issues (
        id INTEGER PRIMARY KEY,
        list TEXT NOT NULL,
        number INTEGER NOT NULL,
        created TEXT NOT NULL,
        subject TEXT NOT NULL,
        UNIQUE (list, number)
    );
    CREATE TABLE issue_posts (
        issue_id INTEGER NOT NULL REFERENCES issues(id),
        post_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (issue_id, post_id)
    );
    CREATE INDEX issue_posts_post ON issue_posts(post_id);
    """,
    # 4: subscribers. ``status`` is the address's own state (active, pending,
    # unsubscribed, bounced, complained); ``subscriptions`` says which lists
    # it is on, each active or unsubscribed on its own.
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
        source TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        changed TEXT NOT NULL
    );
    CREATE TABLE subscriptions (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        list TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'unsubscribed')),
        changed TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, list)
    );
    CREATE INDEX subscriptions_list ON subscriptions(list, status);
    """,
    # 5: sending. An issue is frozen with its rendering when it is created,
    # with one delivery per recipient; each delivery moves pending -> sent,
    # failed or skipped, committed as it happens.
    """
    ALTER TABLE issues ADD COLUMN rendered TEXT;
    ALTER TABLE issues ADD COLUMN status TEXT NOT NULL DEFAULT 'sent';
    ALTER TABLE issues ADD COLUMN finished TEXT;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        issue_id INTEGER NOT NULL REFERENCES issues(id),
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        email TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        code INTEGER,
        error TEXT,
        message_id TEXT,
        changed TEXT NOT NULL,
        UNIQUE (issue_id, subscriber_id)
    );
    CREATE INDEX deliveries_pending ON deliveries(issue_id, status);
    """,
)


@dataclass(frozen=True)
class PostRecord:
    """What the store keeps of a published post."""

    source: str
    guid: str
    slug: str
    first_seen: datetime
    content_hash: str
    updated: datetime


@dataclass(frozen=True)
class BuildRecord:
    finished: datetime
    posts: int
    rejected: int
    written: int


@dataclass(frozen=True)
class CachedFetch:
    """The last good response of a feed source's URL.

    ``url`` is the configured URL (the key); ``final_url`` where redirects
    led, the base for the body's relative links; ``etag`` and
    ``last_modified`` are the validators to send back.
    """

    url: str
    final_url: str
    etag: str | None
    last_modified: str | None
    body: bytes
    fetched: datetime


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


class StateStore:
    """SQLite-backed state; ``readonly`` stores keep changes in memory only."""

    def __init__(self, connection: sqlite3.Connection, path: str, readonly: bool = False):
        self._db = connection
        self._path = path
        self.readonly = readonly
        self._pending: dict[str, PostRecord] = {}

    @classmethod
    def open(cls, path: Path, readonly: bool = False) -> StateStore:
        """Open (creating when writable) the store at ``path``.

        A read-only store of a file that does not exist yet is empty.
        """
        shown = str(path)
        try:
            if readonly:
                if not path.exists():
                    db = sqlite3.connect(":memory:")
                else:
                    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(path, timeout=10)
            db.isolation_level = None  # transactions are explicit
            if not readonly:
                # A rollback journal, not WAL: a read-only open (``publisher
                # check``) then creates no -wal/-shm files beside the database.
                db.execute("PRAGMA journal_mode=DELETE")
                db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, shown, readonly)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"{shown}: cannot use the state database ({exc}); "
                "if it is damaged, restore it from a backup or move it aside to start afresh"
            ) from exc
        except OSError as exc:
            raise StateError(f"{shown}: cannot open the state database: {exc.strerror}") from exc
        return store

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_MIGRATIONS):
            raise StateError(
                f"{self._path}: written by a newer publisher (schema {version}); upgrade publisher"
            )
        if version == len(_MIGRATIONS):
            return
        if self.readonly and version != 0:
            # An older file opened read-only: upgrade a copy in memory, so
            # `check` and previews work without writing to it.
            memory = sqlite3.connect(":memory:")
            self._db.backup(memory)
            self._db.close()
            memory.isolation_level = None
            self._db = memory
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for number in range(version, len(_MIGRATIONS)):
                for statement in _MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All changes inside commit together, or none do."""
        if self.readonly:
            yield
            self._pending.clear()
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StateError(f"{self._path}: {exc} (is another publisher running?)") from exc
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def recall(self, source: str) -> PostRecord | None:
        if source in self._pending:
            return self._pending[source]
        row = self._db.execute(
            "SELECT source, guid, slug, first_seen, content_hash, updated FROM posts WHERE source = ?",
            (source,),
        ).fetchone()
        if row is None:
            return None
        return PostRecord(row[0], row[1], row[2], _from_iso(row[3]), row[4], _from_iso(row[5]))

    def guid_owner(self, guid: str) -> str | None:
        """The source that holds ``guid``, if any."""
        for record in self._pending.values():
            if record.guid == guid:
                return record.source
        row = self._db.execute("SELECT source FROM posts WHERE guid = ?", (guid,)).fetchone()
        return row[0] if row else None

    def remember(self, record: PostRecord) -> None:
        """Store ``record``; an unchanged record writes nothing."""
        if self.recall(record.source) == record:
            return
        if self.readonly:
            self._pending[record.source] = record
            return
        self._db.execute(
            """INSERT INTO posts (source, guid, slug, first_seen, content_hash, updated)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(source) DO UPDATE SET
                 guid = excluded.guid, slug = excluded.slug,
                 content_hash = excluded.content_hash, updated = excluded.updated""",
            (
                record.source,
                record.guid,
                record.slug,
                _iso(record.first_seen),
                record.content_hash,
                _iso(record.updated),
            ),
        )

    def forget(self, source: str) -> None:
        """Drop what is remembered of ``source`` (its file is gone)."""
        self._pending.pop(source, None)
        if not self.readonly:
            self._db.execute("DELETE FROM posts WHERE source = ?", (source,))

    def record_build(self, build: BuildRecord) -> None:
        if self.readonly:
            return
        self._db.execute(
            "INSERT INTO builds (finished, posts, rejected, written) VALUES (?, ?, ?, ?)",
            (_iso(build.finished), build.posts, build.rejected, build.written),
        )

    def last_build(self) -> BuildRecord | None:
        row = self._db.execute(
            "SELECT finished, posts, rejected, written FROM builds ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return BuildRecord(_from_iso(row[0]), row[1], row[2], row[3]) if row else None

    def issued_post_ids(self, list_name: str) -> set[str]:
        """Ids of the posts an earlier issue of ``list_name`` carried."""
        rows = self._db.execute(
            """SELECT p.post_id FROM issue_posts p JOIN issues i ON i.id = p.issue_id
               WHERE i.list = ?""",
            (list_name,),
        )
        return {row[0] for row in rows}

    def next_issue_number(self, list_name: str) -> int:
        row = self._db.execute("SELECT MAX(number) FROM issues WHERE list = ?", (list_name,)).fetchone()
        return (row[0] or 0) + 1

    def create_issue(self, list_name: str, number: int, created: datetime, subject: str, post_ids: list[str]) -> int:
        """Record an issue and its posts (inside ``transaction()``); returns its id."""
        if self.readonly:
            raise StateError(f"{self._path}: opened read-only; cannot record an issue")
        cursor = self._db.execute(
            "INSERT INTO issues (list, number, created, subject) VALUES (?, ?, ?, ?)",
            (list_name, number, _iso(created), subject),
        )
        issue_id = cursor.lastrowid
        self._db.executemany(
            "INSERT INTO issue_posts (issue_id, post_id, position) VALUES (?, ?, ?)",
            [(issue_id, post_id, position) for position, post_id in enumerate(post_ids)],
        )
        return issue_id

    def close(self) -> None:
        self._db.close()

    def fetch_cache(self, url: str) -> CachedFetch | None:
        """The last good response of ``url``, if one was remembered."""
        row = self._db.execute(
            "SELECT url, final_url, etag, last_modified, body, fetched FROM fetch_cache WHERE url = ?",
            (url,),
        ).fetchone()
        if row is None:
            return None
        return CachedFetch(row[0], row[1], row[2], row[3], bytes(row[4]), _from_iso(row[5]))

    def remember_fetch(self, cached: CachedFetch) -> None:
        """Keep ``cached`` as the last good response of its URL (not in a read-only store)."""
        if self.readonly:
            return
        self._db.execute(
            """INSERT INTO fetch_cache (url, final_url, etag, last_modified, body, fetched)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(url) DO UPDATE SET
                 final_url = excluded.final_url, etag = excluded.etag,
                 last_modified = excluded.last_modified, body = excluded.body,
                 fetched = excluded.fetched""",
            (
                cached.url,
                cached.final_url,
                cached.etag,
                cached.last_modified,
                cached.body,
                _iso(cached.fetched),
            ),
        )
