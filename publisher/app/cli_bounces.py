"""``publisher bounces`` (read the bounce mailboxes and act on them),
``publisher subscribers show EMAIL`` (one subscriber with its bounce
history) and the bounce lines of ``publisher status``.

Each command imports the stages it runs when it runs.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from publisher.app.cli_base import EXIT_ERROR, EXIT_OK, EXIT_REJECTED, ctx_config, ctx_now
from publisher.app.common import plural

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.mail.bounces import BounceRunReport
    from publisher.state import StateStore

# The order outcomes are listed in.
VERDICTS = ("hard", "soft", "complaint", "auto-reply", "not a bounce", "duplicate", "rejected", "too large")
SUMMARY_DAYS = 30


def describe_run(report: BounceRunReport) -> str:
    """``Read 4 messages: 2 hard, 1 soft, 1 auto-reply; 2 addresses bounced or complained``."""
    parts = [f"{report.counts[v]} {v}" for v in VERDICTS if report.counts.get(v)]
    text = f"Read {plural(report.read, 'message')}" + (": " + ", ".join(parts) if parts else "")
    if report.changed:
        count = len(report.changed)
        text += f"; status changed for {count} address{'' if count == 1 else 'es'}"
    return text


@click.command()
@click.pass_context
def bounces(ctx: click.Context) -> None:
    """Read new bounce mail and complaints, and suppress the addresses that bounced.

    Reads [bounces] maildir, mbox, [bounces.imap] and [bounces.pop3]; each
    message read is moved out of the way, and one read twice counts once.
    Exit 1 when messages were set aside (forged, too large), 2 when a
    mailbox cannot be read.
    """
    from publisher.app.common import with_secret
    from publisher.mail.bounces import read_bounces
    from publisher.state import StateStore

    config = with_secret(ctx_config(ctx))
    store = StateStore.connect(config.state)
    try:
        report = read_bounces(config, store, now=ctx_now(ctx))
    finally:
        store.close()
    for line in report.reported + report.failed_mailboxes:
        click.echo(line, err=True)
    if not ctx.obj["quiet"]:
        click.echo(describe_run(report))
        for email in report.changed:
            click.echo(f"  {email}")
    if report.failed_mailboxes:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_REJECTED if report.reported else EXIT_OK)


@click.command("show")
@click.argument("email")
@click.pass_context
def subscribers_show(ctx: click.Context, email: str) -> None:
    """Show one subscriber: status, lists, and every bounce and complaint recorded."""
    from publisher.mail import SubscriberError, normalize_email
    from publisher.state import StateStore

    config = ctx_config(ctx)
    try:
        address = normalize_email(email)
    except SubscriberError:  # show what the store has, even an address no longer accepted
        address = email.strip()
    store = StateStore.connect(config.state, readonly=True)
    try:
        found = store.subscribers.find(address)
        if found is None:
            click.echo(f"{address}: no such subscriber", err=True)
            sys.exit(EXIT_REJECTED)
        tz = config.site.timezone
        click.echo(f"email: {found.email}")
        click.echo(f"name: {found.name}")
        click.echo(f"status: {found.status}")
        click.echo(f"lists: {' '.join(found.lists) or '(none)'}")
        click.echo(f"source: {found.source}")
        click.echo(f"created: {found.created.astimezone(tz):%Y-%m-%d %H:%M %Z}")
        click.echo(f"changed: {found.changed.astimezone(tz):%Y-%m-%d %H:%M %Z}")
        events = store.bounces.events(found.id)
        click.echo(f"bounces: {len(events) or 'none'}")
        for event in events:
            issue = _issue_name(store, event.issue_id)
            click.echo(
                f"  {event.at.astimezone(tz):%Y-%m-%d %H:%M %Z}  {event.kind}  {event.status or '-'}  "
                f"{issue}  {event.source}  {event.diagnostic}".rstrip()
            )
    finally:
        store.close()


def _issue_name(store: StateStore, issue_id: int | None) -> str:
    if issue_id is None:
        return "issue ?"
    try:
        info = store.issues.info(issue_id)
    except Exception:  # an issue id the store no longer has
        return f"issue id {issue_id}"
    return f"{info.list_name} #{info.number}"


def bounce_status_lines(config: Config, store: StateStore, now: datetime) -> list[str]:
    """What ``publisher status`` says of bounces: the last read, and the last 30 days."""
    last = store.bounces.last_message()
    counts = store.bounces.summary(now - timedelta(days=SUMMARY_DAYS))
    suppressed = {s: len(store.subscribers.matching(status=s)) for s in ("bounced", "complained")}
    when = f"{last.astimezone(config.site.timezone):%Y-%m-%d %H:%M %Z}" if last else "never"
    events = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("hard", "soft", "complaint"))
    return [
        f"bounces: last read {when}; last {SUMMARY_DAYS} days: {events}, "
        f"{counts.get('message:rejected', 0)} rejected; "
        f"{suppressed['bounced']} addresses bounced, {suppressed['complained']} complained"
    ]
