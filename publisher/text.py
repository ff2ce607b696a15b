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
# So are DEL and the C1 controls but NEL (U+0085, a line break): XML 1.0
# discourages them (2.2), XML 1.1 must escape them, in UTF-8 text they are
# mojibake, and a mail header turns each into a space (message.header_text).
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Remove the characters XML 1.0 forbids or discourages (controls but tab, LF, CR and NEL)."""
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


def visible_line(text: str) -> str:
    """``text`` as a title shows it: XML-safe, on one line, no edge whitespace.

    Control characters go first, so one between two spaces leaves one space,
    and a title made only of them is empty (not a post's title).
    """
    return one_line(xml_safe(text))


def summarize(text: str, limit: int = 280) -> str:
    """The start of ``text`` on one line, cut at a word boundary, with an ellipsis."""
    flat = one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"
