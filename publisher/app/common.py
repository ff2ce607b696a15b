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
    """The config, with a signing secret created on first use when there is none.

    Never when the state store already holds an issue: the links in the
    emails already sent were signed with a secret that must have been lost
    or moved, and a new one would void every one of them silently. That is
    a ``ConfigError`` (exit 2) saying how to put it back.
    """
    from dataclasses import replace

    from publisher.errors import ConfigError
    from publisher.mail import write_secret
    from publisher.state import StateStore

    if config.mail.secret is not None:
        return config
    if config.state.url is not None or config.state.path.exists():
        store = StateStore.connect(config.state, readonly=True, check=False)
        try:
            sent = sum(1 for info in store.issues.all() if store.deliveries.counts(info.id).get("sent"))
        finally:
            store.close()
        if sent:
            raise ConfigError(
                str(config.path),
                [
                    f"[mail] secret_env/secret_file: no signing secret (${config.mail.secret_env} is unset and "
                    f"{config.relative(config.mail.secret_file)} is missing), yet {plural(sent, 'issue')} went out "
                    "with links signed by one; a new secret would break every unsubscribe link in them. "
                    "Restore the key file from a backup (or set the variable), then run again"
                ],
            )
    secret = write_secret(config.mail.secret_file)
    log.warning("created the signing secret %s: keep it, and keep it private", config.relative(config.mail.secret_file))
    return replace(config, mail=replace(config.mail, secret=secret))


def rotate_secret(config: Config, now) -> None:
    """Put a new secret in the key file, keeping the current one (and those
    retired less than ``[mail] secret_grace`` ago) as retired at ``now``, so
    links already sent keep working for the grace period. Atomic: the file
    is replaced whole, 0600."""
    import os

    from publisher.errors import ConfigError
    from publisher.files import PRIVATE_FILE, fsync_folder, private_folder
    from publisher.keyring import format_key_file
    from publisher.mail.tokens import new_secret
    from publisher.schedules import parse_duration

    if config.mail.secret is None:
        raise ConfigError(str(config.path), ["[mail]: there is no secret to rotate yet"])
    grace = parse_duration(config.mail.secret_grace)
    kept = [(old, moment) for old, moment in config.mail.previous_secrets if now - moment <= grace]
    path = config.mail.secret_file
    private_folder(path.parent)
    data = format_key_file(new_secret(), [(config.mail.secret, now), *kept])
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_folder(path.parent)
