"""The values the state store keeps and gives back, apart from the core's
``Subscriber``: frozen, and the same whatever backend holds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PostRecord:
    """What the store keeps of a published post."""

    source: str
    guid: str
    slug: str
    first_seen: datetime
    content_hash: str
    updated: datetime
    date: datetime | None = None  # the post's own date; None when undated (dated when first seen)


@dataclass(frozen=True)
class BuildRecord:
    finished: datetime
    posts: int
    rejected: int
    written: int


@dataclass(frozen=True)
class FeedOutput:
    """A feed file as the build left it: the digest of its inputs, its size and mtime."""

    name: str
    digest: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class PageOutput:
    """A file of the pages folder as the build left it; ``post`` is the id of the post it shows."""

    name: str
    digest: str
    size: int
    mtime_ns: int
    post: str | None = None


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


@dataclass(frozen=True)
class IssueInfo:
    """An issue as recorded; ``rendered`` (its frozen rendering, JSON) only
    where asked for, else None."""

    id: int
    list_name: str
    number: int
    created: datetime
    subject: str
    status: str
    rendered: str | None
    finished: datetime | None


@dataclass(frozen=True)
class PendingDelivery:
    id: int
    subscriber_id: int
    email: str
    name: str
    attempts: int


@dataclass(frozen=True)
class JobRun:
    """A scheduled job's last run: the slot it last dealt with (ran, or
    skipped as too late), when that run started and finished, how it ended
    (ok, error, skipped, stopped, running, or "new" for a job seen for the
    first time) and a one-line message."""

    job: str
    last_slot: datetime | None
    started: datetime | None
    finished: datetime | None
    status: str | None
    message: str | None


@dataclass(frozen=True)
class PendingConfirmation:
    """A subscribe request waiting for its owner: the address as written,
    the lists and the name asked for, and when its link stops working."""

    id: int
    email: str
    lists: tuple[str, ...]
    name: str
    created: datetime
    expires: datetime
    confirmed: datetime | None  # when its owner confirmed it (a second click changes nothing)
