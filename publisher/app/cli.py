"""The command line: ``publisher [--config PATH] [-v|-q] COMMAND``.

Exit codes: 0 success; 1 finished but some inputs were rejected (each named
on stderr as ``path:line: reason``); 2 usage, configuration or environment
error. Expected failures never show a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path

import click

from publisher import __version__
from publisher.app.cli_bounces import bounces, subscribers_show
from publisher.app.cli_base import CommandGroup, ctx_config, ctx_now, rejected, report_errors, warn_placeholder_url
from publisher.app.cli_send import digest, run, send, status
from publisher.app.cli_state import migrate, state
from publisher.app.cli_subscribers import subscribers
from publisher.app.common import make_transport, plural, with_secret
from publisher.clock import SystemClock

# Each command imports the stages it runs when it runs: `publisher --help`,
# `status` and every cron `run --once` would otherwise pay for Flask, lxml,
# premailer and feedparser before doing anything. The command modules
# (cli_send, cli_subscribers) import only click and the standard library.


@click.group(cls=CommandGroup)
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
    ctx.obj = {
        "config_path": config_path,
        "quiet": quiet,
        "verbose": verbose,
        "clock": given.get("clock") or SystemClock(),
    }


@main.command()
@click.option("--force", is_flag=True, help="Rewrite every feed and page even if unchanged.")
@click.pass_context
def build(ctx: click.Context, force: bool) -> None:
    """Read the content, update the state store and write the feeds."""
    from publisher.app.common import build as build_all
    from publisher.feeds import ATOM, JSON_FEED, RSS
    from publisher.state import StateStore

    config = ctx_config(ctx)
    store = StateStore.connect(config.state)
    try:
        report, pages = build_all(config, store, ctx_now(ctx), force=force)
    finally:
        store.close()
    code = report_errors(report)
    if not ctx.obj["quiet"]:
        click.echo(
            f"Built {plural(len(report.site.posts), 'post')} into {config.relative(config.feeds.out)}/: "
            f"{len(report.written)} written, {len(report.unchanged)} unchanged"
            + rejected(report)
        )
        main_feeds = [name for name in report.files if name in (RSS, ATOM, JSON_FEED)]
        for name in main_feeds:
            click.echo(f"  {config.relative(config.feeds.out / name)}")
        others = len(report.files) - len(main_feeds)
        if others:
            click.echo(f"  and {plural(others, 'more file')} (tag, author, comment and archive feeds)")
        if report.removed:
            click.echo(f"  removed {plural(len(report.removed), 'feed')} no longer produced")
        if config.pages.enabled:
            click.echo(
                f"Pages in {config.relative(config.pages.out)}/: {len(pages.written)} written, "
                f"{len(pages.unchanged)} unchanged"
                + (f", {len(pages.removed)} removed" if pages.removed else "")
                + (f", {plural(len(pages.redirects), 'redirect')}" if pages.redirects else "")
            )
        for old, new in report.renamed:
            click.echo(f"renamed: {old} -> {new}")
        if unexpected := unexpected_skips(report.skipped):
            click.echo(skipped_summary(unexpected))
    name_skipped(ctx, report.skipped)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    warn_placeholder_url(ctx, config)
    sys.exit(code)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration, content and templates; write nothing."""
    from publisher.feeds import check_site
    from publisher.mail import next_issue
    from publisher.mail import render_issue
    from publisher.state import StateStore

    config = ctx_config(ctx)
    now = ctx_now(ctx)
    store = StateStore.connect(config.state, readonly=True)
    try:
        report = check_site(config, store=store, now=now)
        # Each list's templates render (a typo is an error naming the line).
        for digest_list in config.lists.values():
            issue = next_issue(report.site, digest_list, store, now=now, force=True)
            if issue is not None:
                render_issue(issue, report.site.info, templates=config.mail.templates / "email")
        if config.pages.enabled:
            from publisher.pages import check_pages

            check_pages(config, report.site, store=store)
    finally:
        store.close()
    code = report_errors(report)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    warn_placeholder_url(ctx, config)
    if not ctx.obj["quiet"]:
        click.echo(
            f"{config.path}: ok; "
            f"{plural(len(report.site.posts), 'post')} would be published" + rejected(report)
        )
        if unexpected := unexpected_skips(report.skipped):
            click.echo(skipped_summary(unexpected))
    name_skipped(ctx, report.skipped)
    sys.exit(code)


def name_skipped(ctx: click.Context, skipped: tuple[str, ...]) -> None:
    """With ``-v``, each file that is no post, on stderr: "skipped: path: reason"."""
    if ctx.obj.get("verbose") and not ctx.obj["quiet"]:
        for entry in skipped:
            click.echo(f"skipped: {entry}", err=True)


def unexpected_skips(skipped: tuple[str, ...]) -> tuple[str, ...]:
    """The files skipped but not excluded by ``[content] exclude`` (those
    were meant; ``-v`` still names them)."""
    return tuple(entry for entry in skipped if "excluded by [content] exclude" not in entry)


def skipped_summary(skipped: tuple[str, ...]) -> str:
    """One line for the files that are no posts: how many, and the commonest reasons.

    >>> skipped_summary(("a.png: no reader for .png", "b.png: no reader for .png", "c.doc: no reader for .doc"))
    '  3 files skipped: 2 no reader for .png, 1 no reader for .doc (publisher -v names them)'
    """
    reasons = Counter(entry.split(": ", 1)[-1] for entry in skipped)
    commonest = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:3]
    shown = ", ".join(f"{count} {reason}" for reason, count in commonest)
    more = ", …" if len(reasons) > 3 else ""
    return f"  {plural(len(skipped), 'file')} skipped: {shown}{more} (publisher -v names them)"


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.pass_context
def init(ctx: click.Context, directory: Path) -> None:
    """Create a new site in DIRECTORY (default: here)."""
    from publisher.app.scaffold import scaffold_site

    created = scaffold_site(directory, now=ctx_now(ctx))
    if not ctx.obj["quiet"]:
        for path in created:
            click.echo(f"created {path}")
        where = f"cd {directory} && " if directory != Path(".") else ""
        click.echo(f"Next: {where}publisher build")


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

    config = with_secret(ctx_config(ctx))
    app = create_app(config, transport=make_transport(config))
    quiet = ctx.obj["quiet"]

    def ready(url: str) -> None:
        if not quiet:
            click.echo(f"Serving {config.site.title} on {url} (public address {config.site.url}); Ctrl-C stops")

    run_server(app, host=host or config.serve.host, port=config.serve.port if port is None else port, on_ready=ready)
    if not quiet:
        click.echo("Stopped")


@main.group()
def secret() -> None:
    """The secret that signs unsubscribe, preferences and confirmation links."""


@secret.command("rotate")
@click.pass_context
def secret_rotate(ctx: click.Context) -> None:
    """Sign new links with a new secret; links signed with the old one keep
    working for [mail] secret_grace. Restart `publisher serve` afterwards.

    The key file ([mail] secret_file) keeps the retired secrets. With the
    secret in $PUBLISHER_SECRET instead, set the variable to the new
    secret's line of the key file.
    """
    from publisher.app.common import rotate_secret

    config = ctx_config(ctx)
    rotate_secret(config, ctx_now(ctx))
    if not ctx.obj["quiet"]:
        click.echo(f"Rotated the signing secret in {config.relative(config.mail.secret_file)}; restart `publisher serve`")


main.add_command(digest)
main.add_command(send)
main.add_command(status)
main.add_command(run)
main.add_command(subscribers)
main.add_command(bounces)
subscribers.add_command(subscribers_show)
main.add_command(migrate)
main.add_command(state)
