"""The post cache: each content file's reading, kept in the state store.

A file whose bytes (and sidecar) are those of its last reading is not
parsed, sanitised or resolved again; one unchanged on disk since (its size,
times and inode, its signature) is not even read, unless it changed within
the racy window of its last look.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from publisher import __version__
from publisher.config import Config
from publisher.errors import ContentError
from publisher.model import Author, Comment, Enclosure, Excerpt, Paragraph, Post
from publisher.content.load import SIDECAR_SUFFIX, _attempt, _clean, _cleaned, read_file
from publisher.content.parsing import Parsing
from publisher.content.publishing import content_hash
from publisher.content.readers import ReadResult
from publisher.content.readers.metadata import ContentWarning
from publisher.content.sanitize import absolutize
from publisher.state import StateStore

log = logging.getLogger("publisher.content")

# Bump when what a reading gives changes without publisher's version changing.
# 4: srcset and cite URLs are resolved too. 5: HTML pieces only where there is HTML.
# 6: imported feeds resolve srcset against their source. 7: warnings are kept.
# 8: enclosures, expiry, derived slugs, and files skipped as not posts. 9: aliases.
CACHE_FORMAT = 9


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
        # Posts published from those, by identity: (the post, its entry's key, its index).
        self._published: dict[int, tuple[Post, str, int]] = {}
        self._fingerprints: dict[int, bytes] = {}  # of those, as the feeds and then the pages ask

    def read_all(self, files: dict[str, bool | None], config: Config) -> list[tuple[str, ReadResult | Exception]]:
        """Each file's reading, cleaned, in order: from the cache where its key
        is unchanged, else parsed (all together, in parallel when many).

        ``files`` maps each path to whether its folder holds its sidecar
        (None: unknown, look). An outcome is a ``ReadResult``, the
        ``ContentError`` that rejects the file, or the exception of a reader
        bug (not cached).
        """
        outcomes: list[ReadResult | Exception | None] = [None] * len(files)
        misses: list[tuple[int, str, str]] = []  # (index, shown, key)
        root = str(config.root)
        shown_paths = [_shown(root, path, config) for path in files]
        # Files the cache has never seen are parsed for sure: when they are
        # many, the parsing workers start on them while the rest are read.
        parsing = Parsing(config, expected=sum(1 for shown in shown_paths if shown not in self._stored))
        prefix = self._prefix(config)
        now = _wall_ns()  # before any file is looked at: the racy window errs long
        for index, ((path, sidecar_seen), shown) in enumerate(zip(files.items(), shown_paths)):
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
                    misses.append((index, shown, key))
                    parsing.add(Path(path), shown, data)
            self._signatures[shown] = signature
            if entry is not None:
                outcomes[index] = self._hand_out(shown, entry)
        for (index, shown, key), (outcome, resolved) in zip(misses, parsing.outcomes()):
            if isinstance(outcome, ReadResult):
                entry = _Entry(
                    key, outcome.posts, outcome.errors, failed=False, warnings=outcome.warnings, skipped=outcome.skipped,
                    resolved=list(resolved) if resolved is not None else None,
                )
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
            self._published[id(result)] = (result, handed[1].key, handed[2])

    def fingerprint(self, post: Post) -> bytes | None:
        """For a post published from the cache: bytes that change when any of
        its fields does, without hashing its HTML (``feeds.plan_feeds``).

        Its entry's key and place fix every field read from the file; the
        rest is what publishing set (the HTML resolved follows the URL)."""
        found = self._fingerprints.get(id(post))
        if found is not None:
            return found
        known = self._published.get(id(post))
        if known is None:
            return None
        _, key, index = known
        date = post.date.isoformat() if post.date is not None else ""
        updated = post.updated.isoformat() if post.updated is not None else ""
        text = f"{key}\x00{index}\x00{post.id}\x00{post.slug}\x00{post.url}\x00{date}\x00{updated}"
        found = self._fingerprints[id(post)] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        return found

    def _hand_out(self, shown: str, entry: _Entry) -> ReadResult | ContentError:
        for index, post in enumerate(entry.posts):
            self._handed[id(post)] = (shown, entry, index)
        return entry.errors[0] if entry.failed else ReadResult(entry.posts, entry.errors, entry.warnings, entry.skipped)

    def _prefix(self, config: Config) -> str:
        """What of the config goes into every key (and signature)."""
        if self._options is None or self._options[0] != id(config):
            options = [CACHE_FORMAT, __version__, str(config.site.timezone), list(config.content.boilerplate), config.site.url]
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
            return absolutize(post.content_html, url, cleaned=True)
        shown, entry, index = handed
        resolved = entry.resolved[index]
        if resolved is not None and resolved[0] == url:
            return resolved[1] if resolved[1] is not None else post.content_html
        html = absolutize(post.content_html, url, cleaned=True)
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
        # Saved: the posts as read (before publishing made their links
        # absolute) are needed no more; the fingerprints of those published stay.
        self._handed = {}


def _decoded(shown: str, key: str, data: bytes, authors: dict[tuple, Author]) -> _Entry | None:
    try:
        return _Entry.decode(key, data, authors)
    except (ValueError, KeyError, TypeError, IndexError):
        log.debug("%s: cached reading unusable; reading again", shown, exc_info=True)
        return None


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
        skipped: str | None = None,
    ):
        self.key = key
        self.skipped = skipped
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
            self.skipped,
        ]
        head = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return head + b"\x00" + "\x00".join(html).encode("utf-8")

    @classmethod
    def decode(cls, key: str, blob: bytes, authors: dict[tuple, Author] | None = None) -> _Entry:
        """The entry ``encode`` gave ``blob``; equal authors are one ``Author`` from ``authors``."""
        split = blob.index(b"\x00")
        version, posts, errors, resolved, hashes, failed, warnings, skipped = json.loads(blob[:split].decode("utf-8"))
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
            skipped=skipped,
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
_DATES = tuple(i for i, name in enumerate(_POST_FIELDS) if name in ("date", "updated", "expires"))
_ENCLOSURES = _POST_FIELDS.index("enclosures")
_HTML = _POST_FIELDS.index("content_html")
_AUTHOR = _POST_FIELDS.index("author")
_BLOCKS = _POST_FIELDS.index("blocks")
_COMMENTS = _POST_FIELDS.index("comments")
_TUPLES = tuple(i for i, name in enumerate(_POST_FIELDS) if name in ("tags", "aliases"))
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
    values[_ENCLOSURES] = [[e.url, e.type, e.length] for e in post.enclosures]
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
    values[_ENCLOSURES] = tuple(Enclosure(*e) for e in values[_ENCLOSURES])
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
