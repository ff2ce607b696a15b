"""The values of ``publisher.toml``: each parser takes a value as written and
gives the setting, or raises ``Invalid`` saying the rule it broke.

    port(8080)        # 8080
    port(0)           # Invalid: must be a port number from 1 to 65535 (got 0)

``publisher.config`` declares which key is read by which.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.dates import check_language
from publisher.model import Author


class Invalid(ValueError):
    """A value broke its rule; the message says the rule."""


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string (got {type(value).__name__} {value!r})")
    return value


def nonempty(value: Any) -> str:
    if not text(value).strip():
        raise Invalid("must not be empty")
    return value.strip()


def absolute_url(value: Any) -> str:
    parts = urlsplit(text(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"must be an absolute http(s) URL (got {value!r})")
    return value


def http_url(value: Any) -> str:
    """An absolute URL of a folder (site, feeds): always ends in a slash."""
    value = absolute_url(value)
    return value if value.endswith("/") else value + "/"


def timezone(value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(nonempty(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"must be an IANA time zone such as 'Europe/London' (got {value!r})") from None


def language(value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", text(value)):
        raise Invalid(f"must be a language tag such as 'en' or 'pt-BR' (got {value!r})")
    try:
        check_language(value)
    except ValueError as exc:
        # Dates would otherwise be shown in English without a word.
        raise Invalid(
            f"must be a language dates can be written in, such as 'en', 'fr', 'de' or 'pt-BR' "
            f"(got {value!r}: {exc})"
        ) from None
    return value


def author(value: Any) -> Author:
    if not isinstance(value, dict):
        raise Invalid('must be a table such as { name = "Editor", email = "editor@example.org" }')
    unknown = sorted(set(value) - {"name", "email", "url"})
    if unknown:
        raise Invalid(f"unknown keys {', '.join(unknown)} (known: name, email, url)")
    name = nonempty(value.get("name", ""))
    email = value.get("email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text(email)):
        raise Invalid(f"email must be an address such as editor@example.org (got {email!r})")
    url = value.get("url")
    return Author(name=name, email=email, url=http_url(url) if url is not None else None)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false (got {value!r})")
    return value


def number(kinds: type | tuple[type, ...], bad: Callable[[Any], bool], rule: str) -> Callable[[Any], Any]:
    """A number of ``kinds`` (never true or false) that is not ``bad``; a float when floats are allowed."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, kinds) or bad(value):
            raise Invalid(f"must be {rule} (got {value!r})")
        return value if kinds is int else float(value)

    return convert


positive_int = number(int, lambda n: n < 1, "a whole number of at least 1")
count = number(int, lambda n: n < 0, "a whole number, 0 or more")
port = number(int, lambda n: not 0 < n < 65536, "a port number from 1 to 65535")
positive_number = number((int, float), lambda n: n <= 0, "a number greater than 0")
rate = number((int, float), lambda n: n < 0, "messages per second, 0 for unlimited")
