"""Post metadata, uniform across formats: front matter and sidecar files.

Keys: ``title``, ``date``, ``updated``, ``id``, ``slug``, ``url``, ``tags``,
``categories``, ``author``, ``summary``, ``draft``, ``image``,
``canonical_url`` and, for link-blog posts, ``sources`` (a table of source
name to URL, used for the cite and continue-reading links).

Keys ignore case (``Draft`` is ``draft``), but one file may not give a key
twice in two spellings: which one was meant is not guessed. Any other key
is ignored with a warning (``path:line: unknown key 'Draft_'``), so front
matter written for Jekyll or Hugo still reads, and a misspelt key is seen.

Other tools' keys mean what they mean there: Jekyll's ``published: false``,
Pelican's ``status: draft`` or ``hidden`` and Eleventy's
``eleventyExcludeFromCollections: true`` or ``permalink: false`` hold a post
back like ``draft``; Hugo's ``publishDate`` is the date it is published,
``expiryDate`` when it stops being published, ``lastmod`` (Pelican's
``modified``) its update, ``description`` (Jekyll's ``excerpt``) its
summary, ``authors`` and ``category`` add to ``author`` and ``tags``;
``url`` and ``permalink`` may be site-relative (``/about/``). ``layout:
page`` or ``type: page`` marks a page, which is not a post. ``enclosure``
(also ``audio``, ``podcast``) is a media file: a URL, or a table with
``url``, ``type`` and ``length``. Keys those tools use for templates and
menus (``layout``, ``weight`` …) are read without a warning.

    meta = parse_metadata(raw, path="posts/a.md", text=front_matter_text, first_line=1, tz=ZoneInfo("UTC"))
    meta.date      # aware datetime, naive values taken in the site's time zone
    meta.warnings  # (ContentWarning("posts/a.md", 4, "unknown key 'layout'"),)
"""

from __future__ import annotations

import email.utils
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from publisher.errors import ContentError
from publisher.model import Author, Enclosure
from publisher.text import visible_line


@dataclass(frozen=True)
class ContentWarning:
    """Something in a file that is published but may not be what was meant."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Metadata:
    title: str | None = None
    date: datetime | None = None
    updated: datetime | None = None
    id: str | None = None
    slug: str | None = None
    url: str | None = None
    tags: tuple[str, ...] = ()
    author: Author | None = None
    summary: str | None = None
    draft: bool = False
    image: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    expires: datetime | None = None
    enclosures: tuple[Enclosure, ...] = ()
    # Why the file is no post ("a page (layout: page)"), when it is not.
    page: str | None = None
    aliases: tuple[str, ...] = ()
    warnings: tuple[ContentWarning, ...] = ()


def post_fields(meta: Metadata) -> dict[str, Any]:
    """The ``Post`` fields that come straight from metadata, as keywords."""
    return {
        "date": meta.date,
        "updated": meta.updated,
        "id": meta.id,
        "slug": meta.slug,
        "url": meta.url,
        "author": meta.author,
        "tags": meta.tags,
        "draft": meta.draft,
        "image": meta.image,
        "expires": meta.expires,
        "enclosures": meta.enclosures,
        "aliases": meta.aliases,
    }


def key_line(text: str, key: str, first_line: int = 1) -> int:
    """The line where ``key`` is set in a front-matter or TOML ``text``."""
    pattern = re.compile(rf"^\s*['\"]?{re.escape(key)}['\"]?\s*[:=]")
    for offset, line in enumerate(text.split("\n")):
        if pattern.match(line):
            return first_line + offset
    return first_line


def parse_date(value: Any, tz: ZoneInfo) -> datetime:
    """A timezone-aware datetime from a TOML/YAML value or a string.

    Accepts ISO 8601 (with or without a colon in the offset, ``Z``, a space
    instead of ``T``, a bare date) and RFC 2822. Naive values are taken in
    ``tz``. Raises ``ValueError`` with a readable reason.
    """
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime.combine(value, time())
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = datetime.fromisoformat(text)
        except ValueError as iso_error:
            try:
                result = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"{text!r} is not a date ({iso_error})") from None
    else:
        raise ValueError(f"expected a date, got {type(value).__name__}")
    if result.tzinfo is None:
        result = result.replace(tzinfo=tz)
    try:
        result.astimezone(timezone.utc)  # dates are stored in UTC: year 1 at +14:00 is not one
    except OverflowError:
        raise ValueError(f"{str(value).strip()!r} is out of range: it is not a date in UTC") from None
    return result


def _text(value: Any, key: str) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip()
    raise ValueError(f"{key} must be text, got {type(value).__name__}")


def _text_list(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part for part in value.split(",")]
    elif isinstance(value, list):
        items = [_text(item, key) for item in value]
    else:
        raise ValueError(f"{key} must be a list of text, got {type(value).__name__}")
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


def _url(value: Any, key: str) -> str:
    text = _text(value, key)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{key} must be an absolute http(s) URL, got {text!r}")
    return text


def _site_url(value: Any, key: str) -> str:
    """An absolute http(s) URL, or a path under the site's URL (``/about/``),
    which the content stage resolves against ``[site] url``."""
    text = _text(value, key)
    parts = urlsplit(text)
    if not parts.scheme and not parts.netloc and text.startswith("/") and not text.startswith("//"):
        return text
    return _url(text, key)


def _enclosure(value: Any) -> Enclosure:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict):
        raise ValueError("must be a URL or a table with url, type and length")
    given = {str(key).lower(): item for key, item in value.items()}
    extra = set(given) - {"url", "type", "length", "mime_type", "size_in_bytes", "duration"}
    if extra:
        raise ValueError(f"unknown keys: {', '.join(sorted(extra))}")
    url = _url(given.get("url"), "url") if isinstance(given.get("url"), str) else ""
    if not url:
        raise ValueError("needs an absolute http(s) url")
    kind = given.get("type") or given.get("mime_type") or mimetypes.guess_type(urlsplit(url).path)[0]
    if not isinstance(kind, str) or "/" not in kind:
        raise ValueError(f"needs a type such as audio/mpeg (none can be told from {url!r})")
    length = given.get("length", given.get("size_in_bytes", 0))
    if isinstance(length, str) and length.strip().isdigit():
        length = int(length)
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise ValueError(f"length must be a number of bytes, got {length!r}")
    return Enclosure(url, kind.strip(), length)


def _image(value: Any) -> str:
    """An image URL: absolute http(s), or relative to the post (resolved
    against its URL when published). No other scheme (``javascript:``,
    ``data:``, ``file:``) reaches a feed or an email."""
    text = _text(value, "image")
    parts = urlsplit(text)
    if parts.scheme and (parts.scheme.lower() not in ("http", "https") or not parts.netloc):
        raise ValueError(f"image must be an http(s) URL or a path relative to the post, got {text!r}")
    return text


def _author(value: Any) -> Author:
    if isinstance(value, str):
        name, addr = email.utils.parseaddr(value)
        if addr and "@" in addr:
            return Author(name=name or addr, email=addr)
        return Author(name=value.strip())
    if isinstance(value, dict):
        given = value
        value = {str(key).lower(): item for key, item in given.items()}
        if len(value) < len(given):
            raise ValueError("a key is given twice in two spellings (keys ignore case): keep one")
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        extra = set(value) - {"name", "email", "url"}
        if extra:
            raise ValueError(f"author has unknown keys: {', '.join(sorted(extra))}")
        return Author(name=value["name"].strip(), email=value.get("email"), url=value.get("url"))
    raise ValueError("author must be a name, 'Name <email>', or a table with name/email/url")


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _sources(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("sources must be a table of source name = URL")
    return {_text(name, "sources"): _url(url, f"sources.{name}") for name, url in value.items()}


def _aliases(value: Any) -> tuple[str, ...]:
    """Other URLs of the post: paths under the site's URL ("/2019/old/") or http(s) URLs."""
    found = []
    for alias in _text_list(value, "aliases"):
        alias = alias.strip()
        if "://" in alias:
            alias = _url(alias, "aliases")
        elif not alias or any(c in alias for c in "\\?#\x00") or ".." in alias.split("/"):
            raise ValueError(f"aliases: {alias!r} is not a path such as /2019/old-name/")
        found.append(alias)
    return tuple(dict.fromkeys(found))


# The keys publisher reads; any other is reported (and otherwise ignored).
KEYS = frozenset(
    {
        "title", "date", "updated", "id", "slug", "url", "canonical_url", "tags", "categories",
        "author", "summary", "draft", "image", "sources", "enclosure", "aliases",
    }
)  # fmt: skip

# Other tools' names for the same things: name -> publisher's key. Where a
# file gives both, publisher's own key wins.
ALIASES = {
    "description": "summary", "excerpt": "summary",  # Hugo, Jekyll
    "lastmod": "updated", "modified": "updated",  # Hugo, Pelican
    "category": "categories",  # Pelican
    "authors": "author",  # Hugo, Pelican
    "audio": "enclosure", "podcast": "enclosure",
}  # fmt: skip

# Keys of other tools that change nothing in a feed: read without a warning.
OTHER_TOOLS_KEYS = frozenset(
    {
        "layout", "type", "weight", "toc", "comments", "excerpt_separator", "lang",
        "translation", "translationkey", "keywords", "menu", "params", "series", "save_as",
        "template", "eleventynavigation", "sitemap", "outputs", "headless", "linktitle",
        "markup", "resources", "pagination", "permalink", "published", "status", "publishdate",
        "pubdate", "expirydate", "unpublishdate", "eleventyexcludefromcollections",
    }
)  # fmt: skip

# Pelican's statuses; "draft" and "hidden" are not published.
_STATUSES = {"published": False, "publish": False, "draft": True, "hidden": True}


def _authors(value: Any) -> Author:
    """The first of ``authors`` (a list, or Pelican's comma-separated text)."""
    if isinstance(value, str):
        value = [part for part in value.split(";" if ";" in value else ",") if part.strip()]
    if isinstance(value, list) and value:
        return _author(value[0])
    raise ValueError("authors must be a list of names")


def _boolish(value: Any) -> bool:
    return isinstance(value, bool) or (
        isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no")
    )


def _held_back(key: str, value: Any) -> bool:
    """Whether another tool's key says the post is not to be published."""
    if key == "published":  # Jekyll
        return not _bool(value, key)
    if key == "status":  # Pelican
        status = _text(value, key).lower()
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {', '.join(_STATUSES)}, got {status!r}")
        return _STATUSES[status]
    if key == "eleventyexcludefromcollections":
        return _bool(value, key)
    return False


def _other_tools(raw: dict[str, tuple[str, Any]], fields: dict[str, Any], tz: ZoneInfo) -> None:
    """Fill ``fields`` from other tools' keys (lower case -> (as written, value));
    a bad value raises ``ValueError`` naming the key as written."""
    for key, (shown, value) in raw.items():
        try:
            if key == "published" and not _boolish(value):
                fields.setdefault("publish_date", parse_date(value, tz))  # Hugo: a date
            elif key in ("published", "status", "eleventyexcludefromcollections"):
                if _held_back(key, value):
                    fields["draft"] = True
            elif key in ("publishdate", "pubdate"):
                fields["publish_date"] = parse_date(value, tz)
            elif key in ("expirydate", "unpublishdate"):
                fields["expires"] = parse_date(value, tz)
            elif key == "permalink":
                if value is False:  # Eleventy: not written out
                    fields["draft"] = True
                elif not isinstance(value, bool) and not any(c in str(value) for c in ":{%"):
                    # (a pattern such as /:year/:title/ or {{ page.fileSlug }} is the tool's, not a URL)
                    fields.setdefault("url", _site_url(value, "permalink"))
            elif key in ("layout", "type") and isinstance(value, str) and value.strip().lower() == "page":
                fields["page"] = f"a page ({shown}: {value.strip()}), not a post"
        except ValueError as exc:
            raise ValueError(f"{shown}: {exc}") from None


def _converters(tz: ZoneInfo) -> dict[str, Callable[[Any], Any]]:
    """Each key of publisher's own: the value as written -> the metadata (ValueError: why not)."""
    return {
        "title": lambda v: visible_line(_text(v, "title")),
        "date": lambda v: parse_date(v, tz),
        "updated": lambda v: parse_date(v, tz),
        "id": lambda v: _text(v, "id"),
        "slug": lambda v: _text(v, "slug"),
        "url": lambda v: _site_url(v, "url"),
        "canonical_url": lambda v: _url(v, "canonical_url"),
        "summary": lambda v: _text(v, "summary"),
        "draft": lambda v: _bool(v, "draft"),
        "image": _image,
        "author": _author,
        "sources": _sources,
        "enclosure": lambda v: tuple(_enclosure(item) for item in (v if isinstance(v, list) else [v])),
        "aliases": _aliases,
    }


def parse_metadata(
    raw: dict[str, Any], *, path: str, text: str, first_line: int, tz: ZoneInfo
) -> Metadata:
    """Check and convert ``raw``; the first bad key raises ``ContentError`` at its line.

    Keys are matched ignoring case. A key publisher reads given twice in two
    spellings (``draft`` and ``Draft``) is an error; an unknown key is a
    warning in ``Metadata.warnings``.
    """
    fields: dict[str, Any] = {}
    converters = _converters(tz)
    tags: list[str] = []
    spelt: dict[str, str] = {}  # key -> as written
    warnings: list[ContentWarning] = []
    aliased: dict[str, tuple[str, Any]] = {}
    others: dict[str, tuple[str, Any]] = {}
    for written, value in raw.items():
        # YAML keys may be numbers, dates or booleans (``on:``): never a key of ours.
        shown = str(written)
        key = shown.lower()
        if key in ALIASES or key in OTHER_TOOLS_KEYS:
            (aliased if key in ALIASES else others)[key] = (shown, value)
            continue
        if key not in KEYS:
            warnings.append(ContentWarning(path, key_line(text, shown, first_line), f"unknown key {shown!r}"))
            continue
        if key in spelt:
            first = key_line(text, spelt[key], first_line)
            raise ContentError(
                path,
                key_line(text, shown, first_line),
                f"{shown!r} repeats {spelt[key]!r} (line {first}): keys ignore case; keep one of them",
            )
        spelt[key] = shown
        try:
            if key in ("tags", "categories"):
                tags.extend(_empty_is_none(value, key))
            else:
                fields[key] = converters[key](value)
        except ValueError as exc:
            raise ContentError(path, key_line(text, shown, first_line), f"{shown}: {exc}") from None
    for key, (shown, value) in aliased.items():
        target = ALIASES[key]
        try:
            if target == "categories":
                tags.extend(_empty_is_none(value, key))
            elif target not in fields:
                fields[target] = _authors(value) if key == "authors" else converters[target](value)
        except ValueError as exc:
            raise ContentError(path, key_line(text, shown, first_line), f"{shown}: {exc}") from None
    try:
        _other_tools(others, fields, tz)
    except ValueError as exc:
        shown = str(exc).split(":", 1)[0]
        raise ContentError(path, key_line(text, shown, first_line), str(exc)) from None
    if "publish_date" in fields:
        # Hugo's publishDate: the post appears then, and is dated then in feeds.
        fields["date"] = fields.pop("publish_date")
    if "canonical_url" in fields:
        fields.setdefault("url", fields.pop("canonical_url"))
    fields.pop("canonical_url", None)
    if "enclosure" in fields:
        fields["enclosures"] = fields.pop("enclosure")
    if tags:
        fields["tags"] = tuple(dict.fromkeys(tags))
    return Metadata(**fields, warnings=tuple(warnings))


def _empty_is_none(value: Any, key: str) -> tuple[str, ...]:
    """Tags as text: an empty ``tags:`` (YAML null) is none, as in Jekyll."""
    return () if value is None else _text_list(value, key)


def merge(base: Metadata, overlay: Metadata) -> Metadata:
    """``overlay``'s set fields win over ``base``'s (sidecar over front matter);
    the warnings of both are kept, ``base``'s first."""
    defaults = Metadata()
    merged = {
        name: getattr(overlay, name)
        if getattr(overlay, name) != getattr(defaults, name)
        else getattr(base, name)
        for name in Metadata.__dataclass_fields__
    }
    merged["warnings"] = base.warnings + overlay.warnings
    return Metadata(**merged)
