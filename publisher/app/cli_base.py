"""What every command of the command line shares: the invocation's clock and
config, exit codes, expected failures as one line on stderr, choosing a list."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from publisher.app.common import plural
from publisher.errors import PublisherError

if TYPE_CHECKING:
    from publisher.clock import Clock
    from publisher.config import Config
    from publisher.feeds import BuildReport
    from publisher.model import DigestList

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


def ctx_clock(ctx: click.Context) -> Clock:
    """The invocation's clock: the machine's, or the one a caller passed in
    ``obj={"clock": ...}`` (how tests fix the time of ``status`` and the rest)."""
    return ctx.find_root().obj["clock"]


def ctx_now(ctx: click.Context):
    return ctx_clock(ctx).now()


def fail(message: str) -> None:
    click.echo(str(message), err=True)
    sys.exit(EXIT_ERROR)


def ctx_config(ctx: click.Context) -> Config:
    from publisher.config import load_config

    return load_config(ctx.find_root().obj["config_path"])


# What `publisher init` writes for [site] url, and the other names reserved
# for examples (RFC 2606): feeds and emails that link there lead nowhere.
_PLACEHOLDER_HOSTS = ("example.org", "example.com", "example.net")


def warn_placeholder_url(ctx: click.Context, config: Config) -> None:
    from urllib.parse import urlsplit

    host = (urlsplit(config.site.url).hostname or "").lower()
    if ctx.obj["quiet"] or not (host in _PLACEHOLDER_HOSTS or host.endswith(".example")):
        return
    click.echo(
        f"warning: {config.path}: [site] url is still the placeholder {config.site.url}; "
        "set it to the address where readers find the site (feeds and emails link there)",
        err=True,
    )


def report_errors(report: BuildReport) -> int:
    for error in report.errors:
        click.echo(str(error), err=True)
    return EXIT_REJECTED if report.errors else EXIT_OK


def rejected(report: BuildReport) -> str:
    return f", {plural(len(report.errors), 'input')} rejected" if report.errors else ""


class UsageError(PublisherError):
    """The command line asks for something the site does not have."""


class CommandGroup(click.Group):
    """Turns expected failures into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            fail(str(exc))


def choose_list(config: Config, name: str | None) -> DigestList:
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
