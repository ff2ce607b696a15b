"""The build: content folders in, feeds out, state store updated.

    report = build_site(config, store=store, now=datetime.now(timezone.utc))
    report.written      # paths (under the feeds folder) of the files that changed
    report.errors       # ContentError for each rejected file

Files the build manages but no longer produces (the feed of a tag nobody
uses any more, say) are removed. ``check_site`` runs the same stages against
a read-only store and writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from publisher.config import Config
from publisher.content import load_posts, publish
from publisher.errors import ContentError, OutputError
from publisher.feeds import COMMENTS, MANAGED_FOLDERS, STYLESHEET, FeedOptions, build_feeds
from publisher.model import Site
from publisher.resources import default_templates
from publisher.sources import load_feed_sources
from publisher.store import BuildRecord, StateStore
from publisher.websub import ping_hub
from publisher.writer import write_if_changed

log = logging.getLogger(__name__)

HUB_TIMEOUT = 10.0


@dataclass(frozen=True)
class BuildReport:
    site: Site
    errors: tuple[ContentError, ...]
    files: tuple[str, ...]
    written: tuple[str, ...]
    removed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def unchanged(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if f not in self.written)


def feed_options(config: Config) -> FeedOptions:
    return FeedOptions(
        items=config.feeds.items,
        full_content=config.feeds.full_content,
        hub=config.feeds.hub,
        stylesheet=config.feeds.stylesheet,
    )


def _load(config: Config, store: StateStore, now: datetime):
    """Read files and fetch feed sources: before the write transaction, so
    a slow upstream never holds the state store's lock."""
    loaded = load_posts(config)
    imported = load_feed_sources(config, store, now)
    return loaded.posts + imported.posts, loaded.errors + imported.errors


def _render(config: Config, store: StateStore, now: datetime, posts, errors):
    site, publish_errors = publish(posts, store=store, now=now, config=config)
    files = build_feeds(site, feed_options(config))
    if config.feeds.stylesheet:
        files[STYLESHEET] = _stylesheet_source(config)
    return site, errors + publish_errors, files


def _stylesheet_source(config: Config) -> bytes:
    site_copy = config.root / "templates" / STYLESHEET
    path = site_copy if site_copy.is_file() else default_templates() / STYLESHEET
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the feed stylesheet: {exc.strerror}") from exc


def _stale(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Files the build once wrote that it no longer produces."""
    candidates = [out / COMMENTS, out / STYLESHEET]
    for folder in MANAGED_FOLDERS:
        if (out / folder).is_dir():
            candidates += [p for p in (out / folder).iterdir() if p.suffix in (".xml", ".json")]
    return [p for p in candidates if p.is_file() and p.relative_to(out).as_posix() not in files]


def build_site(config: Config, *, store: StateStore, now: datetime, force: bool = False) -> BuildReport:
    """Read, publish and write the feeds; the store commits only if every write succeeded."""
    out = config.feeds.out
    posts, read_errors = _load(config, store, now)
    with store.transaction():
        site, errors, files = _render(config, store, now, posts, read_errors)
        written = []
        for name, data in files.items():
            if write_if_changed(out / name, data, force=force):
                written.append(name)
                log.info("wrote %s (%d bytes)", config.relative(out / name), len(data))
        removed = []
        for path in _stale(out, files):
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(f"{path}: cannot remove: {exc.strerror}") from exc
            removed.append(path.relative_to(out).as_posix())
            log.info("removed %s", config.relative(path))
        if written or removed:
            # A build that changed nothing leaves the store untouched too.
            store.record_build(BuildRecord(now, len(site.posts), len(errors), len(written)))
    warnings: list[str] = []
    changed_feeds = [config.feeds.url + name for name in written if name != STYLESHEET]
    if config.feeds.hub and changed_feeds:
        warnings = ping_hub(config.feeds.hub, changed_feeds, timeout=HUB_TIMEOUT)
    return BuildReport(site, errors, tuple(files), tuple(written), tuple(removed), tuple(warnings))


def check_site(config: Config, *, store: StateStore, now: datetime) -> BuildReport:
    """Everything ``build_site`` does but writing: the report of what it would publish."""
    posts, read_errors = _load(config, store, now)
    with store.transaction():
        site, errors, files = _render(config, store, now, posts, read_errors)
    return BuildReport(site, errors, tuple(files), ())
