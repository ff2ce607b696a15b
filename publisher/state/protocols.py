"""What each part of the state store offers, as ``typing.Protocol``: the
seam another backend plugs into (``StateStore`` bundles one of each).

The SQL repositories beside this module implement them on a ``Database``.
Methods that change something join the caller's transaction; those that
change what must last (subscribers, issues, deliveries, job runs, web
events) are refused by a read-only store, and the others' changes are not
kept by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from publisher.model import Subscriber
from publisher.state.records import (
    BuildRecord,
    CachedFetch,
    FeedOutput,
    IssueInfo,
    JobRun,
    PendingConfirmation,
    PageOutput,
    PendingDelivery,
    PostRecord,
)


class PostRepository(Protocol):
    """Each published post's identity and dates, by source."""

    def recall(self, source: str) -> PostRecord | None: ...

    def records(self) -> dict[str, PostRecord]: ...

    def remember(self, record: PostRecord) -> None: ...

    def forget(self, source: str) -> None: ...


class StoredPosts(PostRepository, Protocol):
    """The post identities of the store itself, which a build also compares
    cheaply to see whether another process changed them."""

    def snapshot(self) -> tuple[tuple, ...]: ...


class BuildRepository(Protocol):
    """What the builds leave for the next one: cached readings of content
    files (source -> (key, data, signature)), feed outputs, build records."""

    def cached_reads(self) -> dict[str, tuple[str, bytes, str | None]]: ...

    def remember_reads(self, entries: Iterable[tuple[str, str, bytes, str | None]]) -> None: ...

    def remember_read_signatures(self, signatures: Iterable[tuple[str, str, str]]) -> None: ...

    def forget_reads(self, sources: Iterable[str]) -> None: ...

    def feed_outputs(self) -> dict[str, FeedOutput]: ...

    def remember_feed_outputs(self, outputs: Iterable[FeedOutput]) -> None: ...

    def forget_feed_outputs(self, names: Iterable[str]) -> None: ...

    def page_outputs(self) -> dict[str, PageOutput]: ...

    def remember_page_outputs(self, outputs: Iterable[PageOutput]) -> None: ...

    def forget_page_outputs(self, names: Iterable[str]) -> None: ...

    def record(self, build: BuildRecord) -> None: ...

    def last(self) -> BuildRecord | None: ...


class FetchRepository(Protocol):
    """The last good response of each feed source's URL."""

    def get(self, url: str) -> CachedFetch | None: ...

    def remember(self, cached: CachedFetch) -> None: ...


class SubscriberRepository(Protocol):
    """Subscribers and their subscriptions, stored and loaded; the rules of
    who may join or come back are ``publisher.mail.subscribers``'."""

    def change(self) -> AbstractContextManager[None]: ...

    def find(self, email: str) -> Subscriber | None: ...

    def matching(self, list_name: str | None = None, status: str | None = None) -> list[Subscriber]: ...

    def audience(self, list_name: str) -> list[Subscriber]: ...

    def subscriptions(self, subscriber_id: int) -> dict[str, str]: ...

    def insert(
        self, email: str, name: str, status: str, lists: Iterable[str], *, source: str, created: datetime, now: datetime
    ) -> Subscriber: ...

    def set_status(self, subscriber_id: int, status: str) -> None: ...

    def set_name(self, subscriber_id: int, name: str) -> None: ...

    def touch(self, subscriber_id: int, now: datetime) -> None: ...

    def join(self, subscriber_id: int, lists: Iterable[str], now: datetime) -> None: ...

    def leave(self, subscriber_id: int, list_name: str | None, now: datetime) -> int: ...

    def mark_welcomed(self, subscriber_id: int, now: datetime) -> bool: ...


class IssueRepository(Protocol):
    """Each list's issues and the posts they carried."""

    def posted_ids(self, list_name: str) -> set[str]: ...

    def last_cutoff(self, list_name: str) -> datetime | None: ...

    def register_lists(self, names: list[str], *, now: datetime) -> None: ...

    def list_created(self, list_name: str) -> datetime | None: ...

    def next_number(self, list_name: str) -> int: ...

    def create(
        self,
        list_name: str,
        number: int,
        created: datetime,
        subject: str,
        post_ids: list[str],
        *,
        cutoff: datetime | None = None,
    ) -> int: ...

    def unfinished(self, list_name: str) -> int | None: ...

    def info(self, issue_id: int) -> IssueInfo: ...

    def all(self, list_name: str | None = None) -> list[IssueInfo]: ...

    def archived(self) -> list[IssueInfo]: ...

    def archived_one(self, list_name: str, number: int) -> IssueInfo | None: ...

    def finish(self, issue_id: int, *, now: datetime) -> bool: ...


class DeliveryRepository(Protocol):
    """An issue's audience, frozen as one delivery per recipient, and each delivery's fate."""

    def audience_size(self, list_name: str) -> int: ...

    def start(self, issue_id: int, rendered: str, list_name: str, *, now: datetime) -> int: ...

    def pending(self, issue_id: int, *, after: int = 0, limit: int | None = None) -> list[PendingDelivery]: ...

    def pending_count(self, issue_id: int) -> int: ...

    def counts(self, issue_id: int) -> dict[str, int]: ...

    def deliverable(self, delivery_id: int) -> bool: ...

    def deliverable_of(self, delivery_ids: list[int]) -> set[int]: ...

    def mark_sent(self, sent: list[tuple[int, int, str | None]], *, now: datetime) -> int: ...

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
    ) -> bool: ...

    def note_attempt(self, delivery_id: int, *, attempts: int, now: datetime, code: int | None, error: str) -> None: ...

    def claim(self, issue_id: int, owner: str, *, limit: int, now: datetime, until: datetime) -> list[PendingDelivery]: ...

    def extend(self, issue_id: int, owner: str, *, until: datetime) -> int: ...

    def release(self, issue_id: int, owner: str) -> int: ...

    def next_lease_end(self, issue_id: int, owner: str) -> datetime | None: ...


class JobRepository(Protocol):
    """Each scheduled job's last run."""

    def all(self) -> dict[str, JobRun]: ...

    def get(self, job: str) -> JobRun | None: ...

    def record(self, run: JobRun) -> None: ...


class WebEventRepository(Protocol):
    """The events the web server's rate limits count."""

    def take(self, kind: str, key: str, *, limit: int, since: datetime, now: datetime) -> bool: ...

    def forget(self, before: datetime) -> int: ...


class ConfirmationRepository(Protocol):
    """Pending subscribe requests, by the hash of their token (``publisher.state.confirmations``)."""

    def add(
        self, token_hash: str, email: str, lists: Sequence[str], name: str, *, now: datetime, expires: datetime
    ) -> int: ...

    def find(self, token_hash: str, *, now: datetime) -> PendingConfirmation | None: ...

    def consume(self, confirmation_id: int, now: datetime) -> bool: ...

    def withdraw(self, email: str) -> int: ...

    def purge(self, now: datetime) -> int: ...
