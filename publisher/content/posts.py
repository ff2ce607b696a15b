"""The content stage: files become the site's published posts.

``load_posts`` is the I/O edge: it finds the post files under the configured
paths, reads each with the reader for its extension (plus an optional
sidecar ``NAME.meta.toml`` beside it) and collects one ``ContentError`` per
file it cannot publish. ``publish`` is the rest: it sanitises the HTML, holds
back drafts and future posts, and takes each post's identity and dates from
the state store, so a post's guid never changes once published.

    posts, errors = load_posts(config)
    with store.transaction():
        site, more_errors = publish(posts, store=store.posts, now=now, config=config)
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from publisher import __version__
from publisher.config import Config
from publisher.errors import ContentError, toml_error
from publisher.model import Author, Comment, Excerpt, Paragraph, Post, Site
from publisher.content.readers import ReadOptions, ReadResult, extensions, reader_for
from publisher.content.readers.metadata import ContentWarning, Metadata, parse_metadata
from publisher.content.sanitize import absolutize, clean_html, first_paragraph_text
from publisher.state import PostRecord, PostRepository, StateStore
from publisher.text import iri_id, one_line, slugify, summarize, uri_path, xml_safe

log = logging.getLogger("publisher.content")

SIDECAR_SUFFIX = ".meta.toml"


@dataclass(frozen=True)
class Loaded:
    """What reading the content folders gave: posts, the files rejected,
    and warnings about what was published."""

    posts: tuple[Post, ...]
    errors: tuple[ContentError, ...]
    warnings: tuple[ContentWarning, ...] = ()


def _post_files(config: Config, errors: list[ContentError]) -> dict[str, bool | None]:
    """The post files to read, in order, as paths: each with whether its
    folder's listing holds a sidecar for it (None for a file named in the
    config, whose folder was not listed)."""
    # A feed listed under [[content.feeds]] is read as a feed, not as a post file.
    feed_files = {s.path.resolve() for s in config.content.feeds if s.path}
    files: list[tuple[str, bool | None]] = []
    for root in config.content.paths:
        if root.is_file():
            files.append((str(root), None))
        elif root.is_dir():
            files += [(path, sidecar) for _, path, sidecar in sorted(_readable_files(str(root)))]
        else:
            errors.append(ContentError(config.relative(root), None, "no such file or folder"))
    if len(config.content.paths) > 1:
        # Folders may overlap: each file once, where it came first (as Paths compare).
        unique: dict[Path, tuple[str, bool | None]] = {}
        for path, sidecar in files:
            unique.setdefault(Path(path), (path, sidecar))
        files = list(unique.values())
    if feed_files:
        files = [(path, sidecar) for path, sidecar in files if Path(path).resolve() not in feed_files]
    return dict(files)


def _readable_files(folder: str, parts: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, bool]]:
    """Files under ``folder`` that have a reader: (path parts below it, path,
    whether the folder also holds its sidecar). Sorted, what
    ``sorted(rglob("*"))`` would list, less hidden files and folders (and
    folders reached through a symlink); one scandir per folder instead of a
    stat and a Path per file, and no look for a sidecar per file."""
    found: list[tuple[tuple[str, ...], str, bool]] = []
    readable = _EXTENSIONS
    with os.scandir(folder) as listing:
        entries = list(listing)
    names = {entry.name for entry in entries}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            found += _readable_files(entry.path, (*parts, entry.name))
        elif os.path.splitext(entry.name)[1].lower() in readable and entry.is_file():
            found.append(((*parts, entry.name), entry.path, entry.name + SIDECAR_SUFFIX in names))
    return found


_EXTENSIONS = frozenset(extensions())


def _sidecar(path: Path, shown: str, config: Config) -> Metadata:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return Metadata()
    name = shown + SIDECAR_SUFFIX
    try:
        text = sidecar.read_bytes().decode("utf-8-sig")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ContentError(name, 1, "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        line, reason = toml_error(exc, text)
        raise ContentError(name, line, f"not valid TOML: {reason}") from None
    return parse_metadata(raw, path=name, text=text, first_line=1, tz=config.site.timezone)


_DATED_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")


def _date_from_name(post: Post, path: Path, config: Config) -> Post:
    """Jekyll's convention: ``2024-05-01-title.md`` dates (and names) the post."""
    match = _DATED_NAME.match(path.stem)
    if post.date is not None or match is None:
        return post
    try:
        day = datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=config.site.timezone)
    except ValueError:
        raise ContentError(post.source, None, f"file name {path.name!r} starts with an impossible date") from None
    return replace(post, date=day, slug=post.slug or slugify(match[4]))


def read_file(path: Path, config: Config) -> ReadResult:
    """Read one content file (and its sidecar); raises ``ContentError``."""
    shown = config.relative(path)
    return _read(path, shown, _file_bytes(path, shown), config)


def _file_bytes(path: Path, shown: str) -> bytes:
    if reader_for(path.name) is None:
        raise ContentError(shown, None, f"no reader for {path.suffix or 'files without an extension'}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ContentError(shown, None, f"cannot be read: {exc.strerror}") from None


def _read(path: Path, shown: str, data: bytes, config: Config) -> ReadResult:
    reader = reader_for(path.name)
    if reader is None:
        raise ContentError(shown, None, f"no reader for {path.suffix or 'files without an extension'}")
    options = ReadOptions(
        timezone=config.site.timezone,
        boilerplate=config.content.boilerplate,
        overlay=_sidecar(path, shown, config),
    )
    result = reader(data, shown, options)
    if len(result.posts) == 1 and result.posts[0].source == shown:
        return replace(result, posts=(_date_from_name(result.posts[0], path, config),))
    return result


def load_posts(config: Config, cache: PostCache | None = None) -> Loaded:
    """Read every post file under the configured content paths.

    With a ``cache``, a file whose bytes (and sidecar) are those of its
    last reading is not parsed again: its posts come from the cache,
    already cleaned (``publish`` knows them by the cache).
    """
    errors: list[ContentError] = []
    posts: list[Post] = []
    warnings: list[ContentWarning] = []
    files = _post_files(config, errors)
    if cache is not None:
        outcomes = cache.read_all(files, config)
    else:
        outcomes = ((path, _attempt(Path(path), lambda: read_file(Path(path), config))) for path in files)
    for path, outcome in outcomes:
        if isinstance(outcome, ReadResult):
            posts.extend(outcome.posts)
            errors.extend(outcome.errors)
            warnings.extend(outcome.warnings)
        elif isinstance(outcome, ContentError):
            errors.append(outcome)
        else:  # a reader bug must not stop the other posts
            errors.append(ContentError(config.relative(Path(path)), None, f"could not be read: {outcome!r}"))
    return Loaded(tuple(posts), tuple(errors), tuple(warnings))


def _attempt(path: Path, read: Callable[[], ReadResult]) -> ReadResult | Exception:
    """``read()``, or the exception it raised (logged when it is a bug)."""
    try:
        return read()
    except ContentError as exc:
        return exc
    except Exception as exc:
        log.debug("reading %s failed", path, exc_info=True)
        return exc


# -- parsing many files ---------------------------------------------------------
#
# Parsing (Markdown above all) is most of a cold build. When many files are
# to be parsed and the machine has more than one CPU, worker processes parse
# them, PARSE_CHUNK files at a time; the results are the same as parsing here.

PARALLEL_MIN_FILES = 400  # below this, starting the workers costs more than it saves
PARSE_CHUNK = 32
MAX_PARSERS = 8


def _parse_one(path: Path, shown: str, data: bytes, config: Config) -> ReadResult | Exception:
    return _attempt(path, lambda: _cleaned(_read(path, shown, data, config)))


def _parse_many(items: list[tuple[Path, str, bytes]], config: Config) -> list[ReadResult | Exception]:
    """Each item's reading, cleaned: (path, shown, bytes) -> ReadResult or the error."""
    workers = _parsers(len(items))
    if workers > 1:
        try:
            return _parse_in_processes(items, config, workers)
        except Exception:  # no process could be started, or one died: parse here instead
            log.warning("parsing in %d worker processes failed; parsing %d files here", workers, len(items), exc_info=True)
    return [_parse_one(path, shown, data, config) for path, shown, data in items]


def _parsers(files: int) -> int:
    if files < PARALLEL_MIN_FILES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_PARSERS))


def _parse_in_processes(items: list[tuple[Path, str, bytes]], config: Config, workers: int) -> list[ReadResult | Exception]:
    # spawn: fresh interpreters, never a fork of this process (which may hold
    # threads and a database connection), and nothing left running after.
    context = multiprocessing.get_context("spawn")
    chunks = [items[i : i + PARSE_CHUNK] for i in range(0, len(items), PARSE_CHUNK)]
    results: list[ReadResult | Exception] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for done in pool.map(_parse_chunk, [config] * len(chunks), chunks):
            results.extend(_unpacked(outcome) for outcome in done)
    return results


def _parse_chunk(config: Config, chunk: list[tuple[Path, str, bytes]]) -> list[tuple]:
    """In a worker: parse ``chunk``; errors as plain tuples (ContentError does not pickle)."""
    out: list[tuple] = []
    for path, shown, data in chunk:
        outcome = _parse_one(path, shown, data, config)
        if isinstance(outcome, ReadResult):
            out.append(("ok", outcome.posts, [(e.path, e.line, e.reason) for e in outcome.errors], outcome.warnings))
        elif isinstance(outcome, ContentError):
            out.append(("rejected", outcome.path, outcome.line, outcome.reason))
        else:
            out.append(("bug", f"{type(outcome).__name__}: {outcome}"))
    return out


def _unpacked(outcome: tuple) -> ReadResult | Exception:
    if outcome[0] == "ok":
        return ReadResult(outcome[1], tuple(ContentError(*error) for error in outcome[2]), outcome[3])
    if outcome[0] == "rejected":
        return ContentError(*outcome[1:])
    return RuntimeError(outcome[1])


# -- the cache of posts read ------------------------------------------------------

# Bump when what a reading gives changes without publisher's version changing.
# 4: srcset and cite URLs are resolved too. 5: HTML pieces only where there is HTML.
# 6: imported feeds resolve srcset against their source. 7: warnings are kept.
CACHE_FORMAT = 7


class PostCache:
    """Posts read and cleaned, by the hash of what they were read from.

    An entry per content file, kept in the state store: the key hashes the
    file's bytes, its sidecar's, the reader options that matter (time zone,
    boilerplate), its path and publisher's version; the value is what
    reading and cleaning gave (posts and rejected items), plus each post's
    HTML with relative links resolved against the URL it was last published
    at. A file whose key is unchanged is not parsed, sanitised or resolved
    again; a changed file is read as usual and its entry replaced.

    One instance serves one build: ``load_posts(config, cache)``, then
    ``publish(..., cache=cache)``, then ``save()`` inside the store's
    transaction writes the entries that changed (none when nothing did)
    and drops those of files that are gone. A read-only store is read, never written.
    """

    def __init__(self, store: StateStore):
        self.store = store
        self._stored = store.builds.cached_reads()  # source -> (key, data)
        self._options: tuple[int, bytes, str] | None = None  # (id of the config, its part of the key, digest)
        self._signatures: dict[str, str | None] = {}  # source -> signature now
        self._resigned: dict[str, tuple[str, str]] = {}  # source -> (key, signature): unchanged but touched
        self._seen: set[str] = set()
        self._authors: dict[tuple, Author] = {}  # the authors of decoded posts, by their fields
        self._changed: dict[str, _Entry] = {}
        # Posts this cache handed out, by identity (the references kept here
        # keep the ids unique): they are clean already, and each knows its
        # file's entry, for the resolved HTML.
        self._handed: dict[int, tuple[str, _Entry, int]] = {}
        # Posts published from those, by identity: (the post, its entry, its index).
        self._published: dict[int, tuple[Post, _Entry, int]] = {}

    def read_all(self, files: dict[str, bool | None], config: Config) -> list[tuple[str, ReadResult | Exception]]:
        """Each file's reading, cleaned, in order: from the cache where its key
        is unchanged, else parsed (all together, in parallel when many).

        ``files`` maps each path to whether its folder holds its sidecar
        (None: unknown, look). An outcome is a ``ReadResult``, the
        ``ContentError`` that rejects the file, or the exception of a reader
        bug (not cached).
        """
        outcomes: list[ReadResult | Exception | None] = [None] * len(files)
        misses: list[tuple[int, Path, str, bytes, str]] = []
        root = str(config.root)
        prefix = self._prefix(config)
        now = _wall_ns()  # before any file is looked at: the racy window errs long
        for index, (path, sidecar_seen) in enumerate(files.items()):
            shown = _shown(root, path, config)
            self._seen.add(shown)
            stored = self._stored.pop(shown, None)  # what is left at the end is of files gone
            signature = _signature(path, prefix + shown, now, sidecar_seen)
            entry = None
            if stored is not None and signature is not None and stored[2] == signature:
                # Unchanged on disk since it was read: its key is the stored one.
                entry = _decoded(shown, stored[0], stored[1], self._authors)
            if entry is None:
                try:
                    with open(path, "rb") as handle:
                        data = handle.read()
                    sidecar = path + SIDECAR_SUFFIX
                    sidecar_data = None
                    if os.path.isfile(sidecar):
                        with open(sidecar, "rb") as handle:
                            sidecar_data = handle.read()
                except OSError:
                    outcomes[index] = _attempt(Path(path), lambda: _cleaned(read_file(Path(path), config)))  # names the problem
                    continue
                if signature is not None and (sidecar_data is None) != signature.endswith("|-"):
                    signature = None  # the sidecar came or went since the look: not to be trusted
                key = self._key(shown, data, sidecar_data, config)
                if stored is not None and stored[0] == key:
                    entry = _decoded(shown, key, stored[1], self._authors)
                    if entry is not None and signature is not None:
                        # Touched but unchanged: remember how it looks now,
                        # or it would be read and hashed again every build.
                        self._resigned[shown] = (key, signature)
                if entry is None:
                    misses.append((index, Path(path), shown, data, key))
            self._signatures[shown] = signature
            if entry is not None:
                outcomes[index] = self._hand_out(shown, entry)
        parsed = _parse_many([(path, shown, data) for _, path, shown, data, _ in misses], config)
        for (index, _, shown, _, key), outcome in zip(misses, parsed):
            if isinstance(outcome, ReadResult):
                entry = _Entry(key, outcome.posts, outcome.errors, failed=False, warnings=outcome.warnings)
            elif isinstance(outcome, ContentError):
                entry = _Entry(key, (), (outcome,), failed=True)
            else:
                outcomes[index] = outcome
                continue
            self._changed[shown] = entry
            outcomes[index] = self._hand_out(shown, entry)
        return [(path, outcome) for path, outcome in zip(files, outcomes) if outcome is not None]

    def published(self, post: Post, result: Post) -> None:
        """``result`` is ``post`` published: ``post`` with its identity, dates
        and resolved HTML (``fingerprint`` knows it then)."""
        handed = self._handed.get(id(post))
        if handed is not None:
            self._published[id(result)] = (result, handed[1], handed[2])

    def fingerprint(self, post: Post) -> bytes | None:
        """For a post published from the cache: bytes that change when any of
        its fields does, without hashing its HTML (``feeds.plan_feeds``).

        Its entry's key and place fix every field read from the file; the
        rest is what publishing set (the HTML resolved follows the URL)."""
        known = self._published.get(id(post))
        if known is None:
            return None
        _, entry, index = known
        date = post.date.isoformat() if post.date is not None else ""
        updated = post.updated.isoformat() if post.updated is not None else ""
        text = f"{entry.key}\x00{index}\x00{post.id}\x00{post.slug}\x00{post.url}\x00{date}\x00{updated}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()

    def _hand_out(self, shown: str, entry: _Entry) -> ReadResult | ContentError:
        for index, post in enumerate(entry.posts):
            self._handed[id(post)] = (shown, entry, index)
        return entry.errors[0] if entry.failed else ReadResult(entry.posts, entry.errors, entry.warnings)

    def _prefix(self, config: Config) -> str:
        """What of the config goes into every key (and signature)."""
        if self._options is None or self._options[0] != id(config):
            options = [CACHE_FORMAT, __version__, str(config.site.timezone), list(config.content.boilerplate)]
            text = json.dumps(options, ensure_ascii=False)
            self._options = (id(config), text.encode("utf-8"), hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
        return self._options[2]

    def _key(self, shown: str, data: bytes, sidecar: bytes | None, config: Config) -> str:
        self._prefix(config)
        assert self._options is not None
        digest = hashlib.sha256()
        for part in (self._options[1], shown.encode("utf-8", "surrogateescape"), data, b"" if sidecar is None else b"1" + sidecar):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def cleaned(self, post: Post) -> Post:
        """``post`` cleaned: as it is when this cache handed it out."""
        return post if id(post) in self._handed else _clean(post)

    def content_hash(self, post: Post) -> str:
        """``content_hash(post)``, kept with the post."""
        handed = self._handed.get(id(post))
        if handed is None:
            return content_hash(post)
        shown, entry, index = handed
        found = entry.hashes[index]
        if found is None:
            found = entry.hashes[index] = content_hash(post)
            self._changed[shown] = entry
        return found

    def absolutize(self, post: Post, url: str) -> str:
        """``post``'s HTML with relative links resolved against ``url``."""
        handed = self._handed.get(id(post))
        if handed is None:
            return absolutize(post.content_html, url)
        shown, entry, index = handed
        resolved = entry.resolved[index]
        if resolved is not None and resolved[0] == url:
            return resolved[1] if resolved[1] is not None else post.content_html
        html = absolutize(post.content_html, url)
        entry.resolved[index] = (url, None if html == post.content_html else html)
        self._changed[shown] = entry
        return html

    def save(self) -> None:
        """Write the entries that changed; drop those of files no longer read."""
        if not self.store.persists:
            return
        if self._changed:
            self.store.builds.remember_reads(
                (shown, entry.key, entry.encode(), self._signatures.get(shown)) for shown, entry in self._changed.items()
            )
        resigned = [(shown, *found) for shown, found in self._resigned.items() if shown not in self._changed]
        if resigned:
            self.store.builds.remember_read_signatures(resigned)
        gone = [shown for shown in self._stored if shown not in self._seen]
        if gone:
            self.store.builds.forget_reads(gone)
        self._stored = {}
        self._changed = {}
        self._resigned = {}


def _decoded(shown: str, key: str, data: bytes, authors: dict[tuple, Author]) -> _Entry | None:
    try:
        return _Entry.decode(key, data, authors)
    except (ValueError, KeyError, TypeError, IndexError):
        log.debug("%s: cached reading unusable; reading again", shown, exc_info=True)
        return None


def _cleaned(result: ReadResult) -> ReadResult:
    return replace(result, posts=tuple(_clean(post) for post in result.posts))


def _shown(root: str, path: str, config: Config) -> str:
    """``config.relative(Path(path))`` (``root`` is ``str(config.root)``), without pathlib's cost for the usual case."""
    if path.startswith(root) and path[len(root) : len(root) + 1] == os.sep and root != os.sep:
        return path[len(root) + 1 :]
    return config.relative(Path(path))


# A file changed less than this before it was looked at may change again
# within the same timestamp tick, unseen by its size and times: its
# signature is not kept (as git treats "racily clean" entries). Two seconds
# where timestamps have whole seconds only.
_RACY_NS = 50_000_000
_RACY_COARSE_NS = 2_000_000_000
# The wall time, in ns, file times are judged against (tests fix it).
_wall_ns = time.time_ns


def _signature(path: str, prefix: str, now: int, sidecar: bool | None = None) -> str | None:
    """What ``path`` and its sidecar look like on disk (size, mtime, ctime,
    inode), with ``prefix``; None when it may not be trusted to show a change.

    ``now`` is a time before the look. ``sidecar`` False: the folder's
    listing holds no sidecar for it, which is not looked for again."""
    try:
        own = _stat_part(os.stat(path), now)
    except OSError:
        return None
    if own is None:
        return None
    if sidecar is False:
        return f"{prefix}|{own}|-"
    try:
        beside = _stat_part(os.stat(path + SIDECAR_SUFFIX), now)
    except FileNotFoundError:
        return f"{prefix}|{own}|-"
    except OSError:
        return None
    return None if beside is None else f"{prefix}|{own}|{beside}"


def _stat_part(stat: os.stat_result, now: int) -> str | None:
    newest = max(stat.st_mtime_ns, stat.st_ctime_ns)
    racy = _RACY_COARSE_NS if newest % 1_000_000_000 == 0 else _RACY_NS
    if now - newest < racy:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"


class _Entry:
    """One file's cached reading: its posts, errors, warnings, and resolved HTML per post."""

    def __init__(
        self,
        key: str,
        posts: tuple[Post, ...],
        errors: tuple[ContentError, ...],
        *,
        failed: bool,
        resolved: list[tuple[str, str | None] | None] | None = None,
        hashes: list[str | None] | None = None,
        warnings: tuple[ContentWarning, ...] = (),
    ):
        self.key = key
        self.posts = posts
        self.errors = errors
        self.warnings = warnings
        self.failed = failed  # rejected as a whole: errors[0] is raised
        # Per post: (URL, HTML resolved against it, None when the same), and content_hash().
        self.resolved = resolved if resolved is not None else [None] * len(posts)
        self.hashes = hashes if hashes is not None else [None] * len(posts)

    def encode(self) -> bytes:
        """JSON of everything but the HTML, a NUL, then the HTML joined by
        NULs: each post's, followed by its resolved HTML when that differs.
        The HTML is most of an entry, and apart it is cheaper to read back
        than as JSON strings; most entries hold one piece, which is decoded
        without splitting (NUL is never in post HTML: it is not XML)."""
        posts, html = [], []
        for post, resolved in zip(self.posts, self.resolved):
            values = _post_to_json(post)
            values[_HTML] = None
            posts.append(values)
            html.append(post.content_html)
            if resolved is not None and resolved[1] is not None:
                html.append(resolved[1])
        data = [
            CACHE_FORMAT,
            posts,
            [[e.path, e.line, e.reason] for e in self.errors],
            [None if r is None else [r[0], r[1] is not None] for r in self.resolved],
            self.hashes,
            self.failed,
            [[w.path, w.line, w.reason] for w in self.warnings],
        ]
        head = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return head + b"\x00" + "\x00".join(html).encode("utf-8")

    @classmethod
    def decode(cls, key: str, blob: bytes, authors: dict[tuple, Author] | None = None) -> _Entry:
        """The entry ``encode`` gave ``blob``; equal authors are one ``Author`` from ``authors``."""
        split = blob.index(b"\x00")
        version, posts, errors, resolved, hashes, failed, warnings = json.loads(blob[:split].decode("utf-8"))
        if version != CACHE_FORMAT or not (len(posts) == len(resolved) == len(hashes)):
            raise ValueError("not an entry of this format")
        html = _texts(blob, split + 1)
        piece = 0
        for index, values in enumerate(posts):
            values[_HTML] = html[piece]
            piece += 1
            found = resolved[index]
            if found is not None:
                resolved[index] = (found[0], html[piece] if found[1] else None)
                piece += bool(found[1])
        if piece != len(html) and not (piece == 0 and html == [""]):
            raise ValueError("not an entry of this format")
        authors = {} if authors is None else authors
        return cls(
            key,
            tuple([_post_from_json(values, authors) for values in posts]),
            tuple([ContentError(path, line, reason) for path, line, reason in errors]),
            failed=bool(failed),
            resolved=resolved,
            hashes=hashes,
            warnings=tuple([ContentWarning(path, line, reason) for path, line, reason in warnings]),
        )


def _texts(blob: bytes, start: int) -> list[str]:
    """The NUL-separated UTF-8 texts of ``blob`` from ``start``, each decoded
    where it lies (no copy of the bytes, no split of a decoded whole)."""
    view = memoryview(blob)
    texts = []
    while True:
        end = blob.find(b"\x00", start)
        if end < 0:
            texts.append(str(view[start:], "utf-8"))
            return texts
        texts.append(str(view[start:end], "utf-8"))
        start = end + 1


# A Post as a JSON list of its fields in order: dates as ISO 8601 text,
# the author as [name, email, url], blocks and comments as lists of their
# fields (a block led by its kind, "p" or "e").
_POST_FIELDS = tuple(f.name for f in fields(Post))
_DATES = tuple(i for i, name in enumerate(_POST_FIELDS) if name in ("date", "updated"))
_HTML = _POST_FIELDS.index("content_html")
_AUTHOR = _POST_FIELDS.index("author")
_BLOCKS = _POST_FIELDS.index("blocks")
_COMMENTS = _POST_FIELDS.index("comments")
_TUPLES = tuple(i for i, name in enumerate(_POST_FIELDS) if name == "tags")
_COMMENT_DATE = [f.name for f in fields(Comment)].index("date")


def _post_to_json(post: Post) -> list:
    values: list = [getattr(post, name) for name in _POST_FIELDS]
    for index in _DATES:
        if values[index] is not None:
            values[index] = values[index].isoformat()
    if post.author is not None:
        values[_AUTHOR] = [post.author.name, post.author.email, post.author.url]
    values[_BLOCKS] = [
        ["p", block.text] if isinstance(block, Paragraph) else ["e", *(getattr(block, f.name) for f in fields(Excerpt))]
        for block in post.blocks
    ]
    values[_COMMENTS] = [
        [c.date.isoformat() if i == _COMMENT_DATE and c.date is not None else getattr(c, f.name) for i, f in enumerate(fields(Comment))]
        for c in post.comments
    ]
    return values


def _post_from_json(values: list, authors: dict[tuple, Author]) -> Post:
    if len(values) != len(_POST_FIELDS):
        raise ValueError("not a post of this format")
    for index in _DATES:
        if values[index] is not None:
            values[index] = datetime.fromisoformat(values[index])
    if values[_AUTHOR] is not None:
        # Posts share a few authors: one (frozen) Author each.
        known = tuple(values[_AUTHOR])
        values[_AUTHOR] = authors.get(known) or authors.setdefault(known, Author(*known))
    for index in _TUPLES:
        values[index] = tuple(values[index])
    if values[_BLOCKS]:
        values[_BLOCKS] = tuple(
            Paragraph(b[1]) if b[0] == "p" else Excerpt(b[1], b[2], tuple(b[3]), *b[4:]) for b in values[_BLOCKS]
        )
    else:
        values[_BLOCKS] = ()
    if values[_COMMENTS]:
        comments = []
        for c in values[_COMMENTS]:
            if c[_COMMENT_DATE] is not None:
                c[_COMMENT_DATE] = datetime.fromisoformat(c[_COMMENT_DATE])
            comments.append(Comment(c[0], c[1], tuple(c[2]), *c[3:]))
        values[_COMMENTS] = tuple(comments)
    else:
        values[_COMMENTS] = ()
    return _post_of(zip(_POST_FIELDS, values))


def _post_of(fields: Iterable[tuple[str, object]]) -> Post:
    """``Post(**dict(fields))`` for every field of a Post, made as pickle
    makes one: the values go straight into the new instance. A frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    slow for the two posts a rebuild makes per cached post. Post has no
    ``__post_init__`` and no slots (a test holds it to that)."""
    post = object.__new__(Post)
    post.__dict__.update(fields)
    return post


def _published_copy(post: Post, **changes: object) -> Post:
    """``dataclasses.replace(post, **changes)``, made as ``_post_of`` makes a post."""
    copy = object.__new__(Post)
    state = copy.__dict__
    state.update(post.__dict__)
    state.update(changes)
    return copy


def content_hash(post: Post) -> str:
    """A digest of what readers see of a post; a change marks it updated."""
    fields = [
        post.title,
        post.content_html,
        post.summary,
        list(post.tags),
        [post.author.name, post.author.email] if post.author else None,
        post.image,
        post.url,
    ]
    data = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def _tag_uri(site_url: str, published: datetime, post_url: str) -> str:
    """An RFC 4151 tag URI: unique, and independent of later edits."""
    host = urlsplit(site_url).hostname or "localhost"
    path = urlsplit(post_url).path or "/"
    return f"tag:{host},{published:%Y-%m-%d}:{path}"


def _clean(post: Post) -> Post:
    html = clean_html(post.content_html)
    summary = post.summary or summarize(first_paragraph_text(html))
    return replace(
        post,
        title=xml_safe(one_line(post.title)),
        summary=xml_safe(summary) or None,
        content_html=html,
    )


def publish(
    posts: tuple[Post, ...],
    *,
    store: PostRepository,
    now: datetime,
    config: Config,
    cache: PostCache | None = None,
) -> tuple[Site, tuple[ContentError, ...]]:
    """Give each publishable post its identity and dates; newest first.

    Must run inside ``store.transaction()``: identities minted here are
    remembered there. When two posts claim one id or URL, the one published
    first keeps it and the other is rejected, naming both files. Posts that
    ``cache`` handed out are already clean, and their resolved HTML is
    taken from it when their URL is unchanged.
    """
    errors: list[ContentError] = []
    published: list[Post] = []
    ready = []
    clean = cache.cleaned if cache is not None else _clean
    for post in posts:
        if post.draft:
            log.info("%s: draft, not published", post.source)
        elif post.date is not None and post.date > now:
            log.info("%s: scheduled for %s, not published yet", post.source, post.date.isoformat())
        else:
            ready.append(clean(post))
    identities = _Identities(store, now, config, {p.source for p in posts}, cache)

    def seniority(post: Post):
        record = identities.records.get(post.source)
        known = record.first_seen if record else None
        return (record is None, post.date or known or now, post.source)

    for post in sorted(ready, key=seniority):
        try:
            published.append(identities.assign(post))
        except ContentError as exc:
            errors.append(exc)
    published.sort(key=lambda p: (p.date, p.source), reverse=True)
    return Site(info=config.site_info, posts=tuple(published)), tuple(errors)


# A permalink path urljoin would append to the site's URL as it is: no
# scheme, query, fragment, parameters, dot segments or empty segments.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_~!$&'()*+,=@%-]+(?:/[A-Za-z0-9_~!$&'()*+,=@%-]+)*/?")


class _Identities:
    """Ids and URLs handed out in one build, backed by the state store."""

    def __init__(
        self,
        store: PostRepository,
        now: datetime,
        config: Config,
        current: set[str],
        cache: PostCache | None,
    ):
        self.cache = cache
        self.store = store
        self.now = now
        self.config = config
        self.current = current
        self.ids: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        # The store's records, read once and kept in step with what this
        # build remembers and forgets (a query per post adds up).
        self.records = store.records()
        self.guids = {record.guid: source for source, record in self.records.items()}
        base = config.site.url
        self._base = base if urljoin(base, "a/b-c/") == base + "a/b-c/" else None

    def _url(self, slug: str, local: datetime) -> str:
        # A slug may be Unicode ("война-и-мир"): the URL is its percent-encoded UTF-8.
        path = uri_path(
            self.config.content.permalink.format(
                year=f"{local.year:04d}", month=f"{local.month:02d}", day=f"{local.day:02d}", slug=slug
            )
        )
        if self._base is not None and _PLAIN_PATH.fullmatch(path):
            return self._base + path  # what urljoin gives for such a path, without its cost
        return urljoin(self.config.site.url, path)

    def _remember(self, record: PostRecord) -> None:
        known = self.records.get(record.source)
        if known == record:
            return
        self.store.remember(record)
        if known is not None and self.guids.get(known.guid) == record.source:
            del self.guids[known.guid]
        self.records[record.source] = record
        self.guids[record.guid] = record.source

    def _forget(self, source: str) -> None:
        self.store.forget(source)
        known = self.records.pop(source, None)
        if known is not None and self.guids.get(known.guid) == source:
            del self.guids[known.guid]

    def assign(self, post: Post) -> Post:
        now, cache = self.now, self.cache
        digest = cache.content_hash(post) if cache is not None else content_hash(post)
        record = self.records.get(post.source)
        if record is None:
            date = post.date or now
            updated = post.updated or date
            first_seen = now
        else:
            date = post.date or record.first_seen
            changed = record.content_hash != digest
            updated = post.updated or (max(now, date) if changed else record.updated)
            first_seen = record.first_seen
        date = date.astimezone(timezone.utc)
        updated = max(updated.astimezone(timezone.utc), date)
        local = date.astimezone(self.config.site.timezone)

        slug = post.slug or (record.slug if record else slugify(post.title))
        url = post.url or self._url(slug, local)
        if not post.url and not post.slug and record is None:
            # A slug of our own making: step aside from one already taken.
            base, n = slug, 2
            while self.urls.get(url, post.source) != post.source:
                slug, n = f"{base}-{n}", n + 1
                url = self._url(slug, local)
        if self.urls.get(url, post.source) != post.source:
            raise ContentError(post.source, None, f"URL {url} is already used by {self.urls[url]}")

        if post.id:
            # An id that is not an IRI ("1") cannot be an Atom id: one is made from it.
            guid = iri_id(post.id, f"{self.config.site.url}#{post.id}")
        elif record is not None:
            guid = record.guid
        else:
            guid = base = _tag_uri(self.config.site.url, local, url)
            n = 2
            while self.guids.get(guid) not in (None, post.source) or guid in self.ids:
                guid, n = f"{base}-{n}", n + 1
        owner = self.ids.get(guid) or self.guids.get(guid)
        if owner is not None and owner != post.source:
            if owner in self.current:
                raise ContentError(post.source, None, f"id {guid!r} is already used by {owner}")
            # The file that held this id is gone: the id passes to this post.
            self._forget(owner)
        self.ids[guid] = post.source
        self.urls[url] = post.source
        # An unchanged record (first_seen is its own) is not made again to be compared.
        if record is None or (record.guid, record.slug, record.content_hash, record.updated) != (guid, slug, digest, updated):
            self._remember(PostRecord(post.source, guid, slug, first_seen, digest, updated))
        html = cache.absolutize(post, url) if cache is not None else absolutize(post.content_html, url)
        # A relative image is resolved as the links of its HTML are: feeds and emails are read elsewhere.
        image = urljoin(url, post.image) if post.image else post.image
        result = _published_copy(
            post, id=guid, slug=slug, url=url, date=date, updated=updated, content_html=html, image=image
        )
        if cache is not None:
            cache.published(post, result)
        return result
