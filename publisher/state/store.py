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

from contextlib import AbstractContextManager
from pathlib import Path

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
    PostRepository,
    SubscriberRepository,
    WebEventRepository,
)
from publisher.state.subscribers import SqlSubscriberRepository
from publisher.state.web_events import SqlWebEventRepository


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
        posts: PostRepository,
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

    def close(self) -> None:
        self.database.close()
