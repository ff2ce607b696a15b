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
from html import escape
from urllib.parse import urljoin

import lxml.html
import nh3

from publisher.text import xml_safe

_TAGS = set(nh3.ALLOWED_TAGS) | {"figure", "figcaption", "cite", "picture", "source", "time", "section"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("*", set()).update({"class", "id", "lang", "dir", "title"})
_ATTRIBUTES.setdefault("blockquote", set()).add("cite")
_ATTRIBUTES.setdefault("a", set()).update({"href", "hreflang"})
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height", "srcset", "loading"})
_ATTRIBUTES.setdefault("source", set()).update({"srcset", "media", "type"})
_ATTRIBUTES.setdefault("time", set()).add("datetime")
_SCHEMES = {"http", "https", "mailto", "tel"}


def clean_html(html: str) -> str:
    """``html`` with everything unsafe removed, and XML-safe."""
    return nh3.clean(
        xml_safe(html),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel=None,
    )




def _parser() -> lxml.html.HTMLParser:
    # huge_tree: libxml2 otherwise cuts a text node at 10 MB, silently.
    # One per call: lxml parsers are not safe to share between threads.
    return lxml.html.HTMLParser(huge_tree=True, no_network=True)

_RELATIVE = re.compile(r"""\s(?:href|src)\s*=\s*["']?(?![a-z][a-z0-9+.-]*:|#|//)""", re.I)


def absolutize(html: str, base_url: str) -> str:
    """``html`` with relative ``href`` and ``src`` URLs resolved against ``base_url``.

    HTML without relative URLs is returned as it is, byte for byte.
    """
    if not _RELATIVE.search(html):
        return html
    parts = lxml.html.fragments_fromstring(html, parser=_parser())
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(escape(part, quote=False))
            continue
        # Same-page links (#fn-1) stay relative so they work in an email too.
        part.rewrite_links(
            lambda link: link if link.startswith("#") else urljoin(base_url, link),
            resolve_base_href=False,
        )
        out.append(lxml.html.tostring(part, encoding="unicode", with_tail=True))
    return "".join(out)


def first_paragraph_text(html: str) -> str:
    """The plain text of the first non-empty paragraph (or of all the text)."""
    if not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html, create_parent="div", parser=_parser())
    for paragraph in root.iter("p"):
        text = paragraph.text_content().strip()
        if text:
            return text
    return root.text_content().strip()
