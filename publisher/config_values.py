"""The rules a value in ``publisher.toml`` must follow: one parser per kind
of value, turning the value as written into the setting or raising
``_Invalid`` with the rule it broke. They belong to ``publisher.config``,
which declares every setting with one of them (the names keep their
underscore: nothing else uses them).

    _port(8080)        # 8080
    _port(0)           # _Invalid: must be a port number from 1 to 65535 (got 0)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.dates import check_language
from publisher.model import Author
from publisher.schedules import parse_duration, parse_schedule


@dataclass(frozen=True)
class FeedSource:
    """An existing feed read as a source of posts: a URL or a local file."""

    name: str
    url: str | None = None
    path: Path | None = None



# --- parsers: a value as written -> the setting, or _Invalid saying the rule --


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


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false (got {value!r})")
    return value


def _number(kinds: type | tuple[type, ...], bad: Callable[[Any], bool], rule: str) -> Callable[[Any], Any]:
    """A number of ``kinds`` (never true or false) that is not ``bad``; a float when floats are allowed."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, kinds) or bad(value):
            raise _Invalid(f"must be {rule} (got {value!r})")
        return value if kinds is int else float(value)

    return convert


_positive_int = _number(int, lambda n: n < 1, "a whole number of at least 1")
_count = _number(int, lambda n: n < 0, "a whole number, 0 or more")
_port = _number(int, lambda n: not 0 < n < 65536, "a port number from 1 to 65535")
_positive_number = _number((int, float), lambda n: n <= 0, "a number greater than 0")
_rate = _number((int, float), lambda n: n < 0, "messages per second, 0 for unlimited")


def _as_written(parse: Callable[[str], Any]) -> Callable[[Any], str]:
    """A value in a grammar of ``publisher.schedules`` (a schedule, a duration), kept as written."""

    def convert(value: Any) -> str:
        try:
            parse(_nonempty(value))
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        return value.strip()

    return convert


_schedule = _as_written(parse_schedule)  # "daily at 07:00"
_duration = _as_written(parse_duration)  # "12 hours"


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"must be a list of strings (got {value!r})")
    return tuple(value)


def _permalink(value: Any) -> str:
    text = _nonempty(value)
    try:
        text.format(year="2024", month="01", day="01", slug="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise _Invalid(
            f"may use only {{year}}, {{month}}, {{day}} and {{slug}} (got {value!r}: {exc})"
        ) from None
    if "{slug}" not in text:
        raise _Invalid(f"must contain {{slug}} so each post has its own URL (got {value!r})")
    if urlsplit(text).scheme or text.startswith("/"):
        raise _Invalid(f"must be relative to [site] url (got {value!r})")
    return text


def _feed_sources(value: Any) -> tuple[FeedSource, ...]:
    if not isinstance(value, list):
        raise _Invalid('must be an array of tables: [[content.feeds]] url = "https://…/feed.xml"')
    sources = []
    for number, table in enumerate(value, 1):
        where = f"entry {number}"
        if not isinstance(table, dict):
            raise _Invalid(f"{where}: must be a table with url or path")
        unknown = sorted(set(table) - {"url", "path", "name"})
        if unknown:
            raise _Invalid(f"{where}: unknown keys {', '.join(unknown)} (known: url, path, name)")
        if ("url" in table) == ("path" in table):
            raise _Invalid(f"{where}: needs exactly one of url or path")
        try:
            url = _absolute_url(table["url"]) if "url" in table else None
            path = Path(_nonempty(table["path"])) if "path" in table else None
            name = _nonempty(table.get("name", url or str(path)))
        except _Invalid as exc:
            raise _Invalid(f"{where}: {exc}") from None
        sources.append(FeedSource(name=name, url=url, path=path))
    return tuple(sources)


def _template(value: Any) -> str:
    text = _nonempty(value)
    if "\n" in text:
        raise _Invalid("must be on one line")
    return text


def _proxies(value: Any) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``) of the reverse proxies in front of ``serve``."""
    entries = _string_list(value)
    for entry in entries:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise _Invalid(
                f"must be IP addresses or networks such as '127.0.0.1' or '10.0.0.0/8' (got {entry!r})"
            ) from None
    return tuple(entry.strip() for entry in entries)


def _address(value: Any) -> str:
    text = _nonempty(value)
    if "\n" in text or "\r" in text:
        raise _Invalid("must be on one line")
    name, addr = parseaddr(text)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", addr):
        raise _Invalid(f"must be an address such as 'Site <news@example.org>' (got {value!r})")
    return text


def _choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options:
            raise _Invalid(f"must be one of {', '.join(options)} (got {value!r})")
        return value

    return convert


def _env_name(value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", _text(value)):
        raise _Invalid(f"must be the name of an environment variable (got {value!r})")
    return value


# The longest token ``publisher.mail.bounces.verp`` puts after "+" in an
# envelope sender: the bounce address's local part must leave room for it
# within the 64 octets RFC 5321 allows.
VERP_TOKEN_MAX = 30
LOCAL_PART_MAX = 64


def _bounce_address(value: Any) -> str:
    """A plain address (no name) whose local part leaves room for a VERP token."""
    text = _nonempty(value)
    if "+" in text.rpartition("@")[0]:
        raise _Invalid(f"must not contain '+': the token follows it (got {value!r})")
    match = re.fullmatch(r"([A-Za-z0-9!#$%&'*/=?^_`{|}~.-]+)@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)", text)
    if not match:
        raise _Invalid(f"must be a plain address such as 'bounces@example.org' (got {value!r})")
    local = match.group(1)
    room = LOCAL_PART_MAX - VERP_TOKEN_MAX - 1
    if len(local) > room:
        raise _Invalid(
            f"the part before the @ must be at most {room} characters so that it, '+' and the "
            f"{VERP_TOKEN_MAX}-character token fit in 64 (got {len(local)}: {local!r})"
        )
    return text


def _folder_name(value: Any) -> str:
    text = _nonempty(value)
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_. -]{0,62}", text) or ".." in text:
        raise _Invalid(f"must be a folder name of letters, digits, '.', '_', '-' and spaces (got {value!r})")
    return text
