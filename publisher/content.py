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
import re
import tomllib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from publisher.config import Config
from publisher.errors import ContentError
from publisher.model import Post, Site
from publisher.readers import ReadOptions, ReadResult, reader_for
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
            for path in sorted(root.rglob("*")):
                hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
                if path.is_file() and not hidden and reader_for(path.name):
                    files.append(path)
        else:
            errors.append(ContentError(config.relative(root), None, "no such file or folder"))
    return [f for f in dict.fromkeys(files) if f.resolve() not in feed_files]


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
    reader = reader_for(path.name)
    if reader is None:
        raise ContentError(shown, None, f"no reader for {path.suffix or 'files without an extension'}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError(shown, None, f"cannot be read: {exc.strerror}") from None
    options = ReadOptions(
        timezone=config.site.timezone,
        boilerplate=config.content.boilerplate,
        overlay=_sidecar(path, shown, config),
    )
    result = reader(data, shown, options)
    if len(result.posts) == 1 and result.posts[0].source == shown:
        return ReadResult((_date_from_name(result.posts[0], path, config),), result.errors)
    return result


def load_posts(config: Config) -> Loaded:
    """Read every post file under the configured content paths."""
    errors: list[ContentError] = []
    posts: list[Post] = []
    for path in _post_files(config, errors):
        try:
            result = read_file(path, config)
            posts.extend(result.posts)
            errors.extend(result.errors)
        except ContentError as exc:
            errors.append(exc)
        except Exception as exc:  # a reader bug must not stop the other posts
            log.debug("reading %s failed", path, exc_info=True)
            errors.append(ContentError(config.relative(path), None, f"could not be read: {exc!r}"))
    return Loaded(tuple(posts), tuple(errors))


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
    posts: tuple[Post, ...], *, store: StateStore, now: datetime, config: Config
) -> tuple[Site, tuple[ContentError, ...]]:
    """Give each publishable post its identity and dates; newest first.

    Must run inside ``store.transaction()``: identities minted here are
    remembered there. When two posts claim one id or URL, the one published
    first keeps it and the other is rejected, naming both files.
    """
    errors: list[ContentError] = []
    published: list[Post] = []
    ready = []
    for post in posts:
        if post.draft:
            log.info("%s: draft, not published", post.source)
        elif post.date is not None and post.date > now:
            log.info("%s: scheduled for %s, not published yet", post.source, post.date.isoformat())
        else:
            ready.append(_clean(post))
    identities = _Identities(store, now, config, {p.source for p in posts})

    def seniority(post: Post):
        record = store.recall(post.source)
        known = record.first_seen if record else None
        return (record is None, post.date or known or now, post.source)

    for post in sorted(ready, key=seniority):
        try:
            published.append(identities.assign(post))
        except ContentError as exc:
            errors.append(exc)
    published.sort(key=lambda p: (p.date, p.source), reverse=True)
    return Site(info=config.site_info, posts=tuple(published)), tuple(errors)


class _Identities:
    """Ids and URLs handed out in one build, backed by the state store."""

    def __init__(self, store: StateStore, now: datetime, config: Config, current: set[str]):
        self.store = store
        self.now = now
        self.config = config
        self.current = current
        self.ids: dict[str, str] = {}
        self.urls: dict[str, str] = {}

    def _url(self, slug: str, local: datetime) -> str:
        path = self.config.content.permalink.format(
            year=f"{local.year:04d}", month=f"{local.month:02d}", day=f"{local.day:02d}", slug=slug
        )
        return urljoin(self.config.site.url, path)

    def assign(self, post: Post) -> Post:
        store, now = self.store, self.now
        digest = content_hash(post)
        record = store.recall(post.source)
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
            while store.guid_owner(guid) not in (None, post.source) or guid in self.ids:
                guid, n = f"{base}-{n}", n + 1
        owner = self.ids.get(guid) or store.guid_owner(guid)
        if owner is not None and owner != post.source:
            if owner in self.current:
                raise ContentError(post.source, None, f"id {guid!r} is already used by {owner}")
            # The file that held this id is gone: the id passes to this post.
            store.forget(owner)
        self.ids[guid] = post.source
        self.urls[url] = post.source
        store.remember(PostRecord(post.source, guid, slug, first_seen, digest, updated))
        html = absolutize(post.content_html, url)
        return replace(post, id=guid, slug=slug, url=url, date=date, updated=updated, content_html=html)
