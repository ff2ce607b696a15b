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
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from publisher.errors import StateError
from publisher.model import Subscriber

log = logging.getLogger("publisher.store")

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
    # 6: the scheduler: each job's last run and the slot it ran for.
    """
    CREATE TABLE job_runs (
        job TEXT PRIMARY KEY,
        last_slot TEXT,
        last_started TEXT,
        last_finished TEXT,
        last_status TEXT,
        last_message TEXT
    );
    """,
    # 7: the web server's rate limits (subscribe attempts per address and per IP).
    """
    CREATE TABLE web_events (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX web_events_key ON web_events(kind, key, at);
    """,
    # 8: the build's caches. read_cache: each content file's last reading
    # (posts and errors, as JSON) under the hash of what it was
    # read from; feed_outputs: each feed file written, the digest of what
    # its bytes were made from, and its size and mtime once written.
    """
    CREATE TABLE read_cache (
        source TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE feed_outputs (
        name TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL
    );
    """,
    # 9: what a content file looked like on disk (size, times, inode) when
    # its reading was cached: while it still does, it need not be read and
    # hashed again to know its key (as git's index does).
    """
    ALTER TABLE read_cache ADD COLUMN signature TEXT;
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
class PendingDelivery:
    id: int
    subscriber_id: int
    email: str
    name: str
    attempts: int


@dataclass(frozen=True)
class IssueInfo:
    id: int
    list_name: str
    number: int
    created: datetime
    subject: str
    status: str
    rendered: str | None
    finished: datetime | None


@dataclass(frozen=True)
class BuildRecord:
    finished: datetime
    posts: int
    rejected: int
    written: int


@dataclass(frozen=True)
class JobRun:
    """A scheduled job's last run (``job_runs``); see the jobs section of ``StateStore``."""

    job: str
    last_slot: datetime | None
    started: datetime | None
    finished: datetime | None
    status: str | None
    message: str | None


@dataclass(frozen=True)
class FeedOutput:
    """A feed file as the build left it: the digest of its inputs, its size and mtime."""

    name: str
    digest: str
    size: int
    mtime_ns: int


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
    def open(cls, path: Path, readonly: bool = False, *, check: bool = True) -> StateStore:
        """Open (creating when writable) the store at ``path``.

        A read-only store of a file that does not exist yet is empty.
        ``check``: read every page first (``PRAGMA quick_check``), so damage
        is one clear error now rather than a failure mid-command. It reads
        the whole file: a server that opens the store for each request
        checks once at start-up and opens with ``check=False``.
        """
        shown = str(path)
        try:
            if path.exists() and path.stat().st_size == 0:
                # An empty file is a database that lost its contents, not a new
                # one: starting afresh would forget every subscriber and issue.
                raise sqlite3.DatabaseError("the file is empty")
            if readonly:
                if not path.exists():
                    db = sqlite3.connect(":memory:")
                else:
                    # No -wal file means no writer is open and every commit is in
                    # the main file: read it as immutable, which creates no
                    # -wal/-shm files beside it (`publisher check` writes nothing).
                    wal = path.with_name(path.name + "-wal")
                    flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
                    db = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(path, timeout=10)
            db.isolation_level = None  # transactions are explicit
            if not readonly:
                # WAL with synchronous=NORMAL: a commit costs tens of
                # microseconds, not an fsync (a send commits every delivery).
                # A crash of the process loses nothing; a power cut may lose
                # the last commits (a message may then go out twice), never
                # the file's consistency.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, shown, readonly)
            if check and path.exists():
                # Damage past the header only shows when a page is read:
                # find it now, as one clear error, not mid-command.
                problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {problem}")
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

    def post_records(self) -> dict[str, PostRecord]:
        """Every remembered post, by source (one query, for a whole build)."""
        rows = self._db.execute("SELECT source, guid, slug, first_seen, content_hash, updated FROM posts")
        records = {r[0]: PostRecord(r[0], r[1], r[2], _from_iso(r[3]), r[4], _from_iso(r[5])) for r in rows}
        records.update(self._pending)
        return records

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

    # -- sending -----------------------------------------------------------

    # Who an issue goes to (``list_audience``), as SQL: the audience is
    # copied into deliveries inside SQLite, never loaded into memory.
    _AUDIENCE = """FROM subscribers s
         WHERE s.status = 'active' AND EXISTS (
             SELECT 1 FROM subscriptions l
              WHERE l.subscriber_id = s.id AND l.list = :list AND l.status = 'active')"""

    def audience_size(self, list_name: str) -> int:
        """How many subscribers ``list_audience`` would give."""
        return self._db.execute(f"SELECT COUNT(*) {self._AUDIENCE}", {"list": list_name}).fetchone()[0]

    def start_sending(self, issue_id: int, rendered: str, list_name: str, *, now: datetime) -> int:
        """Freeze an issue's rendering and audience (the list's ``list_audience``
        now): one pending delivery each, in subscriber order. Returns how many."""
        self._db.execute(
            "UPDATE issues SET rendered = ?, status = 'sending' WHERE id = ?", (rendered, issue_id)
        )
        cursor = self._db.execute(
            f"""INSERT INTO deliveries (issue_id, subscriber_id, email, name, changed)
                SELECT :issue, s.id, s.email, s.name, :now {self._AUDIENCE} ORDER BY s.id""",
            {"issue": issue_id, "now": _iso(now), "list": list_name},
        )
        return cursor.rowcount

    def unfinished_issue(self, list_name: str) -> int | None:
        row = self._db.execute(
            "SELECT id FROM issues WHERE list = ? AND status = 'sending' ORDER BY number LIMIT 1",
            (list_name,),
        ).fetchone()
        return row[0] if row else None

    def issue_info(self, issue_id: int) -> IssueInfo:
        row = self._db.execute(
            "SELECT id, list, number, created, subject, status, rendered, finished FROM issues WHERE id = ?",
            (issue_id,),
        ).fetchone()
        if row is None:
            raise StateError(f"{self._path}: no issue {issue_id}")
        return IssueInfo(
            row[0], row[1], row[2], _from_iso(row[3]), row[4], row[5], row[6], _from_iso(row[7]) if row[7] else None
        )

    def issues(self, list_name: str | None = None) -> list[IssueInfo]:
        """Every issue (of one list), newest first, without renderings."""
        rows = self._db.execute(
            """SELECT id, list, number, created, subject, status, NULL, finished FROM issues
               WHERE ? IS NULL OR list = ? ORDER BY created DESC, id DESC""",
            (list_name, list_name),
        )
        return [
            IssueInfo(r[0], r[1], r[2], _from_iso(r[3]), r[4], r[5], None, _from_iso(r[7]) if r[7] else None)
            for r in rows
        ]

    def pending_deliveries(self, issue_id: int, *, after: int = 0, limit: int = -1) -> list[PendingDelivery]:
        """The issue's pending deliveries in id order: those with an id above
        ``after``, at most ``limit`` of them (-1: all). Page through a large
        audience with ``after`` set to the last id of the page before."""
        rows = self._db.execute(
            """SELECT id, subscriber_id, email, name, attempts FROM deliveries
               WHERE issue_id = ? AND status = 'pending' AND id > ? ORDER BY id LIMIT ?""",
            (issue_id, after, limit),
        )
        return [PendingDelivery(*row) for row in rows]

    def pending_count(self, issue_id: int) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND status = 'pending'", (issue_id,)
        ).fetchone()
        return row[0]

    def delivery_counts(self, issue_id: int) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE issue_id = ? GROUP BY status", (issue_id,)
        )
        return {status: count for status, count in rows}

    def deliverable(self, delivery_id: int) -> bool:
        """Is the delivery's address still active, and still on the issue's list?"""
        row = self._db.execute(
            """SELECT 1 FROM deliveries d
               JOIN issues i ON i.id = d.issue_id
               JOIN subscribers s ON s.id = d.subscriber_id AND s.status = 'active'
               JOIN subscriptions l ON l.subscriber_id = s.id AND l.list = i.list AND l.status = 'active'
               WHERE d.id = ?""",
            (delivery_id,),
        ).fetchone()
        return row is not None

    def mark_delivery(
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
        cursor = self._db.execute(
            """UPDATE deliveries SET status = ?, attempts = ?, code = ?, error = ?,
                   message_id = COALESCE(?, message_id), changed = ?
               WHERE id = ? AND status = 'pending'""",
            (status, attempts, code, error, message_id, _iso(now), delivery_id),
        )
        return cursor.rowcount == 1

    def note_attempt(self, delivery_id: int, *, attempts: int, now: datetime, code: int | None, error: str) -> None:
        """A transient failure: the delivery stays pending, with the reason."""
        self._db.execute(
            """UPDATE deliveries SET attempts = ?, code = ?, error = ?, changed = ?
               WHERE id = ? AND status = 'pending'""",
            (attempts, code, error, _iso(now), delivery_id),
        )

    def finish_issue(self, issue_id: int, *, now: datetime) -> bool:
        """Mark an issue sent once nothing is pending; False if something is."""
        cursor = self._db.execute(
            """UPDATE issues SET status = 'sent', finished = ?
               WHERE id = ? AND status = 'sending'
                 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = ? AND status = 'pending')""",
            (_iso(now), issue_id, issue_id),
        )
        return cursor.rowcount == 1

    # -- web ---------------------------------------------------------------------
    #
    # What ``publisher serve`` reads and writes: the issues it shows, and the
    # events its rate limits count (``web_events``: a kind such as
    # "subscribe-ip", a key the caller chooses, and when).

    def archived_issues(self) -> list[IssueInfo]:
        """Issues with a frozen rendering (sent, or being sent), newest first, without it."""
        rows = self._db.execute(
            """SELECT id, list, number, created, subject, status, NULL, finished FROM issues
               WHERE rendered IS NOT NULL ORDER BY created DESC, id DESC"""
        )
        return [
            IssueInfo(r[0], r[1], r[2], _from_iso(r[3]), r[4], r[5], None, _from_iso(r[7]) if r[7] else None)
            for r in rows
        ]

    def archived_issue(self, list_name: str, number: int) -> IssueInfo | None:
        """Issue ``number`` of ``list_name`` with its rendering; None unless it has one."""
        row = self._db.execute(
            """SELECT id, list, number, created, subject, status, rendered, finished FROM issues
               WHERE list = ? AND number = ? AND rendered IS NOT NULL""",
            (list_name, number),
        ).fetchone()
        if row is None:
            return None
        return IssueInfo(
            row[0], row[1], row[2], _from_iso(row[3]), row[4], row[5], row[6], _from_iso(row[7]) if row[7] else None
        )

    def take_web_event(self, kind: str, key: str, *, limit: int, since: datetime, now: datetime) -> bool:
        """Record one event of ``kind`` for ``key`` unless ``limit`` of them
        happened since ``since``; True if recorded (the caller may go on).

        Counting and recording happen in one transaction (the caller's, or
        one of its own), so two requests at once cannot both take the last
        place. Refused events are not recorded: a client over the limit is
        let in again as its old events age out of the window.
        """
        if self.readonly:
            raise StateError(f"{self._path}: opened read-only; cannot record web events")
        if not self._db.in_transaction:
            with self.transaction():
                return self.take_web_event(kind, key, limit=limit, since=since, now=now)
        count = self._db.execute(
            "SELECT COUNT(*) FROM web_events WHERE kind = ? AND key = ? AND at > ?",
            (kind, key, _iso(since)),
        ).fetchone()[0]
        if count >= limit:
            return False
        self._db.execute("INSERT INTO web_events (kind, key, at) VALUES (?, ?, ?)", (kind, key, _iso(now)))
        return True

    def forget_web_events(self, before: datetime) -> int:
        """Drop events older than ``before`` (no window reaches back so far); how many."""
        if self.readonly:
            return 0
        cursor = self._db.execute("DELETE FROM web_events WHERE at < ?", (_iso(before),))
        return cursor.rowcount

    # -- jobs ------------------------------------------------------------------
    #
    # What ``publisher run`` remembers of each scheduled job (``job_runs``):
    # the slot it last dealt with (ran, or skipped as too late), when that run
    # started and finished, how it ended (ok, error, skipped, stopped, or
    # "new" for a job seen for the first time) and a one-line message.

    _JOB_RUN_COLUMNS = "job, last_slot, last_started, last_finished, last_status, last_message"

    @staticmethod
    def _job_run_from_row(row: tuple) -> JobRun:
        def moment(text: str | None) -> datetime | None:
            return _from_iso(text) if text else None

        return JobRun(row[0], moment(row[1]), moment(row[2]), moment(row[3]), row[4], row[5])

    def job_runs(self) -> dict[str, JobRun]:
        """Every job's last run, by job name."""
        rows = self._db.execute(f"SELECT {self._JOB_RUN_COLUMNS} FROM job_runs ORDER BY job")
        return {row[0]: self._job_run_from_row(row) for row in rows}

    def job_run(self, job: str) -> JobRun | None:
        row = self._db.execute(f"SELECT {self._JOB_RUN_COLUMNS} FROM job_runs WHERE job = ?", (job,)).fetchone()
        return self._job_run_from_row(row) if row else None

    def record_job_run(self, run: JobRun) -> None:
        """Replace ``run.job``'s record with ``run`` (joining the caller's transaction, if any)."""
        if self.readonly:
            raise StateError(f"{self._path}: opened read-only; cannot record a job run")
        with nullcontext() if self._db.in_transaction else self.transaction():
            self._db.execute(
                f"""INSERT INTO job_runs ({self._JOB_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(job) DO UPDATE SET
                      last_slot = excluded.last_slot, last_started = excluded.last_started,
                      last_finished = excluded.last_finished, last_status = excluded.last_status,
                      last_message = excluded.last_message""",
                (
                    run.job,
                    _iso(run.last_slot) if run.last_slot else None,
                    _iso(run.started) if run.started else None,
                    _iso(run.finished) if run.finished else None,
                    run.status,
                    run.message,
                ),
            )

    # -- cache -------------------------------------------------------------------
    #
    # What makes a rebuild cheap (content.PostCache, build.build_site): each
    # content file's last reading, and what each feed file was made from.
    # Losing either costs one slow build, nothing else.

    def cached_reads(self) -> dict[str, tuple[str, bytes, str | None]]:
        """Every cached reading: source -> (key, data, signature)."""
        rows = self._db.execute("SELECT source, key, data, signature FROM read_cache")
        return {source: (key, bytes(data), signature) for source, key, data, signature in rows}

    def remember_reads(self, entries: Iterable[tuple[str, str, bytes, str | None]]) -> None:
        """Keep (source, key, data, signature) readings, replacing each source's last one."""
        if self.readonly:
            return
        self._db.executemany(
            """INSERT INTO read_cache (source, key, data, signature) VALUES (?, ?, ?, ?)
               ON CONFLICT(source) DO UPDATE SET
                 key = excluded.key, data = excluded.data, signature = excluded.signature""",
            entries,
        )

    def remember_read_signatures(self, signatures: Iterable[tuple[str, str, str]]) -> None:
        """Keep (source, key, signature): how a file whose reading is cached under ``key`` looks now."""
        if self.readonly:
            return
        self._db.executemany(
            "UPDATE read_cache SET signature = ? WHERE source = ? AND key = ?",
            ((signature, source, key) for source, key, signature in signatures),
        )

    def forget_reads(self, sources: Iterable[str]) -> None:
        if self.readonly:
            return
        self._db.executemany("DELETE FROM read_cache WHERE source = ?", ((s,) for s in sources))

    def feed_outputs(self) -> dict[str, FeedOutput]:
        """Every feed file the last builds wrote, by name."""
        rows = self._db.execute("SELECT name, digest, size, mtime_ns FROM feed_outputs")
        return {row[0]: FeedOutput(*row) for row in rows}

    def remember_feed_outputs(self, outputs: Iterable[FeedOutput]) -> None:
        if self.readonly:
            return
        self._db.executemany(
            """INSERT INTO feed_outputs (name, digest, size, mtime_ns) VALUES (?, ?, ?, ?)
               ON CONFLICT(name) DO UPDATE SET
                 digest = excluded.digest, size = excluded.size, mtime_ns = excluded.mtime_ns""",
            ((o.name, o.digest, o.size, o.mtime_ns) for o in outputs),
        )

    def forget_feed_outputs(self, names: Iterable[str]) -> None:
        if self.readonly:
            return
        self._db.executemany("DELETE FROM feed_outputs WHERE name = ?", ((n,) for n in names))

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

    # -- subscribers -------------------------------------------------------------
    #
    # An address has its own status (active, pending, unsubscribed, bounced,
    # complained) and one subscription per list it joined, each active or
    # unsubscribed. Only an active address's active subscriptions are mailed.
    # The rules that keep people who left from coming back live here, so every
    # way in (import, the command line, the web form) obeys them:
    #
    # - a subscription someone left, and an address that left every list,
    #   bounced or complained, stay so unless the caller names that status in
    #   ``reactivate`` (an import never does; `subscribers add` passes
    #   "unsubscribed" and "pending", and with --force "bounced" and
    #   "complained" too);
    # - leaving one's last list makes the address unsubscribed;
    # - every change sets ``changed`` (of the subscription and the address).
    #
    # Writing methods join the caller's ``transaction()``, or run in one of
    # their own when called outside one.

    _SUBSCRIBER_STATUSES = ("active", "pending", "unsubscribed", "bounced", "complained")
    _SUPPRESSED = ("unsubscribed", "bounced", "complained")
    _SELECT_SUBSCRIBERS = """
        SELECT s.id, s.email, s.name, s.status, s.source, s.created, s.changed,
               (SELECT group_concat(l.list, ' ') FROM subscriptions l
                 WHERE l.subscriber_id = s.id AND l.status = 'active')
          FROM subscribers s"""

    @contextmanager
    def _subscriber_change(self) -> Iterator[None]:
        if self.readonly:
            raise StateError(f"{self._path}: opened read-only; cannot change subscribers")
        if self._db.in_transaction:
            yield
        else:
            with self.transaction():
                yield

    @staticmethod
    def _subscriber_from_row(row: tuple) -> Subscriber:
        lists = tuple(sorted(row[7].split(" "))) if row[7] else ()
        return Subscriber(
            id=row[0],
            email=row[1],
            name=row[2],
            status=row[3],
            lists=lists,
            source=row[4],
            created=_from_iso(row[5]),
            changed=_from_iso(row[6]),
        )

    def _check_subscriber_status(self, status: str) -> None:
        if status not in self._SUBSCRIBER_STATUSES:
            raise ValueError(f"subscriber status {status!r} is not one of {', '.join(self._SUBSCRIBER_STATUSES)}")

    def subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with exactly this (normalised) address, if any."""
        row = self._db.execute(self._SELECT_SUBSCRIBERS + " WHERE s.email = ?", (email,)).fetchone()
        return self._subscriber_from_row(row) if row else None

    def subscribers(self, list_name: str | None = None, status: str | None = None) -> list[Subscriber]:
        """Subscribers in the order they came, of any status unless ``status``
        is given; with ``list_name`` only those with an active subscription
        to that list."""
        if status is not None:
            self._check_subscriber_status(status)
        rows = self._db.execute(
            self._SELECT_SUBSCRIBERS
            + """ WHERE (:status IS NULL OR s.status = :status)
                    AND (:list IS NULL OR EXISTS (
                        SELECT 1 FROM subscriptions l
                         WHERE l.subscriber_id = s.id AND l.list = :list AND l.status = 'active'))
                  ORDER BY s.id""",
            {"status": status, "list": list_name},
        )
        return [self._subscriber_from_row(row) for row in rows]

    def list_audience(self, list_name: str) -> list[Subscriber]:
        """Who an issue of ``list_name`` goes to: active addresses with an
        active subscription to it, in the order they came."""
        return self.subscribers(list_name, "active")

    def add_subscriber(
        self,
        email: str,
        name: str,
        lists: Iterable[str],
        *,
        source: str,
        now: datetime,
        status: str = "active",
        created: datetime | None = None,
        reactivate: Collection[str] = (),
        update_name: bool = False,
    ) -> tuple[Subscriber, bool]:
        """Add ``email`` to ``lists``; returns the subscriber and whether it is new.

        ``email`` must already be normalised (``publisher.mail.subscribers``).
        A new address gets ``status`` and, unless that is "unsubscribed",
        an active subscription to each list; ``created`` defaults to ``now``.
        An existing address:

        - with ``status`` unsubscribed, bounced or complained: an active or
          pending address takes that status (unsubscribed also leaves every
          list); an address already suppressed keeps its first status;
        - otherwise, if it is unsubscribed, bounced or complained and that
          status is not in ``reactivate``, nothing changes at all;
        - otherwise it joins the lists it has no subscription to yet, and
          rejoins those it left only if "unsubscribed" is in ``reactivate``;
          a pending address becomes ``status`` only if "pending" is in
          ``reactivate``; an active one is never made pending.

        ``name`` fills in an empty name; with ``update_name`` a non-empty
        ``name`` replaces the stored one.
        """
        self._check_subscriber_status(status)
        stamp = _iso(now)
        lists = tuple(dict.fromkeys(lists))
        with self._subscriber_change():
            row = self._db.execute(
                "SELECT id, status, name FROM subscribers WHERE email = ?", (email,)
            ).fetchone()
            if row is None:
                cursor = self._db.execute(
                    """INSERT INTO subscribers (email, name, status, source, created, changed)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (email, name, status, source, _iso(created or now), stamp),
                )
                subscriber_id = cursor.lastrowid
                if status != "unsubscribed":
                    self._db.executemany(
                        "INSERT INTO subscriptions (subscriber_id, list, status, changed) VALUES (?, ?, 'active', ?)",
                        [(subscriber_id, list_name, stamp) for list_name in lists],
                    )
                log.info("subscriber %s: added %s (%s) to %s", subscriber_id, email, status, ", ".join(lists) or "no list")
                return self._subscriber_by_id(subscriber_id), True

            subscriber_id, current, stored_name = row
            if status in self._SUPPRESSED:
                new_status = status if current in ("active", "pending") else current
                joining = False
            elif current in self._SUPPRESSED and current not in reactivate:
                new_status, joining = current, False
            elif current == "active":
                new_status, joining = "active", True
            else:
                new_status = status if (current == status or current in reactivate) else current
                joining = True
            changed = False
            if current in self._SUPPRESSED and new_status == current and not joining:
                # Someone who left stays as they left it, name and all.
                return self._subscriber_by_id(subscriber_id), False
            if new_status != current:
                self._db.execute(
                    "UPDATE subscribers SET status = ? WHERE id = ?", (new_status, subscriber_id)
                )
                log.info("subscriber %s: %s -> %s", subscriber_id, current, new_status)
                changed = True
                if new_status == "unsubscribed":
                    self._leave_lists(subscriber_id, None, stamp)
            if joining:
                changed |= self._join_lists(subscriber_id, lists, stamp, rejoin="unsubscribed" in reactivate)
            if name and name != stored_name and (update_name or not stored_name):
                self._db.execute("UPDATE subscribers SET name = ? WHERE id = ?", (name, subscriber_id))
                changed = True
            if changed:
                self._db.execute("UPDATE subscribers SET changed = ? WHERE id = ?", (stamp, subscriber_id))
            return self._subscriber_by_id(subscriber_id), False

    def _subscriber_by_id(self, subscriber_id: int) -> Subscriber:
        row = self._db.execute(self._SELECT_SUBSCRIBERS + " WHERE s.id = ?", (subscriber_id,)).fetchone()
        return self._subscriber_from_row(row)

    def _join_lists(self, subscriber_id: int, lists: tuple[str, ...], stamp: str, *, rejoin: bool) -> bool:
        """Subscribe to ``lists``; those left before only when ``rejoin``. Did anything change?"""
        existing = dict(
            self._db.execute("SELECT list, status FROM subscriptions WHERE subscriber_id = ?", (subscriber_id,))
        )
        changed = False
        for list_name in lists:
            state = existing.get(list_name)
            if state is None:
                self._db.execute(
                    "INSERT INTO subscriptions (subscriber_id, list, status, changed) VALUES (?, ?, 'active', ?)",
                    (subscriber_id, list_name, stamp),
                )
                changed = True
            elif state == "unsubscribed" and rejoin:
                self._db.execute(
                    """UPDATE subscriptions SET status = 'active', changed = ?
                       WHERE subscriber_id = ? AND list = ? AND status = 'unsubscribed'""",
                    (stamp, subscriber_id, list_name),
                )
                changed = True
        if changed:
            log.info("subscriber %s: joined %s", subscriber_id, ", ".join(lists))
        return changed

    def _leave_lists(self, subscriber_id: int, list_name: str | None, stamp: str) -> int:
        """Unsubscribe from one list (or all); how many subscriptions changed."""
        cursor = self._db.execute(
            """UPDATE subscriptions SET status = 'unsubscribed', changed = ?
               WHERE subscriber_id = ? AND status = 'active' AND (? IS NULL OR list = ?)""",
            (stamp, subscriber_id, list_name, list_name),
        )
        return cursor.rowcount

    def remove_subscriber(self, email: str, list_name: str | None = None, *, now: datetime) -> Subscriber | None:
        """Unsubscribe ``email`` from ``list_name``, or from every list when it
        is None; returns the subscriber after (None if there is no such address).

        Leaving every list, or the last active one, makes an active or pending
        address unsubscribed; a bounced or complained one keeps that status.
        The subscriptions are kept, marked unsubscribed, so an import will not
        add them back.
        """
        stamp = _iso(now)
        with self._subscriber_change():
            row = self._db.execute("SELECT id, status FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                return None
            subscriber_id, current = row
            changed = self._leave_lists(subscriber_id, list_name, stamp) > 0
            remaining = self._db.execute(
                "SELECT COUNT(*) FROM subscriptions WHERE subscriber_id = ? AND status = 'active'",
                (subscriber_id,),
            ).fetchone()[0]
            if current in ("active", "pending") and (list_name is None or (changed and remaining == 0)):
                self._db.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE id = ?", (subscriber_id,))
                changed = True
            if changed:
                self._db.execute("UPDATE subscribers SET changed = ? WHERE id = ?", (stamp, subscriber_id))
                log.info("subscriber %s: unsubscribed from %s", subscriber_id, list_name or "every list")
            return self._subscriber_by_id(subscriber_id)

    def set_subscriber_status(self, email: str, status: str, *, now: datetime) -> bool:
        """Set the address's own status (a hard bounce, a complaint); its
        subscriptions are kept, so an address set active again is back on
        its lists. True if the status changed. To unsubscribe someone, use
        ``remove_subscriber``."""
        self._check_subscriber_status(status)
        with self._subscriber_change():
            cursor = self._db.execute(
                "UPDATE subscribers SET status = ?, changed = ? WHERE email = ? AND status != ?",
                (status, _iso(now), email, status),
            )
        if cursor.rowcount:
            log.info("subscriber %s: status %s", email, status)
        return cursor.rowcount == 1
