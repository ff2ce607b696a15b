"""The HTML reader: a saved or hand-written web page becomes one post.

The page may start with front matter (``---`` YAML or ``+++`` TOML) as
Jekyll's HTML posts do; the rest is parsed with lxml, which neither fetches
anything nor expands entities declared in a DTD.

Body: the first ``<article>``, else the first ``<main>``, else ``<body>``,
as its inner HTML (the children, not the wrapper). ``<script>``, ``<style>``
and ``<template>`` are removed wherever they are. When the body is the
whole ``<body>``, the page's chrome goes too: every ``<nav>``, and the
``<header>``, ``<footer>`` and ``<aside>`` elements that are direct children
of ``<body>``. The HTML is otherwise kept as written; the content stage
sanitises it.

Title, first that applies:

1. ``title`` from front matter or the sidecar;
2. the first ``<h1>`` inside the ``<article>``, when the body is one — a
   blog page's ``<title>`` usually carries the site's name as well;
3. ``<title>``, as written (a " | Site" suffix is kept: guessing which part
   is the site's name would cut real titles that contain " - ");
4. the first ``<h1>`` of the page.

An ``<h1>`` used as the title is removed from the body, and so is an
``<h1>`` whose text is exactly the title taken from front matter or
``<title>``, so the title is not shown twice.

Metadata from ``<meta name|property=… content=…>`` (names ignore case):
``description`` or Pelican's ``summary`` → summary, ``author``,
``keywords``, ``tags`` and ``category`` (comma-separated) and every
``article:tag`` → tags, Pelican's ``slug``, ``modified`` → updated and
``status`` (``draft``, ``hidden``: not published), ``article:published_time`` / ``date`` /
``dc.date`` (in that order of preference) → date, ``article:modified_time``
→ updated, ``og:image`` → image, and ``<link rel="canonical">`` → url.
Front matter wins over ``<meta>``, the sidecar over both; a ``<meta>`` whose
field is already given is not even checked. A bad value is a
``ContentError`` at the line of its element. Without a description the
summary is the text of the body's first paragraph.

    post = read(path.read_bytes(), "posts/page.html", ReadOptions(timezone=tz))
"""

from __future__ import annotations

import html
import re
from typing import Any

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from publisher.errors import ContentError
from publisher.model import Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.readers.frontmatter import read_document
from publisher.content.readers.metadata import Metadata, merge, parse_metadata, post_fields
from publisher.content.readers.shortcodes import convert_templates
from publisher.text import summarize, visible_line

NO_TITLE = "no title: give the page a <title> or an <h1>, or a title in front matter"
NO_TEXT = "no body text: the page's <article>, <main> or <body> has no text"

# <meta> name -> Metadata key; for date the first name present wins.
_DATE_NAMES = ("article:published_time", "date", "dc.date")
_SINGLE_NAMES = {
    "description": "summary",
    "summary": "summary",  # Pelican
    "author": "author",
    "article:modified_time": "updated",
    "modified": "updated",  # Pelican
    "slug": "slug",  # Pelican
    "og:image": "image",
}
# Comma-separated tag lists: the first of each name present counts.
_TAG_NAMES = ("keywords", "tags", "category")
_ALWAYS_DROPPED = ("script", "style", "template", "title")
_PAGE_CHROME = ("header", "footer", "aside")
# A body with no text is still a post if it shows something.
_MEDIA = ("img",)


# A doctype with an internal subset (``<!DOCTYPE html [ <!ENTITY …> ]>``):
# HTML has none, and libxml2 would leave its tail ("]>") in the body as text.
_INTERNAL_SUBSET = re.compile(r"\A(\s*<!DOCTYPE\s[^\[>]*)\[.*?\]\s*>", re.S | re.I)


def _without_internal_subset(body: str) -> str:
    """``body`` with a doctype's internal subset removed, its lines kept (for line numbers)."""
    match = _INTERNAL_SUBSET.match(body)
    if match is None:
        return body
    return match.group(1).rstrip() + ">" + "\n" * match.group(0).count("\n") + body[match.end() :]


def _parse(body: str, path: str, line: int) -> HtmlElement:
    # A parser per call: lxml parsers keep state and must not be shared across threads.
    # huge_tree: libxml2 otherwise cuts a text node at 10 MB, silently.
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, huge_tree=True)
    try:
        doc = lxml.html.document_fromstring(_without_internal_subset(body), parser=parser)
    except lxml.etree.ParserError:  # "Document is empty": front matter and nothing else
        raise ContentError(path, line, NO_TEXT) from None
    # libxml2 recovers from everything but a fatal error, after which it
    # stops reading and keeps what it had, silently: elements nested deeper
    # than it allows (2048 levels), say. Half a page is not published.
    fatal = next((e for e in parser.error_log if e.level == lxml.etree.ErrorLevels.FATAL), None)
    if fatal is not None:
        where = line - 1 + max(fatal.line, 1)
        if fatal.type_name == "ERR_RESOURCE_LIMIT":
            limit = re.search(r"depth in document: (\d+)", fatal.message or "")
            deeper = f"more than {limit.group(1)} levels deep" if limit else "too deeply"
            reason = f"elements nested {deeper} (column {fatal.column}); the page cannot be read whole"
        else:
            reason = f"the page cannot be read whole: {(fatal.message or '').strip()} (column {fatal.column})"
        raise ContentError(path, where, reason)
    return doc


def _line(element: HtmlElement | None, offset: int, default: int) -> int:
    if element is None or element.sourceline is None:
        return default
    return element.sourceline + offset


def _first(root: HtmlElement, *tags: str) -> HtmlElement | None:
    return next(root.iter(*tags), None)


def _text(element: HtmlElement) -> str:
    return visible_line(element.text_content())


def _first_h1(root: HtmlElement) -> HtmlElement | None:
    return next((h1 for h1 in root.iter("h1") if _text(h1)), None)


def _inside(element: HtmlElement, ancestor: HtmlElement) -> bool:
    return any(parent is ancestor for parent in element.iterancestors())


def _remove(element: HtmlElement) -> None:
    """Remove ``element`` and keep the text after it.

    Whitespace after it that would only double the whitespace before it goes
    too (it renders the same), so removals leave no runs of blank lines.
    """
    tail = element.tail
    if tail is not None and not tail.strip() and not any(a.tag == "pre" for a in element.iterancestors()):
        previous = element.getprevious()
        before = previous.tail if previous is not None else element.getparent().text
        if before and before[-1].isspace():
            element.tail = None
    element.drop_tree()


def _drop_title_heading(h1: HtmlElement) -> None:
    """Remove the heading used as the title, and a header it leaves empty."""
    parent = h1.getparent()
    _remove(h1)
    if parent is not None and parent.tag in ("header", "hgroup") and len(parent) == 0 and not _text(parent):
        _remove(parent)


def _inner_html(element: HtmlElement) -> str:
    parts = [html.escape(element.text, quote=False)] if element.text else []
    parts += [lxml.html.tostring(child, encoding="unicode", method="html") for child in element]
    return "".join(parts).strip()


def _page_title(doc: HtmlElement) -> str:
    # As browsers do: the first <title> in the document, which a stray
    # character before <html> can push into <body>; an SVG's <title> is not one.
    titles = doc.xpath("(//title[not(ancestor::svg or ancestor::math)])[1]")
    return visible_line(titles[0].text_content()) if titles else ""


def _meta_values(doc: HtmlElement, offset: int) -> dict[str, list[tuple[str, str, int]]]:
    """Each <meta>/<link rel=canonical> name (lower case) -> [(content, as written, line)]."""
    found: dict[str, list[tuple[str, str, int]]] = {}
    for meta in doc.iter("meta"):
        for attribute in ("name", "property"):
            name = (meta.get(attribute) or "").strip()
            content = (meta.get("content") or "").strip()
            if name and content:
                shown = f'<meta {attribute}="{name}">'
                found.setdefault(name.lower(), []).append((content, shown, _line(meta, offset, 1)))
                break
    for link in doc.iter("link"):
        href = (link.get("href") or "").strip()
        if href and "canonical" in (link.get("rel") or "").lower().split():
            found.setdefault("canonical", []).append((href, '<link rel="canonical">', _line(link, offset, 1)))
    return found


def _convert(key: str, value: Any, shown: str, line: int, path: str, options: ReadOptions) -> Metadata:
    """One field through the same checks as front matter, an error naming the element."""
    try:
        return parse_metadata({key: value}, path=path, text="", first_line=line, tz=options.timezone)
    except ContentError as exc:
        raise ContentError(path, line, f"{shown}: {exc.reason.removeprefix(f'{key}: ')}") from None


def _page_metadata(doc: HtmlElement, given: Metadata, offset: int, path: str, options: ReadOptions) -> Metadata:
    """Metadata from <meta> and <link>, for the fields ``given`` does not set."""
    found = _meta_values(doc, offset)
    unset = Metadata()
    result = Metadata()

    def take(key: str, value: Any, shown: str, line: int, as_key: str | None = None) -> None:
        nonlocal result
        if getattr(given, key) == getattr(unset, key):
            result = merge(result, _convert(as_key or key, value, shown, line, path, options))

    for name, key in _SINGLE_NAMES.items():
        if name in found:
            take(key, *found[name][0])
    for name in _DATE_NAMES:
        if name in found:
            take("date", *found[name][0])
            break
    if "canonical" in found:
        take("url", *found["canonical"][0], as_key="canonical_url")
    if "authors" in found:  # Pelican
        take("author", *found["authors"][0], as_key="authors")
    if "status" in found:  # Pelican: draft and hidden are not published
        take("draft", *found["status"][0], as_key="status")
    tags: list[str] = []
    for name in _TAG_NAMES:
        for content, _shown, _line_no in found.get(name, ())[:1]:
            tags += content.split(",")
    for content, _shown, _line_no in found.get("article:tag", ()):
        tags.append(content)
    if tags:
        first = next(found[name][0] for name in (*_TAG_NAMES, "article:tag") if name in found)
        take("tags", tags, first[1], first[2])
    return result


def _body_element(doc: HtmlElement) -> HtmlElement | None:
    # Not `a or b`: an lxml element with no children is false.
    for tag in ("article", "main"):
        found = _first(doc, tag)
        if found is not None:
            return found
    return doc.body


def _drop_chrome(body: HtmlElement, whole_page: bool) -> None:
    doomed = [el for el in body.iter(*_ALWAYS_DROPPED)]
    if whole_page:
        doomed += [el for el in body.iter("nav")]
        doomed += [el for el in body if el.tag in _PAGE_CHROME]
    for element in doomed:
        if element.getparent() is not None:  # not already gone with an ancestor
            _remove(element)


def _first_paragraph(body: HtmlElement) -> str:
    return next((text for p in body.iter("p") if (text := _text(p))), "")


def read(data: bytes, path: str, options: ReadOptions) -> Post:
    return read_result(data, path, options).posts[0]


def read_result(data: bytes, path: str, options: ReadOptions) -> ReadResult:
    """The post, with the warnings about its metadata."""
    document = read_document(data, path, options)
    given, body_line = document.meta, document.body_line
    offset = body_line - 1
    text, template_warnings = convert_templates(document.body, path, options.site_url, first_line=body_line)
    doc = _parse(text, path, body_line)
    meta = merge(_page_metadata(doc, given, offset, path, options), given)

    body = _body_element(doc)
    if body is None:  # a page of <head> only
        raise ContentError(path, body_line, NO_TEXT if (meta.title or _page_title(doc)) else NO_TITLE)
    article = body if body.tag == "article" else None

    h1: HtmlElement | None = None
    if meta.title:
        title = visible_line(meta.title)
    elif article is not None and (h1 := _first_h1(article)) is not None:
        title = _text(h1)
    elif title := _page_title(doc):
        pass
    elif (h1 := _first_h1(doc)) is not None:
        title = _text(h1)
    else:
        raise ContentError(path, _line(body, offset, body_line), NO_TITLE)
    if h1 is None:
        h1 = next((el for el in body.iter("h1") if _text(el) == title), None)

    _drop_chrome(body, whole_page=body.tag == "body")
    if h1 is not None and _inside(h1, body):
        _drop_title_heading(h1)

    if not _text(body) and _first(body, *_MEDIA) is None:
        raise ContentError(path, _line(body, offset, body_line), NO_TEXT)

    post = Post(
        source=path,
        title=title,
        content_html=_inner_html(body),
        summary=meta.summary or summarize(_first_paragraph(body)) or None,
        **post_fields(meta),
    )
    return ReadResult((post,), warnings=meta.warnings + template_warnings)
