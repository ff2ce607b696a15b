"""Plain-text rules shared by every stage: XML-safe text, slugs, summaries.

    >>> xml_safe("a\\x00b\\x1bc")
    'abc'
    >>> slugify("The U.S. has been speaking")
    'the-us-has-been-speaking'
"""

from __future__ import annotations

import re
import unicodedata

# XML 1.0 allows tab, LF, CR, and these ranges; everything else (C0 controls,
# lone surrogates, U+FFFE/U+FFFF) makes lxml raise, so it is removed up front.
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Remove the characters XML 1.0 forbids."""
    return _XML_FORBIDDEN.sub("", text)


_SLUG_DROP = re.compile(r"['’.]")
_SLUG_SEP = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 80) -> str:
    """A lower-case ASCII slug, cut at a word boundary near ``max_length``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_SEP.sub("-", _SLUG_DROP.sub("", ascii_text.lower())).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0]
    return slug or "post"


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


def summarize(text: str, limit: int = 280) -> str:
    """The start of ``text`` on one line, cut at a word boundary, with an ellipsis."""
    flat = one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"
