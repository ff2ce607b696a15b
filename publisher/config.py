"""The configuration: ``publisher.toml`` read once into frozen settings.

Every path in the file is relative to the file. Every problem is reported at
once, each naming the key, the value, the rule and the file:

    config = load_config(Path("publisher.toml"))
    config.feeds.out        # absolute Path of the feeds folder
    # ConfigError: publisher.toml: [site] url: must be an absolute http(s) URL (got 'example.org')

This is the only module that reads the environment (secrets are named here
by the variable that holds them, never stored in the file).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.errors import ConfigError
from publisher.model import Author, SiteInfo
from publisher.readers import DEFAULT_BOILERPLATE
from publisher.readers.frontmatter import toml_error

DEFAULT_PERMALINK = "{year}/{month}/{slug}/"


@dataclass(frozen=True)
class SiteSettings:
    title: str
    url: str
    description: str
    language: str
    timezone: ZoneInfo
    author: Author


@dataclass(frozen=True)
class FeedSource:
    """An existing feed read as a source of posts: a URL or a local file."""

    name: str
    url: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class ContentSettings:
    paths: tuple[Path, ...]
    permalink: str
    boilerplate: tuple[str, ...]
    feeds: tuple[FeedSource, ...] = ()
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 20_000_000


@dataclass(frozen=True)
class FeedSettings:
    out: Path
    url: str
    items: int
    full_content: bool
    hub: str | None = None
    stylesheet: bool = False


@dataclass(frozen=True)
class StateSettings:
    path: Path


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    site: SiteSettings
    content: ContentSettings
    feeds: FeedSettings
    state: StateSettings

    def relative(self, path: Path) -> str:
        """``path`` as the user sees it: relative to the config's folder when inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def site_info(self) -> SiteInfo:
        return SiteInfo(
            title=self.site.title,
            url=self.site.url,
            description=self.site.description,
            language=self.site.language,
            author=self.site.author,
            feeds_url=self.feeds.url,
        )


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


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(f"must be a whole number of at least 1 (got {value!r})")
    return value


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


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _Invalid(f"must be a number greater than 0 (got {value!r})")
    return float(value)


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


# section -> key -> (converter, default or _REQUIRED)
_REQUIRED = object()
_SCHEMA: dict[str, dict[str, tuple[Callable[[Any], Any], Any]]] = {
    "site": {
        "title": (_nonempty, _REQUIRED),
        "url": (_http_url, _REQUIRED),
        "description": (_text, ""),
        "language": (_language, "en"),
        "timezone": (_timezone, "UTC"),
        "author": (_author, None),
    },
    "content": {
        "paths": (_string_list, ["posts"]),
        "permalink": (_permalink, DEFAULT_PERMALINK),
        "boilerplate": (_string_list, list(DEFAULT_BOILERPLATE)),
        "feeds": (_feed_sources, []),
        "fetch_timeout": (_positive_number, 20),
        "fetch_max_bytes": (_positive_int, 20_000_000),
    },
    "feeds": {
        "out": (_nonempty, "feeds"),
        "url": (_http_url, None),
        "items": (_positive_int, 20),
        "full_content": (_bool, True),
        "hub": (_absolute_url, None),
        "stylesheet": (_bool, False),
    },
    "state": {
        "path": (_nonempty, ".publisher/state.db"),
    },
}


def _read_sections(raw: dict[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {}
    for section in raw:
        if section not in _SCHEMA:
            problems.append(f"[{section}]: unknown section (known: {', '.join(_SCHEMA)})")
    for section, keys in _SCHEMA.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            problems.append(f"{section}: must be a table [{section}]")
            table = {}
        for key in table:
            if key not in keys:
                problems.append(f"[{section}] {key}: unknown key (known: {', '.join(keys)})")
        values[section] = {}
        for key, (convert, default) in keys.items():
            if key not in table:
                if default is _REQUIRED:
                    problems.append(f"[{section}] {key}: required, but missing")
                    continue
                values[section][key] = convert(default) if default is not None else None
                continue
            try:
                values[section][key] = convert(table[key])
            except _Invalid as exc:
                problems.append(f"[{section}] {key}: {exc}")
    return values


def load_config(path: Path) -> Config:
    """Read and check the config at ``path``; raises ``ConfigError`` listing every problem."""
    shown = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(shown, ["no such file (create a site with `publisher init DIR`)"]) from None
    except OSError as exc:
        raise ConfigError(shown, [f"cannot be read: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8-sig")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(shown, ["is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        line, reason = toml_error(exc, text)
        raise ConfigError(f"{shown}:{line}", [f"not valid TOML: {reason}"]) from None
    problems: list[str] = []
    values = _read_sections(raw, problems)
    if problems:
        raise ConfigError(shown, problems)

    root = path.resolve().parent
    site = values["site"]
    feeds = values["feeds"]
    content = values["content"]
    out = root / feeds["out"]
    author = site["author"] or Author(name=site["title"])
    return Config(
        path=path,
        root=root,
        site=SiteSettings(
            title=site["title"],
            url=site["url"],
            description=site["description"],
            language=site["language"],
            timezone=site["timezone"],
            author=author,
        ),
        content=ContentSettings(
            paths=tuple(root / p for p in content["paths"]),
            permalink=content["permalink"],
            boilerplate=content["boilerplate"],
            feeds=tuple(
                FeedSource(s.name, s.url, root / s.path if s.path else None) for s in content["feeds"]
            ),
            fetch_timeout=content["fetch_timeout"],
            fetch_max_bytes=content["fetch_max_bytes"],
        ),
        feeds=FeedSettings(
            out=out,
            url=feeds["url"] or urljoin(site["url"], out.name + "/"),
            items=feeds["items"],
            full_content=feeds["full_content"],
            hub=feeds["hub"],
            stylesheet=feeds["stylesheet"],
        ),
        state=StateSettings(path=root / values["state"]["path"]),
    )
