"""The scheduler: ``publisher run`` rebuilds the feeds and sends each digest on time, once.

Jobs come from the config: ``build`` from ``[jobs] build``, ``bounces`` from
``[jobs] bounces`` (read the bounce mailboxes), and
``digest:NAME`` for each list with a ``schedule`` (``"immediately"``: the
build's schedule, so a new post goes out within one build cycle). When a job is due is
worked out here from ``publisher.schedules`` (local wall time in the site's
time zone, with ``zoneinfo``) and the last run of each job kept in the state
store (``job_runs``); the ``schedule`` library only drives the loop, with one
``every(1).seconds`` tick job on a ``schedule.Scheduler()`` of its own. Its
``.at(…, tz)`` jobs are not used: they shift or skip runs around
daylight-saving changes, and it keeps time as naive local datetimes.

    with SchedulerLock(config.state.path):     # publisher.state.locks; SchedulerLocked: another one runs (its PID is named)
        scheduler = Scheduler(config, store, clock=SystemClock(), transport=make_transport, stop=stop)
        scheduler.run_due()                     # `run --once`: what is due now, catch-up included
        # or
        scheduler.run_forever()                 # `run`: until ``stop`` is set (SIGTERM, SIGINT)

What is due, each time the scheduler looks (see ``plan_job``):

- A job seen for the first time is not run for slots before it existed: its
  first run is its next slot.
- A slot after the job's last one is run once, however many slots passed
  (after three days down, a daily digest goes out once, not three times).
- A digest slot that passed while no scheduler was watching (more than
  ``ON_TIME`` before it looked) is a catch-up: sent once at start-up unless
  the list says ``catch_up = false``, and never when it is more than the
  list's ``max_late`` old. A slot not sent is recorded as skipped; its posts
  are not lost, they go in the next issue.
- At start-up, a list with an unfinished issue (a send that was stopped or
  crashed) resumes it, and every digest run finishes an unfinished issue
  before it creates a new one. A run stopped by request leaves its slot
  due, so the next start runs it again (under the same catch-up rules).
- A digest run holds the list's ``SendLock`` from choosing the issue to its
  last delivery (on a PostgreSQL store, only while it chooses the issue:
  other senders then share its deliveries). When ``publisher send`` has it, the run waits for that send
  to end (the loop waits with it), then sends whatever is still new.

A job that raises is logged with its name, list and the exception, recorded
as an error, and tried again at its next slot; the scheduler goes on. A stop
request lets the running job reach a safe point (``deliver_issue`` finishes
the messages in flight and records them) and then ends the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

import schedule

from publisher.app.common import build, plural
from publisher.clock import Clock
from publisher.config import Config
from publisher.errors import PublisherError
from publisher.state import ProcessLock, send_lock
from publisher.model import DigestList
from publisher.schedules import Schedule, parse_duration, parse_schedule
from publisher.state import JobRun, StateStore

# The jobs' stages are imported when a job runs: `publisher status` reads
# the plans (jobs_of, plan_job) without paying for the build and send.
if TYPE_CHECKING:
    from publisher.mail import Transport

log = logging.getLogger("publisher.scheduler")

# A slot this recent counts as on time when the scheduler first looks (a
# restart, a `run --once` from cron): it was not missed, so catch_up = false
# does not skip it. A running loop runs every slot that passes while it
# watches, however busy it was.
ON_TIME = timedelta(minutes=10)
TICK_SECONDS = 1


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``build``, ``bounces``, or ``digest:NAME`` for the list NAME."""

    name: str
    schedule: Schedule
    list_name: str | None = None
    catch_up: bool = True
    max_late: timedelta | None = None  # digests only: older slots are not sent late

    @property
    def context(self) -> str:
        """How log lines name the job."""
        return f"job {self.name}" + (f" list {self.list_name}" if self.list_name else "")


def jobs_of(config: Config) -> list[Job]:
    """The config's jobs: build first, then one per list with a schedule."""
    jobs = []
    if config.jobs.build:
        jobs.append(Job("build", parse_schedule(config.jobs.build)))
    if config.jobs.bounces:
        jobs.append(Job("bounces", parse_schedule(config.jobs.bounces)))
    for name, digest_list in config.lists.items():
        if digest_list.schedule == "immediately":
            # At each build (each minute without one): the digest job builds first.
            build = config.jobs.build or "every minute"
            schedule = replace(parse_schedule(build), text=f"immediately, at each build: {build}")
        elif digest_list.schedule:
            schedule = parse_schedule(digest_list.schedule)
        else:
            continue
        jobs.append(
            Job(
                f"digest:{name}",
                schedule,
                list_name=name,
                catch_up=digest_list.catch_up,
                max_late=parse_duration(digest_list.max_late),
            )
        )
    return jobs


@dataclass(frozen=True)
class Plan:
    """What to do about one job now.

    ``action`` is "run" (for ``slot``), "skip" (record ``slot`` as skipped),
    "new" (first seen: record ``slot`` as dealt with, run from the next one)
    or "wait". ``next_slot`` is the first slot after now.
    """

    action: str
    slot: datetime | None
    reason: str
    next_slot: datetime


def _span(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    if minutes < 48 * 60:
        return f"{minutes // 60} hours"
    return f"{minutes // (24 * 60)} days"


def plan_job(job: Job, last: JobRun | None, now: datetime, tz: tzinfo, *, watched_since: datetime | None) -> Plan:
    """Is ``job`` due at ``now``? Pure: ``last`` is its record in the store,
    ``watched_since`` the previous time this scheduler looked (None at
    start-up): slots after it passed while the scheduler was watching."""
    slot = job.schedule.previous_slot(now, tz)
    following = job.schedule.next_slot(now, tz)
    if last is None or last.last_slot is None:
        return Plan("new", slot, "first seen; its first run is the next slot", following)
    if slot <= last.last_slot:
        return Plan("wait", None, "not due", job.schedule.next_slot(max(now, last.last_slot), tz))
    late = now - slot
    on_time = late <= ON_TIME or (watched_since is not None and slot > watched_since)
    if job.max_late is None:  # a build: running it late is always right
        return Plan("run", slot, "on time" if on_time else "catch-up", following)
    if late > job.max_late:
        return Plan("skip", slot, f"{_span(late)} late, more than max_late ({_span(job.max_late)})", following)
    if on_time:
        return Plan("run", slot, "on time", following)
    if not job.catch_up:
        return Plan("skip", slot, "missed while no scheduler ran, and catch_up is off", following)
    return Plan("run", slot, f"catch-up, {_span(late)} late", following)


def _local(moment: datetime, tz: tzinfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M %Z}"


class Scheduler:
    """Runs a site's jobs against one state store; see the module docstring."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        *,
        clock: Clock,
        transport: Callable[[], Transport],
        stop: threading.Event | None = None,
    ):
        self.config = config
        self.store = store
        self.clock = clock
        self.transport = transport
        self.stop = stop if stop is not None else threading.Event()
        self.jobs = jobs_of(config)
        self.errors = 0  # jobs that raised, since this scheduler started
        self._watched_since: datetime | None = None

    @property
    def tz(self) -> tzinfo:
        return self.config.site.timezone

    def run_due(self) -> None:
        """Run every job due now, each once; the first call is the start-up
        (catch-up, and unfinished issues resumed)."""
        now = self.clock.now()
        starting = self._watched_since is None
        if starting:  # a new list's first issue holds the posts since the scheduler first saw it
            self.store.issues.register_lists(list(self.config.lists), now=now)
        runs = self.store.jobs.all()
        for job in self.jobs:
            if self.stop.is_set():
                break
            try:
                self._consider(job, runs.get(job.name), now, starting)
            except Exception as exc:  # recording failed: the next look tries again
                self.errors += 1
                log.error("%s: %s", job.context, exc, exc_info=not isinstance(exc, PublisherError))
        self._watched_since = now

    def _consider(self, job: Job, last: JobRun | None, now: datetime, starting: bool) -> None:
        plan = plan_job(job, last, now, self.tz, watched_since=self._watched_since)
        if plan.action == "run":
            self._run(job, last, plan.slot, plan.reason)
            return
        if plan.action == "new":
            log.info("%s (%s): %s, %s", job.context, job.schedule.text, plan.reason, _local(plan.next_slot, self.tz))
            last = JobRun(job.name, plan.slot, None, None, "new", plan.reason)
            self.store.jobs.record(last)
        elif plan.action == "skip":
            log.warning("%s: slot %s not run: %s", job.context, _local(plan.slot, self.tz), plan.reason)
            last = JobRun(job.name, plan.slot, now, now, "skipped", f"slot {_local(plan.slot, self.tz)}: {plan.reason}")
            self.store.jobs.record(last)
        # A send that was stopped or crashed is finished at start-up, even
        # when its list's slot is not due (or too late to send anew).
        if starting and job.list_name and self.store.issues.unfinished(job.list_name) is not None:
            self._run(job, last, None, "an unfinished issue")

    def run_forever(self, *, tick: float = TICK_SECONDS) -> None:
        """Look at once, then every ``tick`` seconds, until ``stop`` is set."""
        ticker = schedule.Scheduler()

        def start_ticking() -> None:
            ticker.clear()
            ticker.every(tick).seconds.do(self.run_due)

        log.info(
            "scheduler: %s; %s",
            ", ".join(f"{job.name} ({job.schedule.text})" for job in self.jobs) or "no jobs",
            f"times in {self.tz}",
        )
        self.run_due()
        start_ticking()
        while not self.stop.is_set():
            ticker.run_pending()
            idle = ticker.idle_seconds
            if idle is None or idle > tick:
                # schedule keeps naive local time: when the wall clock goes
                # back (fall-back, an NTP step) its next tick would wait for
                # the clock to catch up. Slots are ours, in UTC: tick again.
                start_ticking()
                idle = tick
            self.stop.wait(max(0.0, idle))
        log.info("scheduler: stopped")

    # -- running one job ------------------------------------------------------

    def _run(self, job: Job, last: JobRun | None, slot: datetime | None, reason: str) -> None:
        """Run ``job`` for ``slot`` (None: only resume an unfinished issue) and record how it ended."""
        started = self.clock.now()
        previous_slot = last.last_slot if last else None
        where = f"slot {_local(slot, self.tz)}" if slot else "resume"
        log.debug("%s: %s (%s): starting", job.context, where, reason)
        self.store.jobs.record(JobRun(job.name, previous_slot, started, None, "running", where))
        try:
            if job.name == "bounces":
                message, status = self._bounces(job, started)
            elif job.list_name is None:
                message, status = self._build(job, started), "ok"
            else:
                message, status = self._digest(job, started, new_issue=slot is not None)
        except Exception as exc:
            status, message = "error", f"{type(exc).__name__}: {exc}"
            # An expected failure is one line; anything else is a bug: keep its traceback.
            log.error(
                "%s: %s (%s) failed: %s; next try at the next slot",
                job.context, where, reason, message, exc_info=not isinstance(exc, PublisherError),
            )
        else:
            level = {"ok": logging.INFO, "stopped": logging.WARNING}.get(status, logging.ERROR)
            log.log(level, "%s: %s (%s): %s", job.context, where, reason, message)
        if status == "error":
            self.errors += 1
        # A stopped run leaves its slot due, so the next start finishes it; an
        # error waits for the next slot.
        done = slot if slot is not None and status != "stopped" else previous_slot
        self.store.jobs.record(JobRun(job.name, done, started, self.clock.now(), status, message))

    def _build(self, job: Job, now: datetime) -> str:
        report, pages = build(self.config, self.store, now)
        for error in report.errors:
            log.warning("%s: rejected %s", job.context, error)
        for warning in report.warnings:
            log.warning("%s: %s", job.context, warning)
        for old, new in report.renamed:
            log.info("%s: renamed: %s -> %s", job.context, old, new)
        return (
            f"built {plural(len(report.site.posts), 'post')}: {len(report.written)} written, "
            f"{len(report.unchanged)} unchanged, {len(report.errors)} rejected; "
            f"pages: {len(pages.written)} written, {len(pages.removed)} removed"
        )

    def _bounces(self, job: Job, now: datetime) -> tuple[str, str]:
        """Read the bounce mailboxes (``publisher bounces``); an unreadable mailbox is an error."""
        from publisher.app.cli_bounces import describe_run
        from publisher.mail.bounces import read_bounces

        report = read_bounces(self.config, self.store, now=now)
        for line in report.reported + report.failed_mailboxes:
            log.warning("%s: %s", job.context, line)
        return describe_run(report), "error" if report.failed_mailboxes else "ok"

    def _digest(self, job: Job, now: datetime, *, new_issue: bool) -> tuple[str, str]:
        """Rebuild, finish the unfinished issue and, for a slot, send a new one.
        Returns the message and the status: ok, stopped or error."""
        digest_list = self.config.lists[job.list_name]
        report, _ = build(self.config, self.store, now)
        for error in report.errors:
            log.warning("%s: rejected %s", job.context, error)
        log.debug("%s: rebuilt the feeds: %d written", job.context, len(report.written))
        lock = send_lock(self.config.state, digest_list.name)

        def waiting(holder: int | None) -> None:
            log.info("%s: %s; waiting for it to finish", job.context, lock.held_by(holder))

        if not lock.wait(self.stop, on_wait=waiting):
            return "stopped while another process was sending the list", "stopped"
        try:
            return self._send(job, digest_list, now, new_issue=new_issue, lock=lock)
        finally:
            lock.release()

    def _send(
        self, job: Job, digest_list: DigestList, now: datetime, *, new_issue: bool, lock: ProcessLock
    ) -> tuple[str, str]:
        from publisher.mail import deliver_issue, nothing_to_send, prepare_issue

        # On a store several senders share (PostgreSQL), the lock guards only
        # the choice of the issue; its deliveries are claimed in batches.
        shared = self.config.state.url is not None
        messages: list[str] = []
        while not self.stop.is_set():
            if not lock.held and not lock.wait(self.stop):
                break
            resuming = self.store.issues.unfinished(digest_list.name)
            if resuming is None and not new_issue:
                break
            issue_id = prepare_issue(self.config, self.store, digest_list, now=now)
            if shared:
                lock.release()
            if issue_id is None:
                messages.append(f"nothing to send: {nothing_to_send(self.store, digest_list)}")
                break
            sent = deliver_issue(self.config, self.store, self.transport(), issue_id, clock=self.clock, stop=self.stop)
            messages.append(
                f"issue {sent.number}: {sent.sent} sent, {sent.failed} failed, "
                f"{sent.skipped} skipped, {sent.pending} pending"
            )
            if sent.stopped is not None and self.stop.is_set():
                return "; ".join(messages) + "; stopped, the rest stays pending for the next start", "stopped"
            if sent.stopped is not None:
                return "; ".join(messages) + f"; send stopped: {sent.stopped}", "error"
            if sent.pending:
                break  # left pending after the retries: the next run resumes
            if resuming is None:
                new_issue = False  # the new issues are made: what is left is to send the rest (post mode)
        if self.stop.is_set() and not messages:
            return "stopped before sending", "stopped"
        return "; ".join(messages) or "nothing to resume", "ok"
