"""Feeds: a ``Site`` becomes RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes.

Pure: no clock, no disk. The same site gives the same bytes, so an
unchanged rebuild rewrites nothing; each feed's own date is its newest
post's. feedgen builds RSS and Atom (entries appended in order, every date
set explicitly: its defaults are "now" and prepend); JSON Feed is written
from the same model.

Besides the main feeds: one feed per tag (``tags/<slug>.xml``,
``.atom.xml``, ``.json``) and per author (``authors/…``), a comments feed
(``comments.xml``) when posts have comments, and RFC 5005 archives
(``archive/atom-N.xml``, ``archive/rss-N.xml``) when there are more posts
than a feed holds. A tag's or author's slug is ``distinct_slug``'s: two
names share a feed only when they are spellings of one ("Gaza", "gaza";
never "C++" and "C#"), and a name keeps its slug whatever other names
exist. It may be Unicode: the file is named so (``tags/война.xml``), the
URLs in the feeds are percent-encoded (``tags/%D0%B2%D0%BE%D0%B9%D0%BD%D0%B0.xml``).

    files = build_feeds(site, FeedOptions(items=20))
    files["rss.xml"], files["tags/hamas.atom.xml"]   # bytes

``plan_feeds`` gives the same files unmade, each with a digest of what its
bytes are made from, so a build can skip serialising those it wrote before.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timezone, tzinfo
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher import __version__
from publisher.model import Author, Comment, Enclosure, Post, Site
from publisher.text import distinct_slug, summarize, uri_path, xml_safe

RSS = "rss.xml"
ATOM = "atom.xml"
JSON_FEED = "feed.json"
COMMENTS = "comments.xml"
STYLESHEET = "feed.xsl"
MANAGED_FOLDERS = ("tags", "authors", "archive")
GENERATOR = "publisher"
GENERATOR_URI = "https://pypi.org/project/publisher/"

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
SLASH_NS = "http://purl.org/rss/1.0/modules/slash/"
WFW_NS = "http://wellformedweb.org/CommentAPI/"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class FeedOptions:
    """How feeds are written (from ``[feeds]`` in the config)."""

    items: int = 20
    full_content: bool = True
    hub: str | None = None
    stylesheet: bool = False


@dataclass(frozen=True)
class _Links:
    """Links a feed document carries besides self and alternate."""

    prev_archive: str | None = None
    next_archive: str | None = None
    current: str | None = None
    archive: bool = False


@dataclass(frozen=True)
class _Spec:
    """One feed: which posts, under which name, with which title."""

    stem: str  # "" for the main feeds, "tags/hamas" for a tag's
    title: str
    description: str
    posts: tuple[Post, ...]
    links: _Links = field(default_factory=_Links)


# -- feedgen extensions: the namespaces feedgen itself does not write ---------


class _FeedExtension(BaseExtension):
    """RFC 5005 archive links and WebSub hub links for RSS; fh:archive for both."""

    def __init__(self) -> None:
        self.rss_links: list[tuple[str, str]] = []
        self.archive = False
        self.comment_counts = False

    def extend_ns(self) -> dict[str, str]:
        namespaces = {}
        if self.archive:
            namespaces["fh"] = HISTORY_NS
        if self.comment_counts:
            namespaces.update(slash=SLASH_NS, wfw=WFW_NS)
        return namespaces

    def extend_rss(self, feed):
        channel = feed[0]
        # After the self link feedgen wrote, before the items.
        position = next(i for i, el in enumerate(channel) if el.tag == f"{{{ATOM_NS}}}link") + 1
        for rel, href in self.rss_links:
            channel.insert(position, etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel))
            position += 1
        if self.archive:
            channel.insert(position, etree.Element(f"{{{HISTORY_NS}}}archive"))
        return feed

    def extend_atom(self, feed):
        if self.archive:
            first_entry = next((i for i, el in enumerate(feed) if el.tag == f"{{{ATOM_NS}}}entry"), len(feed))
            feed.insert(first_entry, etree.Element(f"{{{HISTORY_NS}}}archive"))
        return feed


class _EntryExtension(BaseEntryExtension):
    """slash:comments and wfw:commentRss on RSS items, as WordPress writes
    them; enclosures (feedgen's Atom links lose their rel and type)."""

    def __init__(self) -> None:
        self.count: int | None = None
        self.comments_feed: str | None = None
        self.enclosures: tuple[Enclosure, ...] = ()

    def extend_rss(self, entry):
        if self.comments_feed:
            etree.SubElement(entry, f"{{{WFW_NS}}}commentRss").text = self.comments_feed
        if self.count is not None:
            etree.SubElement(entry, f"{{{SLASH_NS}}}comments").text = str(self.count)
        if self.enclosures:  # RSS 2.0 has room for one: the first
            first = self.enclosures[0]
            etree.SubElement(entry, "enclosure", url=first.url, length=str(first.length), type=first.type)
        return entry

    def extend_atom(self, entry):
        for enclosure in self.enclosures:
            # feedgen writes Atom elements without a namespace (the root declares it): so does this.
            link = etree.SubElement(entry, "link", rel="enclosure", href=enclosure.url, type=enclosure.type)
            if enclosure.length:
                link.set("length", str(enclosure.length))
        return entry


# -- building ------------------------------------------------------------------


def _updated(posts: tuple[Post, ...]) -> datetime:
    return max((p.updated or p.date or _EPOCH for p in posts), default=_EPOCH)


def _author(post: Post, site: Site) -> Author:
    return post.author or site.info.author


def _person(author: Author) -> dict[str, str]:
    person = {"name": xml_safe(author.name)}
    if author.email:
        person["email"] = author.email
    return person


def _url(site: Site, name: str) -> str:
    """The URL of the feed file ``name``: a tag's or author's slug may be
    Unicode ("tags/война.xml" on disk), its URL is percent-encoded."""
    return site.info.feeds_url + uri_path(name)


def _generator(site: Site, spec: _Spec, name: str, media_type: str, options: FeedOptions) -> FeedGenerator:
    info = site.info
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.register_extension("publisher", _FeedExtension, _EntryExtension)
    fg.id(_url(site, name))
    fg.title(xml_safe(spec.title))
    fg.subtitle(xml_safe(spec.description) or xml_safe(spec.title))
    # feedgen gives RSS's <link> the last link set: the site, not the feed.
    fg.link(href=_url(site, name), rel="self", type=media_type)
    links = spec.links
    extra = [("hub", options.hub)] if options.hub else []
    extra += [
        (rel, href)
        for rel, href in (
            ("current", links.current),
            ("prev-archive", links.prev_archive),
            ("next-archive", links.next_archive),
        )
        if href
    ]
    for rel, href in extra:
        fg.link(href=href, rel=rel)
    fg.link(href=info.url, rel="alternate", type="text/html")
    fg.publisher.rss_links = extra
    fg.publisher.archive = links.archive
    fg.language(info.language)
    fg.author(_person(info.author))
    fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    fg.docs("https://www.rssboard.org/rss-specification")
    fg.updated(_updated(spec.posts))
    return fg


def _add_entries(
    fg: FeedGenerator, site: Site, spec: _Spec, options: FeedOptions, comments: bool, entries: _Entries | None = None
) -> None:
    for post in spec.posts:
        if entries is not None:
            entries.add(fg, post, comments)
            continue
        _fill(fg.add_entry(order="append"), post, site, options, comments)


def _fill(fe: FeedEntry, post: Post, site: Site, options: FeedOptions, comments: bool) -> None:
    author = _author(post, site)
    fe.id(post.id)
    fe.guid(post.id, permalink=post.id == post.url)
    fe.title(post.title)
    fe.link(href=post.url, rel="alternate")
    fe.publisher.enclosures = post.enclosures
    fe.published(post.date)
    fe.updated(post.updated or post.date)
    fe.author(_person(author))
    fe.dc.dc_creator(xml_safe(author.name))
    for tag in post.tags:
        fe.category(term=xml_safe(tag))
    if post.summary:
        fe.summary(post.summary)
        fe.description(post.summary)
    if options.full_content:
        fe.content(post.content_html, type="html")
    if comments and post.comments:
        fe.comments(post.url + "#comments")
        fe.publisher.count = len(post.comments)
        fe.publisher.comments_feed = _url(site, COMMENTS)


class _ReusedEntry(FeedEntry):
    """An entry whose RSS and Atom elements are built once and copied into
    each feed it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self._elements: dict[tuple[str, bool], etree._Element] = {}

    def rss_entry(self, extensions: bool = True) -> etree._Element:
        return self._element("rss", extensions)

    def atom_entry(self, extensions: bool = True) -> etree._Element:
        return self._element("atom", extensions)

    def _element(self, kind: str, extensions: bool) -> etree._Element:
        made = self._elements.get((kind, extensions))
        if made is None:
            build = FeedEntry.rss_entry if kind == "rss" else FeedEntry.atom_entry
            made = self._elements[(kind, extensions)] = build(self, extensions=extensions)
        return copy.deepcopy(made)


class _Entries:
    """The entries of the posts the newest feeds show (the site's, each
    tag's, each author's: the same few posts again and again), each made
    once a build. Not for the archives: each post is in one of them, once."""

    def __init__(self, site: Site, options: FeedOptions) -> None:
        self.site, self.options = site, options
        self._made: dict[tuple[int, bool], tuple[Post, _ReusedEntry]] = {}  # the post kept: its id stays unique

    def add(self, fg: FeedGenerator, post: Post, comments: bool) -> None:
        made = self._made.get((id(post), comments))
        if made is not None:
            fg.add_entry(made[1], order="append")
            return
        entry = _ReusedEntry()
        fg.add_entry(entry, order="append")  # which loads the feed's extensions into it
        _fill(entry, post, self.site, self.options, comments)
        self._made[(id(post), comments)] = (post, entry)


def _stylesheet(data: bytes, site: Site, options: FeedOptions) -> bytes:
    if not options.stylesheet:
        return data
    declaration, _, rest = data.partition(b"\n")
    # A path from the root: a browser applies only a stylesheet of the
    # feed's own origin, whatever address the feed is read at.
    href = urlsplit(_url(site, STYLESHEET)).path.encode()
    return declaration + b'\n<?xml-stylesheet type="text/xsl" href="' + href + b'"?>\n' + rest


def _rss(site: Site, spec: _Spec, name: str, options: FeedOptions, entries: _Entries | None = None) -> bytes:
    fg = _generator(site, spec, name, "application/rss+xml", options)
    fg.publisher.comment_counts = any(p.comments for p in spec.posts)
    _add_entries(fg, site, spec, options, True, entries)
    return _stylesheet(fg.rss_str(pretty=True), site, options)


def _atom(site: Site, spec: _Spec, name: str, options: FeedOptions, entries: _Entries | None = None) -> bytes:
    fg = _generator(site, spec, name, "application/atom+xml", options)
    _add_entries(fg, site, spec, options, False, entries)
    return _stylesheet(fg.atom_str(pretty=True), site, options)


def _json_author(author: Author) -> dict[str, str]:
    data = {"name": author.name}
    if author.url:
        data["url"] = author.url
    return data


def _attachment(enclosure: Enclosure) -> dict[str, object]:
    attachment: dict[str, object] = {"url": enclosure.url, "mime_type": enclosure.type}
    if enclosure.length:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def _json(site: Site, spec: _Spec, name: str, options: FeedOptions) -> bytes:
    info = site.info
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.title,
        "home_page_url": info.url,
        "feed_url": _url(site, name),
    }
    if spec.description:
        feed["description"] = spec.description
    feed["language"] = info.language
    feed["authors"] = [_json_author(info.author)]
    if options.hub:
        feed["hubs"] = [{"type": "WebSub", "url": options.hub}]
    entries = []
    for post in spec.posts:
        item: dict[str, object] = {"id": post.id, "url": post.url, "title": post.title}
        if options.full_content:
            item["content_html"] = post.content_html
        else:
            item["content_text"] = post.summary or post.title
        if post.summary:
            item["summary"] = post.summary
        if post.image:
            item["image"] = post.image
        item["date_published"] = post.date.isoformat()
        item["date_modified"] = (post.updated or post.date).isoformat()
        item["authors"] = [_json_author(_author(post, site))]
        if post.tags:
            item["tags"] = list(post.tags)
        if post.enclosures:
            item["attachments"] = [_attachment(e) for e in post.enclosures]
        entries.append(item)
    feed["items"] = entries
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _three(site: Site, spec: _Spec, options: FeedOptions, plan: _Plan, rss_spec: _Spec | None = None) -> None:
    """RSS, Atom and JSON of one spec: ``rss.xml`` or ``<stem>.xml`` and so on."""
    if spec.stem:
        names = (f"{spec.stem}.xml", f"{spec.stem}.atom.xml", f"{spec.stem}.json")
    else:
        names = (RSS, ATOM, JSON_FEED)
    rss_spec = rss_spec or spec
    plan.add(names[0], "rss", rss_spec, lambda: _rss(site, rss_spec, names[0], options, plan.entries))
    plan.add(names[1], "atom", spec, lambda: _atom(site, spec, names[1], options, plan.entries))
    plan.add(names[2], "json", spec, lambda: _json(site, spec, names[2], options))


def _grouped(site: Site, key) -> dict[str, tuple[str, tuple[Post, ...]]]:
    """slug -> (display name, posts newest first) for every value of ``key``.

    Slugs are ``distinct_slug``'s: names share one only when they are one
    name spelled differently ("Gaza", "gaza"); the feed is titled with the
    spelling of its newest post.
    """
    groups: dict[str, list[Post]] = defaultdict(list)
    names: dict[str, str] = {}
    slugs: dict[str, str] = {}  # the same few tags again and again
    for post in site.posts:
        values = key(post)
        if len(values) == 1:  # most posts: one author, one tag
            value = values[0]
            slug = slugs.get(value) or slugs.setdefault(value, distinct_slug(value))
            names.setdefault(slug, value)
            groups[slug].append(post)
            continue
        # Two values of one post may share a slug ("Gaza" and "gaza"): list it once.
        for slug, value in {slugs.get(v) or slugs.setdefault(v, distinct_slug(v)): v for v in reversed(values)}.items():
            names.setdefault(slug, value)
            groups[slug].append(post)
    return {slug: (names[slug], tuple(posts)) for slug, posts in sorted(groups.items())}


def _archives(site: Site, options: FeedOptions, plan: _Plan) -> None:
    """RFC 5005 archives: full pages of the oldest posts, each fixed once full."""
    oldest_first = site.posts[::-1]
    size = options.items
    pages = [oldest_first[i : i + size] for i in range(0, len(oldest_first), size)]
    pages = [page for page in pages if len(page) == size]
    for number, page in enumerate(pages, 1):
        for kind, current in (("atom", ATOM), ("rss", RSS)):
            name = f"archive/{kind}-{number}.xml"
            links = _Links(
                current=_url(site, current),
                prev_archive=_url(site, f"archive/{kind}-{number - 1}.xml") if number > 1 else None,
                next_archive=_url(site, f"archive/{kind}-{number + 1}.xml") if number < len(pages) else None,
                archive=True,
            )
            spec = _Spec(
                stem=name,
                title=f"{site.info.title} (archive {number})",
                description=site.info.description,
                posts=page[::-1],
                links=links,
            )
            build = _atom if kind == "atom" else _rss
            plan.add(name, kind, spec, lambda build=build, spec=spec, name=name: build(site, spec, name, options))


def _comments_feed(site: Site, options: FeedOptions) -> bytes | None:
    found: list[tuple[datetime, Post, Comment]] = [
        (comment.date or post.updated or post.date, post, comment)
        for post in site.posts
        for comment in post.comments
    ]
    if not found:
        return None
    found.sort(key=lambda t: (t[0], t[1].source, t[2].number), reverse=True)
    found = found[: options.items]
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.title(xml_safe(f"Comments on {site.info.title}"))
    fg.description(xml_safe(f"The newest comments on {site.info.title}"))
    fg.link(href=_url(site, COMMENTS), rel="self", type="application/rss+xml")
    fg.link(href=site.info.url, rel="alternate", type="text/html")
    fg.language(site.info.language)
    fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    fg.docs("https://www.rssboard.org/rss-specification")
    fg.updated(found[0][0])
    for date, post, comment in found:
        anchor = f"comment-{comment.id or comment.number}"
        fe = fg.add_entry(order="append")
        fe.title(xml_safe(f"Comment on {post.title} by {comment.author}"))
        fe.link(href=f"{post.url}#{anchor}")
        fe.guid(f"{post.id}#{anchor}", permalink=False)
        fe.dc.dc_creator(xml_safe(comment.author))
        fe.published(date)
        text = "\n\n".join(comment.paragraphs)
        fe.description(xml_safe(summarize(text)))
        fe.content("".join(f"<p>{_escape(p)}</p>" for p in comment.paragraphs), type="html")
    return _stylesheet(fg.rss_str(pretty=True), site, options)


def _escape(text: str) -> str:
    """A comment's paragraph as HTML text: ``&``, ``<`` and ``>`` escaped, quotes
    left as they are (markupsafe would write them as ``&#39;`` and ``&#34;``,
    changing the bytes of every feed with a quoted comment)."""
    return xml_escape(xml_safe(text))


def build_feeds(site: Site, options: FeedOptions | None = None) -> dict[str, bytes]:
    """Every feed of ``site``: path under the feeds folder -> bytes."""
    return {document.name: document.render() for document in plan_feeds(site, options)}


@dataclass(frozen=True)
class FeedDocument:
    """One feed file of a site, not yet made.

    ``digest`` hashes everything its bytes are made from (the posts it
    holds, their every field, the feed's title and links, the options, the
    site, publisher's version): equal digests, equal bytes. ``render()``
    makes the bytes.
    """

    name: str
    digest: str
    render: Callable[[], bytes]


def plan_feeds(
    site: Site,
    options: FeedOptions | None = None,
    *,
    fingerprint: Callable[[Post], bytes | None] | None = None,
) -> list[FeedDocument]:
    """Every feed of ``site`` as a ``FeedDocument``, in ``build_feeds``'s order.

    Cheap: nothing is serialised until ``render()``, so a caller that kept
    the digests of the files it wrote can skip the unchanged ones.
    ``fingerprint`` may give a post's fingerprint (bytes that change
    whenever any of its fields does) when the caller knows one cheaper than
    hashing the post; None falls back to hashing every field.
    """
    options = options or FeedOptions()
    info = site.info
    plan = _Plan(site, options, fingerprint)
    newest = site.posts[: options.items]
    has_archives = len(site.posts) > options.items
    main_links = _Links()
    rss_spec = None
    if has_archives:
        complete = len(site.posts) // options.items
        main_links = _Links(prev_archive=_url(site, f"archive/atom-{complete}.xml"))
        # The RSS subscription document points at the RSS archives.
        rss_links = _Links(prev_archive=_url(site, f"archive/rss-{complete}.xml"))
        rss_spec = _Spec("", info.title, info.description, newest, rss_links)
    _three(site, _Spec("", info.title, info.description, newest, main_links), options, plan, rss_spec)
    if has_archives:
        _archives(site, options, plan)
    for slug, (tag, posts) in _grouped(site, lambda p: p.tags).items():
        spec = _Spec(f"tags/{slug}", f"{info.title}: {tag}", f"Posts tagged “{tag}”", posts[: options.items])
        _three(site, spec, options, plan)
    for slug, (name, posts) in _grouped(site, lambda p: (_author(p, site).name,)).items():
        spec = _Spec(f"authors/{slug}", f"{info.title}: {name}", f"Posts by {name}", posts[: options.items])
        _three(site, spec, options, plan)
    commented = tuple(p for p in site.posts if p.comments)
    if commented:
        spec = _Spec(COMMENTS, "comments", "", commented)
        plan.add(COMMENTS, "comments", spec, lambda: _comments_feed(site, options) or b"")
    return plan.documents


# Bump when the bytes made from the same inputs change without publisher's
# version changing.
_DIGEST_FORMAT = 2


class _Plan:
    """The documents of one site, with the digests of their inputs."""

    def __init__(self, site: Site, options: FeedOptions, known: Callable[[Post], bytes | None] | None):
        self.documents: list[FeedDocument] = []
        self.entries = _Entries(site, options)
        self._known = known
        self._fingerprints: dict[int, bytes] = {}
        self._common = _canonical([_DIGEST_FORMAT, __version__, site.info, options])

    def add(self, name: str, kind: str, spec: _Spec, render: Callable[[], bytes]) -> None:
        digest = hashlib.sha256(self._common)
        digest.update(_canonical([name, kind, spec.stem, spec.title, spec.description, spec.links]))
        digest.update(b"".join([self._fingerprint(post) for post in spec.posts]))  # as one update a post
        self.documents.append(FeedDocument(name, digest.hexdigest(), render))

    def _fingerprint(self, post: Post) -> bytes:
        found = self._fingerprints.get(id(post))
        if found is None and self._known is not None:
            found = self._known(post)
            if found is not None:
                self._fingerprints[id(post)] = b"k" + found
                return b"k" + found
        if found is None:
            # Every field, so that nothing a feed shows can change unseen;
            # dates and the author turned plain here, which is faster than
            # through json's fallback.
            values = [getattr(post, name) for name in _POST_FIELDS]
            for index, value in enumerate(values):
                if isinstance(value, datetime):
                    values[index] = value.isoformat()
                elif isinstance(value, Author):
                    values[index] = [value.name, value.email, value.url]
                elif isinstance(value, str) and len(value) > 200:
                    # Long text (the HTML) hashed apart: faster than through json.
                    values[index] = ["sha256", hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()]
            found = self._fingerprints[id(post)] = hashlib.sha256(_canonical(values)).digest()
        return found


_POST_FIELDS = tuple(f.name for f in fields(Post))


def _canonical(value: object) -> bytes:
    """``value`` (dataclasses, datetimes, time zones and plain data) as JSON bytes."""
    return _ENCODER.encode(value).encode("utf-8")


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, *(getattr(value, f.name) for f in fields(value))]
    if isinstance(value, tzinfo):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no canonical form")


_ENCODER = json.JSONEncoder(default=_plain, ensure_ascii=False, separators=(",", ":"))  # made once: json.dumps makes one a call
