"""Feeds: a ``Site`` becomes RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes.

Pure: no clock, no disk. The same site gives the same bytes, so an
unchanged rebuild rewrites nothing; the feed's own date is its newest
post's. feedgen builds RSS and Atom (entries appended in order, every date
set explicitly: its defaults are "now" and prepend); JSON Feed is written
from the same model.

    files = build_feeds(site, items=20, full_content=True)
    files["rss.xml"]   # bytes
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from feedgen.feed import FeedGenerator

from publisher import __version__
from publisher.model import Author, Post, Site
from publisher.text import xml_safe

RSS = "rss.xml"
ATOM = "atom.xml"
JSON_FEED = "feed.json"
GENERATOR = "publisher"
GENERATOR_URI = "https://pypi.org/project/publisher/"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _feed_updated(posts: tuple[Post, ...]) -> datetime:
    return max((p.updated or p.date or _EPOCH for p in posts), default=_EPOCH)


def _author(post: Post, site: Site) -> Author:
    return post.author or site.info.author


def _generator(site: Site, posts: tuple[Post, ...], self_url: str, media_type: str) -> FeedGenerator:
    info = site.info
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(info.url)
    fg.title(xml_safe(info.title))
    fg.subtitle(xml_safe(info.description) or xml_safe(info.title))
    # feedgen gives RSS's <link> the last link set: the site, not the feed.
    fg.link(href=self_url, rel="self", type=media_type)
    fg.link(href=info.url, rel="alternate", type="text/html")
    fg.language(info.language)
    fg.author({"name": xml_safe(info.author.name), **({"email": info.author.email} if info.author.email else {})})
    fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    fg.docs("https://www.rssboard.org/rss-specification")
    fg.updated(_feed_updated(posts))
    return fg


def _add_entries(fg: FeedGenerator, site: Site, posts: tuple[Post, ...], full_content: bool) -> None:
    for post in posts:
        author = _author(post, site)
        fe = fg.add_entry(order="append")
        fe.id(post.id)
        fe.guid(post.id, permalink=post.id == post.url)
        fe.title(post.title)
        fe.link(href=post.url, rel="alternate")
        fe.published(post.date)
        fe.updated(post.updated or post.date)
        fe.author({"name": xml_safe(author.name), **({"email": author.email} if author.email else {})})
        fe.dc.dc_creator(xml_safe(author.name))
        for tag in post.tags:
            fe.category(term=xml_safe(tag))
        if post.summary:
            fe.summary(post.summary)
            fe.description(post.summary)
        if full_content:
            fe.content(post.content_html, type="html")


def build_rss(site: Site, *, items: int, full_content: bool) -> bytes:
    posts = site.posts[:items]
    fg = _generator(site, posts, site.info.feeds_url + RSS, "application/rss+xml")
    _add_entries(fg, site, posts, full_content)
    # feedgen's RSS author needs an email; dc:creator names every author instead.
    return fg.rss_str(pretty=True)


def build_atom(site: Site, *, items: int, full_content: bool) -> bytes:
    posts = site.posts[:items]
    fg = _generator(site, posts, site.info.feeds_url + ATOM, "application/atom+xml")
    fg.id(site.info.feeds_url + ATOM)
    _add_entries(fg, site, posts, full_content)
    return fg.atom_str(pretty=True)


def _json_author(author: Author) -> dict[str, str]:
    data = {"name": author.name}
    if author.url:
        data["url"] = author.url
    return data


def build_json_feed(site: Site, *, items: int, full_content: bool) -> bytes:
    info = site.info
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": info.title,
        "home_page_url": info.url,
        "feed_url": info.feeds_url + JSON_FEED,
    }
    if info.description:
        feed["description"] = info.description
    feed["language"] = info.language
    feed["authors"] = [_json_author(info.author)]
    entries = []
    for post in site.posts[:items]:
        item: dict[str, object] = {"id": post.id, "url": post.url, "title": post.title}
        if full_content:
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
        entries.append(item)
    feed["items"] = entries
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def build_feeds(site: Site, *, items: int, full_content: bool) -> dict[str, bytes]:
    """The main feeds of ``site``: file name -> bytes."""
    return {
        RSS: build_rss(site, items=items, full_content=full_content),
        ATOM: build_atom(site, items=items, full_content=full_content),
        JSON_FEED: build_json_feed(site, items=items, full_content=full_content),
    }
