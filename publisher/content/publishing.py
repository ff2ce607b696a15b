"""Publishing: drafts and future posts held back, and each post's
identity, dates, slug and URL taken from the state store, so a post's guid
never changes once published.

    loaded = load_posts(config)
    with store.transaction():
        site, errors = publish(loaded.posts, store=store.posts, now=now, config=config)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from publisher.config import Config
from publisher.errors import ContentError
from publisher.model import Post, Site
from publisher.content.load import _clean, permalink_path
from publisher.content.references import resolve_references
from publisher.content.sanitize import absolutize
from publisher.state import PostRecord, PostRepository
from publisher.text import iri_id, slugify

if TYPE_CHECKING:
    from publisher.content.cache import PostCache

log = logging.getLogger("publisher.content")

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



@dataclass
class IdentityNotes:
    """What ``publish`` tells the build about identities: posts whose file
    moved and kept their identity (``renamed``: old source, new source), and
    moves it would not guess (``ambiguous``: one line naming every file)."""

    renamed: list[tuple[str, str]] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


def publish(
    posts: tuple[Post, ...],
    *,
    store: PostRepository,
    now: datetime,
    config: Config,
    cache: PostCache | None = None,
    notes: IdentityNotes | None = None,
) -> tuple[Site, tuple[ContentError, ...]]:
    """Give each publishable post its identity and dates; newest first.

    Must run inside ``store.transaction()``: identities minted here are
    remembered there. When two posts claim one id or URL, the one published
    first keeps it and the other is rejected, naming both files. A post
    from a file the store has not seen takes over the identity of one that
    is gone when it is recognisably the same post (``_Identities.moves``);
    ``notes`` is filled with those of this call. Posts that ``cache`` handed out are already
    clean, and their resolved HTML is taken from it when their URL is
    unchanged.
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
        elif post.expires is not None and post.expires <= now:
            log.info("%s: expired %s, no longer published", post.source, post.expires.isoformat())
        else:
            ready.append(clean(post))
    identities = _Identities(store, now, config, {p.source for p in posts}, cache)
    identities.moves(ready, notes if notes is not None else IdentityNotes())

    def seniority(post: Post):
        record = identities.records.get(post.source) or identities.inherited.get(post.source)
        known = record.first_seen if record else None
        return (record is None, post.date or known or now, post.source)

    for post in sorted(ready, key=seniority):
        try:
            published.append(identities.assign(post))
        except ContentError as exc:
            errors.append(exc)
    published.sort(key=lambda p: (p.date, p.source), reverse=True)
    published = resolve_references(published, config.site.url)
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
        self.inherited: dict[str, PostRecord] = {}  # new source -> the record of the file it moved from
        # The store's records, read once and kept in step with what this
        # build remembers and forgets (a query per post adds up).
        self.records = store.records()
        self.guids = {record.guid: source for source, record in self.records.items()}
        base = config.site.url
        self._base = base if urljoin(base, "a/b-c/") == base + "a/b-c/" else None

    def _url(self, slug: str, local: datetime) -> str:
        path = permalink_path(self.config, slug, local)
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

    def _hash(self, post: Post) -> str:
        return self.cache.content_hash(post) if self.cache is not None else content_hash(post)

    def moves(self, posts: list[Post], notes: IdentityNotes) -> None:
        """Find the posts whose file moved (renamed, another folder, another
        extension): a post from a file the store has not seen inherits the
        record of a vanished file (one the store remembers and this build did
        not read) when it has the same explicit id, else the same date and
        slug, else the same content. A move is taken only when the post and
        the vanished file match each other alone; otherwise each post is new
        and ``notes.ambiguous`` names the files. ``notes`` is emptied first:
        it tells of this working-out only."""
        notes.renamed.clear()
        notes.ambiguous.clear()
        vanished = [r for source, r in self.records.items() if source not in self.current]
        if not vanished:
            return
        claims: dict[str, list[str]] = {}  # vanished source -> new sources matching it
        matches: dict[str, list[PostRecord]] = {}
        for post in posts:
            if post.source not in self.records:
                found = self._matches(post, vanished)
                if found:
                    matches[post.source] = found
                    for record in found:
                        claims.setdefault(record.source, []).append(post.source)
        for new, found in matches.items():
            if len(found) == 1 and len(claims[found[0].source]) == 1:
                self.inherited[new] = found[0]
                notes.renamed.append((found[0].source, new))
                log.info("%s: the post of %s, moved; it keeps its id %s", new, found[0].source, found[0].guid)
        for old, news in claims.items():
            if len(news) > 1:
                notes.ambiguous.append(
                    f"{', '.join(sorted(news))}: each looks like {old} (gone), so none takes its id and each is new; "
                    "give the right one its id (front matter `id`) to keep it"
                )
        for new, found in matches.items():
            if len(found) > 1:
                notes.ambiguous.append(
                    f"{new}: looks like each of {', '.join(r.source for r in found)} (gone), so it takes "
                    "no id of theirs and is new"
                )

    def _matches(self, post: Post, vanished: list[PostRecord]) -> list[PostRecord]:
        if post.id:
            guid = iri_id(post.id, f"{self.config.site.url}#{post.id}")
            return [r for r in vanished if r.guid == guid]
        if post.date is not None:
            slug = post.slug or slugify(post.title)
            found = [r for r in vanished if r.date is not None and r.date == post.date and r.slug == slug]
            if found:
                return found
        digest = self._hash(post)
        return [r for r in vanished if r.content_hash == digest]

    def assign(self, post: Post) -> Post:
        now, cache = self.now, self.cache
        digest = self._hash(post)
        record = self.records.get(post.source) or self.inherited.get(post.source)
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

        if post.slug and not post.derived_slug:
            slug = post.slug
        else:  # made here or from a file name: the one first published stays
            slug = record.slug if record else post.slug or slugify(post.title)
        url = post.url or self._url(slug, local)
        if not post.url and (not post.slug or post.derived_slug) and record is None:
            # A slug of our own making (or of a file's name): step aside from one already taken.
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
        own = post.date.astimezone(timezone.utc) if post.date else None
        if record is None or record.source != post.source or (
            record.guid, record.slug, record.content_hash, record.updated, record.date
        ) != (guid, slug, digest, updated, own):
            self._remember(PostRecord(post.source, guid, slug, first_seen, digest, updated, own))
        html = cache.absolutize(post, url) if cache is not None else absolutize(post.content_html, url, cleaned=True)
        # A relative image is resolved as the links of its HTML are: feeds and emails are read elsewhere.
        image = urljoin(url, post.image) if post.image else post.image
        result = _published_copy(
            post, id=guid, slug=slug, url=url, date=date, updated=updated, content_html=html, image=image
        )
        if cache is not None:
            cache.published(post, result)
        return result
