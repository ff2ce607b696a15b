"""The scheduler: jobs at their slots, catch-up once, the lock, clean stops, failing jobs.

Time is injected (``SteppedClock``): nothing here waits for a slot. The
subprocess tests use the real clock with an "every minute" schedule whose
last run is recorded as a day ago, so it is due the moment they start.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.state.locks import SchedulerLock, SchedulerLocked
from publisher.app.scheduler import ON_TIME, Job, Scheduler, jobs_of, plan_job
from publisher.schedules import parse_schedule
from publisher.mail.send import prepare_issue
from publisher.state import JobRun, StateStore
from publisher.mail.transports import OutboxTransport

from .conftest import SteppedClock
from .helpers.smtp_server import SmtpServer
from .helpers.scheduling import Harness
from .helpers.sites import SECRET, add_post, due_now, env, make_site, publisher, scheduled_site

UTC = timezone.utc
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; every time below is UTC


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUBLISHER_SECRET", SECRET)


@pytest.fixture
def harness_for(tmp_path: Path):
    made: list[Harness] = []

    def make(start: datetime = MONDAY + timedelta(hours=6), **site_options) -> Harness:
        harness = Harness(scheduled_site(tmp_path, **site_options), start)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def three_posts_while_down(site: Path) -> None:
    for day, name in ((1, "b"), (2, "c"), (3, "d")):
        add_post(site, name, MONDAY + timedelta(days=day, hours=5))


# --- catch-up ---------------------------------------------------------------------


def test_a_new_job_waits_for_its_next_slot_then_runs_on_time(harness_for) -> None:
    h = harness_for()
    h.look_at(MONDAY + timedelta(hours=6))  # first sight: recorded, nothing sent
    assert h.issues() == [] and h.run().status == "new"
    assert h.run().last_slot == MONDAY - timedelta(hours=17)  # Sunday 07:00: history is not caught up

    h.look_at(MONDAY + timedelta(hours=6, minutes=59))
    assert h.issues() == []
    h.look_at(MONDAY + timedelta(hours=7, seconds=1))
    assert h.issues() == [(1, 1, "sent")] and h.messages() == 3
    run = h.run()
    assert (run.status, run.last_slot) == ("ok", MONDAY + timedelta(hours=7))
    assert run.message == "issue 1: 3 sent, 0 failed, 0 skipped, 0 pending"

    h.look_at(MONDAY + timedelta(hours=8))  # the slot is done
    assert h.issues() == [(1, 1, "sent")]


def test_catch_up_sends_once_after_three_days_down(harness_for) -> None:
    h = harness_for()
    h.look_at(MONDAY + timedelta(hours=6))
    h.look_at(MONDAY + timedelta(hours=7))
    assert h.issues() == [(1, 1, "sent")]

    # Down from Monday 07:00 to Thursday 09:00: the slots of Tuesday, Wednesday and Thursday passed.
    three_posts_while_down(h.site)
    h.restart()
    h.look_at(MONDAY + timedelta(days=3, hours=9))

    assert h.issues() == [(1, 1, "sent"), (2, 3, "sent")]  # one issue with the three posts, not three
    assert h.messages() == 6
    run = h.run()
    assert (run.status, run.last_slot) == ("ok", MONDAY + timedelta(days=3, hours=7))

    h.look_at(MONDAY + timedelta(days=3, hours=9, minutes=1))
    h.restart()
    h.look_at(MONDAY + timedelta(days=3, hours=10))
    assert len(h.issues()) == 2 and h.messages() == 6


def test_with_catch_up_off_a_missed_slot_waits_for_the_next(harness_for) -> None:
    h = harness_for(list_keys="catch_up = false\n")
    h.look_at(MONDAY + timedelta(hours=6))
    h.look_at(MONDAY + timedelta(hours=7))
    three_posts_while_down(h.site)

    h.restart()
    h.look_at(MONDAY + timedelta(days=3, hours=9))
    assert h.issues() == [(1, 1, "sent")]
    run = h.run()
    assert run.status == "skipped" and "catch_up is off" in run.message
    assert run.last_slot == MONDAY + timedelta(days=3, hours=7)

    h.look_at(MONDAY + timedelta(days=4, hours=6, minutes=59))
    assert len(h.issues()) == 1
    h.look_at(MONDAY + timedelta(days=4, hours=7))
    assert h.issues() == [(1, 1, "sent"), (2, 3, "sent")]


def test_with_catch_up_off_a_restart_just_after_the_slot_is_still_on_time(harness_for) -> None:
    """A `run --once` from cron a few minutes after the slot sends it: it was not missed."""
    h = harness_for(list_keys="catch_up = false\n")
    h.look_at(MONDAY + timedelta(hours=6))
    h.restart()
    h.look_at(MONDAY + timedelta(hours=7) + ON_TIME)
    assert h.issues() == [(1, 1, "sent")]


def test_a_slot_later_than_max_late_is_not_sent_late_but_its_posts_go_next_time(harness_for) -> None:
    h = harness_for()  # max_late: the default 12 hours
    h.look_at(MONDAY + timedelta(hours=6))
    h.look_at(MONDAY + timedelta(hours=7))
    three_posts_while_down(h.site)

    h.restart()
    h.look_at(MONDAY + timedelta(days=3, hours=20))  # Thursday 07:00 was 13 hours ago
    assert h.issues() == [(1, 1, "sent")]
    run = h.run()
    assert run.status == "skipped" and "13 hours late, more than max_late (12 hours)" in run.message

    h.look_at(MONDAY + timedelta(days=4, hours=7))
    assert h.issues() == [(1, 1, "sent"), (2, 3, "sent")]
    assert h.messages() == 6


def test_max_late_applies_to_a_short_schedule_too(harness_for) -> None:
    h = harness_for(schedule="every 6 hours", list_keys='max_late = "30 minutes"\n')
    h.look_at(MONDAY + timedelta(hours=5))
    h.restart()
    h.look_at(MONDAY + timedelta(hours=6, minutes=20))  # on time and within 30 minutes
    assert len(h.issues()) == 1
    add_post(h.site, "b", MONDAY + timedelta(hours=7))
    h.restart()
    h.look_at(MONDAY + timedelta(hours=12, minutes=45))
    assert len(h.issues()) == 1 and h.run().status == "skipped"


def test_nothing_new_means_nothing_sent(harness_for, caplog: pytest.LogCaptureFixture) -> None:
    h = harness_for()
    h.look_at(MONDAY + timedelta(hours=6))
    h.look_at(MONDAY + timedelta(hours=7))
    with caplog.at_level(logging.INFO, logger="publisher.scheduler"):
        h.look_at(MONDAY + timedelta(days=1, hours=7))
    assert len(h.issues()) == 1 and h.messages() == 3
    assert h.run().message == "nothing to send: no new posts since issue 1"
    assert "job digest:daily list daily: slot 2026-03-03 07:00 UTC (on time): nothing to send" in caplog.text


def test_an_unfinished_issue_is_resumed_at_start_up_and_before_a_new_one(harness_for) -> None:
    h = harness_for()
    h.look_at(MONDAY + timedelta(hours=6))
    # A send that died before delivering anything (the store says: 3 pending).
    issue_id = prepare_issue(h.config, h.store, h.config.lists["daily"], now=MONDAY + timedelta(hours=6, minutes=1))
    assert h.store.deliveries.counts(issue_id) == {"pending": 3}

    h.restart()
    h.look_at(MONDAY + timedelta(hours=6, minutes=30))  # not a slot: only the resume
    assert h.issues() == [(1, 1, "sent")] and h.messages() == 3
    assert h.run().last_slot == MONDAY - timedelta(hours=17)  # the slot is still to come

    # An unfinished issue at a slot with new posts: finished first, then the new one.
    add_post(h.site, "b", MONDAY + timedelta(hours=6, minutes=40))
    prepare_issue(h.config, h.store, h.config.lists["daily"], now=MONDAY + timedelta(hours=6, minutes=45))
    add_post(h.site, "c", MONDAY + timedelta(hours=6, minutes=50))
    h.look_at(MONDAY + timedelta(hours=7))
    assert h.issues() == [(1, 1, "sent"), (2, 1, "sent"), (3, 1, "sent")]
    assert h.run().message.startswith("issue 2: 3 sent") and "; issue 3: 3 sent" in h.run().message


def test_an_unfinished_issue_is_finished_at_start_up_even_when_its_slot_is_too_late(harness_for) -> None:
    h = harness_for()
    h.look_at(MONDAY + timedelta(hours=6))
    # The 07:00 send died at once, and the machine stayed down until 20:00.
    prepare_issue(h.config, h.store, h.config.lists["daily"], now=MONDAY + timedelta(hours=7))
    add_post(h.site, "b", MONDAY + timedelta(hours=8))
    h.restart()
    h.look_at(MONDAY + timedelta(hours=20))
    assert h.issues() == [(1, 1, "sent")] and h.messages() == 3  # the half-sent issue is finished; no new one
    assert h.run().last_slot == MONDAY + timedelta(hours=7)  # and the late slot is not sent again
    h.look_at(MONDAY + timedelta(hours=20, minutes=1))
    assert len(h.issues()) == 1
    h.look_at(MONDAY + timedelta(days=1, hours=7))
    assert h.issues() == [(1, 1, "sent"), (2, 1, "sent")]


def test_the_build_job_runs_every_slot_and_catches_up_once(harness_for) -> None:
    h = harness_for(build="every 10 minutes")
    h.look_at(MONDAY + timedelta(hours=6, minutes=5))
    assert not (h.config.feeds.out / "rss.xml").exists()  # first sight
    h.look_at(MONDAY + timedelta(hours=6, minutes=10))
    assert (h.config.feeds.out / "rss.xml").exists()
    assert h.run("build").status == "ok" and "built 1 post:" in h.run("build").message
    add_post(h.site, "b", MONDAY + timedelta(hours=6))
    h.restart()
    h.look_at(MONDAY + timedelta(days=2))  # two days down: one build
    run = h.run("build")
    assert run.last_slot == MONDAY + timedelta(days=2) and "built 2 posts" in run.message
    assert "Post b" in (h.config.feeds.out / "rss.xml").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("start", "days"),
    [
        (datetime(2026, 3, 5, 12, tzinfo=UTC), [6, 7, 8, 9, 10]),  # clocks spring forward on the 8th
        (datetime(2026, 10, 29, 12, tzinfo=UTC), [30, 31, 1, 2, 3]),  # and fall back on 1 November
    ],
    ids=["spring-forward", "fall-back"],
)
def test_daily_digest_goes_out_at_0700_new_york_time_across_a_change(harness_for, start: datetime, days) -> None:
    """Looking every 15 minutes for five days: one issue a day, each at 07:00 local."""
    h = harness_for(start=start, timezone_name="America/New_York", subscribers=1)
    sent_at: list[datetime] = []
    moment = start
    while moment <= start + timedelta(days=5):
        if moment.minute == 0 and moment.hour % 6 == 0:
            add_post(h.site, f"p{moment:%m%d%H}", moment - timedelta(minutes=1))
        h.look_at(moment)
        run = h.run()
        if run.status == "ok" and run.started not in sent_at:
            sent_at.append(run.started)
        moment += timedelta(minutes=15)
    local = [s.astimezone(h.config.site.timezone) for s in sent_at]
    assert [(t.day, f"{t:%H:%M}") for t in local] == [(day, "07:00") for day in days]
    assert len(h.issues()) == 5


def test_plan_job_in_brief() -> None:
    daily = Job("digest:daily", parse_schedule("daily at 07:00"), "daily", catch_up=True, max_late=timedelta(hours=12))
    seven = MONDAY + timedelta(hours=7)
    last = JobRun("digest:daily", seven - timedelta(days=1), None, None, "ok", None)
    plan = plan_job(daily, last, seven + timedelta(hours=2), UTC, watched_since=None)
    assert (plan.action, plan.slot, plan.reason) == ("run", seven, "catch-up, 2 hours late")
    # Watching since before the slot: on time, however busy the scheduler was.
    plan = plan_job(daily, last, seven + timedelta(hours=2), UTC, watched_since=seven - timedelta(seconds=1))
    assert (plan.action, plan.reason) == ("run", "on time")
    plan = plan_job(daily, JobRun("digest:daily", seven, None, None, "ok", None), seven + timedelta(hours=1), UTC, watched_since=None)
    assert (plan.action, plan.next_slot) == ("wait", seven + timedelta(days=1))


# --- failing jobs, and the loop ---------------------------------------------------


class RunningClock(SteppedClock):
    """Each reading is a minute later; ``stop`` is set when ``until`` is reached."""

    def __init__(self, now: datetime, until: datetime, stop: threading.Event):
        super().__init__(now)
        self.until = until
        self.stop = stop

    def now(self) -> datetime:
        self.set(self.at + timedelta(minutes=1))
        if self.at >= self.until:
            self.stop.set()
        return self.at


def test_a_failing_digest_is_logged_and_the_build_and_the_loop_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = scheduled_site(tmp_path, schedule="every 10 minutes", build="every 10 minutes")
    (site / "templates" / "email").mkdir(parents=True)
    (site / "templates" / "email" / "digest.html").write_text("{% if posts %}never closed\n", encoding="utf-8")
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    start = MONDAY + timedelta(hours=6, minutes=1)
    for job in ("build", "digest:daily"):  # both ran at 06:00
        store.jobs.record(JobRun(job, MONDAY + timedelta(hours=6), None, None, "ok", None))
    stop = threading.Event()
    clock = RunningClock(start, until=start + timedelta(hours=1), stop=stop)
    scheduler = Scheduler(config, store, clock=clock, transport=lambda: OutboxTransport(config.mail.outbox), stop=stop)
    try:
        with caplog.at_level(logging.INFO, logger="publisher.scheduler"):
            scheduler.run_forever(tick=0.001)  # real ticks of a millisecond; what is due follows the clock
        builds = store.jobs.get("build")
        digest = store.jobs.get("digest:daily")
    finally:
        store.close()
    assert stop.is_set()
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    built = [r for r in caplog.records if r.getMessage().startswith("job build: slot")]
    assert len(failures) >= 5 and len(built) >= 5  # every slot of the hour, both jobs
    assert scheduler.errors == len(failures)
    first = failures[0].getMessage()
    assert first.startswith("job digest:daily list daily: slot 2026-03-02 06:10 UTC (on time) failed: TemplateError:")
    assert "digest.html" in first and "next try at the next slot" in first
    assert not failures[0].exc_info  # an expected failure: one line, no traceback
    assert builds.status == "ok" and builds.last_slot >= MONDAY + timedelta(hours=6, minutes=50)
    assert digest.status in ("error", "stopped") and digest.last_slot >= MONDAY + timedelta(hours=6, minutes=40)
    assert (config.feeds.out / "rss.xml").exists()


def test_an_unexpected_exception_in_a_job_is_logged_with_its_traceback_and_tried_at_the_next_slot(
    harness_for, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness_for(schedule="hourly")
    calls = []

    def broken_transport():
        calls.append(1)
        raise RuntimeError("the transport factory broke")

    h.scheduler.transport = broken_transport
    h.look_at(MONDAY + timedelta(hours=6, minutes=30))
    with caplog.at_level(logging.INFO, logger="publisher.scheduler"):
        h.look_at(MONDAY + timedelta(hours=7))
        h.look_at(MONDAY + timedelta(hours=7, minutes=30))  # not retried before the next slot
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "job digest:daily list daily: slot 2026-03-02 07:00 UTC (on time) failed: RuntimeError:" in record.getMessage()
    assert record.exc_info is not None  # a bug: the traceback is kept
    assert len(calls) == 1 and h.run().status == "error"
    h.scheduler.transport = lambda: OutboxTransport(h.config.mail.outbox)
    h.look_at(MONDAY + timedelta(hours=8))  # the issue made at 07:00 goes out at the next slot
    assert h.issues() == [(1, 1, "sent")] and h.messages() == 3 and h.run().status == "ok"


# --- the lock ----------------------------------------------------------------------


# The lock files of a SQLite store (on PostgreSQL an advisory lock: tests/test_state_postgres.py).
@pytest.mark.sqlite_only
@pytest.mark.slow
def test_the_lock_refuses_a_second_scheduler_and_names_the_holder(tmp_path: Path) -> None:
    site = scheduled_site(tmp_path, build="every 10 minutes")
    config = load_config(site / "publisher.toml")
    lock = SchedulerLock(config.state.path)
    with lock:
        assert lock.path == config.state.path.with_name("state.db.lock")
        assert lock.path.read_text() == f"{os.getpid()}\n"
        refused = subprocess.run(publisher(site, "run", "--once"), env=env(), capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2
        assert f"another scheduler is running for this state store (process {os.getpid()})" in refused.stderr
        assert "Traceback" not in refused.stderr
        with pytest.raises(SchedulerLocked, match=str(os.getpid())):
            SchedulerLock(config.state.path).acquire()
    # Released: the next one runs.
    allowed = subprocess.run(publisher(site, "run", "--once"), env=env(), capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr


# The lock files of a SQLite store (on PostgreSQL an advisory lock: tests/test_state_postgres.py).
@pytest.mark.sqlite_only
@pytest.mark.slow
def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    site = scheduled_site(tmp_path, build="every 10 minutes")
    holder = subprocess.Popen(publisher(site, "run"), env=env(), stderr=subprocess.DEVNULL)
    try:
        lock_file = site / ".publisher" / "state.db.lock"
        deadline = time.monotonic() + 30
        while not lock_file.exists() or lock_file.read_text().strip() != str(holder.pid):
            assert time.monotonic() < deadline, "the scheduler never took the lock"
            time.sleep(0.01)
        second = subprocess.run(publisher(site, "run", "--once"), env=env(), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and f"process {holder.pid}" in second.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    third = subprocess.run(publisher(site, "run", "--once"), env=env(), capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr


# --- signals ----------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_a_send_of_1000_stops_cleanly_and_a_restart_completes_it(tmp_path: Path) -> None:
    total, pool = 1000, 4
    with SmtpServer(slow=0.01) as server:
        site = scheduled_site(tmp_path, schedule="every minute", subscribers=total, port=server.port, connections=pool)
        due_now(site)
        process = subprocess.Popen(publisher(site, "run", "--once"), env=env(), stderr=subprocess.PIPE, text=True)
        try:
            server.wait_until(lambda: len(server.messages) >= 100 or process.poll() is not None, timeout=60)
            assert process.poll() is None, process.stderr.read()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
        stderr = process.stderr.read()
        assert "SIGTERM: stopping" in stderr and "Traceback" not in stderr
        assert "stopped, the rest stays pending for the next start" in stderr
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path)
        try:
            issue = store.issues.all("daily")[0]
            counts = store.deliveries.counts(issue.id)
            assert issue.status == "sending" and counts.get("pending", 0) > 0
            assert counts.get("sent", 0) >= 100
            assert store.jobs.get("digest:daily").status == "stopped"
        finally:
            store.close()

        again = subprocess.run(publisher(site, "run", "--once"), env=env(), capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        # Event lines are shown without -v.
        assert "INFO publisher.scheduler: job digest:daily list daily:" in again.stderr
        delivered = server.delivered()
        assert set(delivered) == {f"reader{n}@example.net" for n in range(total)}
        assert sum(count - 1 for count in delivered.values()) <= pool
    store = StateStore.open(config.state.path)
    try:
        assert store.deliveries.counts(issue.id) == {"sent": total}  # nobody skipped
        assert store.issues.info(issue.id).status == "sent"
        assert len(store.issues.all("daily")) == 1
    finally:
        store.close()


def test_sigterm_stops_an_idle_loop_with_exit_0(tmp_path: Path) -> None:
    site = scheduled_site(tmp_path, schedule="weekly on monday at 08:00", build="every 6 hours")
    process = subprocess.Popen(publisher(site, "run"), env=env(), stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        assert "INFO publisher.scheduler: scheduler: build (every 6 hours), digest:daily (weekly on monday at 08:00)" in first
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    rest = process.stderr.read()
    assert "scheduler: stopped" in rest and "Traceback" not in rest


# --- the command line ----------------------------------------------------------


def test_status_shows_each_jobs_last_and_next_run(harness_for) -> None:
    h = harness_for(build="every 10 minutes")
    h.look_at(MONDAY + timedelta(hours=6))
    h.look_at(MONDAY + timedelta(hours=7))
    h.close()

    def status_at(moment: datetime) -> tuple[str, str]:
        args = ["--config", str(h.site / "publisher.toml"), "status"]
        result = CliRunner().invoke(main, args, obj={"clock": SteppedClock(moment)})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        build = next(line for line in lines if line.startswith("job build"))
        digest = next(line for line in lines if line.startswith("job digest:daily"))
        assert build.startswith("job build (every 10 minutes): last run 2026-03-02 07:00 UTC ok (built 1 post: ")
        assert digest.startswith(
            "job digest:daily (daily at 07:00): last run 2026-03-02 07:00 UTC ok "
            "(issue 1: 3 sent, 0 failed, 0 skipped, 0 pending); next "
        )
        return build, digest

    # Right after the 07:00 runs: the next slots.
    build, digest = status_at(MONDAY + timedelta(hours=7, minutes=3))
    assert build.endswith("; next 2026-03-02 07:10 UTC")
    assert digest.endswith("; next 2026-03-03 07:00 UTC")
    # Hours later, with the scheduler stopped: the build is owed now, the
    # digest was sent today and waits for tomorrow.
    build, digest = status_at(MONDAY + timedelta(hours=18, minutes=5))
    assert build.endswith("; next due now (on time)"), build
    assert digest.endswith("; next 2026-03-03 07:00 UTC")
    # The next morning, before 07:00: still that day's slot.
    build, digest = status_at(MONDAY + timedelta(days=1, hours=6))
    assert digest.endswith("; next 2026-03-03 07:00 UTC")
    # Tuesday 10:00 and nobody ran Tuesday's 07:00 digest: it is owed.
    build, digest = status_at(MONDAY + timedelta(days=1, hours=10))
    assert digest.endswith("; next due now (catch-up, 3 hours late)"), digest


def test_run_without_jobs_is_a_usage_error(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 1)
    result = CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "run", "--once"])
    assert result.exit_code == 2
    assert "nothing to schedule" in result.stderr


def test_jobs_of_the_config(tmp_path: Path) -> None:
    site = scheduled_site(tmp_path, build="every 10 minutes", list_keys='catch_up = false\nmax_late = "2 hours"\n')
    jobs = jobs_of(load_config(site / "publisher.toml"))
    assert [(j.name, j.schedule.text, j.list_name, j.catch_up, j.max_late) for j in jobs] == [
        ("build", "every 10 minutes", None, True, None),
        ("digest:daily", "daily at 07:00", "daily", False, timedelta(hours=2)),
    ]
