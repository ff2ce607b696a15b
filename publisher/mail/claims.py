"""Deliveries claimed in leased batches, for a state store several senders
share (``[state] url``, or one ``publisher send`` of several processes,
``[mail] processes``), and the job a delivery becomes in ``deliver_issue``.

    claims = Claims(store, issue_id, config, clock, stop)
    for job in claims.jobs():   # a batch at a time, each leased to this sender
        ...
    claims.release()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from publisher.clock import Clock
from publisher.config import Config
from publisher.state import PendingDelivery, StateStore

log = logging.getLogger("publisher.send")


@dataclass
class _Job:
    delivery: PendingDelivery
    attempts: int  # tries recorded in the store, across every run
    tries: int = 0  # tries in this run: [mail] attempts bounds these, and the backoff grows with them



class Claims:
    """Deliveries claimed in batches, for a store several senders share
    (``[state] url``): each batch is leased to this sender for ``[state]
    lease`` seconds, renewed at each new claim; what a crashed sender held
    is taken over once its lease runs out, so at most the messages it had
    in flight go out twice. When nothing is left to claim but another
    sender still holds pending deliveries, this one (its own work done)
    waits for them to be sent or for the lease to run out."""

    def __init__(self, store: StateStore, issue_id: int, config: Config, clock: Clock, stop: threading.Event | None):
        self.store, self.issue_id, self.clock, self.stop = store, issue_id, clock, stop
        self.batch, self.lease = config.state.batch, timedelta(seconds=config.state.lease)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew_at = 0.0

    def renew(self) -> None:
        """Keep this sender's claims for another lease; due again after a quarter of it
        (a batch may take longer than one lease to send)."""
        until = self.clock.now() + self.lease
        self.store.retry(lambda: self.store.deliveries.extend(self.issue_id, self.owner, until=until))
        self._renew_at = self.clock.monotonic() + self.renew_every

    def keep(self) -> None:
        """Renew the claims when a quarter of the lease has passed since they
        were last: called as the sender goes, whether or not it takes new
        jobs, so a slow send never lets them lapse while it holds them."""
        if self.clock.monotonic() >= self._renew_at:
            self.renew()

    @property
    def renew_every(self) -> float:
        return self.lease.total_seconds() / 4

    def jobs(self) -> Iterator[_Job]:
        while self.stop is None or not self.stop.is_set():
            now = self.clock.now()
            store, until = self.store, now + self.lease
            self.renew()
            page = store.retry(
                lambda: store.deliveries.claim(self.issue_id, self.owner, limit=self.batch, now=now, until=until)
            )
            if page:
                log.debug("issue %s: %s claimed %d deliveries", self.issue_id, self.owner, len(page))
                for delivery in page:
                    self.keep()
                    yield _Job(delivery, delivery.attempts)
                continue
            return

    def others_hold(self) -> bool:
        """Does another sender hold pending deliveries of the issue? If so,
        wait a moment (up to a second, or until its lease runs out) first."""
        if self.stop is not None and self.stop.is_set():
            return False
        held = self.store.deliveries.next_lease_end(self.issue_id, self.owner)
        if held is None:
            return False
        self.renew()
        self.clock.sleep(min(1.0, max(0.05, (held - self.clock.now()).total_seconds())))
        return True

    def release(self) -> None:
        self.store.retry(lambda: self.store.deliveries.release(self.issue_id, self.owner))
