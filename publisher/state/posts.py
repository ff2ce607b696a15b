"""What the store keeps for the content and feed stages: each post's
identity (``SqlPostRepository``), what makes a rebuild cheap and the record
of builds (``SqlBuildRepository``), and each feed source's last good
response (``SqlFetchRepository``).

Losing any of the caches costs one slow build, nothing else; post identity
is what must never change once published. The writing methods join the
caller's transaction; a read-only database keeps none of their changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from publisher.state.database import Database
from publisher.state.records import BuildRecord, CachedFetch, FeedOutput, PageOutput, PostRecord
from publisher.state.schema import from_iso, from_optional_iso, iso

_POST_COLUMNS = "source, guid, slug, first_seen, content_hash, updated, date"


def _post_record(row: tuple) -> PostRecord:
    return PostRecord(row[0], row[1], row[2], from_iso(row[3]), row[4], from_iso(row[5]), from_optional_iso(row[6]))


def records_of(snapshot: tuple[tuple, ...]) -> dict[str, PostRecord]:
    """``SqlPostRepository.records()`` of what ``snapshot()`` gave."""
    return {row[0]: _post_record(row) for row in snapshot}


class SqlPostRepository:
    """Each published post's identity (guid and slug, fixed the first time
    it is published) and dates (first seen; updated when its content hash
    changes), by the source it was read from."""

    def __init__(self, database: Database):
        self._db = database

    def recall(self, source: str) -> PostRecord | None:
        row = self._db.query_one(f"SELECT {_POST_COLUMNS} FROM posts WHERE source = ?", (source,))
        return _post_record(row) if row else None

    def records(self) -> dict[str, PostRecord]:
        """Every remembered post, by source (one query, for a whole build)."""
        return records_of(self.snapshot())

    def snapshot(self) -> tuple[tuple, ...]:
        """The post records as stored, cheap to compare: equal snapshots,
        equal ``records()`` (``records_of`` makes them from one)."""
        return tuple(self._db.query(f"SELECT {_POST_COLUMNS} FROM posts ORDER BY source"))

    def remember(self, record: PostRecord) -> None:
        """Store ``record``; an unchanged record writes nothing."""
        if self.recall(record.source) == record:
            return
        self._db.execute(
            f"""INSERT INTO posts ({_POST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(source) DO UPDATE SET
                 guid = excluded.guid, slug = excluded.slug,
                 content_hash = excluded.content_hash, updated = excluded.updated, date = excluded.date""",
            (
                record.source,
                record.guid,
                record.slug,
                iso(record.first_seen),
                record.content_hash,
                iso(record.updated),
                iso(record.date) if record.date else None,
            ),
        )

    def forget(self, source: str) -> None:
        """Drop what is remembered of ``source`` (its file is gone)."""
        self._db.execute("DELETE FROM posts WHERE source = ?", (source,))


class SqlBuildRepository:
    """What the builds leave for the next one (``content.PostCache``,
    ``feeds.build_site``): each content file's last reading, what each feed
    file was made from, and the record of each build that wrote something."""

    def __init__(self, database: Database):
        self._db = database

    def cached_reads(self) -> dict[str, tuple[str, bytes, str | None]]:
        """Every cached reading: source -> (key, data, signature)."""
        rows = self._db.query("SELECT source, key, data, signature FROM read_cache")
        return {source: (key, bytes(data), signature) for source, key, data, signature in rows}

    def remember_reads(self, entries: Iterable[tuple[str, str, bytes, str | None]]) -> None:
        """Keep (source, key, data, signature) readings, replacing each source's last one."""
        self._db.executemany(
            """INSERT INTO read_cache (source, key, data, signature) VALUES (?, ?, ?, ?)
               ON CONFLICT(source) DO UPDATE SET
                 key = excluded.key, data = excluded.data, signature = excluded.signature""",
            entries,
        )

    def remember_read_signatures(self, signatures: Iterable[tuple[str, str, str]]) -> None:
        """Keep (source, key, signature): how a file whose reading is cached under ``key`` looks now."""
        self._db.executemany(
            "UPDATE read_cache SET signature = ? WHERE source = ? AND key = ?",
            ((signature, source, key) for source, key, signature in signatures),
        )

    def forget_reads(self, sources: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM read_cache WHERE source = ?", ((s,) for s in sources))

    def feed_outputs(self) -> dict[str, FeedOutput]:
        """Every feed file the last builds wrote, by name."""
        rows = self._db.query("SELECT name, digest, size, mtime_ns FROM feed_outputs")
        return {row[0]: FeedOutput(*row) for row in rows}

    def remember_feed_outputs(self, outputs: Iterable[FeedOutput]) -> None:
        self._db.executemany(
            """INSERT INTO feed_outputs (name, digest, size, mtime_ns) VALUES (?, ?, ?, ?)
               ON CONFLICT(name) DO UPDATE SET
                 digest = excluded.digest, size = excluded.size, mtime_ns = excluded.mtime_ns""",
            ((o.name, o.digest, o.size, o.mtime_ns) for o in outputs),
        )

    def forget_feed_outputs(self, names: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM feed_outputs WHERE name = ?", ((n,) for n in names))

    def page_outputs(self) -> dict[str, PageOutput]:
        """Every file of the pages folder the last builds wrote, by name."""
        rows = self._db.query("SELECT name, digest, size, mtime_ns, post FROM page_outputs")
        return {row[0]: PageOutput(*row) for row in rows}

    def remember_page_outputs(self, outputs: Iterable[PageOutput]) -> None:
        self._db.executemany(
            """INSERT INTO page_outputs (name, digest, size, mtime_ns, post) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(name) DO UPDATE SET
                 digest = excluded.digest, size = excluded.size, mtime_ns = excluded.mtime_ns, post = excluded.post""",
            ((o.name, o.digest, o.size, o.mtime_ns, o.post) for o in outputs),
        )

    def forget_page_outputs(self, names: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM page_outputs WHERE name = ?", ((n,) for n in names))

    def record(self, build: BuildRecord) -> None:
        self._db.execute(
            "INSERT INTO builds (finished, posts, rejected, written) VALUES (?, ?, ?, ?)",
            (iso(build.finished), build.posts, build.rejected, build.written),
        )

    def last(self) -> BuildRecord | None:
        row = self._db.query_one("SELECT finished, posts, rejected, written FROM builds ORDER BY id DESC LIMIT 1")
        return BuildRecord(from_iso(row[0]), row[1], row[2], row[3]) if row else None


class SqlFetchRepository:
    """The last good response of each feed source's URL, for conditional
    GET and for publishing from when its upstream fails."""

    def __init__(self, database: Database):
        self._db = database

    def get(self, url: str) -> CachedFetch | None:
        """The last good response of ``url``, if one was remembered."""
        row = self._db.query_one(
            "SELECT url, final_url, etag, last_modified, body, fetched FROM fetch_cache WHERE url = ?", (url,)
        )
        if row is None:
            return None
        return CachedFetch(row[0], row[1], row[2], row[3], bytes(row[4]), from_iso(row[5]))

    def remember(self, cached: CachedFetch) -> None:
        """Keep ``cached`` as the last good response of its URL."""
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
                iso(cached.fetched),
            ),
        )
