"""The mail commands: ``publisher digest``, ``send``, ``status`` and ``run``.

Each imports the stages it runs when it runs.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher.app.cli_base import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    choose_list,
    ctx_clock,
    ctx_config,
    ctx_now,
    fail,
    report_errors,
)
from publisher.app.common import make_transport, plural, with_secret

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.mail import SendReport
    from publisher.model import DigestList
    from publisher.state import StateStore

log = logging.getLogger("publisher")


@click.command()
@click.option("--list", "list_name", help="The list (default: the only one).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the .html, .txt and .eml files (default: preview/ beside the config).",
)
@click.option("--force", is_flag=True, help="Render the newest posts even if the list already had them.")
@click.option("--backfill", type=click.IntRange(min=0), help="A new list's first issue also holds the newest N posts.")
@click.pass_context
def digest(ctx: click.Context, list_name: str | None, out: Path | None, force: bool, backfill: int | None) -> None:
    """Render the next digest of a list to files, without sending it."""
    from publisher.feeds import check_site
    from publisher.mail import compose, next_issues, recipient
    from publisher.mail import personalize, render_issue
    from publisher.state import StateStore
    from publisher.feeds import write_atomic

    config = ctx_config(ctx)
    digest_list = choose_list(config, list_name)
    now = ctx_now(ctx)
    store = StateStore.connect(config.state, readonly=True)
    try:
        report = check_site(config, store=store, now=now)
        # The same choice as `publisher send` makes (a list in post mode: its next post).
        issues = next_issues(report.site, digest_list, store, now=now, force=force, backfill=backfill)
        issue = issues[0] if issues else None
    finally:
        store.close()
    code = report_errors(report)
    if issue is None:
        if not ctx.obj["quiet"]:
            click.echo(
                f"No new posts for list {digest_list.name!r} since its last issue: nothing to render "
                "(--force renders the newest posts anyway)."
            )
        sys.exit(code)
    config = with_secret(config)
    rendered = render_issue(issue, report.site.info, templates=config.mail.templates / "email")
    author = config.site.author
    reader = recipient(config, issue, author.email or config.mail.sender_address, author.name)
    html, text = personalize(rendered, reader)
    message = compose(config, issue, rendered, reader, now=now)
    folder = out if out is not None else config.root / "preview"
    stem = folder / f"{digest_list.name}-{issue.number}"
    written = []
    for suffix, data in ((".html", html.encode("utf-8")), (".txt", text.encode("utf-8")), (".eml", message)):
        write_atomic(stem.with_suffix(suffix), data)
        written.append(stem.with_suffix(suffix))
    if not ctx.obj["quiet"]:
        click.echo(
            f"Digest {digest_list.name!r} issue {issue.number}: {plural(len(issue.posts), 'post')}"
            + (f" ({rendered.linked_posts} as links only, to stay under the size limit)" if rendered.linked_posts else "")
            + f", subject: {rendered.subject}"
        )
        for path in written:
            click.echo(f"  {path}")
    sys.exit(code)


class _Progress:
    """A rich progress bar on a terminal; a log line every few seconds elsewhere."""

    def __init__(self, report_total: int, quiet: bool, interval: float = 5.0):
        self.quiet = quiet
        self.interval = interval
        self.last = time.monotonic()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("sending"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]:.0f}/s"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.started = time.monotonic()
            self.task = self.bar.add_task("send", total=report_total, failed=0, rate=0.0)
            self.bar.start()

    def __call__(self, report: SendReport) -> None:
        done = report.sent + report.failed + report.skipped
        if self.bar is not None:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            self.bar.update(self.task, completed=done, failed=report.failed, rate=report.sent / elapsed)
        elif not self.quiet and time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            click.echo(
                f"list {report.list_name} issue {report.number}: {report.sent} sent, "
                f"{report.failed} failed, {report.pending} pending",
                err=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@click.command()
@click.option("--list", "list_name", help="The list (default: every list with something to send).")
@click.option("--dry-run", is_flag=True, help="Render every message and send none.")
@click.option(
    "--to", "test_to", multiple=True, metavar="ADDRESS",
    help="Send the next issue to ADDRESS only, as a test; records nothing (repeatable).",
)
@click.option("--backfill", type=click.IntRange(min=0), help="A new list's first issue also holds the newest N posts.")
@click.option(
    "--processes", type=click.IntRange(min=1, max=64), metavar="N",
    help="Deliver each issue with N processes on this machine (default: [mail] processes).",
)
@click.option("--join", "join_issue", type=int, hidden=True)  # a process of another `publisher send`
@click.pass_context
def send(
    ctx: click.Context, list_name: str | None, dry_run: bool, test_to: tuple[str, ...], backfill: int | None,
    processes: int | None, join_issue: int | None,
) -> None:
    """Create (or resume) the next issue of a list, or of each list, and deliver it."""
    from publisher.state import SendLocked, StateStore

    config = with_secret(ctx_config(ctx))
    if processes is not None:
        config = dataclasses.replace(config, mail=dataclasses.replace(config.mail, processes=processes))
    lists = [choose_list(config, list_name)] if list_name or len(config.lists) < 2 else list(config.lists.values())
    addresses = _test_addresses(test_to)
    store = StateStore.connect(config.state, readonly=dry_run or bool(addresses))
    if join_issue is not None:
        try:
            sys.exit(_join(ctx, config, store, join_issue))
        finally:
            store.close()
    try:
        begun = [d.name for d in lists if store.issues.last_cutoff(d.name) is not None]
        if backfill is not None and begun:
            raise UsageError(f"list {begun[0]!r} already has issues; --backfill is for a list's first issue")
        codes = [EXIT_OK]
        for digest_list in lists:
            if addresses:
                codes.append(_send_test(ctx, config, store, digest_list, addresses, backfill))
            elif dry_run:
                codes.append(_dry_run(ctx, config, store, digest_list, backfill))
            elif len(lists) == 1:
                codes.append(_send_list(ctx, config, store, digest_list, backfill))
            else:  # one list held by another sender does not keep the others from going out
                try:
                    codes.append(_send_list(ctx, config, store, digest_list, backfill))
                except SendLocked as exc:
                    click.echo(f"list {digest_list.name}: {exc}; not sent now", err=True)
                    codes.append(EXIT_ERROR)
    finally:
        store.close()
    sys.exit(max(codes))


def _test_addresses(given: tuple[str, ...]) -> list[str]:
    from publisher.mail import SubscriberError, normalize_email

    try:
        return [normalize_email(address) for address in given]
    except SubscriberError as exc:
        raise UsageError(f"--to: {exc}") from None


def _send_test(ctx, config: Config, store: StateStore, digest_list: DigestList, addresses: list[str], backfill) -> int:
    from publisher.mail import send_test

    report = send_test(config, store, digest_list, make_transport(config), addresses, now=ctx_now(ctx), backfill=backfill)
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if not ctx.obj["quiet"]:
        if report.number is None:
            click.echo(f"No new posts for list {digest_list.name!r}: no test to send.")
        else:
            click.echo(
                f"Test of issue {report.number} of {digest_list.name!r} ({digest_list.test_prefix.strip()}): "
                f"{report.sent} sent to {', '.join(addresses)}, {report.failed} failed; nothing recorded"
            )
    return EXIT_REJECTED if report.failed else EXIT_OK


def _dry_run(ctx, config: Config, store: StateStore, digest_list: DigestList, backfill) -> int:
    from publisher.mail import dry_run

    report = dry_run(config, store, digest_list, now=ctx_now(ctx), backfill=backfill)
    if not ctx.obj["quiet"]:
        if report.number is None:
            click.echo(f"No new posts for list {digest_list.name!r}: nothing would be sent.")
        else:
            click.echo(
                f"Dry run: issue {report.number} of {digest_list.name!r} rendered for "
                f"{plural(report.total, 'recipient')}; nothing sent."
            )
    return EXIT_OK


def _send_list(ctx, config: Config, store: StateStore, digest_list: DigestList, backfill) -> int:
    """Deliver the list's unfinished or next issues (one per post in post
    mode), one after another; the exit code."""
    from publisher.mail import deliver_issue, prepare_issue
    from publisher.state import send_lock

    quiet = ctx.obj["quiet"]
    lock = send_lock(config.state, digest_list.name)
    shared = config.state.url is not None
    if shared:
        # Several senders share a PostgreSQL store: the lock is held only
        # while the issue is chosen, then each claims batches of it.
        lock.wait(
            threading.Event(), poll=0.1, on_wait=lambda holder: click.echo(f"{lock.held_by(holder)}; waiting", err=True)
        )
    else:
        lock.acquire()  # SendLocked: the scheduler is sending it
    try:
        issue_id = prepare_issue(config, store, digest_list, now=ctx_now(ctx), backfill=backfill)
        if issue_id is None:
            if not quiet:
                click.echo(_nothing_to_send(store, digest_list))
            return EXIT_OK
        if shared:
            lock.release()
        code = EXIT_OK
        while issue_id is not None:
            if config.mail.processes > 1:
                report, others = _deliver_in_processes(ctx, config, store, digest_list, issue_id, lock.fd)
                code = max(code, others)
            else:
                progress = _Progress(store.deliveries.pending_count(issue_id), quiet)
                try:
                    report = deliver_issue(
                        config, store, make_transport(config), issue_id, clock=ctx_clock(ctx), on_progress=progress
                    )
                finally:
                    progress.close()
            _show_report(config, report, quiet)
            if report.stopped is not None:
                fail(f"send stopped: {report.stopped}; run `publisher send` again to resume")
            if report.pending:
                return max(code, EXIT_REJECTED)
            code = max(code, EXIT_REJECTED) if report.failed else code
            issue_id = store.issues.unfinished(digest_list.name)
        return code
    finally:
        lock.release()


def _deliver_in_processes(
    ctx, config: Config, store: StateStore, digest_list: DigestList, issue_id: int, lock_fd: int | None
) -> tuple[SendReport, int]:
    """Deliver the issue with ``[mail] processes`` processes, this one and
    the others it starts, each claiming leased batches; the report holds
    the issue's totals once every process has ended. The code: EXIT_ERROR
    if one of the others ended with an error, else EXIT_OK."""
    from publisher.app.send_processes import SenderProcesses
    from publisher.mail import deliver_issue

    quiet = ctx.obj["quiet"]
    stop = threading.Event()
    others = SenderProcesses(
        config.path.resolve(), digest_list.name, issue_id,
        count=config.mail.processes - 1, quiet=quiet, verbose=ctx.obj.get("verbose", 0), lock_fd=lock_fd,
    )
    with _stop_on_signals(stop, also=others.signal):
        others.start()
        progress = _Progress(store.deliveries.pending_count(issue_id), quiet)
        try:
            report = deliver_issue(
                config, store, make_transport(config), issue_id,
                clock=ctx_clock(ctx), on_progress=progress, stop=stop, shared=True,
            )
        except BaseException:
            others.signal(signal.SIGTERM)
            raise
        finally:
            progress.close()
            for line in others.wait():
                click.echo(line, err=True)
    counts = store.deliveries.counts(issue_id)  # what every process did
    report.total = sum(counts.values())
    report.sent, report.failed = counts.get("sent", 0), counts.get("failed", 0)
    report.skipped, report.pending = counts.get("skipped", 0), counts.get("pending", 0)
    if report.pending == 0 and report.stopped is None:
        store.retry(lambda: store.issues.finish(issue_id, now=ctx_now(ctx)))
    return report, EXIT_ERROR if others.errors else EXIT_OK


def _join(ctx, config: Config, store: StateStore, issue_id: int) -> int:
    """One of the other processes of a ``publisher send``: deliver its share
    of the issue; failures and errors on stderr, nothing on stdout."""
    from publisher.mail import deliver_issue

    stop = threading.Event()
    with _stop_on_signals(stop, announce=False):
        report = deliver_issue(
            config, store, make_transport(config), issue_id, clock=ctx_clock(ctx), stop=stop, shared=True
        )
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if report.stopped is not None and not stop.is_set():
        fail(f"send stopped: {report.stopped}")
    return EXIT_OK


def _show_report(config: Config, report: SendReport, quiet: bool) -> None:
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if not quiet:
        where = f" to {config.relative(config.mail.outbox)}/new/" if config.mail.transport == "outbox" else ""
        click.echo(
            f"Issue {report.number} of {report.list_name!r}: {report.sent} sent{where}, {report.failed} failed, "
            f"{report.skipped} skipped, {report.pending} pending"
            + (f" ({report.suppressed} addresses suppressed)" if report.suppressed else "")
        )
    if report.pending:
        click.echo(f"{plural(report.pending, 'delivery')} left pending after retries; run `publisher send` again", err=True)


def _nothing_to_send(store: StateStore, digest_list: DigestList) -> str:
    """Why no issue was made, and what to do about it."""
    from publisher.mail import nothing_to_send

    name = digest_list.name
    reason = nothing_to_send(store, digest_list)
    if reason == "no active subscribers":
        advice = (
            f"add one with `publisher subscribers add EMAIL --list {name}` "
            "or import a CSV with `publisher subscribers import FILE.csv`"
        )
    else:
        advice = "publish a post (and run `publisher build`), then send again"
    return f"Nothing to send for list {name!r}: {reason}; {advice}."


@click.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """The last build, the last issue of each list, pending and failed deliveries."""
    from publisher.state import StateStore

    config = ctx_config(ctx)
    store = StateStore.connect(config.state, readonly=True)
    try:
        build = store.builds.last()
        if build is None:
            click.echo("build: never")
        else:
            local = build.finished.astimezone(config.site.timezone)
            click.echo(
                f"build: {local:%Y-%m-%d %H:%M %Z}, {plural(build.posts, 'post')}, "
                f"{build.rejected} rejected, {build.written} files written"
            )
        for name in config.lists:
            issues = store.issues.all(name)
            if not issues:
                click.echo(f"list {name}: no issue yet")
                continue
            last = issues[0]
            counts = store.deliveries.counts(last.id)
            local = last.created.astimezone(config.site.timezone)
            click.echo(
                f"list {name}: issue {last.number} ({last.status}) of {local:%Y-%m-%d %H:%M %Z}: "
                + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("sent", "failed", "skipped", "pending"))
            )
        _show_jobs(config, store, ctx_now(ctx))
        from publisher.app.cli_bounces import bounce_status_lines

        for line in bounce_status_lines(config, store, ctx_now(ctx)):
            click.echo(line)
    finally:
        store.close()


def _show_jobs(config: Config, store: StateStore, now) -> None:
    """Each scheduled job's last run and next run, in the site's time zone."""
    from publisher.app.scheduler import jobs_of, plan_job

    jobs = jobs_of(config)
    if not jobs:
        click.echo("jobs: none scheduled ([jobs] build, or a list's schedule)")
        return
    tz = config.site.timezone
    runs = store.jobs.all()
    for job in jobs:
        run = runs.get(job.name)
        if run is None or run.started is None:
            last = "never"
        elif run.status == "running":
            last = f"started {run.started.astimezone(tz):%Y-%m-%d %H:%M %Z}, running (or interrupted)"
        else:
            last = f"{run.started.astimezone(tz):%Y-%m-%d %H:%M %Z} {run.status}" + (f" ({run.message})" if run.message else "")
        plan = plan_job(job, run, now, tz, watched_since=None)
        if plan.action == "run":
            upcoming = f"due now ({plan.reason})"
        else:
            upcoming = f"{plan.next_slot.astimezone(tz):%Y-%m-%d %H:%M %Z}"
        click.echo(f"job {job.name} ({job.schedule.text}): last run {last}; next {upcoming}")


@contextmanager
def _stop_on_signals(
    stop: threading.Event, *, also: Callable[[int], None] | None = None, announce: bool = True
) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``; a second one ends the process at once, as a crash would.
    ``also`` is called with each signal first (to pass it on)."""

    def on_signal(signum: int, frame: object) -> None:
        if also is not None:
            also(signum)
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        if announce:
            log.warning("%s: stopping once the messages in flight are recorded", signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _event_lines(quiet: bool) -> Iterator[None]:
    """The scheduler's INFO lines are its output: shown without -v (not with -q)."""
    logger = logging.getLogger("publisher.scheduler")
    level = logger.level
    if not quiet and logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)


@click.command()
@click.option("--once", is_flag=True, help="Run what is due now (catch-up included) and exit: for cron and systemd timers.")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """The scheduler: rebuild the feeds and send each digest at its time.

    Runs until SIGTERM or SIGINT (the job in progress stops at a safe point,
    then exit 0), or with --once runs what is due now and exits: 0, or 1 if
    a job failed. Only one scheduler runs per state store.
    """
    from publisher.state import scheduler_lock
    from publisher.app.scheduler import Scheduler, jobs_of
    from publisher.state import StateStore

    config = with_secret(ctx_config(ctx))
    if not jobs_of(config):
        raise UsageError(
            f'{config.path}: nothing to schedule; add [jobs] build = "every 10 minutes" '
            'or a list schedule such as schedule = "daily at 07:00"'
        )
    stop = threading.Event()
    with scheduler_lock(config.state), _stop_on_signals(stop), _event_lines(ctx.obj["quiet"]):
        store = StateStore.connect(config.state)
        try:
            scheduler = Scheduler(config, store, clock=ctx_clock(ctx), transport=lambda: make_transport(config), stop=stop)
            if once:
                scheduler.run_due()
            else:
                scheduler.run_forever()
        finally:
            store.close()
    sys.exit(EXIT_REJECTED if once and scheduler.errors and not stop.is_set() else EXIT_OK)
