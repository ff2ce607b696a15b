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

import ipaddress
import os
import re
import tomllib
from email.utils import parseaddr
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.dates import check_language
from publisher.errors import ConfigError, toml_error
from publisher.model import Author, DigestList, SiteInfo
from publisher.text import DEFAULT_BOILERPLATE
from publisher.schedules import parse_duration, parse_schedule

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
class DkimSettings:
    domain: str
    selector: str
    key_file: Path


@dataclass(frozen=True)
class SmtpSettings:
    """``[mail.smtp]``: the relay digests are handed to."""

    host: str
    port: int
    security: str  # none | starttls | tls
    username: str | None
    password: str | None
    password_env: str
    connections: int
    rate: float  # messages per second across the pool; 0 = unlimited
    timeout: float
    verify_certificates: bool
    messages_per_connection: int  # reconnect after this many; 0 = never


@dataclass(frozen=True)
class MailSettings:
    """``[mail]``: who digests come from and how recipients leave.

    ``secret`` signs unsubscribe tokens: the value of the environment
    variable ``secret_env`` names, else the contents of ``secret_file``
    (``publisher init`` creates one), else None.
    """

    sender: str
    sender_address: str
    reply_to: str | None
    transport: str
    outbox: Path
    secret_env: str
    secret_file: Path
    secret: bytes | None
    unsubscribe_mailto: str | None
    templates: Path
    dkim: DkimSettings | None
    smtp: SmtpSettings | None = None
    attempts: int = 4  # tries per delivery per run before it is left pending
    backoff: float = 1.0  # seconds before the first retry; doubles, with jitter
    backoff_max: float = 60.0


@dataclass(frozen=True)
class JobSettings:
    """``[jobs]``: site-wide scheduled jobs (schedules as written, checked against
    the grammar of ``publisher.schedules``; the scheduler parses them)."""

    build: str | None = None


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]``: the HTTP server."""

    host: str = "127.0.0.1"
    port: int = 8080
    subscribe_per_address: int = 3
    subscribe_per_ip: int = 20
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    site: SiteSettings
    content: ContentSettings
    feeds: FeedSettings
    state: StateSettings
    mail: MailSettings
    lists: dict[str, DigestList]
    jobs: JobSettings = JobSettings()
    serve: ServeSettings = ServeSettings()

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


def _template(value: Any) -> str:
    text = _nonempty(value)
    if "\n" in text:
        raise _Invalid("must be on one line")
    return text


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _Invalid(f"must be a port number from 1 to 65535 (got {value!r})")
    return value


def _schedule(value: Any) -> str:
    """A schedule in the grammar of ``publisher.schedules``, kept as written."""
    try:
        parse_schedule(_nonempty(value))
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    return value.strip()


def _duration(value: Any) -> str:
    """A duration such as "12 hours", kept as written."""
    try:
        parse_duration(_nonempty(value))
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    return value.strip()


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
    "jobs": {
        "build": (_schedule, None),
    },
    "serve": {
        "host": (_nonempty, "127.0.0.1"),
        "port": (_port, 8080),
        "subscribe_per_address": (_positive_int, 3),  # confirmation emails per address per day
        "subscribe_per_ip": (_positive_int, 20),  # subscribe attempts per IP per hour
        "trusted_proxies": (_proxies, ["127.0.0.1", "::1"]),  # whose X-Forwarded-For is believed
    },
}


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


_MAIL: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "from": (_address, None),
    "reply_to": (_address, None),
    "transport": (_choice("outbox", "smtp"), "outbox"),
    "outbox": (_nonempty, "outbox"),
    "secret_env": (_env_name, "PUBLISHER_SECRET"),
    "secret_file": (_nonempty, ".publisher/secret"),
    "unsubscribe_mailto": (_address, None),
    "templates": (_nonempty, "templates"),
    "attempts": (_positive_int, 4),
    "backoff": (_positive_number, 1.0),
    "backoff_max": (_positive_number, 60.0),
}
_DKIM: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "domain": (_nonempty, _REQUIRED),
    "selector": (_nonempty, _REQUIRED),
    "key_file": (_nonempty, _REQUIRED),
}
def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _Invalid(f"must be messages per second, 0 for unlimited (got {value!r})")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid(f"must be a whole number, 0 or more (got {value!r})")
    return value


_SMTP: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "host": (_nonempty, "127.0.0.1"),
    "port": (_port, 587),
    "security": (_choice("none", "starttls", "tls"), "starttls"),
    "username": (_nonempty, None),
    "password_env": (_env_name, "PUBLISHER_SMTP_PASSWORD"),
    "connections": (_positive_int, 4),
    "rate": (_rate, 0),
    "timeout": (_positive_number, 30.0),
    "verify_certificates": (_bool, True),
    "messages_per_connection": (_count, 100),
}
_LIST_DEFAULTS = DigestList(name="", title="")
_LIST: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "title": (_nonempty, _REQUIRED),
    "description": (_text, ""),
    "max_posts": (_positive_int, _LIST_DEFAULTS.max_posts),
    "full_content": (_bool, _LIST_DEFAULTS.full_content),
    "max_bytes": (_positive_int, _LIST_DEFAULTS.max_bytes),
    "subject": (_template, _LIST_DEFAULTS.subject),
    "preheader": (_template, _LIST_DEFAULTS.preheader),
    "schedule": (_schedule, None),
    "catch_up": (_bool, True),
    "max_late": (_duration, "12 hours"),
}


def _read_secret(env: str, path: Path) -> bytes | None:
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    try:
        data = path.read_bytes().strip()
    except OSError:
        return None
    return data or None


def _read_table(
    name: str, table: Any, keys: dict[str, tuple[Callable[[Any], Any], Any]], problems: list[str]
) -> dict[str, Any]:
    """Check one table against its keys; problems are named ``[name] key: …``."""
    if not isinstance(table, dict):
        problems.append(f"[{name}]: must be a table")
        table = {}
    for key in table:
        if key not in keys:
            problems.append(f"[{name}] {key}: unknown key (known: {', '.join(keys)})")
    values: dict[str, Any] = {}
    for key, (convert, default) in keys.items():
        if key not in table:
            if default is _REQUIRED:
                problems.append(f"[{name}] {key}: required, but missing")
            else:
                values[key] = convert(default) if default is not None else None
            continue
        try:
            values[key] = convert(table[key])
        except _Invalid as exc:
            problems.append(f"[{name}] {key}: {exc}")
    return values


_SECTIONS = (*_SCHEMA, "mail", "lists")


def _read_sections(raw: dict[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    for section in raw:
        if section not in _SECTIONS:
            problems.append(f"[{section}]: unknown section (known: {', '.join(_SECTIONS)})")
    values = {
        section: _read_table(section, raw.get(section, {}), keys, problems)
        for section, keys in _SCHEMA.items()
    }
    mail = dict(raw.get("mail", {})) if isinstance(raw.get("mail", {}), dict) else raw["mail"]
    dkim = mail.pop("dkim", None) if isinstance(mail, dict) else None
    smtp = mail.pop("smtp", None) if isinstance(mail, dict) else None
    values["mail"] = _read_table("mail", mail, _MAIL, problems)
    values["mail"]["dkim"] = _read_table("mail.dkim", dkim, _DKIM, problems) if dkim is not None else None
    values["mail"]["smtp"] = _read_table("mail.smtp", smtp if smtp is not None else {}, _SMTP, problems)
    if values["mail"].get("transport") == "smtp" and smtp is None:
        problems.append('[mail] transport: "smtp" needs a [mail.smtp] table with at least host')
    lists = raw.get("lists", {})
    values["lists"] = {}
    if not isinstance(lists, dict):
        problems.append('[lists]: must hold tables such as [lists.daily] title = "Daily digest"')
    else:
        for list_name, table in lists.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", list_name):
                problems.append(f"[lists.{list_name}]: a list name is lower-case letters, digits, - and _")
                continue
            values["lists"][list_name] = _read_table(f"lists.{list_name}", table, _LIST, problems)
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
        mail=_mail_settings(values["mail"], root, site, author, shown),
        lists={
            name: DigestList(name=name, **table) for name, table in sorted(values["lists"].items())
        },
        jobs=JobSettings(**values["jobs"]),
        serve=ServeSettings(**values["serve"]),
    )


def _mail_settings(mail: dict[str, Any], root: Path, site: dict[str, Any], author: Author, shown: str) -> MailSettings:
    sender = mail["from"]
    if sender is None:
        host = urlsplit(site["url"]).hostname or "localhost"
        sender = f"{site['title']} <{author.email or 'news@' + host}>"
    secret_file = root / mail["secret_file"]
    secret = _read_secret(mail["secret_env"], secret_file)
    if secret is not None and len(secret) < 16:
        raise ConfigError(
            shown,
            [
                f"[mail] secret_env/secret_file: the signing secret (${mail['secret_env']} or "
                f"{mail['secret_file']}) is shorter than 16 bytes; use 32 random bytes or more"
            ],
        )
    dkim = mail["dkim"]
    return MailSettings(
        sender=sender,
        sender_address=parseaddr(sender)[1],
        reply_to=mail["reply_to"],
        transport=mail["transport"],
        outbox=root / mail["outbox"],
        secret_env=mail["secret_env"],
        secret_file=secret_file,
        secret=secret,
        unsubscribe_mailto=mail["unsubscribe_mailto"],
        templates=root / mail["templates"],
        dkim=DkimSettings(dkim["domain"], dkim["selector"], root / dkim["key_file"]) if dkim else None,
        smtp=_smtp_settings(mail["smtp"]),
        attempts=mail["attempts"],
        backoff=mail["backoff"],
        backoff_max=mail["backoff_max"],
    )


def _smtp_settings(smtp: dict[str, Any]) -> SmtpSettings:
    password = os.environ.get(smtp["password_env"]) or None
    return SmtpSettings(
        host=smtp["host"],
        port=smtp["port"],
        security=smtp["security"],
        username=smtp["username"],
        password=password,
        password_env=smtp["password_env"],
        connections=smtp["connections"],
        rate=smtp["rate"],
        timeout=smtp["timeout"],
        verify_certificates=smtp["verify_certificates"],
        messages_per_connection=smtp["messages_per_connection"],
    )
