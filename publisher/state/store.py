"""The state store: what publisher remembers between runs, one repository
per concern over one database.

    store = StateStore.open(Path(".publisher/state.db"))
    with store.transaction():
        record = store.posts.recall("seeds/a.txt")
        store.posts.remember(PostRecord(...))
    store.close()

Every change happens inside ``transaction()`` (or a transaction of its
own), so a crash leaves the file as it was before or after, never in
between. A store opened ``readonly`` writes nothing to the file: see
``publisher.state.database`` for what its changes become.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from publisher.state.bounces import BounceRepository, SqlBounceRepository
from publisher.state.confirmations import SqlConfirmationRepository
from publisher.state.database import Database
from publisher.state.issues import SqlDeliveryRepository, SqlIssueRepository
from publisher.state.jobs import SqlJobRepository
from publisher.state.posts import SqlBuildRepository, SqlFetchRepository, SqlPostRepository
from publisher.state.protocols import (
    BuildRepository,
    ConfirmationRepository,
    DeliveryRepository,
    FetchRepository,
    IssueRepository,
    JobRepository,
    StoredPosts,
    SubscriberRepository,
    WebEventRepository,
)
from publisher.state.subscribers import SqlSubscriberRepository
from publisher.state.web_events import SqlWebEventRepository

if TYPE_CHECKING:
    from publisher.config import StateSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class StateStore:
    """The repositories of one state database, and its transactions.

    ``posts``: each post's identity; ``builds``: cached readings, feed
    outputs and build records; ``fetches``: feed sources' last responses;
    ``subscribers``; ``issues`` and their ``deliveries``; ``jobs``: the
    scheduler's runs; ``web_events``: the web server's rate limits;
    ``bounces``: bounce messages dealt with and the events they recorded.
    ``confirmations``: pending subscribe requests.
    """

    def __init__(
        self,
        database: Database,
        *,
        posts: StoredPosts,
        builds: BuildRepository,
        fetches: FetchRepository,
        subscribers: SubscriberRepository,
        issues: IssueRepository,
        deliveries: DeliveryRepository,
        jobs: JobRepository,
        web_events: WebEventRepository,
        bounces: BounceRepository,
        confirmations: ConfirmationRepository,
    ):
        self.database = database
        self.posts = posts
        self.builds = builds
        self.fetches = fetches
        self.subscribers = subscribers
        self.issues = issues
        self.deliveries = deliveries
        self.jobs = jobs
        self.web_events = web_events
        self.bounces = bounces
        self.confirmations = confirmations

    @classmethod
    def open(cls, path: Path, readonly: bool = False, *, check: bool = True, wait: float = 10.0) -> StateStore:
        """Open (creating when writable) the SQLite store at ``path``; see ``Database.open``.

        A read-only store of a file that does not exist yet is empty.
        """
        return cls.on(Database.open(path, readonly=readonly, check=check, wait=wait))

    @classmethod
    def connect(
        cls, settings: StateSettings, *, readonly: bool = False, check: bool = True, wait: float = 10.0
    ) -> StateStore:
        """The store ``[state]`` names: PostgreSQL at ``url`` when it is set, else SQLite at ``path``
        (``wait``: how long SQLite waits for another process's write lock)."""
        if settings.url is None:
            return cls.open(settings.path, readonly, check=check, wait=wait)
        from publisher.state.postgres import PostgresDatabase

        return cls.on(
            PostgresDatabase.open(
                settings.url, password=settings.password, pool=settings.pool, timeout=settings.timeout,
                reconnect=settings.reconnect, readonly=readonly, check=check,
            )
        )

    @classmethod
    def migrate(cls, settings: StateSettings) -> tuple[int, int]:
        """Bring the store ``[state]`` names up to this code's schema; the versions before and after."""
        from publisher.state.schema import MIGRATIONS

        if settings.url is None:
            before = Database.peek_version(settings.path)
            cls.open(settings.path).close()
            return before, len(MIGRATIONS)
        store = cls.connect(settings, check=False)
        try:
            return store.database.migrate(MIGRATIONS)
        finally:
            store.close()

    @classmethod
    def on(cls, database: Database) -> StateStore:
        """The SQL repositories over ``database``."""
        return cls(
            database,
            posts=SqlPostRepository(database),
            builds=SqlBuildRepository(database),
            fetches=SqlFetchRepository(database),
            subscribers=SqlSubscriberRepository(database),
            issues=SqlIssueRepository(database),
            deliveries=SqlDeliveryRepository(database),
            jobs=SqlJobRepository(database),
            web_events=SqlWebEventRepository(database),
            bounces=SqlBounceRepository(database),
            confirmations=SqlConfirmationRepository(database),
        )

    @property
    def persists(self) -> bool:
        """Are changes kept? (Not in a store opened read-only.)"""
        return self.database.persists

    def transaction(self) -> AbstractContextManager[None]:
        """All changes inside commit together, or none do."""
        return self.database.transaction()

    def retry(self, change: Callable[[], T], *, attempts: int = 5) -> T:
        """Run ``change`` in a transaction, again if the database connection
        was lost halfway (``StateUnavailable``: nothing of it was kept, or
        what was is harmless to write twice, as every state transition is
        guarded by its WHERE). The database's own reconnection waits the
        outage out between attempts."""
        from publisher.errors import StateUnavailable

        for attempt in range(1, attempts + 1):
            try:
                with self.transaction():
                    return change()
            except StateUnavailable as exc:
                if attempt == attempts:
                    raise
                log.warning("%s; trying again", exc)
                time.sleep(min(0.05 * 2**attempt, 1.0))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.database.close()
