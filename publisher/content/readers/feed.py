"""The feed reader: an existing RSS, Atom or JSON Feed becomes posts.

Pure, like every reader: bytes in, a ``ReadResult`` out, no disk, no
network, no clock. RSS 0.9x/1.0/2.0 and Atom are parsed by feedparser; JSON
Feed 1.0/1.1 (which feedparser does not read) is parsed here. Each entry
becomes one ``Post`` whose ``source`` is ``"<shown>#<entry id or link>"``,
so the state store remembers it across builds; its ``id`` is the entry's own
guid, so readers who followed the original feed see the same items. An id
that is not an absolute IRI (JSON Feed's ``"id": "1"``, RSS's
``<guid isPermaLink="false">12345</guid>``) cannot be an Atom id: the post's
id is then a ``urn:uuid:`` made from its ``source``, the same on every build.

    result = read_feed(data, "Other blog", "https://other.example/feed.xml",
                       ReadOptions(), base_url="https://other.example/feed.xml")
    result.posts[0].source   # "https://other.example/feed.xml#urn:uuid:…"

A feed that cannot be read at all raises ``ContentError(shown, line,
reason)``; one bad entry is an error in ``result.errors`` and the others go
on. A feed that is not well-formed but still yields entries (feedparser's
"bozo" flag: an undefined entity, a stray ``&``, a wrong encoding
declaration) is published, with a warning in the log, because that is what
every feed reader does with it. HTML is not sanitised here: the content
stage does that for every post alike.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from lxml import etree

from publisher.errors import ContentError
from publisher.model import Author, Enclosure, Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.sanitize import resolved_srcset
from publisher.text import iri_id, one_line, summarize, xml_safe

log = logging.getLogger("publisher.readers.feed")

# An entry without a title is named by the start of its text, this long.
TITLE_FROM_TEXT = 80

_HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}
# Elements after which text_content() must keep a word break.
_BREAKS = {
    "p", "div", "br", "li", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3",
    "h4", "h5", "h6", "tr", "td", "th", "table", "figure", "figcaption", "hr",
    "section", "article", "header", "footer", "dd", "dt",
}  # fmt: skip
_JSON_FEED_VERSION = "https://jsonfeed.org/version/"


@dataclass(frozen=True)
class _Entry:
    """What either parser found in one entry, before it becomes a Post."""

    number: int  # 1-based position in the feed, for messages
    id: str | None
    link: str | None
    title: str | None  # plain text
    content_html: str | None
    summary_html: str | None
    date: datetime | None
    updated: datetime | None
    author: Author | None
    tags: tuple[str, ...]
    image: str | None
    enclosures: tuple[Enclosure, ...] = ()


def read_feed(
    data: bytes,
    source_name: str,
    shown: str,
    options: ReadOptions,
    *,
    base_url: str | None = None,
) -> ReadResult:
    """The posts of the feed in ``data``; raises ``ContentError`` if there is no feed.

    ``source_name`` is the feed's name in the config (for log messages);
    ``shown`` names the feed in errors and post sources (its URL or path);
    ``base_url`` is where it was fetched from (after redirects), the base
    for relative links. Without it, the feed's own home-page link is used.
    ``options`` is the readers' common contract; feeds need none of it yet:
    their dates carry a zone, and one without is read as UTC (as
    feedparser reads it), in every format alike.
    """
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if not body.strip():
        raise ContentError(shown, None, "empty feed")
    _refuse_exports(body[:65536], shown)
    if body.lstrip()[:1] == b"{":
        entries = _json_entries(body, shown, base_url)
    else:
        entries = _xml_entries(body, source_name, shown, base_url)
    return _collect(entries, shown)


# A site's export is not its feed: it holds drafts, pages, attachments, menus
# and the admin's settings. Told apart by the namespaces in its first bytes.
_WXR = re.compile(rb"""xmlns:\w+\s*=\s*["']https?://wordpress\.org/export/\d""")
# Blogger's exports: kind#settings/#template entries (2008-2018), the Takeout
# namespace since (its public feeds bind blogger/2008 and hold neither).
_BLOGGER_EXPORT = re.compile(
    rb"schemas\.google\.com/blogger/(?:2008/kind#(?:settings|template)|2018[\"'])"
)


def _refuse_exports(head: bytes, shown: str) -> None:
    """A ``ContentError`` for a WordPress (WXR) or Blogger export given as a feed."""
    if _WXR.search(head):
        raise ContentError(
            shown,
            None,
            "a WordPress export (WXR), not a feed: list its file under [content] paths, "
            "which publishes its published posts only (not its drafts, pages, attachments or settings)",
        )
    if _BLOGGER_EXPORT.search(head):
        raise ContentError(
            shown,
            None,
            "a Blogger export, not a feed (it holds drafts, pages and the blog's settings): "
            "list the blog's own feed (https://BLOG.blogspot.com/feeds/posts/default) instead",
        )


# --- shared -------------------------------------------------------------------


def _collect(entries: list[_Entry | ContentError], shown: str) -> ReadResult:
    posts: list[Post] = []
    errors: list[ContentError] = []
    seen: dict[str, int] = {}
    for entry in entries:
        if isinstance(entry, ContentError):
            errors.append(entry)
            continue
        try:
            post = _post(entry, shown)
        except ContentError as exc:
            errors.append(exc)
            continue
        key = post.source
        if key in seen:
            errors.append(
                ContentError(
                    shown,
                    None,
                    f"entry {entry.number}: id {key[len(shown) + 1 :]!r} repeats entry "
                    f"{seen[key]}; the first is kept",
                )
            )
            continue
        seen[key] = entry.number
        posts.append(post)
    return ReadResult(tuple(posts), tuple(errors))


def _post(entry: _Entry, shown: str) -> Post:
    content = xml_safe(entry.content_html or entry.summary_html or "")
    text = _plain(entry.summary_html or entry.content_html or "")
    title = one_line(xml_safe(entry.title or ""))
    if not title and not text:
        raise ContentError(shown, None, f"entry {entry.number}: has neither a title nor any text")
    title = title or summarize(text, TITLE_FROM_TEXT)
    key = entry.id or entry.link or _fallback_key(entry, title, text)
    return Post(
        source=f"{shown}#{key}",
        title=title,
        content_html=content,
        summary=summarize(text) or None,
        date=entry.date,
        updated=entry.updated,
        id=iri_id(entry.id, f"{shown}#{entry.id}") if entry.id else entry.link,
        url=entry.link,
        author=entry.author,
        tags=entry.tags,
        image=entry.image,
        enclosures=entry.enclosures,
    )


def _fallback_key(entry: _Entry, title: str, text: str) -> str:
    """A key for an entry with neither id nor link: stable while its title and date are."""
    date = entry.date.isoformat() if entry.date else ""
    seed = "\n".join([entry.title or text, date])
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def _plain(markup: str) -> str:
    """The text of an HTML fragment on one line (scripts and styles dropped)."""
    markup = xml_safe(markup)
    if not markup.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return one_line(markup)
    for element in root.xpath("//script|//style"):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BREAKS:
            element.tail = "\n" + (element.tail or "")
    return one_line(root.text_content())


def _text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines separate them)."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    return "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)


def _web_url(value: Any, base: str | None) -> str | None:
    """``value`` as an absolute http(s) URL (resolved against ``base``), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    url = urljoin(base, value.strip()) if base else value.strip()
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _enclosures(found: list[tuple[Any, Any, Any]], base: str | None) -> tuple[Enclosure, ...]:
    """The media an entry carries (RSS enclosures, Atom rel="enclosure" links,
    JSON Feed attachments): kept, so a podcast republished stays one."""
    kept: dict[str, Enclosure] = {}
    for url, kind, length in found:
        href = _web_url(url, base)
        if href is None or href in kept:
            continue
        kind = kind.strip() if isinstance(kind, str) and "/" in kind else "application/octet-stream"
        size = int(length) if isinstance(length, int) or (isinstance(length, str) and length.strip().isdigit()) else 0
        kept[href] = Enclosure(href, kind, max(size, 0))
    return tuple(kept.values())


def _clean_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = one_line(xml_safe(str(value)))
    return text or None


def _tags(terms: list[Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for term in terms:
        if isinstance(term, str):
            tag = one_line(xml_safe(term))
            if tag and tag not in tags:
                tags.append(tag)
    return tuple(tags)


def _person(name: Any, email: Any = None, url: Any = None) -> Author | None:
    name = one_line(xml_safe(name)) if isinstance(name, str) else ""
    email = one_line(xml_safe(email)) if isinstance(email, str) else ""
    if not (name or email):
        return None
    return Author(name=name or email, email=email or None, url=_web_url(url, None))


# --- RSS and Atom (feedparser) ------------------------------------------------


def _parse_xml(data: bytes, base_url: str | None) -> Any:
    # A BytesIO, never the bytes: feedparser would take bytes for a file
    # name (or a URL) and open it.
    headers = None
    if base_url:
        # Content-Location is how feedparser learns the base of a body it
        # did not fetch; a content type stops it flagging the body as bozo.
        headers = {"content-location": base_url, "content-type": "application/xml"}
    return feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=False)


def _bozo_reason(exc: Any) -> tuple[int | None, str]:
    if exc is None:
        return None, "not well-formed"
    line = None
    if hasattr(exc, "getLineNumber"):
        try:
            line = int(exc.getLineNumber()) or None
        except (TypeError, ValueError):
            line = None
    reason = exc.getMessage() if hasattr(exc, "getMessage") else str(exc)
    return line, reason or type(exc).__name__


def _xml_entries(
    data: bytes, source_name: str, shown: str, base_url: str | None
) -> list[_Entry | ContentError]:
    parsed = _parse_xml(data, base_url)
    base = base_url
    if base is None:
        home = _web_url(parsed.feed.get("link"), None)
        if home:
            # A feed read from disk: its home page is the best base there is.
            base = home
            parsed = _parse_xml(data, home)
    if not parsed.entries:
        if parsed.bozo:
            line, reason = _bozo_reason(parsed.get("bozo_exception"))
            raise ContentError(shown, line, f"not a readable feed: {reason}")
        if not parsed.version:
            raise ContentError(shown, None, "not an RSS, Atom or JSON feed")
        log.info("%s (%s): the feed has no entries", shown, source_name)
        return []
    if parsed.bozo:
        line, reason = _bozo_reason(parsed.get("bozo_exception"))
        where = f" (line {line})" if line else ""
        log.warning(
            "%s (%s): not a well-formed feed%s: %s; publishing the %d entries read anyway",
            shown, source_name, where, reason, len(parsed.entries),
        )  # fmt: skip
    feed_author = _fp_author(parsed.feed)
    entries: list[_Entry | ContentError] = []
    for number, raw in enumerate(parsed.entries, 1):
        try:
            entries.append(_fp_entry(raw, number, base, feed_author))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            entries.append(ContentError(shown, None, f"entry {number}: cannot be read: {exc}"))
    return entries


def _fp_date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime(*value[:6], tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _fp_text(raw: Any, key: str) -> str | None:
    """A text construct (title) as plain text, whatever type it was given in."""
    value = raw.get(key)
    if not isinstance(value, str):
        return None
    detail = raw.get(f"{key}_detail") or {}
    if detail.get("type") in _HTML_TYPES:
        return _plain(value)
    return value


def _fp_html(detail: Any) -> str | None:
    """A content or summary construct as HTML."""
    if not detail or not isinstance(detail.get("value"), str) or not detail["value"].strip():
        return None
    if detail.get("type") in _HTML_TYPES:
        return detail["value"]
    return _text_to_html(detail["value"])


# "desk@example.org (News Desk)" as RSS writes it, "News Desk (desk@…)" as
# feedparser joins Atom's name and email, and "News Desk <desk@…>".
_AUTHOR_FORMS = (
    re.compile(r"(?P<email>[^\s@()<>]+@[^\s@()<>]+)\s*\((?P<name>[^()]*)\)"),
    re.compile(r"(?P<name>[^()<>]*?)\s*\((?P<email>[^\s@()<>]+@[^\s@()<>]+)\)"),
    re.compile(r"(?P<name>[^()<>]*?)\s*<(?P<email>[^\s@()<>]+@[^\s@()<>]+)>"),
    re.compile(r"(?P<email>[^\s@()<>]+@[^\s@()<>]+)(?P<name>)"),
)


def _fp_author(raw: Any) -> Author | None:
    detail = raw.get("author_detail") or {}
    name, email = detail.get("name"), detail.get("email")
    text = raw.get("author")
    if isinstance(text, str):
        # feedparser's own split cuts addresses whose top-level domain is
        # longer than four letters ("desk@other.exam"); split it again.
        for form in _AUTHOR_FORMS:
            match = form.fullmatch(text.strip())
            if match:
                name, email = match["name"].strip() or None, match["email"]
                break
        else:
            if not (name or email):
                name = text
    return _person(name, email, detail.get("href"))


def _fp_image(raw: Any, base: str | None) -> str | None:
    for thumbnail in raw.get("media_thumbnail") or ():
        url = _web_url(thumbnail.get("url"), base)
        if url:
            return url
    for media in raw.get("media_content") or ():
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            url = _web_url(media.get("url"), base)
            if url:
                return url
    for link in raw.get("links") or ():
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            url = _web_url(link.get("href"), base)
            if url:
                return url
    return None


def _fp_entry(raw: Any, number: int, base: str | None, feed_author: Author | None) -> _Entry:
    contents = [c for c in raw.get("content") or () if isinstance(c.get("value"), str)]
    preferred = [c for c in contents if c.get("type") in _HTML_TYPES] or contents
    content = _fp_html(preferred[0]) if preferred else None
    summary = _fp_html(raw.get("summary_detail"))
    if summary is None and isinstance(raw.get("summary"), str) and raw["summary"].strip():
        summary = raw["summary"]  # copied from the content by feedparser: HTML
    # Only a real <updated>: feedparser's get() would fall back to <pubDate>.
    updated = _fp_date(raw["updated_parsed"]) if "updated_parsed" in raw else None
    entry_base = (raw.get("title_detail") or raw.get("summary_detail") or {}).get("base") or base
    return _Entry(
        number=number,
        id=_clean_id(raw.get("id")),
        link=_web_url(raw.get("link"), entry_base),
        title=_fp_text(raw, "title"),
        content_html=content,
        summary_html=summary,
        date=_fp_date(raw.get("published_parsed")) or updated,
        updated=updated,
        author=_fp_author(raw) or feed_author,
        tags=_tags([t.get("term") or t.get("label") for t in raw.get("tags") or ()]),
        image=_fp_image(raw, entry_base),
        enclosures=_enclosures(
            [(e.get("href"), e.get("type"), e.get("length")) for e in raw.get("enclosures") or ()], entry_base
        ),
    )


# --- JSON Feed ----------------------------------------------------------------


def _json_entries(data: bytes, shown: str, base_url: str | None) -> list[_Entry | ContentError]:
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ContentError(shown, exc.lineno, f"not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise ContentError(shown, None, "not valid UTF-8") from None
    except RecursionError:
        raise ContentError(shown, None, "not a JSON Feed: nested too deeply") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version.startswith(_JSON_FEED_VERSION):
        raise ContentError(
            shown, None, f'JSON, but not a JSON Feed (needs "version": "{_JSON_FEED_VERSION}1.1")'
        )
    items = doc.get("items")
    if not isinstance(items, list):
        raise ContentError(shown, None, 'not a JSON Feed: "items" must be a list')
    base = base_url or _web_url(doc.get("feed_url"), None) or _web_url(doc.get("home_page_url"), None)
    feed_author = _json_author(doc)
    entries: list[_Entry | ContentError] = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            entries.append(ContentError(shown, None, f"entry {number}: not a JSON object"))
            continue
        entries.append(_json_entry(item, number, base, feed_author))
    return entries


def _json_str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _json_date(value: Any) -> datetime | None:
    """An RFC 3339 date; one without an offset is read as UTC, as feedparser does."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        log.warning("ignoring a JSON Feed date that is not RFC 3339: %r", value)
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # year 1 at +14:00: not a date in UTC
        log.warning("ignoring a JSON Feed date out of range: %r", value)
        return None


def _json_author(obj: dict[str, Any]) -> Author | None:
    people = obj.get("authors")
    if not isinstance(people, list):
        people = [obj.get("author")]  # JSON Feed 1.0
    for person in people:
        if isinstance(person, dict):
            author = _person(person.get("name"), None, person.get("url"))
            if author:
                return author
    return None


def _absolutize(markup: str, base: str | None) -> str:
    """``markup`` with relative links, image sources and ``srcset`` candidates resolved against ``base``."""
    if not base or not markup.strip():
        return markup
    try:
        root = lxml.html.fragment_fromstring(xml_safe(markup), create_parent="div")
    except (etree.ParserError, ValueError):
        return markup
    root.make_links_absolute(base, resolve_base_href=False, handle_failures="ignore")
    for element in root.iter():  # lxml leaves srcset alone
        srcset = element.get("srcset") if isinstance(element.tag, str) else None
        if srcset:
            element.set("srcset", resolved_srcset(srcset, base))
    inner = lxml.html.tostring(root, encoding="unicode")
    return inner[len("<div>") : -len("</div>")]


def _json_entry(item: dict[str, Any], number: int, base: str | None, feed_author: Author | None) -> _Entry:
    content = _json_str(item, "content_html")
    if content is None and _json_str(item, "content_text"):
        content = _text_to_html(item["content_text"])
    summary = _json_str(item, "summary")
    tags = item.get("tags")
    return _Entry(
        number=number,
        id=_clean_id(item.get("id")),
        link=_web_url(item.get("url"), base) or _web_url(item.get("external_url"), base),
        title=_json_str(item, "title"),
        content_html=_absolutize(content, base) if content else None,
        summary_html=_text_to_html(summary) if summary else None,
        date=_json_date(item.get("date_published")) or _json_date(item.get("date_modified")),
        updated=_json_date(item.get("date_modified")),
        author=_json_author(item) or feed_author,
        tags=_tags(tags if isinstance(tags, list) else []),
        image=_web_url(item.get("image"), base) or _web_url(item.get("banner_image"), base),
        enclosures=_enclosures(
            [
                (a.get("url"), a.get("mime_type"), a.get("size_in_bytes"))
                for a in item.get("attachments") or ()
                if isinstance(a, dict)
            ]
            if isinstance(item.get("attachments"), list)
            else [],
            base,
        ),
    )
