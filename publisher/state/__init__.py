"""The state store: what publisher remembers between runs (post identity,
feed outputs, fetched sources, subscribers, issues and deliveries, job runs,
web events), and the locks between processes that share it."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "StateStore": "store",
        "Database": "database",
        "BounceEvent": "bounces",
        "BounceRepository": "bounces",
        "DeliveryRef": "bounces",
        "is_busy": "database",
        "StoreBusy": "database",
        "BuildRecord": "records",
        "CachedFetch": "records",
        "FeedOutput": "records",
        "PageOutput": "records",
        "IssueInfo": "records",
        "JobRun": "records",
        "PendingDelivery": "records",
        "PostRecord": "records",
        "BuildRepository": "protocols",
        "DeliveryRepository": "protocols",
        "FetchRepository": "protocols",
        "IssueRepository": "protocols",
        "JobRepository": "protocols",
        "PostRepository": "protocols",
        "SubscriberRepository": "protocols",
        "WebEventRepository": "protocols",
        "ProcessLock": "locks",
        "SchedulerLock": "locks",
        "SchedulerLocked": "locks",
        "SendLock": "locks",
        "SendLocked": "locks",
        "LockHeld": "locks",
        "scheduler_lock": "locks",
        "send_lock": "locks",
    },
)

__all__ = [
    "BounceEvent",
    "BounceRepository",
    "DeliveryRef",
    "BuildRecord",
    "BuildRepository",
    "CachedFetch",
    "Database",
    "DeliveryRepository",
    "FeedOutput",
    "PageOutput",
    "FetchRepository",
    "IssueInfo",
    "IssueRepository",
    "JobRepository",
    "JobRun",
    "LockHeld",
    "PendingDelivery",
    "PostRecord",
    "PostRepository",
    "ProcessLock",
    "SchedulerLock",
    "SchedulerLocked",
    "SendLock",
    "SendLocked",
    "StateStore",
    "StoreBusy",
    "SubscriberRepository",
    "WebEventRepository",
    "is_busy",
    "scheduler_lock",
    "send_lock",
]

if TYPE_CHECKING:
    from publisher.state.bounces import BounceEvent, BounceRepository, DeliveryRef
    from publisher.state.database import Database, StoreBusy, is_busy
    from publisher.state.locks import (
        LockHeld, ProcessLock, SchedulerLock, SchedulerLocked, SendLock, SendLocked, scheduler_lock, send_lock,
    )
    from publisher.state.protocols import (
        BuildRepository,
        DeliveryRepository,
        FetchRepository,
        IssueRepository,
        JobRepository,
        PostRepository,
        SubscriberRepository,
        WebEventRepository,
    )
    from publisher.state.records import (
        BuildRecord,
        CachedFetch,
        FeedOutput,
        PageOutput,
        IssueInfo,
        JobRun,
        PendingDelivery,
        PostRecord,
    )
    from publisher.state.store import StateStore
