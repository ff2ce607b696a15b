"""The state store's own commands: ``publisher migrate`` and ``publisher
state copy``.

    publisher migrate        # bring the store [state] names up to this publisher's schema
    publisher state copy --from sqlite:.publisher/state.db --to postgresql://publisher@db/publisher
"""

from __future__ import annotations

import click

from publisher.app.cli_base import ctx_config


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the state store up to this publisher's schema.

    SQLite's file is brought up to date as it is opened; a PostgreSQL store,
    shared by several processes, waits for this command (the others refuse
    to start, exit 2, until it has run).
    """
    from publisher.state import StateStore

    config = ctx_config(ctx)
    before, after = StateStore.migrate(config.state)
    where = config.state.url or config.relative(config.state.path)
    if not ctx.obj["quiet"]:
        if before == after:
            click.echo(f"{where}: already at schema {after}; nothing to do")
        else:
            click.echo(f"{where}: schema {before} -> {after}")


@click.group()
def state() -> None:
    """The state store itself: copy it to another backend."""


@state.command("copy")
@click.option("--from", "source", required=True, metavar="LOCATION", help="sqlite:PATH or postgresql://…")
@click.option("--to", "target", required=True, metavar="LOCATION", help="sqlite:PATH or postgresql://… (empty)")
@click.pass_context
def copy(ctx: click.Context, source: str, target: str) -> None:
    """Copy a whole state store into an empty one (SQLite to PostgreSQL or back).

    Every post identity, subscriber, issue and delivery keeps its id. The
    copy is one transaction, kept only when each table's row count and
    checksum read back from the target match the source's. Stop the senders,
    the scheduler and the web servers first: what they change meanwhile is
    not copied.
    """
    from publisher.errors import StateError
    from publisher.state.copy import copy_state, is_postgres, open_location

    config = ctx_config(ctx)
    if source == target:
        raise StateError(f"--from and --to are both {source}")
    password = config.state.password
    reader = open_location(source, readonly=True, password=password if is_postgres(source) else None)
    try:
        writer = open_location(target, password=password if is_postgres(target) else None)
        try:
            copied = copy_state(reader, writer)
        finally:
            writer.close()
    finally:
        reader.close()
    if not ctx.obj["quiet"]:
        for table in copied:
            click.echo(f"  {table.table}: {table.rows} rows, checksum {table.checksum[:16]}")
        rows = sum(table.rows for table in copied)
        click.echo(f"Copied {rows} rows in {len(copied)} tables from {source} to {target}; counts and checksums match")
