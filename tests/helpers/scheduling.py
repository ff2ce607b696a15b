"""The scheduler of a site on a stepped clock, for the scheduler tests."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from publisher.app.scheduler import Scheduler
from publisher.config import load_config
from publisher.mail.transports import OutboxTransport
from publisher.state import JobRun, StateStore

from ..conftest import SteppedClock


class Harness:
    """A site's scheduler on a stepped clock; ``restart()`` is a new process."""

    def __init__(self, site: Path, start: datetime):
        self.site = site
        self.config = load_config(site / "publisher.toml")
        self.clock = SteppedClock(start)
        self.store = StateStore.open(self.config.state.path)
        self.stop = threading.Event()
        self.restart()

    def restart(self) -> Scheduler:
        self.scheduler = Scheduler(
            self.config,
            self.store,
            clock=self.clock,
            transport=lambda: OutboxTransport(self.config.mail.outbox),
            stop=self.stop,
        )
        return self.scheduler

    def look_at(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.scheduler.run_due()

    def issues(self) -> list[tuple[int, int, str]]:
        """(number, posts, status) of each issue of the list, oldest first."""
        rows = self.store.database.query(
            """SELECT i.number, COUNT(p.post_id), i.status FROM issues i
               LEFT JOIN issue_posts p ON p.issue_id = i.id WHERE i.list = 'daily'
               GROUP BY i.id ORDER BY i.number"""
        )
        return [tuple(row) for row in rows]

    def run(self, job: str = "digest:daily") -> JobRun:
        return self.store.jobs.get(job)

    def messages(self) -> int:
        folder = self.config.mail.outbox / "new"
        return sum(1 for _ in folder.iterdir()) if folder.exists() else 0

    def close(self) -> None:
        self.store.close()
