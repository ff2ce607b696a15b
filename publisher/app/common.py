"""Small helpers the command line and the scheduler share (the web server will too).

Each imports its stage when called, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from publisher.config import Config
    from publisher.feeds import BuildReport
    from publisher.mail import Transport
    from publisher.pages import PagesReport
    from publisher.state import StateStore

log = logging.getLogger("publisher")


def plural(n: int, word: str) -> str:
    """``1 post``, ``2 posts``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def build(config: Config, store: StateStore, now: datetime, force: bool = False) -> tuple[BuildReport, PagesReport]:
    """The build: the feeds (``feeds.build_site``), then the web pages of the same site."""
    from publisher.feeds import build_site
    from publisher.pages import build_pages

    report = build_site(config, store=store, now=now, force=force)
    pages = build_pages(config, report.site, store=store, fingerprint=report.fingerprint, force=force)
    return report, pages


def make_transport(config: Config) -> Transport:
    """The transport ``[mail] transport`` names: pooled SMTP, or the outbox folder."""
    from publisher.mail import OutboxTransport, SmtpTransport

    if config.mail.transport == "smtp":
        return SmtpTransport(config.mail.smtp)
    return OutboxTransport(config.mail.outbox)


def with_secret(config: Config) -> Config:
    """The config, with a signing secret created on first use when there is none."""
    from dataclasses import replace

    from publisher.mail import write_secret

    if config.mail.secret is not None:
        return config
    secret = write_secret(config.mail.secret_file)
    log.warning("created the signing secret %s: keep it, and keep it private", config.relative(config.mail.secret_file))
    return replace(config, mail=replace(config.mail, secret=secret))
