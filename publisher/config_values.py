"""The basic values of ``publisher.toml`` (text, URLs, the site's zone,
language and author): each parser takes a value as written and returns the
setting, or raises ``_Invalid`` saying the rule. ``publisher.config`` builds
its settings from these and its own parsers.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.dates import check_language
from publisher.model import Author


class _Invalid(ValueError):
    """A value broke its rule; the message says the rule."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string (got {type(value).__name__} {value!r})")
    return value


def _nonempty(value: Any) -> str:
    if not _text(value).strip():
        raise _Invalid("must not be empty")
    return value.strip()


def _absolute_url(value: Any) -> str:
    parts = urlsplit(_text(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Invalid(f"must be an absolute http(s) URL (got {value!r})")
    return value


def _http_url(value: Any) -> str:
    """An absolute URL of a folder (site, feeds): always ends in a slash."""
    value = _absolute_url(value)
    return value if value.endswith("/") else value + "/"


def _timezone(value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(_nonempty(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid(f"must be an IANA time zone such as 'Europe/London' (got {value!r})") from None


def _language(value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", _text(value)):
        raise _Invalid(f"must be a language tag such as 'en' or 'pt-BR' (got {value!r})")
    try:
        check_language(value)
    except ValueError as exc:
        # Dates would otherwise be shown in English without a word.
        raise _Invalid(
            f"must be a language dates can be written in, such as 'en', 'fr', 'de' or 'pt-BR' "
            f"(got {value!r}: {exc})"
        ) from None
    return value


def _author(value: Any) -> Author:
    if not isinstance(value, dict):
        raise _Invalid('must be a table such as { name = "Editor", email = "editor@example.org" }')
    unknown = sorted(set(value) - {"name", "email", "url"})
    if unknown:
        raise _Invalid(f"unknown keys {', '.join(unknown)} (known: name, email, url)")
    name = _nonempty(value.get("name", ""))
    email = value.get("email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", _text(email)):
        raise _Invalid(f"email must be an address such as editor@example.org (got {email!r})")
    url = value.get("url")
    return Author(name=name, email=email, url=_http_url(url) if url is not None else None)
