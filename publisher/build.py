"""The build: content folders in, feeds out, state store updated.

    report = build_site(config, store=store, now=datetime.now(timezone.utc))
    report.written      # names of the files that changed
    report.errors       # ContentError for each rejected file

``check_site`` runs the same stages against a read-only store and writes
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from publisher.config import Config
from publisher.content import load_posts, publish
from publisher.errors import ContentError
from publisher.feeds import build_feeds
from publisher.model import Site
from publisher.store import BuildRecord, StateStore
from publisher.writer import write_if_changed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    site: Site
    errors: tuple[ContentError, ...]
    files: tuple[str, ...]
    written: tuple[str, ...]

    @property
    def unchanged(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if f not in self.written)


def _render(config: Config, store: StateStore, now: datetime):
    loaded = load_posts(config)
    site, publish_errors = publish(loaded.posts, store=store, now=now, config=config)
    files = build_feeds(site, items=config.feeds.items, full_content=config.feeds.full_content)
    return site, loaded.errors + publish_errors, files


def build_site(config: Config, *, store: StateStore, now: datetime, force: bool = False) -> BuildReport:
    """Read, publish and write the feeds; the store commits only if every write succeeded."""
    with store.transaction():
        site, errors, files = _render(config, store, now)
        written = []
        for name, data in files.items():
            target = config.feeds.out / name
            if write_if_changed(target, data, force=force):
                written.append(name)
                log.info("wrote %s (%d bytes)", config.relative(target), len(data))
            else:
                log.debug("%s unchanged", config.relative(target))
        store.record_build(BuildRecord(now, len(site.posts), len(errors), len(written)))
    return BuildReport(site, errors, tuple(files), tuple(written))


def check_site(config: Config, *, store: StateStore, now: datetime) -> BuildReport:
    """Everything ``build_site`` does but writing: the report of what it would publish."""
    with store.transaction():
        site, errors, files = _render(config, store, now)
    return BuildReport(site, errors, tuple(files), ())
