"""The build: content folders in, feeds out, state store updated.

    report = build_site(config, store=store, now=datetime.now(timezone.utc))
    report.written      # paths (under the feeds folder) of the files that changed
    report.errors       # ContentError for each rejected file
    report.warnings     # "path:line: unknown key 'Draft_'", a hub that failed: nothing rejected

Files the build manages but no longer produces (the feed of a tag nobody
uses any more, say) are removed. ``check_site`` runs the same stages against
a read-only store and writes nothing.

The state store's write lock is held only while the build writes to it,
never while it makes the feeds, so a subscribe or an unsubscribe through
the web server waits milliseconds, not the length of a build. One build at
a time (a lock file beside the state store) commits identities and writes
the feeds, so the feeds on disk are those of the last identities committed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from publisher.config import Config
from publisher.content import IdentityNotes, PostCache, load_posts, publish
from publisher.errors import ContentError, OutputError
from publisher.feeds.formats import COMMENTS, MANAGED_FOLDERS, STYLESHEET, FeedDocument, FeedOptions, plan_feeds
from publisher.state import ProcessLock
from publisher.model import Post, Site
from publisher.resources import default_templates
from publisher.content import load_feed_sources
from publisher.state import BuildRecord, FeedOutput, PostRecord, PostRepository, StateStore
from publisher.state.posts import records_of
from publisher.text import uri_path
from publisher.feeds.websub import ping_hub
from publisher.feeds.writer import StagedFiles, remove_temporaries

log = logging.getLogger("publisher.build")

HUB_TIMEOUT = 10.0
# How often a build waiting for another one to finish writing the feeds looks again.
LOCK_POLL = 0.2


@dataclass(frozen=True)
class BuildReport:
    site: Site
    errors: tuple[ContentError, ...]
    files: tuple[str, ...]
    written: tuple[str, ...]
    removed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Files under the content folders that are no posts: "path: reason".
    skipped: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (old source, new source): moved posts that kept their identity
    # A post's fingerprint as the build knows it (cheaper than hashing the
    # post): for the stages that make more from the same site.
    fingerprint: Callable[[Post], bytes | None] | None = None

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
    a slow upstream never holds the state store's lock. A list seen for the
    first time is recorded as created now (its first issue holds the posts
    since)."""
    if store.persists:
        store.issues.register_lists(list(config.lists), now=now)
    loaded = load_posts(config, cache)
    imported = load_feed_sources(config, store, now)
    warnings = [str(w) for w in loaded.warnings + imported.warnings]
    skipped = tuple(str(skip) for skip in loaded.skipped)
    return loaded.posts + imported.posts, loaded.errors + imported.errors, warnings, skipped


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
    """Read, publish and write the feeds, holding the store's write lock only for its writes.

    1. Read the content and work out each post's identity from the post
       records as they are, writing nothing.
    2. Make the feeds of those posts and stage them (each written to a
       temporary file beside it), outside any transaction.
    3. In one short write transaction, record the new and changed
       identities (and the cache of readings).
    4. Rename the staged feeds into place; a second short transaction
       records what was written, and the build.

    One build at a time does steps 2 to 4 (``writing_lock``); one that
    waited for another works its identities out again if that one changed
    the records. Step 3 checks the records are still those the identities
    were worked out from; if a process that does not take the lock changed
    them, the identities are worked out again there, under the store's
    lock, and the feeds made again. So two builds never give one post two
    ids, and the feeds put in place are those of the identities committed.

    Nothing is committed unless every feed could be made and staged. A
    build that dies between steps 3 and 4 leaves the old feeds (and
    temporary files the next build removes); the feeds are derived data:
    the next build finds them not made from what the store holds and
    writes them again.

    What the last build did is reused: files whose bytes (and sidecar) are
    unchanged are not parsed again (``PostCache``), and a feed whose inputs
    are unchanged (the digest the store keeps of each file written) is not
    serialised again while its file is as that build left it. ``force``
    rewrites every feed.
    """
    cache = PostCache(store)
    posts, read_errors, warnings, skipped = _load(config, store, now, cache)

    notes = IdentityNotes()  # what the identities worked out last say of moved posts

    def identities(repository: PostRepository) -> tuple[Site, tuple[ContentError, ...]]:
        return publish(posts, store=repository, now=now, config=config, cache=cache, notes=notes)

    snapshot = store.posts.snapshot()  # compared as stored: cheaper than records made of it
    changes = _IdentityChanges(records_of(snapshot))
    site, publish_errors = identities(changes)
    lock = writing_lock(config)
    try:
        current = store.posts.snapshot()
        if current != snapshot:
            log.info("post records changed while this build waited for another: identities worked out again")
            snapshot, changes = current, _IdentityChanges(records_of(current))
            site, publish_errors = identities(changes)
        documents = _documents(config, site, cache)
        known = store.builds.feed_outputs()
        staged, made = _stage_feeds(config, documents, known, force=force)
        again = _commit_identities(store, snapshot, changes, cache, staged, work_out_again=identities)
        if again is not None:
            # The feeds staged are not of the identities committed: made again.
            site, publish_errors = again
            staged.discard()
            documents = _documents(config, site, cache)
            staged, made = _stage_feeds(config, documents, known, force=force)
        errors = read_errors + publish_errors
        files = {document.name for document in documents}
        written, removed, outputs = _replace_feeds(config, staged, made, files)
        # The store changes only when something did: a build that changed
        # nothing leaves it untouched.
        remembered = [o for o in outputs if o != known.get(o.name)]
        forgotten = [name for name in known if name not in files]
        if remembered or forgotten or written or removed:
            with store.transaction():
                store.builds.remember_feed_outputs(remembered)
                store.builds.forget_feed_outputs(forgotten)
                if written or removed:
                    store.builds.record(BuildRecord(now, len(site.posts), len(errors), len(written)))
    finally:
        lock.release()
    if config.feeds.hub and (changed := [config.feeds.url + uri_path(n) for n in written if n != STYLESHEET]):
        warnings += ping_hub(config.feeds.hub, changed, timeout=HUB_TIMEOUT)
    names, renamed = tuple(document.name for document in documents), tuple(notes.renamed)
    warnings = tuple(warnings + notes.ambiguous)
    return BuildReport(site, errors, names, tuple(written), tuple(removed), warnings, skipped, renamed, cache.fingerprint)


def _commit_identities(
    store: StateStore,
    snapshot: tuple[tuple, ...],
    changes: _IdentityChanges,
    cache: PostCache,
    staged: StagedFiles,
    *,
    work_out_again: Callable[[PostRepository], tuple[Site, tuple[ContentError, ...]]],
) -> tuple[Site, tuple[ContentError, ...]] | None:
    """Step 3 of ``build_site``: in one short write transaction, record the
    identities in ``changes`` (and the cache of readings) if the post
    records are still as in ``snapshot``, those they were worked out from; None
    then. If a process that does not take the build's lock changed them,
    the identities are worked out again there, under the store's lock
    (``work_out_again(store.posts)``), and the site and errors that gives
    are returned: the feeds ``staged`` are not of them. ``staged`` is
    discarded when nothing could be committed."""
    try:
        with store.transaction():
            if store.posts.snapshot() != snapshot:
                log.info("post records changed while this build made the feeds: identities worked out again")
                again = work_out_again(store.posts)
            else:
                changes.apply(store.posts)
                again = None
            cache.save()
    except BaseException:
        staged.discard()
        raise
    return again


def writing_lock(config: Config) -> ProcessLock:
    """The lock (``state.db.build.lock``) a build holds from making its feeds
    to recording them, taken once any build holding it is done."""
    state = config.state.path
    lock = ProcessLock(state.with_name(state.name + ".build.lock"))

    def waiting(holder: int | None) -> None:
        log.info("%s; waiting for that build to finish writing the feeds", lock.held_by(holder))

    lock.wait(threading.Event(), poll=LOCK_POLL, on_wait=waiting)
    return lock


def _stage_feeds(
    config: Config, documents: list[FeedDocument], known: dict[str, FeedOutput], *, force: bool
) -> tuple[StagedFiles, list[tuple[FeedDocument, Path]]]:
    """Make each feed that may have changed (``known``: the feeds as the
    builds before left them) and stage it; the staging, and each feed made
    with its path. Nothing is staged if one cannot be made or written."""
    out = config.feeds.out
    # What a killed build left half-written goes; then each changed feed
    # is written to a temporary file as soon as it is made (its bytes are
    # not kept), and none is renamed into place before all are written.
    for leftover in remove_temporaries(out):
        log.info("removed %s, left by an interrupted build", config.relative(leftover))
    staged = StagedFiles(force=force)
    made = []
    try:
        for document in documents:
            path = out / document.name
            before = known.get(document.name)
            if not force and before is not None and before.digest == document.digest and _as_left(path, before):
                continue
            made.append((document, path))
            staged.add(path, document.render())
    except BaseException:
        staged.discard()
        raise
    return staged, made


def _replace_feeds(
    config: Config, staged: StagedFiles, made: list[tuple[FeedDocument, Path]], files: set[str]
) -> tuple[list[str], list[str], list[FeedOutput]]:
    """Rename the staged feeds into place and remove the stale ones (those
    not in ``files``): the names written and removed, and the output of
    each feed made."""
    out = config.feeds.out
    changed = set(staged.commit())
    written, outputs = [], []
    for document, path in made:
        output = _output(document, path)
        if path in changed:
            written.append(document.name)
            log.info("wrote %s (%d bytes)", config.relative(path), output.size)
        outputs.append(output)
    removed = []
    for path in _stale(out, files):
        try:
            path.unlink()
        except OSError as exc:
            raise OutputError(f"{path}: cannot remove: {exc.strerror}") from exc
        removed.append(path.relative_to(out).as_posix())
        log.info("removed %s", config.relative(path))
    return written, removed, outputs


class _IdentityChanges:
    """The state store as ``publish`` sees it before the write transaction:
    the post records read then, and what it remembers and forgets, kept in
    order to be written by ``apply`` inside the transaction."""

    def __init__(self, records: dict[str, PostRecord]):
        self._records = records
        self._changes: list[PostRecord | str] = []  # a record remembered, or the source forgotten

    def records(self) -> dict[str, PostRecord]:
        return dict(self._records)

    def remember(self, record: PostRecord) -> None:
        self._changes.append(record)

    def forget(self, source: str) -> None:
        self._changes.append(source)

    def apply(self, store: PostRepository) -> None:
        """Make the changes in ``store``, in the order they were made (an id
        is freed before it passes to another post)."""
        for change in self._changes:
            if isinstance(change, PostRecord):
                store.remember(change)
            else:
                store.forget(change)


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
    posts, read_errors, warnings, skipped = _load(config, store, now, cache)
    with store.transaction():
        site, publish_errors = publish(posts, store=store.posts, now=now, config=config, cache=cache)
        documents = _documents(config, site, cache)
        for document in documents:
            document.render()  # a feed that cannot be made is an error now, not at build time
    names = tuple(d.name for d in documents)
    return BuildReport(site, read_errors + publish_errors, names, (), warnings=tuple(warnings), skipped=skipped)
