"""The command line: ``publisher [--config PATH] [-v|-q] COMMAND``.

Exit codes: 0 success; 1 finished but some inputs were rejected (each named
on stderr as ``path:line: reason``); 2 usage, configuration or environment
error. Expected failures never show a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher import __version__
from publisher.clock import Clock, SystemClock
from publisher.errors import PublisherError
from publisher.model import SUBSCRIBER_STATUSES

# Each command imports the stages it runs when it runs: `publisher --help`,
# `status` and every cron `run --once` would otherwise pay for Flask, lxml,
# premailer and feedparser before doing anything.
if TYPE_CHECKING:
    from publisher.feeds import BuildReport
    from publisher.config import Config
    from publisher.model import DigestList, Subscriber
    from publisher.mail import SendReport
    from publisher.state import StateStore

log = logging.getLogger("publisher")

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


def _clock(ctx: click.Context) -> Clock:
    """The invocation's clock: the machine's, or the one a caller passed in
    ``obj={"clock": ...}`` (how tests fix the time of ``status`` and the rest)."""
    return ctx.find_root().obj["clock"]


def _now(ctx: click.Context):
    return _clock(ctx).now()


def _fail(message: str) -> None:
    click.echo(str(message), err=True)
    sys.exit(EXIT_ERROR)


def _config(ctx: click.Context) -> Config:
    from publisher.config import load_config

    return load_config(ctx.find_root().obj["config_path"])


# What `publisher init` writes for [site] url, and the other names reserved
# for examples (RFC 2606): feeds and emails that link there lead nowhere.
_PLACEHOLDER_HOSTS = ("example.org", "example.com", "example.net")


def _warn_placeholder_url(ctx: click.Context, config: Config) -> None:
    from urllib.parse import urlsplit

    host = (urlsplit(config.site.url).hostname or "").lower()
    if ctx.obj["quiet"] or not (host in _PLACEHOLDER_HOSTS or host.endswith(".example")):
        return
    click.echo(
        f"warning: {config.path}: [site] url is still the placeholder {config.site.url}; "
        "set it to the address where readers find the site (feeds and emails link there)",
        err=True,
    )


def _report_errors(report: BuildReport) -> int:
    for error in report.errors:
        click.echo(str(error), err=True)
    return EXIT_REJECTED if report.errors else EXIT_OK


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _rejected(report: BuildReport) -> str:
    return f", {_plural(len(report.errors), 'input')} rejected" if report.errors else ""


class UsageError(PublisherError):
    """The command line asks for something the site does not have."""


class _Group(click.Group):
    """Turns expected failures into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            _fail(str(exc))


@click.group(cls=_Group)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("publisher.toml"),
    show_default=True,
    help="The site's configuration file.",
)
@click.option("-v", "--verbose", count=True, help="Say more (twice for debugging).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: int, quiet: bool) -> None:
    """Publish posts written as files as RSS, Atom and JSON feeds and email digests."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    given = ctx.obj if isinstance(ctx.obj, dict) else {}
    ctx.obj = {"config_path": config_path, "quiet": quiet, "clock": given.get("clock") or SystemClock()}


@main.command()
@click.option("--force", is_flag=True, help="Rewrite every feed even if unchanged.")
@click.pass_context
def build(ctx: click.Context, force: bool) -> None:
    """Read the content, update the state store and write the feeds."""
    from publisher.feeds import build_site
    from publisher.feeds import ATOM, JSON_FEED, RSS
    from publisher.state import StateStore

    config = _config(ctx)
    store = StateStore.open(config.state.path)
    try:
        report = build_site(config, store=store, now=_now(ctx), force=force)
    finally:
        store.close()
    code = _report_errors(report)
    if not ctx.obj["quiet"]:
        click.echo(
            f"Built {_plural(len(report.site.posts), 'post')} into {config.relative(config.feeds.out)}/: "
            f"{len(report.written)} written, {len(report.unchanged)} unchanged"
            + _rejected(report)
        )
        main_feeds = [name for name in report.files if name in (RSS, ATOM, JSON_FEED)]
        for name in main_feeds:
            click.echo(f"  {config.relative(config.feeds.out / name)}")
        others = len(report.files) - len(main_feeds)
        if others:
            click.echo(f"  and {_plural(others, 'more file')} (tag, author, comment and archive feeds)")
        if report.removed:
            click.echo(f"  removed {_plural(len(report.removed), 'feed')} no longer produced")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    _warn_placeholder_url(ctx, config)
    sys.exit(code)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration, content and templates; write nothing."""
    from publisher.feeds import check_site
    from publisher.mail import next_issue
    from publisher.mail import render_issue
    from publisher.state import StateStore

    config = _config(ctx)
    now = _now(ctx)
    store = StateStore.open(config.state.path, readonly=True)
    try:
        report = check_site(config, store=store, now=now)
        # Each list's templates render (a typo is an error naming the line).
        for digest_list in config.lists.values():
            issue = next_issue(report.site, digest_list, store, now=now, force=True)
            if issue is not None:
                render_issue(issue, report.site.info, templates=config.mail.templates / "email")
    finally:
        store.close()
    code = _report_errors(report)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    _warn_placeholder_url(ctx, config)
    if not ctx.obj["quiet"]:
        click.echo(
            f"{config.path}: ok; "
            f"{_plural(len(report.site.posts), 'post')} would be published" + _rejected(report)
        )
    sys.exit(code)


def _choose_list(config: Config, name: str | None) -> DigestList:
    if name is not None:
        if name not in config.lists:
            known = ", ".join(config.lists) or "none configured"
            raise UsageError(f"{config.path}: no list {name!r} (lists: {known})")
        return config.lists[name]
    if len(config.lists) == 1:
        return next(iter(config.lists.values()))
    if not config.lists:
        raise UsageError(f'{config.path}: no lists; add one such as [lists.daily] title = "Daily digest"')
    raise UsageError(f"{config.path}: several lists ({', '.join(config.lists)}); choose one with --list")


def _with_secret(config: Config) -> Config:
    """The config, with a signing secret created on first use when there is none."""
    from dataclasses import replace

    from publisher.mail import write_secret

    if config.mail.secret is not None:
        return config
    secret = write_secret(config.mail.secret_file)
    log.warning("created the signing secret %s: keep it, and keep it private", config.relative(config.mail.secret_file))
    return replace(config, mail=replace(config.mail, secret=secret))


@main.command()
@click.option("--list", "list_name", help="The list (default: the only one).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the .html, .txt and .eml files (default: preview/ beside the config).",
)
@click.option("--force", is_flag=True, help="Render the newest posts even if the list already had them.")
@click.pass_context
def digest(ctx: click.Context, list_name: str | None, out: Path | None, force: bool) -> None:
    """Render the next digest of a list to files, without sending it."""
    from publisher.feeds import check_site
    from publisher.mail import compose, next_issue, recipient
    from publisher.mail import personalize, render_issue
    from publisher.state import StateStore
    from publisher.feeds import write_atomic

    config = _config(ctx)
    digest_list = _choose_list(config, list_name)
    now = _now(ctx)
    store = StateStore.open(config.state.path, readonly=True)
    try:
        report = check_site(config, store=store, now=now)
        issue = next_issue(report.site, digest_list, store, now=now, force=force)
    finally:
        store.close()
    code = _report_errors(report)
    if issue is None:
        if not ctx.obj["quiet"]:
            click.echo(
                f"No new posts for list {digest_list.name!r} since its last issue: nothing to render "
                "(--force renders the newest posts anyway)."
            )
        sys.exit(code)
    config = _with_secret(config)
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
            f"Digest {digest_list.name!r} issue {issue.number}: {_plural(len(issue.posts), 'post')}"
            + (f" ({rendered.linked_posts} as links only, to stay under the size limit)" if rendered.linked_posts else "")
            + f", subject: {rendered.subject}"
        )
        for path in written:
            click.echo(f"  {path}")
    sys.exit(code)


def _transport(config: Config):
    from publisher.mail import OutboxTransport, SmtpTransport

    if config.mail.transport == "smtp":
        return SmtpTransport(config.mail.smtp)
    return OutboxTransport(config.mail.outbox)


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


@main.command()
@click.option("--list", "list_name", help="The list (default: the only one).")
@click.option("--dry-run", is_flag=True, help="Render every message and send none.")
@click.pass_context
def send(ctx: click.Context, list_name: str | None, dry_run: bool) -> None:
    """Create (or resume) the list's next issue and deliver it."""
    from publisher.state import SendLock
    from publisher.mail import deliver_issue, prepare_issue
    from publisher.mail import dry_run as dry_run_issue
    from publisher.state import StateStore

    config = _with_secret(_config(ctx))
    digest_list = _choose_list(config, list_name)
    quiet = ctx.obj["quiet"]
    now = _now(ctx)
    store = StateStore.open(config.state.path, readonly=dry_run)
    try:
        if dry_run:
            report = dry_run_issue(config, store, digest_list, now=now)
            if not quiet:
                if report.number is None:
                    click.echo(f"No new posts for list {digest_list.name!r}: nothing would be sent.")
                else:
                    click.echo(
                        f"Dry run: issue {report.number} of {digest_list.name!r} rendered for "
                        f"{_plural(report.total, 'recipient')}; nothing sent."
                    )
            sys.exit(EXIT_OK)
        with SendLock(config.state.path, digest_list.name):  # SendLocked: the scheduler is sending it
            issue_id = prepare_issue(config, store, digest_list, now=now)
            if issue_id is None:
                if not quiet:
                    click.echo(_nothing_to_send(store, digest_list))
                sys.exit(EXIT_OK)
            pending = store.deliveries.pending_count(issue_id)
            progress = _Progress(pending, quiet)
            try:
                report = deliver_issue(
                    config, store, _transport(config), issue_id, clock=_clock(ctx), on_progress=progress
                )
            finally:
                progress.close()
    finally:
        store.close()
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if not quiet:
        where = f" to {config.relative(config.mail.outbox)}/new/" if config.mail.transport == "outbox" else ""
        click.echo(
            f"Issue {report.number} of {report.list_name!r}: {report.sent} sent{where}, {report.failed} failed, "
            f"{report.skipped} skipped, {report.pending} pending"
            + (f" ({report.suppressed} addresses suppressed)" if report.suppressed else "")
        )
    if report.stopped is not None:
        _fail(f"send stopped: {report.stopped}; run `publisher send` again to resume")
    if report.pending:
        click.echo(f"{_plural(report.pending, 'delivery')} left pending after retries; run `publisher send` again", err=True)
    sys.exit(EXIT_REJECTED if report.failed or report.pending else EXIT_OK)


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


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """The last build, the last issue of each list, pending and failed deliveries."""
    from publisher.state import StateStore

    config = _config(ctx)
    store = StateStore.open(config.state.path, readonly=True)
    try:
        build = store.builds.last()
        if build is None:
            click.echo("build: never")
        else:
            local = build.finished.astimezone(config.site.timezone)
            click.echo(
                f"build: {local:%Y-%m-%d %H:%M %Z}, {_plural(build.posts, 'post')}, "
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
        _show_jobs(config, store, _now(ctx))
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
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``; a second one ends the process at once, as a crash would."""

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
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


@main.command()
@click.option("--once", is_flag=True, help="Run what is due now (catch-up included) and exit: for cron and systemd timers.")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """The scheduler: rebuild the feeds and send each digest at its time.

    Runs until SIGTERM or SIGINT (the job in progress stops at a safe point,
    then exit 0), or with --once runs what is due now and exits: 0, or 1 if
    a job failed. Only one scheduler runs per state store.
    """
    from publisher.state import SchedulerLock
    from publisher.app.scheduler import Scheduler, jobs_of
    from publisher.state import StateStore

    config = _with_secret(_config(ctx))
    if not jobs_of(config):
        raise UsageError(
            f'{config.path}: nothing to schedule; add [jobs] build = "every 10 minutes" '
            'or a list schedule such as schedule = "daily at 07:00"'
        )
    stop = threading.Event()
    with SchedulerLock(config.state.path), _stop_on_signals(stop), _event_lines(ctx.obj["quiet"]):
        store = StateStore.open(config.state.path)
        try:
            scheduler = Scheduler(config, store, clock=_clock(ctx), transport=lambda: _transport(config), stop=stop)
            if once:
                scheduler.run_due()
            else:
                scheduler.run_forever()
        finally:
            store.close()
    sys.exit(EXIT_REJECTED if once and scheduler.errors and not stop.is_set() else EXIT_OK)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.pass_context
def init(ctx: click.Context, directory: Path) -> None:
    """Create a new site in DIRECTORY (default: here)."""
    from publisher.app.scaffold import scaffold_site

    created = scaffold_site(directory, now=_now(ctx))
    if not ctx.obj["quiet"]:
        for path in created:
            click.echo(f"created {path}")
        where = f"cd {directory} && " if directory != Path(".") else ""
        click.echo(f"Next: {where}publisher build")


# -- subscribers -------------------------------------------------------------------


def _subscriber_lists(config: Config, names: tuple[str, ...]) -> tuple[str, ...]:
    """The lists named (each must be configured), or every configured list."""
    if not config.lists:
        raise UsageError(f'{config.path}: no lists; add one such as [lists.daily] title = "Daily digest"')
    if not names:
        return tuple(config.lists)
    return tuple(dict.fromkeys(_choose_list(config, name).name for name in names))


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _show_subscribers_table(config: Config, found: list[Subscriber]) -> None:
    """A rich table on a terminal; plain columns (for grep and cut) elsewhere."""
    header = ("email", "name", "lists", "status", "created")
    rows = [
        (s.email, s.name, " ".join(s.lists), s.status, f"{s.created.astimezone(config.site.timezone):%Y-%m-%d %H:%M}")
        for s in found
    ]
    if _stdout_is_terminal():
        from rich.console import Console
        from rich.table import Column, Table
        from rich.text import Text

        # Addresses are shown whole; names are text, never rich markup.
        longest = max((len(row[0]) for row in rows), default=5)
        table = Table(
            Column("email", no_wrap=True, min_width=longest),
            Column("name", overflow="ellipsis"),
            Column("lists"),
            Column("status", no_wrap=True),
            Column("created", no_wrap=True),
            caption=_plural(len(rows), "subscriber"),
        )
        for row in rows:
            table.add_row(*(Text(cell) for cell in row), style=None if row[3] == "active" else "dim")
        Console(highlight=False).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@main.group()
def subscribers() -> None:
    """Manage subscribers: add, remove, list, import and export CSV.

    An address that unsubscribed, bounced or complained is never made active
    again by `import`; `add` brings back one that unsubscribed (the owner is
    adding it on purpose), and one that bounced or complained only with --force.
    """


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option("--list", "list_names", multiple=True, help="A list to join (repeatable; default: every list).")
@click.option("--force", is_flag=True, help="Add the address even if it bounced or complained.")
@click.pass_context
def subscribers_add(ctx: click.Context, email: str, name: str, list_names: tuple[str, ...], force: bool) -> None:
    """Subscribe EMAIL to lists (again, if it had unsubscribed)."""
    from publisher.state import StateStore
    from publisher.mail import SUPPRESSED, add_by_owner, clean_name, normalize_email
    config = _config(ctx)
    lists = _subscriber_lists(config, list_names)
    address = normalize_email(email)
    store = StateStore.open(config.state.path)
    try:
        before = store.subscribers.find(address)
        after, created = add_by_owner(
            store.subscribers, address, clean_name(name), lists, source="cli", now=_now(ctx), force=force
        )
    finally:
        store.close()
    if after.status in SUPPRESSED:
        click.echo(f"{address}: {after.status}, so not added (--force adds it anyway)", err=True)
        sys.exit(EXIT_REJECTED)
    if ctx.obj["quiet"]:
        return
    on = ", ".join(after.lists)
    if created:
        click.echo(f"Added {address} to {on}")
    elif before is not None and before.status != after.status:
        click.echo(f"Subscribed {address} again (was {before.status}): on {on}")
    elif after != before:
        click.echo(f"Updated {address}: on {on}")
    else:
        click.echo(f"{address} is already on {on}")


@subscribers.command("remove")
@click.argument("email")
@click.option("--list", "list_name", help="Leave only this list (default: every list).")
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str, list_name: str | None) -> None:
    """Unsubscribe EMAIL from a list, or from every list."""
    from publisher.state import StateStore
    from publisher.mail import normalize_email, remove_subscriber

    config = _config(ctx)
    if list_name is not None:
        _choose_list(config, list_name)
    address = normalize_email(email)
    store = StateStore.open(config.state.path)
    try:
        before = store.subscribers.find(address)
        after = remove_subscriber(store.subscribers, address, list_name, now=_now(ctx)) if before is not None else None
    finally:
        store.close()
    if before is None or after is None:
        click.echo(f"{address}: no such subscriber", err=True)
        sys.exit(EXIT_REJECTED)
    if ctx.obj["quiet"]:
        return
    if after == before:
        click.echo(f"{address} was not on {list_name}" if list_name else f"{address} is already {after.status}")
    elif list_name is None:
        click.echo(f"Unsubscribed {address} from every list")
    elif after.lists:
        click.echo(f"Unsubscribed {address} from {list_name}; still on {', '.join(after.lists)}")
    else:
        click.echo(f"Unsubscribed {address} from {list_name}, the last list it was on")


@subscribers.command("list")
@click.option("--list", "list_name", help="Only those on this list.")
@click.option("--status", "status_name", type=click.Choice(SUBSCRIBER_STATUSES), help="Only those with this status.")
@click.option(
    "--format", "output_format", type=click.Choice(("table", "csv", "json")), default="table", show_default=True
)
@click.pass_context
def subscribers_list(ctx: click.Context, list_name: str | None, status_name: str | None, output_format: str) -> None:
    """Show subscribers, oldest first."""
    from publisher.state import StateStore
    from publisher.mail import export_csv, subscriber_record

    config = _config(ctx)
    if list_name is not None:
        _choose_list(config, list_name)
    store = StateStore.open(config.state.path, readonly=True)
    try:
        found = store.subscribers.matching(list_name, status_name)
    finally:
        store.close()
    if output_format == "csv":
        click.echo(export_csv(found), nl=False)
    elif output_format == "json":
        click.echo(json.dumps([subscriber_record(s) for s in found], ensure_ascii=False, indent=2))
    else:
        _show_subscribers_table(config, found)


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--list", "list_name", help="The list of rows that name none (default: every list).")
@click.pass_context
def subscribers_import(ctx: click.Context, file: Path, list_name: str | None) -> None:
    """Add the subscribers of a CSV file (header row: email,name,lists).

    Bad rows are reported as FILE:line: reason and the rest imported; an
    address that unsubscribed, bounced or complained stays so.
    """
    from publisher.state import StateStore
    from publisher.mail import import_subscribers, read_subscriber_csv

    config = _config(ctx)
    default_lists = _subscriber_lists(config, (list_name,) if list_name else ())
    shown = "<stdin>" if str(file) == "-" else str(file)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror or exc}") from exc
    parsed = read_subscriber_csv(data, shown, known_lists=tuple(config.lists), default_lists=default_lists)
    for rejection in parsed.rejected:
        click.echo(str(rejection), err=True)
    store = StateStore.open(config.state.path)
    try:
        report = import_subscribers(store, parsed.rows, source="import:stdin" if str(file) == "-" else f"import:{file.name}", now=_now(ctx))
    finally:
        store.close()
    if not ctx.obj["quiet"]:
        parts = [f"{report.unchanged} already there"]
        if report.not_resubscribed:
            parts.append(f"{report.not_resubscribed} of them unsubscribed or bounced and left so")
        if report.updated:
            parts.append(f"{report.updated} updated")
        if report.duplicates:
            parts.append(f"{_plural(report.duplicates, 'duplicate row')}")
        if report.suppressed:
            parts.append(f"{report.suppressed} marked unsubscribed or bounced in the file, kept so")
        if parsed.rejected:
            parts.append(f"{_plural(len(parsed.rejected), 'row')} rejected")
        click.echo(f"Imported {_plural(report.added, 'subscriber')} ({', '.join(parts)})")
    sys.exit(EXIT_REJECTED if parsed.rejected else EXIT_OK)


@subscribers.command("export")
@click.option("--list", "list_name", help="Only those on this list.")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.pass_context
def subscribers_export(ctx: click.Context, list_name: str | None, file: Path | None) -> None:
    """Write every subscriber, of any status, as CSV to FILE (default: stdout).

    The columns are email,name,lists,status,created; `import` reads the file
    back, unsubscribed and bounced addresses included.
    """
    from publisher.state import StateStore
    from publisher.mail import export_csv
    from publisher.feeds import write_atomic

    config = _config(ctx)
    if list_name is not None:
        _choose_list(config, list_name)
    store = StateStore.open(config.state.path, readonly=True)
    try:
        found = store.subscribers.matching(list_name)
    finally:
        store.close()
    text = export_csv(found)
    if file is None or str(file) == "-":
        click.echo(text, nl=False)
        return
    # Addresses are personal data: the file is readable by its owner only.
    write_atomic(file, text.encode("utf-8"), mode=0o600)
    if not ctx.obj["quiet"]:
        click.echo(f"Exported {_plural(len(found), 'subscriber')} to {file}")


# -- the web server ----------------------------------------------------------------


@main.command()
@click.option("--host", help="The address to listen on (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="The port (default: [serve] port, 8080; 0: any free one).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the feeds, the subscribe form, unsubscribe links and the issue archive over HTTP.

    Runs until Ctrl-C (or SIGTERM). Behind a reverse proxy, list it in
    [serve] trusted_proxies and make [site] url the public address.
    """
    from publisher.app.web import create_app, serve as run_server

    config = _with_secret(_config(ctx))
    app = create_app(config, transport=_transport(config))
    quiet = ctx.obj["quiet"]

    def ready(url: str) -> None:
        if not quiet:
            click.echo(f"Serving {config.site.title} on {url} (public address {config.site.url}); Ctrl-C stops")

    run_server(app, host=host or config.serve.host, port=config.serve.port if port is None else port, on_ready=ready)
    if not quiet:
        click.echo("Stopped")
