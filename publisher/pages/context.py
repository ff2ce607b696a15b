"""What each page template is given, and the rendering of each kind of page.

Links between pages are paths from the host's root (``/2024/05/hello/``),
so the pages read the same through ``publisher serve`` on any address;
``<link rel="canonical">``, Open Graph and the sitemap carry absolute URLs.

    context = PageContext(site.info, options, templates)
    context.post_page(post, newer, older)   # bytes of the post's page
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
import re
from datetime import date, datetime, timezone
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from publisher.dates import format_day
from publisher.model import Post, SiteInfo
from publisher.text import distinct_slug, summarize, uri_path

if TYPE_CHECKING:
    from markupsafe import Markup

    from publisher.pages.plan import ArchivedIssue, PageOptions
    from publisher.pages.templates import SiteTemplates

_FEEDS = (("rss.xml", "application/rss+xml", "RSS"), ("atom.xml", "application/atom+xml", "Atom"), ("feed.json", "application/feed+json", "JSON Feed"))


@dataclass(frozen=True)
class Listing:
    """A paged list of posts: the home page, a tag's, an author's, a month's."""

    kind: str  # home, tag, author, month
    path: str  # under the site's URL: "" for home, "tags/gaza/"
    title: str
    description: str
    feed_stem: str | None = None  # "tags/gaza": its feeds are tags/gaza.xml, …
    month: tuple[int, int] | None = None

    def page_path(self, number: int) -> str:
        return self.path if number == 1 else f"{self.path}page/{number}/"


class PageContext:
    """Renders each kind of page of one site."""

    def __init__(self, info: SiteInfo, options: PageOptions, templates: SiteTemplates):
        self.info = info
        self.options = options
        self.templates = templates
        self.root = urlsplit(info.url).path or "/"
        self._terms: dict[tuple[str, str], str] = {}
        self._summaries: dict[int, bytes] = {}  # by id(post): the site's posts live as long as this context
        self._common = {
            "site": info,
            "href": self.href,
            "link": self.link,
            "local_date": self.local_date,
            "tag_href": lambda tag: self._term_href("tags", tag),
            "author_href": lambda name: self._term_href("authors", name),
            "stylesheet": self.href("style.css"),
            "main_feeds": self.feeds(""),
            "subscribe": self._subscribe(),
            "has_issues": bool(options.issues),
        }
        self._common["summary_of"] = self.summary_of

    # -- links -----------------------------------------------------------------

    def href(self, path: str) -> str:
        """The link to ``path`` (under the site's URL) from any page."""
        return self.root + uri_path(path)

    def _term_href(self, folder: str, name: str) -> str:
        """The link to a tag's or author's page (a page links to a few names, a site has few)."""
        key = (folder, name)
        found = self._terms.get(key)
        if found is None:
            found = self._terms[key] = self.href(f"{folder}/{distinct_slug(name)}/")
        return found

    def link(self, url: str) -> str:
        """The link to ``url``: a path from the root when it is under the site's URL."""
        if url.startswith(self.info.url):
            return self.root + url[len(self.info.url) :]
        return url

    def canonical(self, path: str) -> str:
        return self.info.url + uri_path(path)

    def feeds(self, stem: str, title: str | None = None) -> list[dict[str, str]]:
        """The feeds of a listing (``stem`` "" for the main feeds) for autodiscovery."""
        found = []
        for name, kind, label in _FEEDS:
            file = name if not stem else f"{stem}{'.atom.xml' if label == 'Atom' else '.json' if label == 'JSON Feed' else '.xml'}"
            found.append(
                {
                    "href": self.link(self.info.feeds_url + uri_path(file)),
                    "type": kind,
                    "title": f"{title or self.info.title} ({label})",
                    "label": label,
                }
            )
        return found

    def _subscribe(self) -> dict[str, Any] | None:
        if not (self.options.subscribe and self.options.lists):
            return None
        return {"action": self.href("subscribe"), "lists": [{"name": n, "title": t} for n, t in self.options.lists]}

    def local_date(self, moment: datetime) -> str:
        """The day of ``moment`` in the site's time zone and language ("3 May 2024")."""
        return _day(moment.astimezone(self.info.timezone).date(), self.info.language)

    # -- pages -----------------------------------------------------------------

    def render(self, template: str, **values: Any) -> bytes:
        return self.templates.render(template, **self._common, **values)

    def summary_of(self, post: Post) -> Markup:
        """A post as the lists of posts show it (``summary.html``): made once,
        however many lists show it."""
        found = self._summaries.get(id(post))
        if found is None:
            markup = self.templates.fragment("summary.html", **self._common, post=post)
            # Kept as UTF-8: a text with one emoji takes four bytes a character as a str.
            self._summaries[id(post)] = markup.encode("utf-8")
            return markup
        return self.templates.markup(found.decode("utf-8"))

    def post_page(self, post: Post, newer: Post | None, older: Post | None) -> bytes:
        author = post.author or self.info.author
        description = post.summary or summarize(_text_of(post), 200)
        return self.render(
            "post.html",
            post=post,
            author=author,
            canonical=post.url,
            description=description,
            image=post.image,
            newer=newer,
            older=older,
            feeds=self.feeds(""),
        )

    def listing(self, listing: Listing, posts: tuple[Post, ...], number: int, pages: int) -> bytes:
        path = listing.page_path(number)
        return self.render(
            "list.html",
            listing=listing,
            posts=posts,
            number=number,
            pages=pages,
            canonical=self.canonical(path),
            newer=self.href(listing.page_path(number - 1)) if number > 1 else None,
            older=self.href(listing.page_path(number + 1)) if number < pages else None,
            feeds=self.feeds(listing.feed_stem, f"{self.info.title}: {listing.title}") if listing.feed_stem else self.feeds(""),
            description=listing.description or self.info.description,
        )

    def terms(self, title: str, counts: list[tuple[str, str, int]]) -> bytes:
        kind = "tags" if title == "Tags" else "authors"
        return self.render("terms.html", title=title, terms=counts, canonical=self.canonical(f"{kind}/"))

    def year(self, year: int, counts: list[tuple[int, int]]) -> bytes:
        return self.render("archives.html", title=f"{year:04d}", years=[(year, counts)], canonical=self.canonical(f"{year:04d}/"))

    def archives(self, summary: list[tuple[int, list[tuple[int, int]]]]) -> bytes:
        return self.render("archives.html", title="Archives", years=summary, canonical=self.canonical("archives/"))

    def issues(self, groups: list[tuple[str, str, tuple[ArchivedIssue, ...]]], list_name: str | None) -> bytes:
        path = f"issues/{list_name}/" if list_name else "issues/"
        title = f"{groups[0][1]}: issues" if list_name else "Newsletter archive"
        return self.render("issues.html", title=title, groups=groups, canonical=self.canonical(path))

    def sitemap(self, posts: tuple[Post, ...], names: list[str]) -> bytes:
        from publisher.pages.plan import page_name

        dated: dict[str, datetime | None] = {}
        for post in posts:
            if post.url and page_name(self.info.url, post.url):
                dated[post.url] = post.updated or post.date
        urls = [(url, moment) for url, moment in dated.items()]
        listed = set(dated)
        for name in names:
            url = self.canonical(name[: -len("index.html")] if name.endswith("index.html") else name)
            if url not in listed and name.endswith(".html") and name != "404.html":
                urls.append((url, None))
        return self.render("sitemap.xml", urls=urls)

    def robots(self) -> bytes:
        return self.render("robots.txt", sitemap=self.canonical("sitemap.xml"))

    def not_found(self) -> bytes:
        return self.render("404.html", canonical=None)

    def redirect(self, target: str) -> bytes:
        return self.render("redirect.html", target=target, canonical=target)


@functools.lru_cache(maxsize=4096)
def _day(day: date, language: str) -> str:
    # Babel is slow for a date: a site's posts share a few thousand days.
    return format_day(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc), timezone.utc, language)


def _text_of(post: Post) -> str:
    """A post's text without its markup, for its description."""
    return unescape(re.sub(r"<[^>]+>", " ", post.content_html))
