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
``<figure>``, ``[gallery]`` the images of the attachments it names (or the
post's own), ``[audio]`` and ``[video]`` players with a link, ``[embed]``
and a URL alone on its line links; any other shortcode is kept as written
and warned about once per name in the file; classic (non-block) posts get
``wpautop``'s paragraphs and line breaks. A post WordPress let through
without a title is named by its first words ("(untitled)" if it has none).
The summary is the hand-written excerpt, or None (the content stage derives
one). ``updated`` is ``wp:post_modified_gmt``; the featured image
(``_thumbnail_id``) becomes ``Post.image`` when its attachment is in the
file; WordPress's ``enclosure`` field, and audio or video attached to the
post, become its enclosures.

The ``wp`` namespace is the one the document binds to the ``wp`` prefix, as
WordPress's importer reads it: WXR 1.0, 1.1 and 1.2, under ``http://`` or
``https://``. A post's id is its ``<guid>``; when two published posts share
one (an export after a migration can), each is known by the blog's URL and
its ``wp:post_id`` (``https://blog.example/?p=7``), so both publish.

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

import html
import logging
import mimetypes
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree

from publisher.errors import ContentError
from publisher.model import Author, Comment, Enclosure, Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.readers.metadata import ContentWarning
from publisher.content.readers.xmldoc import check_doctype, check_prolog, syntax_reason, without_control_bytes
from publisher.content.readers.wordpress import GALLERY_PLACEHOLDER, gallery_html, plain_paragraphs, plain_text, render_content
from publisher.text import one_line, summarize, xml_safe

log = logging.getLogger("publisher.readers.wxr")

WP_NAMESPACES = (
    "http://wordpress.org/export/1.2/",
    "http://wordpress.org/export/1.1/",
    "http://wordpress.org/export/1.0/",
)
EXCERPT_NAMESPACES = tuple(f"{ns}excerpt/" for ns in WP_NAMESPACES)
# Every WXR version under either scheme (WordPress writes https://
# namespaces where the site's own URL is https, and some exporters do).
_WP_NAMESPACE = re.compile(r"^https?://wordpress\.org/export/\d+\.\d+/(excerpt/)?$")
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"

NOT_WXR = (
    "not a WordPress export (WXR): an .xml file under [content] paths must be one "
    "(an RSS or Atom feed goes under [[content.feeds]])"
)
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
_ZERO_DATE = "0000-00-00"
_GALLERY = re.compile(GALLERY_PLACEHOLDER.replace("{ids}", '([^"]*)'))
# The file size in an attachment's serialized PHP metadata: s:8:"filesize";i:12345;
_FILESIZE = re.compile(r's:8:"filesize";i:(\d+);')



# -- items ------------------------------------------------------------------


def wp_prefixes(bound: dict[str, str]) -> dict[str, str] | None:
    """Namespace -> our prefix for a document whose prefixes bind ``bound``
    (prefix -> namespace), or None when it is no WordPress export.

    As WordPress's importer does, the namespace bound to ``wp`` (and
    ``excerpt``) is WordPress's, whatever its version or scheme; a document
    binding another prefix to a WXR namespace is an export too.
    """
    prefixes = dict(_PREFIXES)
    for prefix, namespace in bound.items():
        match = _WP_NAMESPACE.match(namespace)
        if match:
            prefixes[namespace] = "excerpt" if match.group(1) else "wp"
    for prefix in ("wp", "excerpt"):
        if prefix in bound:
            prefixes[bound[prefix]] = prefix
    if not any(prefixes.get(ns) == "wp" for ns in bound.values()):
        return None
    return prefixes


def _key(tag: str, prefixes: dict[str, str] = _PREFIXES) -> str:
    """``{namespace}local`` as ``prefix:local`` (``wp:post_id``), or ``local``."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        prefix = prefixes.get(ns)
        return f"{prefix}:{local}" if prefix else tag
    return tag


def _inner(element: etree._Element) -> str:
    """An element's content as text; child elements (XHTML written inline) kept as markup."""
    if len(element) == 0:
        return element.text or ""
    inner = [element.text or ""]
    inner += [etree.tostring(child, encoding="unicode", with_tail=True) for child in element]
    return "".join(inner)


def _texts(element: etree._Element, prefixes: dict[str, str] = _PREFIXES) -> dict[str, str]:
    """The text of each child element, by ``prefix:local`` name (the first of each)."""
    texts: dict[str, str] = {}
    for child in element:
        if isinstance(child.tag, str):
            texts.setdefault(_key(child.tag, prefixes), _inner(child))
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
    enclosures: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, element: etree._Element, prefixes: dict[str, str]) -> _Item:
        item = cls(line=element.sourceline or 1)
        for child in element:
            if not isinstance(child.tag, str):
                continue
            key = _key(child.tag, prefixes)
            if key == "category":
                item.categories.append(child)
            elif key == "wp:comment":
                item.comments.append(_texts(child, prefixes))
                item.comment_lines.append(child.sourceline or item.line)
            elif key == "wp:postmeta":
                meta = _texts(child, prefixes)
                key, value = meta.get("wp:meta_key", ""), meta.get("wp:meta_value", "")
                if key.strip() == "enclosure":
                    item.enclosures.append(value)
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
    for domain in ("category", "post_tag", "tag"):  # "tag": WXR 1.0
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


@dataclass(frozen=True)
class _Attachment:
    url: str
    title: str
    caption: str
    parent: str
    length: int


class _Export:
    """What has been read so far: the author map, posts and errors."""

    def __init__(self, path: str, options: ReadOptions, prefixes: dict[str, str] | None = None):
        self.path = path
        self.options = options
        self.prefixes = prefixes or _PREFIXES
        self.authors: dict[str, Author] = {}
        self.posts: list[Post] = []
        self.post_ids: list[str] = []
        self.errors: list[ContentError] = []
        self.warnings: list[ContentWarning] = []
        self.unknown_shortcodes: set[str] = set()
        self.lines: dict[str, int] = {}
        self.thumbnails: dict[int, str] = {}
        self.attachments: dict[str, _Attachment] = {}
        self.base_url = ""

    def error(self, line: int, reason: str) -> None:
        self.errors.append(ContentError(self.path, line, reason))

    def channel(self, element: etree._Element) -> None:
        """A child of ``<channel>``: the blog's own URL keys its posts' ids."""
        key = _key(element.tag, self.prefixes)
        if key in ("wp:base_blog_url", "link") and not self.base_url:
            self.base_url = _http_url(element.text or "") or ""

    def author(self, element: etree._Element) -> None:
        fields = _texts(element, self.prefixes)
        login = one_line(fields.get("wp:author_login", ""))
        if not login:
            return
        name = _name(fields.get("wp:author_display_name", "")) or xml_safe(login)
        # wp:author_email is the account's private login address: WordPress
        # never publishes it, and neither do we.
        self.authors[login] = Author(name=name)

    def item(self, element: etree._Element) -> None:
        item = _Item.of(element, self.prefixes)
        post_id = _one_line(item.text("wp:post_id"))
        post_type = item.text("wp:post_type").strip()
        status = item.text("wp:status").strip()
        if post_type == "attachment" and post_id:
            self._attachment(item, post_id)
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
        self.post_ids.append(post_id)

    def _attachment(self, item: _Item, post_id: str) -> None:
        url = _http_url(item.text("wp:attachment_url"))
        if not url:
            return
        size = _FILESIZE.search(item.meta.get("_wp_attachment_metadata", ""))
        self.attachments[post_id] = _Attachment(
            url=url,
            title=_name(item.text("title")),
            caption=_name(item.text("excerpt:encoded")),
            parent=item.text("wp:post_parent").strip(),
            length=int(size.group(1)) if size else 0,
        )

    def _post(self, item: _Item, post_id: str) -> Post:
        tz = self.options.timezone
        date = _date(item.fields, "post_date", tz)
        updated = _date(item.fields, "post_modified", tz)
        unknown: list[str] = []
        content = render_content(item.text("content:encoded"), unknown=unknown)
        for name in unknown:
            if name not in self.unknown_shortcodes:
                self.unknown_shortcodes.add(name)
                self.warnings.append(
                    ContentWarning(self.path, item.line, f"post {post_id}: shortcode [{name}] is not converted; kept as text")
                )
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
            enclosures=tuple(e for e in map(_enclosure, item.enclosures) if e is not None),
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
        guids = Counter(post.id for post in posts if post.id)
        for index, post in enumerate(posts):
            post_id = self.post_ids[index]
            changes: dict = {}
            if post.id and guids[post.id] > 1:
                # One guid on two posts (a migration's leftover): WordPress
                # shows both, so each is known by the blog's URL and its id.
                changes["id"] = f"{self.base_url.rstrip('/')}/?p={post_id}" if self.base_url else None
            attachment = self.attachments.get(self.thumbnails.get(index, ""))
            if attachment is not None:
                changes["image"] = attachment.url
            if _GALLERY.search(post.content_html):
                changes["content_html"] = _GALLERY.sub(lambda m: self._gallery(m, post_id), post.content_html).strip()
            attached = self._attached_media(post_id, post.enclosures)
            if attached:
                changes["enclosures"] = post.enclosures + attached
            if changes:
                posts[index] = replace(post, **changes)
        return ReadResult(tuple(posts), tuple(self.errors), tuple(self.warnings))

    def _gallery(self, match: re.Match[str], post_id: str) -> str:
        """``[gallery]``'s images: those its ``ids`` name, else the post's own."""
        ids = [i.strip() for i in html.unescape(match.group(1)).split(",") if i.strip()]
        if not ids:
            ids = [key for key, a in self.attachments.items() if a.parent == post_id]
        images = [self.attachments[i] for i in ids if i in self.attachments and _is_image(self.attachments[i].url)]
        return gallery_html([(a.url, a.title, a.caption) for a in images])

    def _attached_media(self, post_id: str, given: tuple[Enclosure, ...]) -> tuple[Enclosure, ...]:
        """Audio and video attached to the post (a podcast's episode) that no
        ``enclosure`` field already names."""
        known = {e.url for e in given}
        found = []
        for attachment in self.attachments.values():
            kind = mimetypes.guess_type(urlsplit(attachment.url).path)[0] or ""
            if attachment.parent == post_id and kind.startswith(("audio/", "video/")) and attachment.url not in known:
                found.append(Enclosure(attachment.url, kind, attachment.length))
        return tuple(found)


def _is_image(url: str) -> bool:
    return (mimetypes.guess_type(urlsplit(url).path)[0] or "").startswith("image/")


def _enclosure(value: str) -> Enclosure | None:
    """WordPress's ``enclosure`` field: "URL\nLENGTH\nTYPE" (what its feeds show)."""
    lines = [line.strip() for line in value.replace("\r", "").split("\n")]
    url = _http_url(lines[0]) if lines else None
    if url is None:
        return None
    length = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0
    kind = lines[2] if len(lines) > 2 and "/" in lines[2] else mimetypes.guess_type(urlsplit(url).path)[0]
    return Enclosure(url, kind or "application/octet-stream", length)


# -- the document -----------------------------------------------------------


_PIECE = 65536  # bytes of an export parsed at a time


def read(data: bytes, path: str, options: ReadOptions) -> ReadResult:
    """The published posts of a WordPress export, and the items it rejected."""
    if not data or data.isspace():  # (not strip(): that would copy a large file)
        raise ContentError(path, 1, "empty file")
    data = without_control_bytes(data)
    check_prolog(data, path)
    export: _Export | None = None
    bound: dict[str, str] = {}
    root: etree._Element | None = None
    parser = etree.XMLPullParser(
        events=("start-ns", "start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )

    def handle(event: str, element) -> None:
        nonlocal root, export
        if event == "start-ns":
            if root is None:
                bound.setdefault(*element)
        elif event == "start":
            if root is None:
                root = element
                prefixes = wp_prefixes(bound)
                if root.tag != "rss" or prefixes is None:
                    raise ContentError(path, 1, NOT_WXR)
                check_doctype(root, data, path)
                export = _Export(path, options, prefixes)
        elif export is None:
            return
        elif element.tag == "item":
            export.item(element)
            _forget(element)
        elif _key(element.tag, export.prefixes) == "wp:author":
            export.author(element)
        elif (parent := element.getparent()) is not None and parent.tag == "channel":
            export.channel(element)

    def parse(step: Callable[[], object]) -> None:
        """``step`` (a feed, the close), then the events it gave, also when
        it met a fault: what came before the fault is read."""
        try:
            step()
        finally:
            for event, element in parser.read_events():
                handle(event, element)

    try:
        for start in range(0, len(data), _PIECE):
            parse(lambda: parser.feed(data[start : start + _PIECE]))
        parse(parser.close)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno and exc.lineno > 0 else 1
        if export is None or (not export.posts and not export.errors):
            raise ContentError(path, line, syntax_reason(exc)) from None
        kept = f"; the {len(export.posts)} posts before it were read" if export.posts else ""
        export.errors.append(ContentError(path, line, syntax_reason(exc) + kept))
    if export is None:
        raise ContentError(path, 1, NOT_WXR)
    return export.result()


def _forget(element: etree._Element) -> None:
    """Free a finished item, and everything before it in the channel."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
