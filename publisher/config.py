"""The configuration: ``publisher.toml`` read once into frozen settings.

Every path in the file is relative to the file. Every problem is reported at
once, each naming the key, the value, the rule and the file:

    config = load_config(Path("publisher.toml"))
    config.feeds.out        # absolute Path of the feeds folder
    # ConfigError: publisher.toml: [site] url: must be an absolute http(s) URL (got 'example.org')

Each setting is declared once, as a field of its section's frozen dataclass:
``setting(parser, default as written in the file, doc)``; ``section(cls)`` is
a table of ``cls``'s settings. ``load_config`` walks those fields, then fills
in what follows from other settings (``_derive``: the sender, the secrets, …).

This is the only module that reads the environment (secrets are named here
by the variable that holds them, never stored in the file).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from email.utils import parseaddr
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from publisher.config_values import (
    Invalid as _Invalid,
    text as _text,
    nonempty as _nonempty,
    absolute_url as _absolute_url,
    http_url as _http_url,
    timezone as _timezone,
    language as _language,
    author as _author,
    boolean as _bool,
    positive_int as _positive_int,
    count as _count,
    port as _port,
    positive_number as _positive_number,
    rate as _rate,
)
from publisher.errors import ConfigError, toml_error
from publisher.model import Author, DigestList, SiteInfo
from publisher.text import DEFAULT_BOILERPLATE
from publisher.schedules import parse_duration, parse_schedule

DEFAULT_PERMALINK = "{year}/{month}/{slug}/"


# --- parsers: a value as written -> the setting, or _Invalid saying the rule --


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


# --- declaring settings -------------------------------------------------------

_REQUIRED = MISSING  # a setting without a default


@dataclass(frozen=True)
class _Setting:
    """How one key is read: ``parse`` checks and converts the value as written;
    ``default`` is as it would be written (None: unset; ``_REQUIRED``: none)."""

    parse: Callable[[Any], Any]
    default: Any = _REQUIRED
    doc: str = ""
    key: str | None = None  # the key in the file, when it is not the attribute's name
    relative: bool = False  # a path (or paths) under the config's folder


def setting(parse: Callable[[Any], Any], default: Any = _REQUIRED, doc: str = "", **how: Any) -> Any:
    """A field read from its section's table (see ``_Setting`` for ``key`` and ``relative``)."""
    return field(metadata={"setting": _Setting(parse, default, doc, **how)})


def section(cls: type, doc: str = "", *, optional: bool = False, named: bool = False) -> Any:
    """A field read from a table of ``cls``'s settings: None without the table
    when ``optional``; ``named``: a table of such tables by name (``[lists.NAME]``)."""
    return field(metadata={"section": cls, "doc": doc, "optional": optional, "named": named})


# --- the settings ----------------------------------------------------------------


@dataclass(frozen=True)
class SiteSettings:
    """``[site]``: what the site is called, where it is and who writes it."""

    title: str = setting(_nonempty)
    url: str = setting(_http_url, doc="absolute http(s); posts and feeds link under it")
    description: str = setting(_text, "")
    language: str = setting(_language, "en", "a BCP 47 tag Babel knows (dates in emails and pages)")
    timezone: ZoneInfo = setting(_timezone, "UTC", "an IANA name; naive dates are read in it")
    author: Author = setting(_author, None, "{ name, email, url }; unset: the site title as name")


@dataclass(frozen=True)
class FeedSource:
    """An existing feed read as a source of posts: a URL or a local file."""

    name: str
    url: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class ContentSettings:
    """``[content]``: where posts come from and how their URLs are made."""

    paths: tuple[Path, ...] = setting(_string_list, ["posts"], "folders (searched recursively) and files", relative=True)
    permalink: str = setting(_permalink, DEFAULT_PERMALINK, "a post's URL under [site] url")
    boilerplate: tuple[str, ...] = setting(_string_list, list(DEFAULT_BOILERPLATE), "paragraphs dropped from posts")
    feeds: tuple[FeedSource, ...] = setting(_feed_sources, [], "[[content.feeds]]: feeds as sources", relative=True)
    fetch_timeout: float = setting(_positive_number, 20, "seconds, for [[content.feeds]] URLs")
    fetch_max_bytes: int = setting(_positive_int, 20_000_000, "a larger feed is refused, never read whole")
    static: tuple[Path, ...] = setting(_string_list, [], "folders copied as they are to the pages", relative=True)


@dataclass(frozen=True)
class FeedSettings:
    """``[feeds]``: the feed files."""

    out: Path = setting(_nonempty, "feeds", "the output folder", relative=True)
    url: str = setting(_http_url, None, "where out is served; unset: [site] url + out's name")
    items: int = setting(_positive_int, 20, "the newest N posts in each feed")
    full_content: bool = setting(_bool, True, "false: summaries only")
    hub: str | None = setting(_absolute_url, None, "a WebSub hub, pinged when feeds change")
    stylesheet: bool = setting(_bool, False, "true: write feed.xsl and reference it")


@dataclass(frozen=True)
class PagesSettings:
    """``[pages]``: the web pages of the site (a page per post, the index, archives)."""

    enabled: bool = setting(_bool, True, "false: no pages (the site is hosted elsewhere)")
    out: Path = setting(_nonempty, "public", "the output folder, served at [site] url", relative=True)
    per_page: int = setting(_positive_int, 10, "posts on each page of the home, tag and author pages")
    subscribe: bool = setting(_bool, True, "a subscribe form on the pages (posts to `publisher serve`)")


@dataclass(frozen=True)
class StateSettings:
    """``[state]``: the SQLite store (it holds post identity: keep it)."""

    path: Path = setting(_nonempty, ".publisher/state.db", relative=True)


@dataclass(frozen=True)
class DkimSettings:
    """``[mail.dkim]``: signing; its public key is published at ``SELECTOR._domainkey``."""

    domain: str = setting(_nonempty)
    selector: str = setting(_nonempty)
    key_file: Path = setting(_nonempty, doc="the PEM private key", relative=True)


@dataclass(frozen=True)
class SmtpSettings:
    """``[mail.smtp]``: the relay digests are handed to."""

    host: str = setting(_nonempty, "127.0.0.1")
    port: int = setting(_port, 587)
    security: str = setting(_choice("none", "starttls", "tls"), "starttls")
    username: str | None = setting(_nonempty, None, "unset: no login")
    password: str | None  # the value of $password_env
    password_env: str = setting(_env_name, "PUBLISHER_SMTP_PASSWORD", "the variable holding the password")
    connections: int = setting(_positive_int, 4, "the pool")
    rate: float = setting(_rate, 0, "messages per second across the pool; 0 = unlimited")
    timeout: float = setting(_positive_number, 30.0, "seconds")
    verify_certificates: bool = setting(_bool, True)
    messages_per_connection: int = setting(_count, 100, "reconnect after this many; 0 = never")


@dataclass(frozen=True)
class MailSettings:
    """``[mail]``: who digests come from and how recipients leave.

    ``secret`` signs unsubscribe tokens: the value of the environment
    variable ``secret_env`` names, else the contents of ``secret_file``
    (``publisher init`` creates one), else None.
    """

    sender: str = setting(_address, None, "unset: the site title and author's email", key="from")
    sender_address: str  # the address alone, from sender
    reply_to: str | None = setting(_address, None)
    transport: str = setting(_choice("outbox", "smtp"), "outbox")
    outbox: Path = setting(_nonempty, "outbox", "the outbox transport's Maildir folder", relative=True)
    secret_env: str = setting(_env_name, "PUBLISHER_SECRET", "the variable holding the signing secret")
    secret_file: Path = setting(_nonempty, ".publisher/secret", "read when that variable is unset", relative=True)
    secret: bytes | None
    unsubscribe_mailto: str | None = setting(_address, None, "a mailto: in List-Unsubscribe")
    templates: Path = setting(_nonempty, "templates", "templates/email/<name> overrides a default", relative=True)
    dkim: DkimSettings | None = section(DkimSettings, optional=True)
    smtp: SmtpSettings | None = section(SmtpSettings, "read (defaults and all) even with the outbox transport")
    attempts: int = setting(_positive_int, 4, "tries per delivery per run before it is left pending")
    backoff: float = setting(_positive_number, 1.0, "seconds before the first retry; doubles, with jitter")
    backoff_max: float = setting(_positive_number, 60.0)

    @staticmethod
    def _check(values: dict[str, Any], table: dict[str, Any]) -> list[str]:
        """Rules across keys, once each is read."""
        if values.get("transport") == "smtp" and "smtp" not in table:
            return ['[mail] transport: "smtp" needs a [mail.smtp] table with at least host']
        return []


@dataclass(frozen=True)
class JobSettings:
    """``[jobs]``: site-wide scheduled jobs (schedules as written, checked against
    the grammar of ``publisher.schedules``; the scheduler parses them)."""

    build: str | None = setting(_schedule, None, "when `publisher run` rebuilds the feeds; unset: never")


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]``: the HTTP server."""

    host: str = setting(_nonempty, "127.0.0.1")
    port: int = setting(_port, 8080)
    subscribe_per_address: int = setting(_positive_int, 3, "confirmation emails per address per day")
    subscribe_per_ip: int = setting(_positive_int, 20, "subscribe attempts per IP per hour")
    trusted_proxies: tuple[str, ...] = setting(_proxies, ["127.0.0.1", "::1"], "whose X-Forwarded-For is believed")


# A list's settings are publisher.model.DigestList's fields, defaults and all;
# this is how each is read.
_LIST_PARSERS: dict[str, Callable[[Any], Any]] = {
    "title": _nonempty,
    "description": _text,
    "max_posts": _positive_int,
    "full_content": _bool,
    "max_bytes": _positive_int,
    "subject": _template,
    "preheader": _template,
    "schedule": _schedule,
    "catch_up": _bool,
    "max_late": _duration,
}


@dataclass(frozen=True)
class Config:
    """The whole file: its sections, in the order their problems are reported."""

    path: Path  # the file, as given
    root: Path  # its folder, absolute: every path in the file is relative to it
    site: SiteSettings = section(SiteSettings)
    content: ContentSettings = section(ContentSettings)
    feeds: FeedSettings = section(FeedSettings)
    state: StateSettings = section(StateSettings)
    jobs: JobSettings = section(JobSettings)
    serve: ServeSettings = section(ServeSettings)
    pages: PagesSettings = section(PagesSettings)
    mail: MailSettings = section(MailSettings)
    lists: dict[str, DigestList] = section(DigestList, named=True)

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
            timezone=self.site.timezone,
        )


# --- loading ------------------------------------------------------------------


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
    values = _read(Config, raw, "", problems)
    if problems:
        raise ConfigError(shown, problems)
    root = path.resolve().parent
    _derive(values, root, shown)
    return _make(Config, {**values, "path": path, "root": root}, root)


def _keys(cls: type) -> dict[str, tuple[str, _Setting]]:
    """The keys of ``cls``'s table: key in the file -> (attribute, how it is read)."""
    if cls is DigestList:  # publisher.model's fields and defaults, read by _LIST_PARSERS
        return {f.name: (f.name, _Setting(_LIST_PARSERS[f.name], f.default)) for f in fields(cls) if f.name != "name"}
    return {s.key or f.name: (f.name, s) for f in fields(cls) if (s := f.metadata.get("setting"))}


def _read(cls: type, table: Any, name: str, problems: list[str]) -> dict[str, Any]:
    """Check one table against ``cls``'s keys and sections: values by attribute.

    Problems are named ``[name] key: …``; the top of the file (``name`` "")
    holds only sections.
    """
    if not isinstance(table, dict):
        problems.append(f"[{name}]: must be a table")
        table = {}
    keys = _keys(cls)
    sections = {f.name: f.metadata for f in fields(cls) if "section" in f.metadata}
    for key in table:
        if key in keys or key in sections:
            continue
        if name:
            problems.append(f"[{name}] {key}: unknown key (known: {', '.join(keys)})")
        else:
            problems.append(f"[{key}]: unknown section (known: {', '.join(sections)})")
    values: dict[str, Any] = {}
    for key, (attr, how) in keys.items():
        if key not in table:
            if how.default is _REQUIRED:
                problems.append(f"[{name}] {key}: required, but missing")
            else:
                values[attr] = how.parse(how.default) if how.default is not None else None
            continue
        try:
            values[attr] = how.parse(table[key])
        except _Invalid as exc:
            problems.append(f"[{name}] {key}: {exc}")
    for attr, meta in sections.items():
        where = f"{name}.{attr}" if name else attr
        if meta["named"]:
            values[attr] = _read_named(meta["section"], table.get(attr, {}), where, problems)
        elif attr in table or not meta["optional"]:
            values[attr] = _read(meta["section"], table.get(attr, {}), where, problems)
        else:
            values[attr] = None
    if hasattr(cls, "_check"):
        problems.extend(cls._check(values, table))
    return values


def _read_named(cls: type, tables: Any, where: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    """``[where.NAME]`` tables of ``cls``'s settings, by name."""
    if not isinstance(tables, dict):
        problems.append(f'[{where}]: must hold tables such as [{where}.daily] title = "Daily digest"')
        return {}
    values = {}
    for name, table in tables.items():
        if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            values[name] = _read(cls, table, f"{where}.{name}", problems)
        else:
            problems.append(f"[{where}.{name}]: a list name is lower-case letters, digits, - and _")
    return values


def _derive(values: dict[str, Any], root: Path, shown: str) -> None:
    """Fill in the settings that follow from others, and the secrets from the environment."""
    site, feeds, mail = values["site"], values["feeds"], values["mail"]
    site["author"] = site["author"] or Author(name=site["title"])
    feeds["url"] = feeds["url"] or urljoin(site["url"], (root / feeds["out"]).name + "/")
    if mail["sender"] is None:
        host = urlsplit(site["url"]).hostname or "localhost"
        mail["sender"] = f"{site['title']} <{site['author'].email or 'news@' + host}>"
    mail["sender_address"] = parseaddr(mail["sender"])[1]
    mail["secret"] = secret = _read_secret(mail["secret_env"], root / mail["secret_file"])
    if secret is not None and len(secret) < 16:
        raise ConfigError(
            shown,
            [
                f"[mail] secret_env/secret_file: the signing secret (${mail['secret_env']} or "
                f"{mail['secret_file']}) is shorter than 16 bytes; use 32 random bytes or more"
            ],
        )
    mail["smtp"]["password"] = os.environ.get(mail["smtp"]["password_env"]) or None


def _read_secret(env: str, path: Path) -> bytes | None:
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    try:
        data = path.read_bytes().strip()
    except OSError:
        return None
    return data or None


def _make(cls: type, values: dict[str, Any], root: Path) -> Any:
    """``cls`` from its read values: sections made in turn, paths made absolute under ``root``."""
    made = {}
    for f in fields(cls):
        value, meta = values[f.name], f.metadata
        if "setting" in meta and meta["setting"].relative:
            value = _under(root, value)
        elif "section" in meta and meta["named"]:
            value = {name: meta["section"](name=name, **table) for name, table in sorted(value.items())}
        elif "section" in meta and value is not None:
            value = _make(meta["section"], value, root)
        made[f.name] = value
    return cls(**made)


def _under(root: Path, value: Any) -> Any:
    """A path setting's value, absolute: its paths joined to the config's folder."""
    if isinstance(value, tuple):
        return tuple(_under(root, item) for item in value)
    if isinstance(value, FeedSource):
        return FeedSource(value.name, value.url, root / value.path if value.path else None)
    return root / value
