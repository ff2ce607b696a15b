"""The WordPress export (WXR) reader: one ``.xml`` file, many posts.

A WXR file is RSS 2.0 with WordPress's namespaces (``wp:`` 1.0, 1.1 or 1.2,
``content:``, ``excerpt:``, ``dc:``). Each ``<item>`` whose ``wp:post_type``
is ``post`` and ``wp:status`` is ``publish``, without a password, becomes a
``Post``; pages, attachments, menu items, revisions, drafts, pending,
scheduled, private and password-protected posts are skipped (logged at
debug with their ``wp:post_id``). A published item dated in the future keeps
its date; the content stage holds it back until then.

What WordPress does when it shows a post is redone, small (``wordpress.py``): block
comments and ``<!--more-->`` are dropped, ``[caption]`` becomes a
``<figure>``, ``[embed]`` and a URL alone on its line become links, other
shortcodes are removed (their enclosed text kept), and classic (non-block)
posts get ``wpautop``'s paragraphs and line breaks. A post WordPress let
through without a title is named by its first words ("(untitled)" if it has
none). The summary is the hand-written excerpt, or None (the content stage
derives one). ``updated`` is ``wp:post_modified_gmt``; the featured image
(``_thumbnail_id``) becomes ``Post.image`` when its attachment is in the file.

The file is read incrementally (``lxml.etree.iterparse``), each item is
cleared once read, so a 100 MB export needs little more memory than its
bytes. The parser never loads a DTD, never touches the network and never
expands an entity; a document declaring entities or an external DTD is
refused (WordPress never writes one).

Errors: a file that is not XML, or not a WordPress export, raises
``ContentError``. When the XML breaks part-way (a truncated download), the
posts whose ``</item>`` came before the break are returned with the error in
``ReadResult.errors``. One bad item (an unreadable date) is one error naming
its line; the other items are still read.

    result = read(Path("export.xml").read_bytes(), "posts/export.xml", ReadOptions(timezone=tz))
    result.posts[0].source   # "posts/export.xml#post-123"
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree

from publisher.errors import ContentError
from publisher.model import Author, Comment, Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.readers.wordpress import plain_paragraphs, plain_text, render_content
from publisher.text import one_line, summarize, xml_safe

log = logging.getLogger("publisher.readers.wxr")

WP_NAMESPACES = (
    "http://wordpress.org/export/1.2/",
    "http://wordpress.org/export/1.1/",
    "http://wordpress.org/export/1.0/",
)
EXCERPT_NAMESPACES = tuple(f"{ns}excerpt/" for ns in WP_NAMESPACES)
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"

NOT_WXR = "not a WordPress export (WXR); to read an existing feed list it under [[content.feeds]]"
UNTITLED = "(untitled)"
# An untitled post is named by the start of its text, cut near this length.
UNTITLED_WORDS_LIMIT = 60

# Element names as "prefix:local", whichever WXR version wrote them.
_PREFIXES = {
    **{ns: "wp" for ns in WP_NAMESPACES},
    **{ns: "excerpt" for ns in EXCERPT_NAMESPACES},
    CONTENT_NS: "content",
    DC_NS: "dc",
}
_AUTHOR_TAGS = frozenset(f"{{{ns}}}author" for ns in WP_NAMESPACES)
_ZERO_DATE = "0000-00-00"

# C0 control characters XML 1.0 forbids. WordPress exports often carry a
# few pasted from word processors, and libxml2 stops at the first one; they
# are removed before parsing (xml_safe would remove them from the text anyway).
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


# -- items ------------------------------------------------------------------


def _key(tag: str) -> str:
    """``{namespace}local`` as ``prefix:local`` (``wp:post_id``), or ``local``."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        prefix = _PREFIXES.get(ns)
        return f"{prefix}:{local}" if prefix else tag
    return tag


def _inner(element: etree._Element) -> str:
    """An element's content as text; child elements (XHTML written inline) kept as markup."""
    if len(element) == 0:
        return element.text or ""
    inner = [element.text or ""]
    inner += [etree.tostring(child, encoding="unicode", with_tail=True) for child in element]
    return "".join(inner)


def _texts(element: etree._Element) -> dict[str, str]:
    """The text of each child element, by ``prefix:local`` name (the first of each)."""
    texts: dict[str, str] = {}
    for child in element:
        if isinstance(child.tag, str):
            texts.setdefault(_key(child.tag), _inner(child))
    return texts


@dataclass
class _Item:
    """An ``<item>``: its single-valued fields as text, and its repeated children."""

    line: int
    fields: dict[str, str] = field(default_factory=dict)
    categories: list[etree._Element] = field(default_factory=list)
    comments: list[dict[str, str]] = field(default_factory=list)
    comment_lines: list[int] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, element: etree._Element) -> _Item:
        item = cls(line=element.sourceline or 1)
        for child in element:
            if not isinstance(child.tag, str):
                continue
            key = _key(child.tag)
            if key == "category":
                item.categories.append(child)
            elif key == "wp:comment":
                item.comments.append(_texts(child))
                item.comment_lines.append(child.sourceline or item.line)
            elif key == "wp:postmeta":
                meta = _texts(child)
                key, value = meta.get("wp:meta_key", ""), meta.get("wp:meta_value", "")
                item.meta.setdefault(key.strip(), value.strip())
            else:
                item.fields.setdefault(key, _inner(child))
        return item

    def text(self, key: str) -> str:
        return self.fields.get(key, "")


def parse_wp_date(value: str, tz: ZoneInfo | timezone, name: str) -> datetime | None:
    """A WordPress ``YYYY-MM-DD HH:MM:SS`` date taken in ``tz``, as aware UTC.

    None for an empty or all-zero date (WordPress's "not set"); ValueError,
    naming the element, for anything else that is not a date.
    """
    text = value.strip()
    if not text or text.startswith(_ZERO_DATE):
        return None
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            expected = "expected YYYY-MM-DD HH:MM:SS"
            raise ValueError(f"{name} {text!r} is not a date ({expected})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{name} {text!r} is out of range: it is not a date in UTC") from None


def _date(fields: dict[str, str], name: str, tz: ZoneInfo) -> datetime | None:
    """``wp:NAME_gmt``, or when WordPress left it zero ``wp:NAME`` in the site's zone."""
    gmt = parse_wp_date(fields.get(f"wp:{name}_gmt", ""), timezone.utc, f"wp:{name}_gmt")
    return gmt or parse_wp_date(fields.get(f"wp:{name}", ""), tz, f"wp:{name}")


def _http_url(value: str) -> str | None:
    url = xml_safe(value.strip())
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc and " " not in url else None


def _name(value: str) -> str:
    """Plain text from a WordPress name field (titles, terms: may hold entities and tags)."""
    return plain_text(value)


def _one_line(value: str) -> str:
    return xml_safe(one_line(value))


def untitled_title(content_html: str) -> str:
    """A title for a post WordPress let through without one: its first words."""
    return summarize(plain_text(content_html), UNTITLED_WORDS_LIMIT) or UNTITLED


def _tags(categories: list[etree._Element]) -> tuple[str, ...]:
    """Categories first, then tags, each once (ignoring case); "Uncategorized" dropped."""
    found: dict[str, str] = {}
    for domain in ("category", "post_tag"):
        for element in categories:
            if element.get("domain") != domain:
                continue
            name = _name(_inner(element))
            nicename = (element.get("nicename") or "").lower()
            if not name or name.casefold() == "uncategorized" or nicename == "uncategorized":
                continue
            found.setdefault(name.casefold(), name)
    return tuple(found.values())


_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


class _Export:
    """What has been read so far: the author map, posts and errors."""

    def __init__(self, path: str, options: ReadOptions):
        self.path = path
        self.options = options
        self.authors: dict[str, Author] = {}
        self.posts: list[Post] = []
        self.errors: list[ContentError] = []
        self.lines: dict[str, int] = {}
        self.thumbnails: dict[int, str] = {}
        self.attachments: dict[str, str] = {}

    def error(self, line: int, reason: str) -> None:
        self.errors.append(ContentError(self.path, line, reason))

    def author(self, element: etree._Element) -> None:
        fields = _texts(element)
        login = one_line(fields.get("wp:author_login", ""))
        if not login:
            return
        name = _name(fields.get("wp:author_display_name", "")) or xml_safe(login)
        # wp:author_email is the account's private login address: WordPress
        # never publishes it, and neither do we.
        self.authors[login] = Author(name=name)

    def item(self, element: etree._Element) -> None:
        item = _Item.of(element)
        post_id = _one_line(item.text("wp:post_id"))
        post_type = item.text("wp:post_type").strip()
        status = item.text("wp:status").strip()
        if post_type == "attachment" and post_id:
            url = _http_url(item.text("wp:attachment_url"))
            if url:
                self.attachments[post_id] = url
        if post_type != "post" or status != "publish" or item.text("wp:post_password").strip():
            why = "password-protected" if post_type == "post" and status == "publish" else status
            log.debug("%s: item %s (%s, %s) not published", self.path, post_id, post_type, why)
            return
        if not post_id:
            self.error(item.line, "published post without wp:post_id")
            return
        if post_id in self.lines:
            first = self.lines[post_id]
            self.error(item.line, f"post {post_id} appears twice (first on line {first}); skipped")
            return
        self.lines[post_id] = item.line
        try:
            post = self._post(item, post_id)
        except ValueError as exc:
            self.error(item.line, f"post {post_id}: {exc}")
            return
        thumbnail = item.meta.get("_thumbnail_id", "")
        if thumbnail:
            self.thumbnails[len(self.posts)] = thumbnail
        self.posts.append(post)

    def _post(self, item: _Item, post_id: str) -> Post:
        tz = self.options.timezone
        date = _date(item.fields, "post_date", tz)
        updated = _date(item.fields, "post_modified", tz)
        content = render_content(item.text("content:encoded"))
        login = one_line(item.text("dc:creator"))
        return Post(
            source=f"{self.path}#post-{post_id}",
            title=_name(item.text("title")) or untitled_title(content),
            content_html=content,
            summary=plain_text(item.text("excerpt:encoded")) or None,
            date=date,
            updated=updated,
            id=_one_line(item.text("guid")) or None,
            slug=_one_line(item.text("wp:post_name")) or None,
            url=_http_url(item.text("link")),
            author=self.authors.get(login) or (Author(name=xml_safe(login)) if login else None),
            tags=_tags(item.categories),
            comments=self._comments(item, post_id),
            comments_closed=item.text("wp:comment_status").strip() == "closed",
        )

    def _comments(self, item: _Item, post_id: str) -> tuple[Comment, ...]:
        """Approved comments (no pingbacks or trackbacks), oldest first, threaded by number."""
        kept: list[tuple[datetime | None, int, dict[str, str]]] = []
        for index, (fields, line) in enumerate(zip(item.comments, item.comment_lines)):
            comment_id = fields.get("wp:comment_id", "").strip()
            approved = fields.get("wp:comment_approved", "").strip()
            kind = fields.get("wp:comment_type", "").strip() or "comment"
            if approved != "1" or kind != "comment":
                log.debug(
                    "%s: post %s comment %s (%s, approved=%s) not kept",
                    self.path, post_id, comment_id, kind, approved,
                )  # fmt: skip
                continue
            try:
                date = _date(fields, "comment_date", self.options.timezone)
            except ValueError as exc:
                # The post is still worth publishing; the comment keeps no date.
                self.error(line, f"post {post_id}: comment {comment_id} kept without a date: {exc}")
                date = None
            kept.append((date, index, fields))
        kept.sort(key=lambda entry: (entry[0] is None, entry[0] or _EARLIEST, entry[1]))
        numbers = {
            fields.get("wp:comment_id", "").strip(): number
            for number, (_, _, fields) in enumerate(kept, start=1)
        }
        numbers.pop("", None)
        comments = []
        for number, (date, _, fields) in enumerate(kept, start=1):
            parent = numbers.get(fields.get("wp:comment_parent", "").strip())
            comments.append(
                Comment(
                    number=number,
                    author=_name(fields.get("wp:comment_author", "")) or "Anonymous",
                    paragraphs=plain_paragraphs(fields.get("wp:comment_content", "")),
                    date=date,
                    id=_one_line(fields.get("wp:comment_id", "")) or None,
                    parent=parent if parent != number else None,
                    author_url=_http_url(fields.get("wp:comment_author_url", "")),
                )
            )
        return tuple(comments)

    def result(self) -> ReadResult:
        posts = list(self.posts)
        for index, attachment_id in self.thumbnails.items():
            if attachment_id in self.attachments:
                posts[index] = replace(posts[index], image=self.attachments[attachment_id])
        return ReadResult(tuple(posts), tuple(self.errors))


# -- the document -----------------------------------------------------------


def _line_of(data: bytes, needle: bytes) -> int:
    at = data.find(needle)
    return data.count(b"\n", 0, at) + 1 if at >= 0 else 1


def _check_doctype(root: etree._Element, data: bytes, path: str) -> None:
    """Refuse entity declarations and external DTDs: WordPress writes neither."""
    info = root.getroottree().docinfo
    dtd = info.internalDTD
    entities = [e.name for e in dtd.iterentities()] if dtd is not None else []
    if entities or info.system_url or info.public_id:
        names = ", ".join(entities[:3])
        what = f"declares entities ({names})" if entities else "refers to an external DTD"
        raise ContentError(
            path,
            _line_of(data[:65536], b"<!DOCTYPE"),
            f"{what}; a WordPress export has no DTD, and entities are never expanded",
        )


def _syntax_reason(exc: etree.XMLSyntaxError) -> str:
    message = re.sub(r", line \d+, column (\d+)$", r" (column \1)", exc.msg or str(exc))
    depth = re.match(r"Excessive depth in document: (\d+)", message)
    if depth:  # libxml2's limit, even with huge_tree; its advice to raise it does not apply
        where = re.search(r"\(column \d+\)", message)
        return f"elements nested more than {depth.group(1)} levels deep{' ' + where.group(0) if where else ''}"
    if message.startswith(("Invalid bytes in character encoding", "Input is not proper UTF-8")):
        where = re.search(r"\(column \d+\)", message)
        return f"not valid UTF-8{' ' + where.group(0) if where else ''}; save the export as UTF-8"
    return f"not well-formed XML: {message}"


def _without_control_bytes(data: bytes) -> bytes:
    if b"\x00" in data[:4]:  # UTF-16 or UTF-32: NUL bytes belong to the encoding
        return data
    if _CONTROL_BYTES.search(data) is None:
        return data
    log.debug("removing control characters XML forbids")
    return _CONTROL_BYTES.sub(b"", data)


def read(data: bytes, path: str, options: ReadOptions) -> ReadResult:
    """The published posts of a WordPress export, and the items it rejected."""
    if not data or data.isspace():  # (not strip(): that would copy a large file)
        raise ContentError(path, 1, "empty file")
    data = _without_control_bytes(data)
    export = _Export(path, options)
    declared: set[str] = set()
    root: etree._Element | None = None
    events = etree.iterparse(
        io.BytesIO(data),
        events=("start-ns", "start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for event, element in events:
            if event == "start-ns":
                declared.add(element[1])
            elif event == "start":
                if root is None:
                    root = element
                    if root.tag != "rss":
                        raise ContentError(path, 1, NOT_WXR)
                    _check_doctype(root, data, path)
                elif element.tag == "item" and not declared.intersection(WP_NAMESPACES):
                    raise ContentError(path, 1, NOT_WXR)
            elif element.tag == "item":
                export.item(element)
                _forget(element)
            elif element.tag in _AUTHOR_TAGS:
                export.author(element)
            elif element.getparent() is None and not declared.intersection(WP_NAMESPACES):
                raise ContentError(path, 1, NOT_WXR)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno and exc.lineno > 0 else 1
        if not export.posts and not export.errors:
            raise ContentError(path, line, _syntax_reason(exc)) from None
        kept = f"; the {len(export.posts)} posts before it were read" if export.posts else ""
        export.errors.append(ContentError(path, line, _syntax_reason(exc) + kept))
    return export.result()


def _forget(element: etree._Element) -> None:
    """Free a finished item, and everything before it in the channel."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
