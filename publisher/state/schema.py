"""The state database's schema, as migrations from one version to the next,
and how times are stored in it (ISO 8601 text, in UTC, which sorts as the
times do).

Each migration is a script of statements separated by ``;``, applied in one
transaction with the new version number (``publisher.state.database`` for
SQLite, ``publisher.state.postgres`` for PostgreSQL). One script serves
both: it is written as SQLite reads it, with SQLite's types (INTEGER, TEXT,
BLOB; ``id INTEGER PRIMARY KEY`` for a table's own id), and each dialect's
``ddl`` turns a statement into its database's (PostgreSQL: BIGINT, TEXT
COLLATE "C", BYTEA, an identity column). Where the two cannot share a
statement, the migration is a mapping of scripts by dialect name
(``{"sqlite": "...", "postgresql": "..."}``).

Writing a migration that runs on both:
- types in upper case: INTEGER (64-bit on both), TEXT (compared byte by
  byte on both), BLOB; a table's own id is ``id INTEGER PRIMARY KEY``
  (``Database.insert`` returns it); times are TEXT written by ``iso``;
  true/false is INTEGER 0/1;
- statements both take: CREATE TABLE/INDEX (partial indexes too), ALTER
  TABLE ADD/RENAME/DROP COLUMN, UPDATE/INSERT ... ON CONFLICT; not PRAGMA,
  INSERT OR IGNORE/REPLACE, or a table rebuild (use the mapping form);
- a new table is created after the tables it references: ``state copy``
  copies tables in the order the migrations create them (``table_names``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone

# Each entry moves the schema from version N to N+1 (the database keeps the
# number: ``Database.open`` applies those it has not had yet). Never edit one
# that has shipped: add the next.
MIGRATIONS: tuple[str | Mapping[str, str], ...] = (
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
    # 10: bounces and complaints. bounce_messages: each bounce message (or
    # webhook notification) dealt with, by the digest of its bytes (or the
    # provider's id), so one read twice counts once; bounce_events: what it
    # said of a subscriber (hard, soft, complaint), with the issue it was about.
    """
    CREATE TABLE bounce_messages (
        key TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        verdict TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL
    );
    CREATE INDEX bounce_messages_at ON bounce_messages(at);
    CREATE TABLE bounce_events (
        id INTEGER PRIMARY KEY,
        message_key TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        issue_id INTEGER REFERENCES issues(id),
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
        status TEXT NOT NULL DEFAULT '',
        diagnostic TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (message_key, subscriber_id)
    );
    CREATE INDEX bounce_events_subscriber ON bounce_events(subscriber_id, kind, at);
    CREATE INDEX deliveries_message_id ON deliveries(message_id);
    """,
    # 11: the public web surface hardened. confirmations: each subscribe
    # request, found by the hash of its random token, carrying the name
    # asked for until the owner confirms (then ``confirmed``); it expires. An address is one
    # mailbox whatever the case of its letters (subscribers_mailbox).
    # web_events are pruned by time (web_events_at). welcomed: when the
    # welcome email went out, so it goes once. A pending address's name was
    # typed by whoever filled in the form: it is dropped, for its owner to
    # set when confirming.
    """
    CREATE TABLE confirmations (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        mailbox TEXT NOT NULL,
        email TEXT NOT NULL,
        lists TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        confirmed TEXT
    );
    CREATE INDEX confirmations_mailbox ON confirmations(mailbox);
    CREATE INDEX confirmations_expires ON confirmations(expires);
    CREATE INDEX web_events_at ON web_events(at);
    CREATE INDEX subscribers_mailbox ON subscribers(lower(email));
    ALTER TABLE subscribers ADD COLUMN welcomed TEXT;
    UPDATE subscribers SET name = '' WHERE status = 'pending';
    """,
    # 12: what goes into an issue. lists: when each list first appeared in
    # the config (its first issue holds the posts since then); issues.cutoff:
    # the moment an issue's posts were chosen (the next issue takes what came
    # after it); posts.date: a post's own date, NULL when undated (a renamed
    # file with the same date and slug is recognised by it). Lists that
    # already have issues date from their first.
    """
    CREATE TABLE lists (
        name TEXT PRIMARY KEY,
        created TEXT NOT NULL
    );
    INSERT INTO lists (name, created) SELECT list, MIN(created) FROM issues GROUP BY list;
    ALTER TABLE issues ADD COLUMN cutoff TEXT;
    ALTER TABLE posts ADD COLUMN date TEXT;
    """,
    # 13: several senders on one issue (PostgreSQL): a pending delivery is
    # claimed by one sender until lease_until; a crashed sender's claims
    # are taken over once their lease has run out.
    """
    ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
    ALTER TABLE deliveries ADD COLUMN lease_until TEXT;
    CREATE INDEX deliveries_lease ON deliveries(issue_id, status, lease_until);
    """,
    # 14: each file of the pages folder a build wrote (pages, redirects,
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


def table_names() -> list[str]:
    """The schema's tables in the order the migrations create them (a
    table's parents before it)."""
    names: list[str] = []
    for migration in MIGRATIONS:
        script = migration if isinstance(migration, str) else migration["sqlite"]
        names += [name for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", script) if name not in names]
    return names


def migration_script(migration: str | Mapping[str, str], dialect: str) -> list[str]:
    """The statements of one migration for the database ``dialect`` names."""
    script = migration if isinstance(migration, str) else migration[dialect]
    return [statement for statement in script.split(";") if statement.strip()]


def iso(moment: datetime) -> str:
    """``moment`` as stored: ISO 8601 in UTC."""
    return moment.astimezone(timezone.utc).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def from_optional_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
