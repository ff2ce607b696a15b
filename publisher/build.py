"""The build: content folders in, feeds out, state store updated.

    report = build_site(config, store=store, now=datetime.now(timezone.utc))
    report.written      # paths (under the feeds folder) of the files that changed
    report.errors       # ContentError for each rejected file
    report.warnings     # "path:line: unknown key 'Draft_'", a hub that failed: nothing rejected

Files the build manages but no longer produces (the feed of a tag nobody
uses any more, say) are removed. ``check_site`` runs the same stages against
a read-only store and writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from publisher.config import Config
from publisher.content import PostCache, load_posts, publish
from publisher.errors import ContentError, OutputError
from publisher.feeds import COMMENTS, MANAGED_FOLDERS, STYLESHEET, FeedDocument, FeedOptions, plan_feeds
from publisher.model import Site
from publisher.resources import default_templates
from publisher.sources import load_feed_sources
from publisher.store import BuildRecord, FeedOutput, StateStore
from publisher.websub import ping_hub
from publisher.writer import StagedFiles, remove_temporaries

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


def _load(config: Config, store: StateStore, now: datetime, cache: PostCache):
    """Read files and fetch feed sources: before the write transaction, so
    a slow upstream never holds the state store's lock."""
    loaded = load_posts(config, cache)
    imported = load_feed_sources(config, store, now)
    warnings = [str(w) for w in loaded.warnings + imported.warnings]
    return loaded.posts + imported.posts, loaded.errors + imported.errors, warnings


def _documents(config: Config, site: Site, cache: PostCache) -> list[FeedDocument]:
    documents = plan_feeds(site, feed_options(config), fingerprint=cache.fingerprint)
    if config.feeds.stylesheet:
        source = _stylesheet_source(config)
        digest = hashlib.sha256(b"stylesheet\x00" + source).hexdigest()
        documents.append(FeedDocument(STYLESHEET, digest, lambda: source))
    return documents


def _stylesheet_source(config: Config) -> bytes:
    site_copy = config.root / "templates" / STYLESHEET
    path = site_copy if site_copy.is_file() else default_templates() / STYLESHEET
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the feed stylesheet: {exc.strerror}") from exc


def _stale(out: Path, files: set[str]) -> list[Path]:
    """Files the build once wrote that it no longer produces."""
    candidates = [out / COMMENTS, out / STYLESHEET]
    for folder in MANAGED_FOLDERS:
        if (out / folder).is_dir():
            candidates += [p for p in (out / folder).iterdir() if p.suffix in (".xml", ".json")]
    return [p for p in candidates if p.is_file() and p.relative_to(out).as_posix() not in files]


def build_site(config: Config, *, store: StateStore, now: datetime, force: bool = False) -> BuildReport:
    """Read, publish and write the feeds; the store commits only if every write succeeded.

    What the last build did is reused: files whose bytes (and sidecar) are
    unchanged are not parsed again (``PostCache``), and a feed whose inputs
    are unchanged (the digest the store keeps of each file written) is not
    serialised again while its file is as that build left it. ``force``
    rewrites every feed.
    """
    out = config.feeds.out
    cache = PostCache(store)
    posts, read_errors, warnings = _load(config, store, now, cache)
    with store.transaction():
        site, publish_errors = publish(posts, store=store, now=now, config=config, cache=cache)
        errors = read_errors + publish_errors
        documents = _documents(config, site, cache)
        known = store.feed_outputs()
        # What a killed build left half-written goes; then each changed feed
        # is written to a temporary file as soon as it is made (its bytes are
        # not kept), and none is renamed into place before all are written.
        for leftover in remove_temporaries(out):
            log.info("removed %s, left by an interrupted build", config.relative(leftover))
        candidates = []
        with StagedFiles(force=force) as staged:
            for document in documents:
                path = out / document.name
                before = known.get(document.name)
                if not force and before is not None and before.digest == document.digest and _as_left(path, before):
                    continue
                candidates.append((document, path))
                staged.add(path, document.render())
        changed = set(staged.changed)
        written, outputs = [], []
        for document, path in candidates:
            output = _output(document, path)
            if path in changed:
                written.append(document.name)
                log.info("wrote %s (%d bytes)", config.relative(path), output.size)
            outputs.append(output)
        files = {document.name for document in documents}
        removed = []
        for path in _stale(out, files):
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(f"{path}: cannot remove: {exc.strerror}") from exc
            removed.append(path.relative_to(out).as_posix())
            log.info("removed %s", config.relative(path))
        # The store changes only when something did: a build that changed
        # nothing leaves it untouched.
        store.remember_feed_outputs(o for o in outputs if o != known.get(o.name))
        store.forget_feed_outputs(name for name in known if name not in files)
        cache.save()
        if written or removed:
            store.record_build(BuildRecord(now, len(site.posts), len(errors), len(written)))
    changed_feeds = [config.feeds.url + name for name in written if name != STYLESHEET]
    if config.feeds.hub and changed_feeds:
        warnings += ping_hub(config.feeds.hub, changed_feeds, timeout=HUB_TIMEOUT)
    names = tuple(document.name for document in documents)
    return BuildReport(site, errors, names, tuple(written), tuple(removed), tuple(warnings))


def _as_left(path: Path, output: FeedOutput) -> bool:
    """Is the file at ``path`` as the build that recorded ``output`` left it?"""
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size == output.size and stat.st_mtime_ns == output.mtime_ns


def _output(document: FeedDocument, path: Path) -> FeedOutput:
    stat = path.stat()
    return FeedOutput(document.name, document.digest, stat.st_size, stat.st_mtime_ns)


def check_site(config: Config, *, store: StateStore, now: datetime) -> BuildReport:
    """Everything ``build_site`` does but writing: the report of what it would publish."""
    cache = PostCache(store)  # read from, never written: the store is read-only
    posts, read_errors, warnings = _load(config, store, now, cache)
    with store.transaction():
        site, publish_errors = publish(posts, store=store, now=now, config=config, cache=cache)
        documents = _documents(config, site, cache)
        for document in documents:
            document.render()  # a feed that cannot be made is an error now, not at build time
    names = tuple(d.name for d in documents)
    return BuildReport(site, read_errors + publish_errors, names, (), warnings=tuple(warnings))
