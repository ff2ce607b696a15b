"""Plain-text rules shared by every stage: XML-safe text, slugs, summaries.

    >>> xml_safe("a\\x00b\\x1bc")
    'abc'
    >>> slugify("The U.S. has been speaking")
    'the-us-has-been-speaking'
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
import uuid
from urllib.parse import quote

# XML 1.0 allows tab, LF, CR, and these ranges; everything else (C0 controls,
# lone surrogates, U+FFFE/U+FFFF) makes lxml raise, so it is removed up front.
# So are DEL and the C1 controls but NEL (U+0085, a line break): XML 1.0
# discourages them (2.2), XML 1.1 must escape them, in UTF-8 text they are
# mojibake, and a mail header turns each into a space (message.header_text).
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Remove the characters XML 1.0 forbids or discourages (controls but tab, LF, CR and NEL)."""
    return _XML_FORBIDDEN.sub("", text)


_SLUG_DROP = "'’."  # dropped, not separators: "U.S." -> "us", "Israel's" -> "israels"
_SLUG_SEP = re.compile("[^a-z0-9\x80-\U0010ffff]+")
# Kept by ``distinct_slug``'s comparison key: the ASCII symbols (and, below,
# every Unicode symbol) a name can differ by alone: C++ and C#, 100%, A*.
_KEY_SYMBOLS = "#$%*+<=>@^`|~"
_KEY_SEP = re.compile("[^a-z0-9" + re.escape(_KEY_SYMBOLS) + "\x80-\U0010ffff]+")
# A slug is also a file name ("tags/<slug>_<hash>.atom.xml", and the
# writer's ".<name>.XXXXXXXX.tmp" beside it): most file systems allow 255
# bytes a name.
_SLUG_MAX_BYTES = 200


@functools.lru_cache(maxsize=4096)
def _ascii_form(char: str) -> str:
    """What the ASCII rule makes of one character: its compatibility
    decomposition's ASCII part ("é" -> "e", "ﬁ" -> "fi", "２" -> "2", "Ж" -> "")."""
    return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()


@functools.lru_cache(maxsize=4096)
def _native_letter(char: str) -> bool:
    """A letter or digit of a script other than Latin that has no ASCII form."""
    return (
        unicodedata.category(char)[0] in "LN"
        and not _ascii_form(char)
        and not unicodedata.name(char, "").startswith(("LATIN ", "MODIFIER LETTER "))
    )


def _slug_words(text: str, symbols: bool = False) -> str:
    """``slugify``'s slug before the cut; "" when nothing is left.

    With ``symbols`` (``distinct_slug``'s key), symbols are kept as if
    they were letters.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    native = not text.isascii() and any(_native_letter(char) for char in text if not char.isascii())
    if not native and not symbols:
        # The ASCII rule, as it always was.
        slug = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    else:
        parts = []
        for char in text:
            ascii_form = char if char.isascii() else _ascii_form(char)
            if char in _SLUG_DROP:
                continue
            if ascii_form:
                parts.append(ascii_form)
            elif symbols and unicodedata.category(char)[0] == "S":
                parts.append(char)
            elif native:
                # Letters, digits and the marks on them are words; the rest separates them.
                parts.append(char if unicodedata.category(char)[0] in "LNM" else " ")
            # Else the ASCII rule: what has no ASCII form is dropped.
        slug = unicodedata.normalize("NFC", "".join(parts).lower())
    for char in _SLUG_DROP:
        slug = slug.replace(char, "")
    return (_KEY_SEP if symbols else _SLUG_SEP).sub("-", slug).strip("-")


def slugify(text: str, max_length: int = 80) -> str:
    """A lower-case slug of ``text``, cut at a word boundary near ``max_length``.

    Two rules, chosen by the whole text:

    - Text whose letters and digits are all Latin (or have an ASCII form)
      gets the ASCII slug it always had, byte for byte, so published URLs
      and feed names never move: accents folded ("Café" -> "cafe"),
      apostrophes and dots dropped ("The U.S." -> "the-us"), any other run
      of ASCII punctuation or space a hyphen, and what has no ASCII form
      dropped (so "—", "«»" and "ß", "ø", "ł" vanish, as they always did).
    - Text with a letter or digit of another script (Cyrillic, Greek,
      Arabic, Hebrew, CJK, Devanagari…) keeps its letters, digits and their
      combining marks, lower-cased and NFC-normalised, as WordPress and
      Hugo do: "Война и мир" -> "война-и-мир", "東京タワー" -> "東京タワー".
      Latin letters in it are still folded ("Café Москва" -> "cafe-москва"),
      apostrophes and dots still dropped, and every other character
      (punctuation, symbols, spaces of any script) separates words.

    A slug has no edge or double hyphens and at most ``max_length``
    characters and 200 bytes of UTF-8 (it names files too). Text that
    leaves nothing ("🎉", "???") gives "post". Where a slug goes into a URL,
    its non-ASCII characters are percent-encoded (``uri_path``).
    """
    return _cut(_slug_words(text), max_length) or "post"


def _cut(slug: str, max_length: int) -> str:
    if len(slug) <= max_length and (slug.isascii() or len(slug.encode()) <= _SLUG_MAX_BYTES):
        return slug
    cut = slug[:max_length]
    while len(cut.encode()) > _SLUG_MAX_BYTES:
        cut = cut[:-1]
    return cut.rsplit("-", 1)[0]


def distinct_slug(name: str, max_length: int = 80) -> str:
    """The slug of a tag or author name for its feed's file name: the same
    for every build, and different for different names.

    Usually ``slugify(name)``. But a slug drops what it cannot spell, so
    "C++", "C#" and "C" would all be "c", and a name of only punctuation or
    emoji would be nothing. So the slug is compared with a key made by the
    same rule, uncut, that also keeps symbols (``+ # % * @ $ < = > | ~ ^``,
    "♯", "€", emoji…). When they are equal the slug is the name's; when
    not (a symbol dropped, the slug cut or empty) an underscore, which no
    slug holds, and eight hex digits of the key's SHA-256 follow it (of the
    name itself when even the key is empty: "!!!" is not "???"):

        >>> distinct_slug("Gaza"), distinct_slug("C"), distinct_slug("C++"), distinct_slug("C#")
        ('gaza', 'c', 'c_cedb1bac', 'c_951a4d36')
        >>> distinct_slug("🎉")
        '_6146299c'

    Why a hash of the name, rather than numbering the names that collide
    (c, c-2) or a suffix only while two names share a slug: either makes a
    feed's URL depend on which other tags exist and which post was read
    first, so adding a post tagged "C#" would move the subscribers of "C++"
    to another feed. The hash needs nothing but the name. Names with the
    same key are one tag spelled differently and share one feed: they differ
    only in case, accents, apostrophes and dots, or the separators between
    words ("Gaza Strip", "gaza-strip"; "Café", "cafe"), or in the letters
    the ASCII rule drops ("Straße", "Strae"), which keeps every Latin feed
    name that was not merged with another as it was.
    """
    slug = _cut(_slug_words(name), max_length)
    key = _slug_words(name, symbols=True)
    if key and key == slug:
        return slug
    # Nothing but punctuation: the name itself tells "!!!" from "???".
    key = key or "\x00" + " ".join(unicodedata.normalize("NFC", name).lower().split())
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}_{digest}"


_NON_ASCII = re.compile("[^\x00-\x7f]+")


def uri_path(path: str) -> str:
    """``path`` with its non-ASCII characters percent-encoded as UTF-8
    (RFC 3987's IRI to URI mapping); ASCII is left as it is.

        >>> uri_path("2024/05/война-и-мир/")
        '2024/05/%D0%B2%D0%BE%D0%B9%D0%BD%D0%B0-%D0%B8-%D0%BC%D0%B8%D1%80/'
    """
    if path.isascii():
        return path
    return _NON_ASCII.sub(lambda match: quote(match[0], safe="", errors="surrogatepass"), path)


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


# An absolute IRI (RFC 3987) as far as a feed reader cares: a scheme, then
# none of the characters an IRI never holds (spaces, <, >, quotes, ...).
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")


def iri_id(given: str, key: str) -> str:
    """``given`` if it is an absolute IRI, as an Atom id must be (RFC 4287);
    else a name-based ``urn:uuid:`` made from ``key``: the same on every
    build, and distinct for distinct keys.

        >>> iri_id("tag:example.org,2024:1", "x")
        'tag:example.org,2024:1'
        >>> iri_id("1", "https://example.org/#1")
        'urn:uuid:b893e4b1-c8b2-5de9-bf4d-9efb9351e0e2'
    """
    if _ABSOLUTE_IRI.fullmatch(given):
        return given
    return uuid.uuid5(uuid.NAMESPACE_URL, key).urn


# Share-button and plugin lines that WordPress themes append to a post's
# text; a whole paragraph equal to one of these (ignoring case) is dropped.
DEFAULT_BOILERPLATE: tuple[str, ...] = (
    "Print Friendly, PDF & Email",
    "Print Friendly",
    "Print Friendly and PDF",
    "Share this:",
    "Like this:",
    "Like Loading...",
    "Like Loading…",
    "Related",
    "Click to share on Twitter (Opens in new window)",
    "Click to share on Facebook (Opens in new window)",
    "Click to email this to a friend (Opens in new window)",
    "Click to print (Opens in new window)",
)


def mask_email(address: str) -> str:
    """An address as logs show it: enough to tell addresses apart while
    reading a log, not enough to mail anyone (``a***@e***.org``)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    host, dot, suffix = domain.rpartition(".")
    shown_domain = f"{host[:1]}***{dot}{suffix}" if dot else f"{domain[:1]}***"
    return f"{local[:1]}***@{shown_domain}"
