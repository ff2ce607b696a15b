"""``publisher subscribers``: add, remove, list, import and export CSV.

Each command imports the stages it runs when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher.app.cli_base import EXIT_OK, EXIT_REJECTED, UsageError, choose_list, ctx_config, ctx_now
from publisher.app.common import plural
from publisher.model import SUBSCRIBER_STATUSES

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.model import Subscriber


def _subscriber_lists(config: Config, names: tuple[str, ...]) -> tuple[str, ...]:
    """The lists named (each must be configured), or every configured list."""
    if not config.lists:
        raise UsageError(f'{config.path}: no lists; add one such as [lists.daily] title = "Daily digest"')
    if not names:
        return tuple(config.lists)
    return tuple(dict.fromkeys(choose_list(config, name).name for name in names))


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
            caption=plural(len(rows), "subscriber"),
        )
        for row in rows:
            table.add_row(*(Text(cell) for cell in row), style=None if row[3] == "active" else "dim")
        Console(highlight=False).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@click.group()
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
    config = ctx_config(ctx)
    lists = _subscriber_lists(config, list_names)
    address = normalize_email(email)
    store = StateStore.connect(config.state)
    try:
        before = store.subscribers.find(address)
        after, created = add_by_owner(
            store.subscribers, address, clean_name(name), lists, source="cli", now=ctx_now(ctx), force=force
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

    config = ctx_config(ctx)
    if list_name is not None:
        choose_list(config, list_name)
    address = normalize_email(email)
    store = StateStore.connect(config.state)
    try:
        before = store.subscribers.find(address)
        after = remove_subscriber(store.subscribers, address, list_name, now=ctx_now(ctx)) if before is not None else None
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

    config = ctx_config(ctx)
    if list_name is not None:
        choose_list(config, list_name)
    store = StateStore.connect(config.state, readonly=True)
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

    config = ctx_config(ctx)
    default_lists = _subscriber_lists(config, (list_name,) if list_name else ())
    shown = "<stdin>" if str(file) == "-" else str(file)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror or exc}") from exc
    parsed = read_subscriber_csv(data, shown, known_lists=tuple(config.lists), default_lists=default_lists)
    for rejection in parsed.rejected:
        click.echo(str(rejection), err=True)
    store = StateStore.connect(config.state)
    try:
        report = import_subscribers(store, parsed.rows, source="import:stdin" if str(file) == "-" else f"import:{file.name}", now=ctx_now(ctx))
    finally:
        store.close()
    if not ctx.obj["quiet"]:
        parts = [f"{report.unchanged} already there"]
        if report.not_resubscribed:
            parts.append(f"{report.not_resubscribed} of them unsubscribed or bounced and left so")
        if report.updated:
            parts.append(f"{report.updated} updated")
        if report.duplicates:
            parts.append(f"{plural(report.duplicates, 'duplicate row')}")
        if report.suppressed:
            parts.append(f"{report.suppressed} marked unsubscribed or bounced in the file, kept so")
        if parsed.rejected:
            parts.append(f"{plural(len(parsed.rejected), 'row')} rejected")
        click.echo(f"Imported {plural(report.added, 'subscriber')} ({', '.join(parts)})")
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

    config = ctx_config(ctx)
    if list_name is not None:
        choose_list(config, list_name)
    store = StateStore.connect(config.state, readonly=True)
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
        click.echo(f"Exported {plural(len(found), 'subscriber')} to {file}")
