"""Post HTML: sanitising, absolute URLs and the text of the first paragraph.

Scripts, event handlers, ``javascript:`` URLs and unknown elements are
removed; ordinary markup survives. ``nh3`` (Rust's ammonia) does the
sanitising; lxml resolves relative links.

    clean_html('<p onclick="x()">Hi<script>bad()</script></p>')  # '<p>Hi</p>'
    absolutize('<img src="a.png">', "https://example.org/2024/01/post/")
    # '<img src="https://example.org/2024/01/post/a.png">'
"""

from __future__ import annotations

import re
from html import escape, unescape
from urllib.parse import urljoin

import lxml.html
import nh3

from publisher.text import xml_safe

_TAGS = set(nh3.ALLOWED_TAGS) | {"figure", "figcaption", "cite", "picture", "source", "time", "section", "audio", "video"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("*", set()).update({"class", "id", "lang", "dir", "title"})
_ATTRIBUTES.setdefault("blockquote", set()).add("cite")
_ATTRIBUTES.setdefault("a", set()).update({"href", "hreflang"})
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height", "srcset", "loading"})
_ATTRIBUTES.setdefault("source", set()).update({"srcset", "media", "type", "src"})
# Players for a post's audio and video (WordPress's [audio], a podcast's episode).
for _media in ("audio", "video"):
    _ATTRIBUTES.setdefault(_media, set()).update({"src", "controls", "preload"})
_ATTRIBUTES["video"].update({"width", "height"})
_ATTRIBUTES.setdefault("time", set()).add("datetime")
_SCHEMES = {"http", "https", "mailto", "tel"}


# Elements nested deeper than this lose their tags (their text stays): the
# HTML parsers downstream (lxml here, premailer in the email) stop reading at
# 256 or 2048 levels and silently drop the rest of the post.
MAX_DEPTH = 100
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# A tag as nh3 (html5ever) writes it: attribute values always in double
# quotes with '"' escaped, comments removed, text '<' escaped.
_TAG = re.compile(r'<(/?)([A-Za-z][A-Za-z0-9-]*)(?:\s+[^\s=/>]+(?:="[^"]*")?)*\s*/?>')


_CLEANER = nh3.Cleaner(tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES, link_rel=None)


def clean_html(html: str) -> str:
    """``html`` with everything unsafe removed, XML-safe, nested at most ``MAX_DEPTH`` deep."""
    cleaned = _CLEANER.clean(xml_safe(html))
    return _flattened(cleaned, MAX_DEPTH) if _deeper_than(cleaned, MAX_DEPTH) else cleaned


# Where a tag opens or closes in HTML as nh3 writes it (every "<" opens one:
# text and attribute values have theirs escaped).
_TAG_START = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")


def _deeper_than(html: str, limit: int) -> bool:
    """Whether elements of ``html`` (as nh3 writes it) nest deeper than ``limit``."""
    if html.count("<") <= limit:
        return False
    depth = 0
    for closing, name in _TAG_START.findall(html):
        if closing:
            depth -= 1
        elif name.lower() not in _VOID:
            depth += 1
            if depth > limit:
                return True
    return False


def _flattened(html: str, limit: int) -> str:
    """``html`` (as nh3 writes it) without the tags of elements nested deeper than ``limit``."""
    if html.count("<") <= limit:
        return html
    out: list[str] = []
    kept: list[bool] = []  # per open element: was its tag kept?
    last = 0
    for match in _TAG.finditer(html):
        closing, name = match.group(1), match.group(2).lower()
        if name in _VOID:
            continue
        if closing:
            keep = kept.pop() if kept else True
        else:
            keep = len(kept) < limit
            kept.append(keep)
        if not keep:
            out.append(html[last : match.start()])
            last = match.end()
    if last == 0:
        return html
    out.append(html[last:])
    return "".join(out)


def _parser() -> lxml.html.HTMLParser:
    # huge_tree: libxml2 otherwise cuts a text node at 10 MB, silently.
    # One per call: lxml parsers are not safe to share between threads.
    return lxml.html.HTMLParser(huge_tree=True, no_network=True)


# A URL that is not resolved against the post's: one with a scheme, a
# protocol-relative one ("//…") or a same-page one ("#…").
_ABSOLUTE = r"[a-z][a-z0-9+.-]*:|#|//"
# An href, src or cite (the link attributes lxml resolves that clean_html
# keeps) whose value is relative, quoted or not. The quote is consumed
# before the look-ahead, which must see the value itself; an unquoted value
# starts with neither a quote nor a space.
_RELATIVE = re.compile(rf"""\s(?:href|src|cite)\s*=\s*(?:["']|(?![\s"']))(?!{_ABSOLUTE})""", re.I)
_ABSOLUTE_URL = re.compile(_ABSOLUTE, re.I)
_SRCSET = re.compile(r"""\ssrcset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)


_SPACE = frozenset(" \t\n\f\r")


def _has_relative_url(html: str) -> bool:
    """Whether ``html`` holds a URL ``absolutize`` would resolve."""
    if _RELATIVE.search(html):
        return True
    for match in _SRCSET.finditer(html):
        value = match.group(1) or match.group(2) or match.group(3) or ""
        if any(_ABSOLUTE_URL.match(value, start) is None for start, _ in _srcset_spans(value)):
            return True
    return False


def _srcset_spans(value: str) -> list[tuple[int, int]]:
    """Where each candidate URL of a ``srcset`` value is, parsed as the HTML
    standard does: a URL is a run of non-space characters (commas inside it
    belong to it, as in ``data:`` URLs, trailing ones end the candidate),
    its descriptors run to the next comma outside parentheses."""
    spans: list[tuple[int, int]] = []
    position, end = 0, len(value)
    while True:
        while position < end and (value[position] in _SPACE or value[position] == ","):
            position += 1
        if position >= end:
            return spans
        start = position
        while position < end and value[position] not in _SPACE:
            position += 1
        stop = position
        while stop > start and value[stop - 1] == ",":
            stop -= 1
        spans.append((start, stop))
        if stop < position:
            continue
        depth = 0
        while position < end and (value[position] != "," or depth):
            if value[position] == "(":
                depth += 1
            elif value[position] == ")" and depth:
                depth -= 1
            position += 1


def resolved_srcset(value: str, base_url: str) -> str:
    """``value`` with its relative candidate URLs resolved against ``base_url``."""
    out, last = [], 0
    for start, stop in _srcset_spans(value):
        url = value[start:stop]
        if _ABSOLUTE_URL.match(url) is None:
            out += (value[last:start], urljoin(base_url, url))
            last = stop
    out.append(value[last:])
    return "".join(out)


def absolutize(html: str, base_url: str, *, cleaned: bool = False) -> str:
    """``html`` with relative ``href``, ``src``, ``cite`` and ``srcset`` URLs
    resolved against ``base_url``.

    HTML without relative URLs is returned as it is, the very same string.
    HTML as ``clean_html`` writes it (``cleaned``: the caller knows it is)
    has only its link attributes rewritten, every other byte kept; other
    HTML is parsed and serialised again by lxml.
    """
    tags = _TAG_WITH_ATTRIBUTES
    if not cleaned:
        if not _has_relative_url(html):
            return html
        if html.count("<") != sum(1 for _ in _TAG.finditer(html)):  # a "<" that opens no tag
            return _absolutized_by_lxml(html, base_url)
        tags = _TAG  # a ">" may be inside a value
    out = tags.sub(lambda tag: _rewritten_tag(tag.group(0), base_url), html)
    return html if out == html else out


# A start tag with attributes, as clean_html writes it: a ">" inside the
# tag ends it (attribute values have theirs escaped), and every "<" opens a tag.
_TAG_WITH_ATTRIBUTES = re.compile(r"<[A-Za-z][A-Za-z0-9-]*\s[^>]*>")


# An attribute as clean_html writes it (html5ever's serialiser): its value,
# if any, in double quotes, with "&", '"', "<", ">" and U+00A0 escaped.
_ATTRIBUTE = re.compile(r'\s+([^\s=/>]+)(?:="([^"]*)")?')
_LINK_ATTRIBUTES = frozenset({"href", "src", "cite"})
_ESCAPES = str.maketrans({"&": "&amp;", '"': "&quot;", "<": "&lt;", ">": "&gt;", "\xa0": "&nbsp;"})


def _rewritten_tag(text: str, base_url: str) -> str:
    """A start tag (as clean_html writes it) with its link attributes resolved;
    the very same string when none changed."""
    out: list[str] = []
    last = 0
    for attribute in _ATTRIBUTE.finditer(text):
        name, value = attribute.group(1).lower(), attribute.group(2)
        if value is None or (name not in _LINK_ATTRIBUTES and name != "srcset"):
            continue
        link = unescape(value)
        if name == "srcset":
            new = resolved_srcset(link, base_url)
        else:
            # The link stripped (as lxml's rewrite_links does); same-page and
            # protocol-relative ones stay as they are, as when nothing else is resolved.
            stripped = link.strip()
            new = stripped if _ABSOLUTE_URL.match(stripped) else urljoin(base_url, stripped)
        if new != link:
            out += (text[last : attribute.start(2)], new.translate(_ESCAPES))
            last = attribute.end(2)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _absolutized_by_lxml(html: str, base_url: str) -> str:
    parts = lxml.html.fragments_fromstring(html, parser=_parser())
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(escape(part, quote=False))
            continue
        # Same-page links (#fn-1) stay relative so they work in an email too.
        part.rewrite_links(
            lambda link: link if _ABSOLUTE_URL.match(link) else urljoin(base_url, link),
            resolve_base_href=False,
        )
        for element in part.iter():
            srcset = element.get("srcset") if isinstance(element.tag, str) else None
            if srcset:
                element.set("srcset", resolved_srcset(srcset, base_url))
        out.append(lxml.html.tostring(part, encoding="unicode", with_tail=True))
    return "".join(out)


# In HTML as nh3 writes it, a ">" inside a tag ends it (attribute values
# have theirs escaped), and every <p> is closed (a <p> holds no <p>).
_PARAGRAPH = re.compile(r"<p(?:\s[^>]*)?>(.*?)</p>", re.S)
_ANY_TAG = re.compile(r"<[^>]*>")


def first_paragraph_text(html: str) -> str:
    """The plain text of the first non-empty paragraph (or of all the text) of
    ``html`` as ``clean_html`` writes it."""
    if not html.strip():
        return ""
    for paragraph in _PARAGRAPH.finditer(html):
        text = _text_of(paragraph.group(1))
        if text:
            return text
    return _text_of(html)


def _text_of(html: str) -> str:
    return unescape(_ANY_TAG.sub("", html)).strip()
