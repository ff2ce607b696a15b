"""The state database's schema, as migrations from one version to the next,
and how times are stored in it (ISO 8601 text, in UTC, which sorts as the
times do).

Each migration is a script of statements separated by ``;``, applied in one
transaction with the new version number (``publisher.state.database``).
"""

from __future__ import annotations

from datetime import datetime, timezone

# Each entry moves the schema from version N to N+1 (the database keeps the
# number: ``Database.open`` applies those it has not had yet). Never edit one
# that has shipped: add the next.
MIGRATIONS: tuple[str, ...] = (
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
    # 10: each file of the pages folder a build wrote (pages, redirects,
    # copied assets): the digest of what it was made from, its size and
    # mtime once written, and the id of the post it shows (so a post that
    # moves leaves a redirect where it was).
    """
    CREATE TABLE page_outputs (
        name TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        post TEXT
    );
    """,
)


def iso(moment: datetime) -> str:
    """``moment`` as stored: ISO 8601 in UTC."""
    return moment.astimezone(timezone.utc).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def from_optional_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
