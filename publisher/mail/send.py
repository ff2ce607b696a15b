"""Sending a list's digest: an issue, one delivery per recipient, exactly once.

``prepare_issue`` creates the list's next issue (or finds the unfinished
one): the posts, the rendering and the audience are frozen in the state
store in one transaction. ``deliver_issue`` then works through its pending
deliveries with a pool of transport connections. Each delivery moves
``pending -> sent`` (after the server accepted it), ``failed`` (a permanent
refusal; hard bounces suppress the address) or ``skipped`` (the address left
the list meanwhile), committed as it happens (the messages sent meanwhile by
other connections in the same transaction), so a crash loses at most the
messages in flight: one per connection. Transient failures are retried with
exponential backoff and jitter, then left pending for the next run.

The state store is only touched from the calling thread; worker threads
compose and send. A worker takes its next message only after the previous
one's outcome is committed, which is what bounds duplicates after a crash.

    issue_id = prepare_issue(config, store, config.lists["daily"], now=now)
    report = deliver_issue(config, store, transport, issue_id, clock=SystemClock())
"""

from __future__ import annotations

import heapq
import json
import logging
import queue
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from publisher.clock import Clock
from publisher.config import Config
from publisher.text import mask_email
from publisher.content import PostCache, load_feed_sources, load_posts, publish
from publisher.mail.bounces.verp import envelope_sender
from publisher.mail.digest import IssueMessages, next_issues
from publisher.errors import DeliveryError, PublisherError, TransportError
from publisher.model import DigestList, Issue, RenderedIssue, Site
from publisher.mail.render import render_issue
from publisher.mail.subscribers import set_subscriber_status
from publisher.mail.unsubscribe_journal import UnsubscribeJournal
from publisher.mail.claims import Claims, _Job
from publisher.state import PendingDelivery, StateStore, is_busy

# Only for annotations: the transports (smtplib, ssl) load when one is made.
if TYPE_CHECKING:
    from publisher.mail.transports import Connection, Transport

log = logging.getLogger("publisher.send")

HARD_BOUNCES = frozenset({550, 551, 553})
# Pending deliveries read from the store at a time.
PAGE_SIZE = 1000


class RateLimiter:
    """At most ``rate`` messages per second across the pool (0: no limit).

    Evenly spaced, no bursts: the n-th message may start (n-1)/rate seconds
    after the first.
    """

    def __init__(self, rate: float, clock: Clock):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._next: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock.monotonic()
        if self._next is None or self._next < now:
            self._next = now
        if self._next > now:
            self.clock.sleep(self._next - now)
        self._next += self.interval


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before try ``attempt + 1``: doubling from ``base``,
    capped, with jitter (half to all of it) so retries do not arrive in step."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling * (0.5 + rng.random() / 2)


class SendError(PublisherError):
    """The send cannot start or go on (no transport, the server refused us)."""


@dataclass
class SendReport:
    """What a run did to one issue."""

    issue_id: int | None
    list_name: str
    number: int | None = None
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    suppressed: int = 0
    retries: int = 0
    dry_run: bool = False
    stopped: str | None = None  # why the run ended early
    failures: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.pending == 0 and self.stopped is None


def _rendered_json(rendered: RenderedIssue, issue: Issue) -> str:
    data = {"rendered": asdict(rendered), "web_url": issue.web_url}
    return json.dumps(data, ensure_ascii=False)


def frozen_issue(config: Config, digest_list: DigestList, number: int, stored: str) -> tuple[Issue, RenderedIssue]:
    data = json.loads(stored)
    rendered = RenderedIssue(**data["rendered"])
    issue = Issue(list=digest_list, number=number, posts=(), created=datetime.now(timezone.utc), web_url=data["web_url"])
    return issue, rendered


def current_site(config: Config, store: StateStore, *, now: datetime) -> Site:
    """The site as a build would publish it now: files and feed sources.

    Publishing remembers the posts' identities, and records the lists the
    store has not seen yet as created ``now`` (a read-only store keeps
    neither).
    """
    cache = PostCache(store)  # what the last build read is not parsed again
    loaded = load_posts(config, cache)
    imported = load_feed_sources(config, store, now)
    with store.transaction():
        site, _ = publish(loaded.posts + imported.posts, store=store.posts, now=now, config=config, cache=cache)
        if store.persists:
            store.issues.register_lists(list(config.lists), now=now)
        cache.save()
    return site


def next_rendered_issues(
    config: Config, store: StateStore, digest_list: DigestList, *, now: datetime, backfill: int | None = None
) -> list[tuple[Issue, RenderedIssue]]:
    """The list's next issues (``digest.next_issues``) and their renderings;
    empty when nothing is new. Nothing about the issues is recorded."""
    site = current_site(config, store, now=now)
    templates = config.mail.templates / "email"
    issues = next_issues(site, digest_list, store, now=now, backfill=backfill)
    return [(issue, render_issue(issue, site.info, templates=templates)) for issue in issues]


def nothing_to_send(store: StateStore, digest_list: DigestList) -> str:
    """Why ``prepare_issue`` made no issue: ``"no active subscribers"`` or
    ``"no new posts since issue N"`` (``"… since the list was created"`` before the first)."""
    if not store.deliveries.audience_size(digest_list.name):
        return "no active subscribers"
    issues = store.issues.all(digest_list.name)
    return f"no new posts since issue {issues[0].number}" if issues else "no new posts since the list was created"


def prepare_issue(
    config: Config, store: StateStore, digest_list: DigestList, *, now: datetime, backfill: int | None = None
) -> int | None:
    """The id of the issue to deliver: the unfinished one, else a new one.

    None when the list has no new posts or no active subscribers. New
    issues (one, or one per post in post mode), their renderings and their
    audience are recorded in one transaction, with ``now`` as the cut-off;
    the first is returned, and each following one is the list's
    unfinished issue once the one before is sent.
    """
    _apply_journal(config, store, now)
    unfinished = store.issues.unfinished(digest_list.name)
    if unfinished is not None:
        log.info("list %s: resuming issue %s", digest_list.name, unfinished)
        return unfinished
    found = next_rendered_issues(config, store, digest_list, now=now, backfill=backfill)
    if not found:
        return None
    ids = []
    with store.transaction():
        # The audience is fixed in the same transaction that creates the issue.
        if not store.deliveries.audience_size(digest_list.name):
            log.info("list %s: no active subscribers; no issue created", digest_list.name)
            return None
        for issue, rendered in found:
            issue_id = store.issues.create(
                digest_list.name, issue.number, now, rendered.subject, [p.id for p in issue.posts], cutoff=now
            )
            recipients = store.deliveries.start(issue_id, _rendered_json(rendered, issue), digest_list.name, now=now)
            ids.append(issue_id)
            log.info(
                "list %s: issue %s created with %d posts for %d recipients",
                digest_list.name, issue.number, len(issue.posts), recipients,
            )
    return ids[0]


class _Worker(threading.Thread):
    """One connection: composes and sends what it is handed, one at a time."""

    def __init__(
        self,
        transport: Transport,
        build: Callable[[PendingDelivery], tuple[bytes, str]],
        results: queue.SimpleQueue,
        sender: Callable[[int, str], str],
    ):
        super().__init__(daemon=True)
        self.transport = transport
        self.sender = sender  # the envelope sender of a delivery (id, email): VERP or the From address
        self.build = build
        self.results = results
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # in C: a hand-over costs less
        self.connection: Connection | None = None

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            self.results.put((self, job, *self._send(job)))
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # closing a dead connection is not news
                log.debug("closing a connection failed", exc_info=True)

    def _send(self, job: _Job) -> tuple[Exception | None, str | None]:
        message_id = None
        try:
            data, message_id = self.build(job.delivery)
            if self.connection is None:
                self.connection = self.transport.connect()
            self.connection.send(self.sender(job.delivery.id, job.delivery.email), job.delivery.email, data)
        except (DeliveryError, TransportError) as exc:
            return exc, message_id
        except PublisherError as exc:  # this message cannot be built
            return DeliveryError(str(exc), permanent=True), message_id
        return None, message_id


def deliver_issue(
    config: Config,
    store: StateStore,
    transport: Transport,
    issue_id: int,
    *,
    clock: Clock,
    on_progress: Callable[[SendReport], None] | None = None,
    stop: threading.Event | None = None,
    seed: int | None = None,
    page_size: int = PAGE_SIZE,
    shared: bool = False,
) -> SendReport:
    """Deliver the issue's pending deliveries; returns the counts.

    Memory stays flat whatever the audience: deliveries are read from the
    store ``page_size`` at a time, and each message is built by a worker
    just before it is sent. ``shared``: other processes deliver the issue
    too, so deliveries are claimed in leased batches (as they always are on
    a PostgreSQL store, ``[state] url``).
    """
    _apply_journal(config, store, clock.now())
    info = store.issues.info(issue_id)
    digest_list = config.lists.get(info.list_name)
    if digest_list is None:
        raise SendError(f"issue {info.number} belongs to list {info.list_name!r}, which is no longer configured")
    issue, rendered = frozen_issue(config, digest_list, info.number, info.rendered)
    report = SendReport(issue_id=issue_id, list_name=info.list_name, number=info.number)
    rng = random.Random(seed)
    limiter = RateLimiter(config.mail.smtp.rate if transport.name == "smtp" and config.mail.smtp else 0, clock)

    # Prepared once for the issue, shared read-only by the workers.
    messages = IssueMessages(config, issue, rendered)

    stuff = getattr(transport, "takes_smtp_data", False)  # dot-stuffed as it is composed: cheaper

    def build(delivery: PendingDelivery) -> tuple[bytes, str]:
        personal = messages.recipient(delivery.email, delivery.name)
        message_id = messages.message_id(delivery.email)
        return messages.compose(personal, now=clock.now(), message_id=message_id, stuff=stuff), message_id

    _count(store, issue_id, report)
    claims = Claims(store, issue_id, config, clock, stop) if shared or config.state.url is not None else None
    try:
        _work_through_pending(
            config, store, transport, issue_id, report, build, claims,
            clock=clock, limiter=limiter, rng=rng, on_progress=on_progress, stop=stop, page_size=page_size,
        )
    finally:
        if claims is not None:
            claims.release()
    if claims is not None:
        _count(store, issue_id, report)  # what every sender did
    if report.pending == 0:
        store.retry(lambda: store.issues.finish(issue_id, now=clock.now()))
    return report


def _count(store: StateStore, issue_id: int, report: SendReport) -> None:
    counts = store.deliveries.counts(issue_id)
    report.total = sum(counts.values())
    report.sent, report.failed, report.skipped = counts.get("sent", 0), counts.get("failed", 0), counts.get("skipped", 0)
    report.pending = counts.get("pending", 0)


def _apply_journal(config: Config, store: StateStore, now: datetime) -> None:
    """The one-click unsubscribes ``publisher serve`` journaled while the
    store was busy, applied before anyone is mailed (a busy store: the
    server applies them as soon as it frees, and each delivery checks
    its address is still subscribed)."""
    journal = UnsubscribeJournal(config.state.path)
    if journal.pending():
        try:
            journal.apply(store, now=now)
        except Exception as exc:
            if not is_busy(exc):
                raise
            log.warning("journaled unsubscribes not applied yet: the state store is busy")


def _work_through_pending(
    config: Config,
    store: StateStore,
    transport: Transport,
    issue_id: int,
    report: SendReport,
    build: Callable[[PendingDelivery], tuple[bytes, str]],
    claims: Claims | None,
    *,
    clock: Clock,
    limiter: RateLimiter,
    rng: random.Random,
    on_progress: Callable[[SendReport], None] | None,
    stop: threading.Event | None,
    page_size: int,
) -> None:
    """Hand the issue's pending deliveries to a pool of workers, one
    connection each, and record every outcome in ``report`` as it comes.
    The pending deliveries are read a page at a time, never the whole
    audience at once; retries that came due go before the next new one."""
    fresh = claims.jobs() if claims is not None else _pending_jobs(store, issue_id, page_size)
    upcoming = next(fresh, None)
    ready: list[_Job] = []
    delayed: list[tuple[float, int, _Job]] = []
    results: queue.SimpleQueue = queue.SimpleQueue()
    size = max(1, min(transport.connections, report.pending if claims is None else claims.batch))
    sender = envelope_sender(config.mail.sender_address, config.mail.bounce_address, config.mail.secret)
    workers = [_Worker(transport, build, results, sender) for _ in range(size)]
    for worker in workers:
        worker.start()
    idle = list(workers)
    in_flight = sequence = 0
    try:
        while True:
            if claims is not None:
                claims.keep()
            if not (ready or upcoming is not None or delayed or in_flight):
                # Nothing left here; another sender may still hold some (claims only).
                if claims is None or report.stopped is not None or not claims.others_hold():
                    break
                fresh = claims.jobs()
                upcoming = next(fresh, None)
                continue
            if stop is not None and stop.is_set() and report.stopped is None:
                report.stopped = "stopped by request"
            now = clock.monotonic()
            while delayed and delayed[0][0] <= now:
                ready.append(heapq.heappop(delayed)[2])
            while idle and (ready or upcoming is not None) and report.stopped is None:
                # As many as there are idle connections, checked in one query
                # (one at a time under a rate limit: each is checked just before it goes).
                batch: list[_Job] = []
                while len(batch) < (1 if limiter.interval else len(idle)) and (ready or upcoming is not None):
                    if ready:
                        batch.append(ready.pop())
                    else:
                        batch.append(upcoming)
                        upcoming = next(fresh, None)
                for job in _deliverable(store, clock, report, batch):
                    limiter.wait()
                    idle.pop().jobs.put(job)
                    in_flight += 1
            if in_flight:
                done = _finished(results, wait=claims.renew_every if claims is not None else None)
                in_flight -= len(done)
                sequence = _settle_all(config, store, clock, rng, report, done, delayed, sequence)
                idle.extend(worker for worker, *_ in done)  # only now: their outcomes are committed
                if on_progress is not None:
                    on_progress(report)
                continue
            if report.stopped is not None:
                break
            if delayed and not ready and upcoming is None:
                pause = max(0.0, delayed[0][0] - clock.monotonic())
                clock.sleep(pause if claims is None else min(pause, claims.renew_every))
    finally:
        for worker in workers:
            worker.jobs.put(None)
        for worker in workers:
            worker.join(timeout=60)


def _pending_jobs(store: StateStore, issue_id: int, page_size: int) -> Iterator[_Job]:
    """The issue's pending deliveries as jobs, read ``page_size`` at a time in id order."""
    after = 0
    while page := store.deliveries.pending(issue_id, after=after, limit=page_size):
        for delivery in page:
            yield _Job(delivery, delivery.attempts)
        after = page[-1].id


def _deliverable(store: StateStore, clock: Clock, report: SendReport, jobs: list[_Job]) -> list[_Job]:
    """Those of ``jobs`` whose address is still active and on the list (one
    query); the others are recorded as skipped."""
    ids = store.deliveries.deliverable_of([job.delivery.id for job in jobs])
    for job in jobs:
        if job.delivery.id not in ids:
            delivery_id, attempts = job.delivery.id, job.attempts
            if store.retry(lambda: store.deliveries.mark(delivery_id, "skipped", attempts=attempts, now=clock.now())):
                report.skipped += 1
                report.pending -= 1
    return [job for job in jobs if job.delivery.id in ids]


def _finished(results: queue.SimpleQueue, wait: float | None) -> list[tuple]:
    """The outcomes the workers have reported: the next one, waited for (at
    most ``wait`` seconds: then none, so leased claims are kept meanwhile),
    and any that came meanwhile."""
    try:
        done = [results.get(timeout=wait)]
    except queue.Empty:
        return []
    while True:
        try:
            done.append(results.get_nowait())
        except queue.Empty:
            return done


def _settle_all(
    config: Config,
    store: StateStore,
    clock: Clock,
    rng: random.Random,
    report: SendReport,
    done: list[tuple],
    delayed: list,
    sequence: int,
) -> int:
    """Record the outcomes in ``done`` (the calling thread): the sent ones
    in one transaction (a commit each cost more than composing a message),
    the others one by one. Returns the last sequence number used."""
    sent = [(job.delivery.id, job.attempts + 1, message_id) for _, job, error, message_id in done if error is None]
    if sent:
        now = clock.now()
        # Retried if the database goes away meanwhile: the messages are out, their records must follow.
        recorded = store.retry(lambda: store.deliveries.mark_sent(sent, now=now))
        report.sent += recorded
        report.pending -= recorded
    for _, job, error, message_id in done:
        if error is not None:
            sequence += 1
            _settle(config, store, clock, rng, report, job, error, message_id, delayed, sequence)
    return sequence


def _settle(
    config: Config,
    store: StateStore,
    clock: Clock,
    rng: random.Random,
    report: SendReport,
    job: _Job,
    error: Exception,
    message_id: str | None,
    delayed: list,
    sequence: int,
) -> None:
    """Record one failure (in the calling thread), and schedule a retry."""
    delivery = job.delivery
    attempts = job.attempts + 1
    now = clock.now()
    if isinstance(error, TransportError):
        report.stopped = str(error)
        log.error("list %s: %s; the rest stays pending", report.list_name, error)
        return
    assert isinstance(error, DeliveryError)
    if error.permanent:
        with store.transaction():
            if store.deliveries.mark(delivery.id, "failed", attempts=attempts, code=error.code, error=str(error), now=now):
                report.failed += 1
                report.pending -= 1
                report.failures.append(f"{delivery.email}: {error}")
            if error.code in HARD_BOUNCES and set_subscriber_status(store.subscribers, delivery.email, "bounced", now=now):
                report.suppressed += 1
        log.warning("delivery to %s failed: %s", mask_email(delivery.email), error)
        return
    store.retry(lambda: store.deliveries.note_attempt(delivery.id, attempts=attempts, code=error.code, error=str(error), now=now))
    tries = job.tries + 1
    if tries >= config.mail.attempts or report.stopped is not None:
        log.warning("delivery to %s left pending after %d tries: %s", mask_email(delivery.email), attempts, error)
        return
    report.retries += 1
    wait = backoff_delay(tries, base=config.mail.backoff, cap=config.mail.backoff_max, rng=rng)
    heapq.heappush(delayed, (clock.monotonic() + wait, sequence, _Job(delivery, attempts, tries)))


def _upcoming(
    config: Config, store: StateStore, digest_list: DigestList, *, now: datetime, backfill: int | None
) -> tuple[list[tuple[Issue, RenderedIssue]], int | None]:
    """What a send would deliver now: the unfinished issue (and its id), else the next issues."""
    unfinished = store.issues.unfinished(digest_list.name)
    if unfinished is not None:
        info = store.issues.info(unfinished)
        return [frozen_issue(config, digest_list, info.number, info.rendered)], unfinished
    return next_rendered_issues(config, store, digest_list, now=now, backfill=backfill), None


def dry_run(
    config: Config, store: StateStore, digest_list: DigestList, *, now: datetime, backfill: int | None = None
) -> SendReport:
    """Render every message of the list's next (or unfinished) issues; send none, record nothing."""
    report = SendReport(issue_id=None, list_name=digest_list.name, dry_run=True)
    found, report.issue_id = _upcoming(config, store, digest_list, now=now, backfill=backfill)
    for issue, rendered in found:
        if report.issue_id is not None:
            audience = ((j.delivery.email, j.delivery.name) for j in _pending_jobs(store, report.issue_id, PAGE_SIZE))
        else:
            audience = ((s.email, s.name) for s in store.subscribers.audience(digest_list.name))
        report.number = report.number or issue.number
        messages = IssueMessages(config, issue, rendered)
        for email, name in audience:
            messages.compose(messages.recipient(email, name), now=now)
            report.total += 1
    report.pending = report.total
    return report


def send_test(
    config: Config,
    store: StateStore,
    digest_list: DigestList,
    transport: Transport,
    addresses: list[str],
    *,
    now: datetime,
    backfill: int | None = None,
) -> SendReport:
    """Send what the list would send now to ``addresses`` only, each
    subject led by the list's ``test_prefix``; records nothing (no issue
    number used, no post marked as sent: give it a read-only store). A
    permanent refusal is counted as failed; ``TransportError`` (the server
    refused us) is raised."""
    report = SendReport(issue_id=None, list_name=digest_list.name)
    found, _ = _upcoming(config, store, digest_list, now=now, backfill=backfill)
    if not found:
        return report
    connection = transport.connect()
    try:
        for issue, rendered in found:
            report.number = report.number or issue.number
            test = replace(rendered, subject=f"{digest_list.test_prefix}{rendered.subject}")
            messages = IssueMessages(config, issue, test)
            for address in addresses:
                data = messages.compose(messages.recipient(address), now=now)
                report.total += 1
                try:
                    connection.send(config.mail.sender_address, address, data)
                except DeliveryError as exc:
                    report.failed += 1
                    report.failures.append(f"{address}: {exc}")
                else:
                    report.sent += 1
                    log.info("list %s: test of issue %s sent to %s", digest_list.name, issue.number, address)
    finally:
        connection.close()
    return report
