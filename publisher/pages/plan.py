"""The pages of a site, planned: each with its name in the pages folder, a
digest of everything its bytes are made from, and how to make them.

Pure: no disk, no clock. The same site gives the same pages with the same
bytes; a page whose digest is unchanged need not be made again.

    documents = plan_pages(site, PageOptions(per_page=10), templates)
    documents[0].name      # "2024/05/hello/index.html"
    documents[0].render()  # its bytes

The pages: one per post whose URL is under the site's (at exactly that
URL: ``2024/05/hello/`` is ``2024/05/hello/index.html``), the home page
paged (``page/2/``), one per tag and author (``tags/<slug>/``, the slug of
their feeds), the archives (``archives/``, ``YYYY/``, ``YYYY/MM/``), the
issue archive of each list (``issues/<list>/``), ``sitemap.xml``,
``robots.txt``, ``404.html`` and ``style.css``. A post whose URL is
elsewhere (an imported post, a ``url`` of its own) gets no page: it is
listed with its link.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime, tzinfo
from urllib.parse import unquote

from publisher import __version__
from publisher.model import Author, Post, Site
from publisher.pages.context import PageContext, Listing
from publisher.pages.templates import SiteTemplates
from publisher.text import distinct_slug

STYLESHEET = "style.css"
SITEMAP = "sitemap.xml"
ROBOTS = "robots.txt"
NOT_FOUND = "404.html"
# Bump when the bytes made from the same inputs change without publisher's version changing.
_DIGEST_FORMAT = 1


@dataclass(frozen=True)
class ArchivedIssue:
    """An issue sent to a list, as the issue archive shows it."""

    list_name: str
    number: int
    subject: str
    created: datetime
    url: str


@dataclass(frozen=True)
class PageOptions:
    """How pages are made (``[pages]`` and what the rest of the config says)."""

    per_page: int = 10
    lists: tuple[tuple[str, str], ...] = ()  # (name, title) of each mailing list
    subscribe: bool = True  # a subscribe form on the pages, when there are lists
    robots: bool = True  # write robots.txt (False: the content brings its own)
    issues: tuple[ArchivedIssue, ...] = ()


@dataclass(frozen=True)
class PageDocument:
    """One file of the pages folder, not yet made. ``post`` is the id of the
    post it shows (a post page), so a post that moves leaves a redirect."""

    name: str
    digest: str
    render: Callable[[], bytes]
    post: str | None = None


def page_name(site_url: str, url: str) -> str | None:
    """The file in the pages folder that serves ``url``, or None when ``url``
    is not under ``site_url`` (or names no file we could write)."""
    if not url.startswith(site_url):
        return None
    rest = url[len(site_url) :]
    if "?" in rest or "#" in rest:
        return None
    path = unquote(rest) if "%" in rest else rest
    if path == "" or path.endswith("/"):
        path += "index.html"
    segments = path.split("/")
    if any(s in ("", ".", "..") or s.startswith(".") or "\\" in s for s in segments):
        return None
    return path


class _Digests:
    """Digests of page inputs: what every page shares, then each page's own."""

    def __init__(self, common: object, fingerprint: Callable[[Post], bytes | None] | None):
        self._common = hashlib.sha256(_canonical([_DIGEST_FORMAT, __version__, common]))
        self._known = fingerprint
        self._posts: dict[int, bytes] = {}

    def of(self, *parts: object, posts: Iterable[Post] = ()) -> str:
        digest = self._common.copy()
        digest.update(_canonical(parts))
        digest.update(b"".join([self.post(post) for post in posts]))  # as one update a post
        return digest.hexdigest()

    def post(self, post: Post) -> bytes:
        found = self._posts.get(id(post))
        if found is None:
            known = self._known(post) if self._known is not None else None
            if known is not None:
                found = b"k" + known
            else:
                values = [getattr(post, name) for name in _POST_FIELDS]
                for index, value in enumerate(values):
                    if isinstance(value, str) and len(value) > 200:
                        values[index] = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
                found = hashlib.sha256(_canonical(values)).digest()
            self._posts[id(post)] = found
        return found


_POST_FIELDS = tuple(f.name for f in fields(Post))


def plan_pages(
    site: Site,
    options: PageOptions,
    templates: SiteTemplates,
    *,
    fingerprint: Callable[[Post], bytes | None] | None = None,
) -> list[PageDocument]:
    """Every page of ``site``, post pages first; a name is planned once
    (a post's page wins over an archive page of the same name)."""
    info = site.info
    context = PageContext(info, options, templates)
    # Every page shows whether there is an issue archive, not its issues:
    # a new issue changes the archive's pages only.
    shared = replace(options, issues=())
    digests = _Digests([info, shared, bool(options.issues), templates.digest], fingerprint)
    documents: dict[str, PageDocument] = {}

    def add(name: str, digest: str, render: Callable[[], bytes], post: str | None = None) -> None:
        documents.setdefault(name, PageDocument(name, digest, render, post))

    with_pages = [(post, name) for post in site.posts if post.url and (name := page_name(info.url, post.url))]
    for index, (post, name) in enumerate(with_pages):
        newer = with_pages[index - 1][0] if index > 0 else None
        older = with_pages[index + 1][0] if index + 1 < len(with_pages) else None
        neighbours = [(p.title, p.url) if p else None for p in (newer, older)]
        add(
            name,
            digests.of("post", name, neighbours, posts=[post]),
            lambda post=post, newer=newer, older=older: context.post_page(post, newer, older),
            post.id,
        )
    _listings(site, context, digests, add)
    _archives(site, context, digests, add)
    if options.issues:
        _issue_pages(context, digests, add, options)
    paged = [name for name in documents]
    add(SITEMAP, digests.of("sitemap", paged, posts=site.posts), lambda: context.sitemap(site.posts, paged))
    if options.robots:
        add(ROBOTS, digests.of("robots"), context.robots)
    add(NOT_FOUND, digests.of("404"), context.not_found)
    add(STYLESHEET, digests.of("style"), lambda: templates.source(STYLESHEET))
    return list(documents.values())


def _listings(site: Site, context: PageContext, digests: _Digests, add) -> None:
    """The home pages, and the pages of each tag and author, paged, and their indexes."""
    info = site.info
    _paged(Listing("home", "", info.title, info.description), site.posts, context, digests, add)
    tags: dict[str, tuple[str, list[Post]]] = {}
    authors: dict[str, tuple[str, list[Post]]] = {}
    slugs: dict[str, str] = {}  # a site has far fewer names than posts
    for post in site.posts:
        for tag in dict.fromkeys(post.tags):
            slug = slugs.get(tag) or slugs.setdefault(tag, distinct_slug(tag))
            tags.setdefault(slug, (tag, []))[1].append(post)
        name = (post.author or info.author).name
        slug = slugs.get(name) or slugs.setdefault(name, distinct_slug(name))
        authors.setdefault(slug, (name, []))[1].append(post)
    for kind, groups, what in (("tag", tags, "Posts tagged “{}”"), ("author", authors, "Posts by {}")):
        folder = f"{kind}s"
        for slug, (name, posts) in sorted(groups.items()):
            listing = Listing(kind, f"{folder}/{slug}/", name, what.format(name), feed_stem=f"{folder}/{slug}")
            _paged(listing, posts, context, digests, add)
        counts = [(name, f"{folder}/{slug}/", len(posts)) for slug, (name, posts) in sorted(groups.items())]
        title = "Tags" if kind == "tag" else "Authors"
        add(f"{folder}/index.html", digests.of("terms", kind, counts), lambda c=counts, t=title: context.terms(t, c))


def _paged(listing: Listing, posts: list[Post] | tuple[Post, ...], context: PageContext, digests: _Digests, add) -> None:
    per_page = context.options.per_page
    pages = max(1, -(-len(posts) // per_page))
    for number in range(1, pages + 1):
        shown = tuple(posts[(number - 1) * per_page : number * per_page])
        name = listing.page_path(number) + "index.html"
        add(
            name,
            digests.of("listing", listing, number, pages, posts=shown),
            lambda shown=shown, number=number: context.listing(listing, shown, number, pages),
        )


def _archives(site: Site, context: PageContext, digests: _Digests, add) -> None:
    """A page per month and per year of posts (in the site's time zone), and the index of them all."""
    zone: tzinfo = site.info.timezone
    months: dict[tuple[int, int], list[Post]] = defaultdict(list)
    for post in site.posts:
        if post.date is not None:
            local = post.date.astimezone(zone)
            months[(local.year, local.month)].append(post)
    years: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (year, month), posts in sorted(months.items(), reverse=True):
        years[year].append((month, len(posts)))
        listing = Listing("month", f"{year:04d}/{month:02d}/", f"{year:04d}-{month:02d}", "", month=(year, month))
        add(
            f"{year:04d}/{month:02d}/index.html",
            digests.of("month", listing, posts=posts),
            lambda listing=listing, posts=tuple(posts): context.listing(listing, posts, 1, 1),
        )
    for year, counts in years.items():
        add(f"{year:04d}/index.html", digests.of("year", year, counts), lambda y=year, c=counts: context.year(y, c))
    summary = [(year, counts) for year, counts in years.items()]
    add("archives/index.html", digests.of("archives", summary), lambda: context.archives(summary))


def _issue_pages(context: PageContext, digests: _Digests, add, options: PageOptions) -> None:
    titles = dict(options.lists)
    by_list: dict[str, list[ArchivedIssue]] = defaultdict(list)
    for issue in options.issues:
        by_list[issue.list_name].append(issue)
    groups = [(name, titles.get(name, name), tuple(issues)) for name, issues in sorted(by_list.items())]
    add("issues/index.html", digests.of("issues", groups), lambda: context.issues(groups, None))
    for group in groups:
        add(f"issues/{group[0]}/index.html", digests.of("issues", group), lambda g=group: context.issues([g], g[0]))


def _canonical(value: object) -> bytes:
    """``value`` (dataclasses, datetimes, time zones and plain data) as JSON bytes."""
    return _ENCODER.encode(value).encode("utf-8")


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Author):
        return [value.name, value.email, value.url]
    if is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, *(getattr(value, f.name) for f in fields(value))]
    if isinstance(value, tzinfo):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} has no canonical form")


_ENCODER = json.JSONEncoder(default=_plain, ensure_ascii=False, separators=(",", ":"))  # made once: json.dumps makes one a call
