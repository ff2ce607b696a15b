"""The content stage: files become the site's published posts.

``load_posts`` is the I/O edge: it finds the post files under the configured
paths, reads each with the reader for its extension (plus an optional
sidecar ``NAME.meta.toml`` beside it) and collects one ``ContentError`` per
file it cannot publish. ``publish`` is the rest: it sanitises the HTML, holds
back drafts and future posts, and takes each post's identity and dates from
the state store, so a post's guid never changes once published.

    posts, errors = load_posts(config)
    with store.transaction():
        site, more_errors = publish(posts, store=store, now=now, config=config)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from publisher import __version__
from publisher.config import Config
from publisher.errors import ContentError
from publisher.model import Author, Comment, Excerpt, Paragraph, Post, Site
from publisher.readers import ReadOptions, ReadResult, extensions, reader_for
from publisher.readers.frontmatter import toml_error
from publisher.readers.metadata import Metadata, parse_metadata
from publisher.sanitize import absolutize, clean_html, first_paragraph_text
from publisher.store import PostRecord, StateStore
from publisher.text import one_line, slugify, summarize, xml_safe

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".meta.toml"


@dataclass(frozen=True)
class Loaded:
    """What reading the content folders gave: posts, and the files rejected."""

    posts: tuple[Post, ...]
    errors: tuple[ContentError, ...]


def _post_files(config: Config, errors: list[ContentError]) -> list[Path]:
    # A feed listed under [[content.feeds]] is read as a feed, not as a post file.
    feed_files = {s.path.resolve() for s in config.content.feeds if s.path}
    files: list[Path] = []
    for root in config.content.paths:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [root.joinpath(*parts) for parts in sorted(_readable_files(str(root)))]
        else:
            errors.append(ContentError(config.relative(root), None, "no such file or folder"))
    unique = dict.fromkeys(files)
    if not feed_files:
        return list(unique)
    return [f for f in unique if f.resolve() not in feed_files]


def _readable_files(folder: str, parts: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Files under ``folder`` that have a reader, as path parts below it: what
    ``sorted(rglob("*"))`` would list, less hidden files and folders (and
    folders reached through a symlink), with one scandir per folder instead
    of a stat and a Path per file."""
    found: list[tuple[str, ...]] = []
    readable = _EXTENSIONS
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                found += _readable_files(entry.path, (*parts, entry.name))
            elif os.path.splitext(entry.name)[1].lower() in readable and entry.is_file():
                found.append((*parts, entry.name))
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
        return ReadResult((_date_from_name(result.posts[0], path, config),), result.errors)
    return result


def load_posts(config: Config, cache: PostCache | None = None) -> Loaded:
    """Read every post file under the configured content paths.

    With a ``cache``, a file whose bytes (and sidecar) are those of its
    last reading is not parsed again: its posts come from the cache,
    already cleaned (``publish`` knows them by the cache).
    """
    errors: list[ContentError] = []
    posts: list[Post] = []
    for path in _post_files(config, errors):
        try:
            result = cache.read(path, config) if cache is not None else read_file(path, config)
            posts.extend(result.posts)
            errors.extend(result.errors)
        except ContentError as exc:
            errors.append(exc)
        except Exception as exc:  # a reader bug must not stop the other posts
            log.debug("reading %s failed", path, exc_info=True)
            errors.append(ContentError(config.relative(path), None, f"could not be read: {exc!r}"))
    return Loaded(tuple(posts), tuple(errors))


# -- the cache of posts read ------------------------------------------------------

# Bump when what a reading gives changes without publisher's version changing.
CACHE_FORMAT = 2


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
        self._stored = store.cached_reads()  # source -> (key, data)
        self._options: tuple[int, bytes] | None = None  # (id of the config, its part of the key)
        self._seen: set[str] = set()
        self._changed: dict[str, _Entry] = {}
        # Posts this cache handed out, by identity (the references kept here
        # keep the ids unique): they are clean already, and each knows its
        # file's entry, for the resolved HTML.
        self._handed: dict[int, tuple[str, _Entry, int]] = {}

    def read(self, path: Path, config: Config) -> ReadResult:
        """``read_file(path, config)``, cleaned, from the cache when it can be."""
        shown = _shown(config, path)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            sidecar = f"{path}{SIDECAR_SUFFIX}"
            sidecar_data = None
            if os.path.isfile(sidecar):
                with open(sidecar, "rb") as handle:
                    sidecar_data = handle.read()
        except OSError:
            return _cleaned(read_file(path, config))  # which names the problem
        key = self._key(shown, data, sidecar_data, config)
        self._seen.add(shown)
        entry = None
        stored = self._stored.pop(shown, None)  # what is left at the end is of files gone
        if stored is not None and stored[0] == key:
            try:
                entry = _Entry.decode(key, stored[1])
            except (ValueError, KeyError, TypeError, IndexError):
                log.debug("%s: cached reading unusable; reading again", shown, exc_info=True)
        if entry is None:
            try:
                result = _cleaned(_read(path, shown, data, config))
            except ContentError as exc:
                entry = _Entry(key, (), (exc,), failed=True)
            else:
                entry = _Entry(key, result.posts, result.errors, failed=False)
            self._changed[shown] = entry
        for index, post in enumerate(entry.posts):
            self._handed[id(post)] = (shown, entry, index)
        if entry.failed:
            raise entry.errors[0]
        return ReadResult(entry.posts, entry.errors)

    def _key(self, shown: str, data: bytes, sidecar: bytes | None, config: Config) -> str:
        if self._options is None or self._options[0] != id(config):
            options = [CACHE_FORMAT, __version__, str(config.site.timezone), list(config.content.boilerplate)]
            self._options = (id(config), json.dumps(options, ensure_ascii=False).encode("utf-8"))
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
        if self.store.readonly:
            return
        if self._changed:
            self.store.remember_reads((shown, entry.key, entry.encode()) for shown, entry in self._changed.items())
        gone = [shown for shown in self._stored if shown not in self._seen]
        if gone:
            self.store.forget_reads(gone)
        self._stored = {}
        self._changed = {}


def _cleaned(result: ReadResult) -> ReadResult:
    return ReadResult(tuple(_clean(post) for post in result.posts), result.errors)


def _shown(config: Config, path: Path) -> str:
    """``config.relative(path)``, without pathlib's cost for the usual case."""
    text, root = str(path), str(config.root)
    if text.startswith(root) and text[len(root) : len(root) + 1] == os.sep and root != os.sep:
        return text[len(root) + 1 :]
    return config.relative(path)


class _Entry:
    """One file's cached reading: its posts, errors, and resolved HTML per post."""

    def __init__(
        self,
        key: str,
        posts: tuple[Post, ...],
        errors: tuple[ContentError, ...],
        *,
        failed: bool,
        resolved: list[tuple[str, str | None] | None] | None = None,
        hashes: list[str | None] | None = None,
    ):
        self.key = key
        self.posts = posts
        self.errors = errors
        self.failed = failed  # rejected as a whole: errors[0] is raised
        # Per post: (URL, HTML resolved against it, None when the same), and content_hash().
        self.resolved = resolved if resolved is not None else [None] * len(posts)
        self.hashes = hashes if hashes is not None else [None] * len(posts)

    def encode(self) -> bytes:
        data = [
            CACHE_FORMAT,
            [_post_to_json(post) for post in self.posts],
            [[e.path, e.line, e.reason] for e in self.errors],
            self.resolved,
            self.hashes,
            self.failed,
        ]
        # Not compressed: zlib would halve the bytes but cost more than the
        # rest of a rebuild's work on the entry.
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def decode(cls, key: str, blob: bytes) -> _Entry:
        version, posts, errors, resolved, hashes, failed = json.loads(blob)
        if version != CACHE_FORMAT or not (len(posts) == len(resolved) == len(hashes)):
            raise ValueError("not an entry of this format")
        return cls(
            key,
            tuple(map(_post_from_json, posts)),
            tuple(ContentError(path, line, reason) for path, line, reason in errors),
            failed=bool(failed),
            resolved=[tuple(r) if r is not None else None for r in resolved],
            hashes=hashes,
        )


# A Post as a JSON list of its fields in order: dates as ISO 8601 text,
# the author as [name, email, url], blocks and comments as lists of their
# fields (a block led by its kind, "p" or "e").
_POST_FIELDS = tuple(f.name for f in fields(Post))
_DATES = tuple(i for i, name in enumerate(_POST_FIELDS) if name in ("date", "updated"))
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


def _post_from_json(values: list) -> Post:
    if len(values) != len(_POST_FIELDS):
        raise ValueError("not a post of this format")
    for index in _DATES:
        if values[index] is not None:
            values[index] = datetime.fromisoformat(values[index])
    if values[_AUTHOR] is not None:
        values[_AUTHOR] = Author(*values[_AUTHOR])
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
    return Post(*values)


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
    store: StateStore,
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
        store: StateStore,
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
        self.records = store.post_records()
        self.guids = {record.guid: source for source, record in self.records.items()}
        base = config.site.url
        self._base = base if urljoin(base, "a/b-c/") == base + "a/b-c/" else None

    def _url(self, slug: str, local: datetime) -> str:
        path = self.config.content.permalink.format(
            year=f"{local.year:04d}", month=f"{local.month:02d}", day=f"{local.day:02d}", slug=slug
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
            guid = post.id
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
        self._remember(PostRecord(post.source, guid, slug, first_seen, digest, updated))
        html = cache.absolutize(post, url) if cache is not None else absolutize(post.content_html, url)
        return replace(post, id=guid, slug=slug, url=url, date=date, updated=updated, content_html=html)
