"""The command line: ``publisher [--config PATH] [-v|-q] COMMAND``.

Exit codes: 0 success; 1 finished but some inputs were rejected (each named
on stderr as ``path:line: reason``); 2 usage, configuration or environment
error. Expected failures never show a traceback.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import click

from publisher import __version__
from publisher.build import BuildReport, build_site, check_site
from publisher.config import Config, load_config
from publisher.digest import compose, next_issue, recipient
from publisher.errors import PublisherError
from publisher.model import DigestList
from publisher.render import personalize, render_issue
from publisher.tokens import write_secret
from publisher.writer import write_atomic
from publisher.feeds import ATOM, JSON_FEED, RSS
from publisher.scaffold import scaffold_site
from publisher.store import StateStore

log = logging.getLogger("publisher")

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2
MAIN_FEEDS = (RSS, ATOM, JSON_FEED)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _fail(message: str) -> None:
    click.echo(str(message), err=True)
    sys.exit(EXIT_ERROR)


def _config(ctx: click.Context) -> Config:
    return load_config(ctx.obj["config_path"])


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
    """Publish posts written as files as RSS, Atom and JSON feeds."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = {"config_path": config_path, "quiet": quiet}


@main.command()
@click.option("--force", is_flag=True, help="Rewrite every feed even if unchanged.")
@click.pass_context
def build(ctx: click.Context, force: bool) -> None:
    """Read the content, update the state store and write the feeds."""
    config = _config(ctx)
    store = StateStore.open(config.state.path)
    try:
        report = build_site(config, store=store, now=_utcnow(), force=force)
    finally:
        store.close()
    code = _report_errors(report)
    if not ctx.obj["quiet"]:
        click.echo(
            f"Built {_plural(len(report.site.posts), 'post')} into {config.relative(config.feeds.out)}/: "
            f"{len(report.written)} written, {len(report.unchanged)} unchanged"
            + _rejected(report)
        )
        main_feeds = [name for name in report.files if name in MAIN_FEEDS]
        for name in main_feeds:
            click.echo(f"  {config.relative(config.feeds.out / name)}")
        others = len(report.files) - len(main_feeds)
        if others:
            click.echo(f"  and {_plural(others, 'more file')} (tag, author, comment and archive feeds)")
        if report.removed:
            click.echo(f"  removed {_plural(len(report.removed), 'feed')} no longer produced")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    sys.exit(code)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration, content and templates; write nothing."""
    config = _config(ctx)
    now = _utcnow()
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
    config = _config(ctx)
    digest_list = _choose_list(config, list_name)
    now = _utcnow()
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


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.pass_context
def init(ctx: click.Context, directory: Path) -> None:
    """Create a new site in DIRECTORY (default: here)."""
    created = scaffold_site(directory, now=_utcnow())
    if not ctx.obj["quiet"]:
        for path in created:
            click.echo(f"created {path}")
        where = f"cd {directory} && " if directory != Path(".") else ""
        click.echo(f"Next: {where}publisher build")
