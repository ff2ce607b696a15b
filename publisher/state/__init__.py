"""The state store: what publisher remembers between runs (post identity,
feed outputs, fetched sources, subscribers, issues and deliveries, job runs,
web events), and the locks between processes that share it."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "StateStore": "store",
        "BuildRecord": "store",
        "CachedFetch": "store",
        "FeedOutput": "store",
        "JobRun": "store",
        "PendingDelivery": "store",
        "PostRecord": "store",
        "ProcessLock": "locks",
        "SchedulerLock": "locks",
        "SchedulerLocked": "locks",
        "SendLock": "locks",
        "LockHeld": "locks",
    },
)

__all__ = [
    "BuildRecord",
    "CachedFetch",
    "FeedOutput",
    "JobRun",
    "LockHeld",
    "PendingDelivery",
    "PostRecord",
    "ProcessLock",
    "SchedulerLock",
    "SchedulerLocked",
    "SendLock",
    "StateStore",
]

if TYPE_CHECKING:
    from publisher.state.locks import LockHeld, ProcessLock, SchedulerLock, SchedulerLocked, SendLock
    from publisher.state.store import (
        BuildRecord,
        CachedFetch,
        FeedOutput,
        JobRun,
        PendingDelivery,
        PostRecord,
        StateStore,
    )
