"""HTML sanitising for post bodies: what reaches a feed or an email is safe.

Scripts, event handlers, ``javascript:`` URLs and unknown elements are
removed; ordinary markup survives. ``nh3`` (Rust's ammonia) does the work.

    clean_html('<p onclick="x()">Hi<script>bad()</script></p>')  # '<p>Hi</p>'
"""

from __future__ import annotations

import nh3

from publisher.text import xml_safe

_TAGS = set(nh3.ALLOWED_TAGS) | {"figure", "figcaption", "cite", "picture", "source", "time"}
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
