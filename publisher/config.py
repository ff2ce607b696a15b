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

import os
import re
import tomllib
from email.utils import parseaddr
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from publisher.errors import ConfigError, toml_error
from publisher.keyring import KeyFileError, Retired, parse_key_file
from publisher.model import Author, DigestList, SiteInfo
from publisher.text import DEFAULT_BOILERPLATE

# The parsers each setting is read with.
from publisher.config_values import (
    FeedSource,
    _Invalid,
    _text,
    _nonempty,
    _absolute_url,
    _http_url,
    _timezone,
    _language,
    _author,
    _bool,
    _positive_int,
    _count,
    _port,
    _positive_number,
    _rate,
    _number,
    _schedule,
    _duration,
    _string_list,
    _permalink,
    _feed_sources,
    _template,
    _proxies,
    _address,
    _bounce_address,
    _folder_name,
    _choice,
    _env_name,
)

DEFAULT_PERMALINK = "{year}/{month}/{slug}/"


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
class ContentSettings:
    """``[content]``: where posts come from and how their URLs are made."""

    paths: tuple[Path, ...] = setting(_string_list, ["posts"], "folders (searched recursively) and files", relative=True)
    permalink: str = setting(_permalink, DEFAULT_PERMALINK, "a post's URL under [site] url")
    boilerplate: tuple[str, ...] = setting(_string_list, list(DEFAULT_BOILERPLATE), "paragraphs dropped from posts")
    feeds: tuple[FeedSource, ...] = setting(_feed_sources, [], "[[content.feeds]]: feeds as sources", relative=True)
    fetch_timeout: float = setting(_positive_number, 20, "seconds, for [[content.feeds]] URLs")
    fetch_max_bytes: int = setting(_positive_int, 20_000_000, "a larger feed is refused, never read whole")
    exclude: tuple[str, ...] = setting(_string_list, [], "globs of files that are no posts, besides robots.txt, 404.* …")
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


def _state_url(value: Any) -> str:
    parts = urlsplit(_nonempty(value))
    if parts.scheme not in ("postgresql", "postgres"):
        raise _Invalid(f"must be a PostgreSQL URL such as 'postgresql://publisher@db.example.org/publisher' (got {value!r})")
    if parts.password:
        raise _Invalid("must not hold the password: put it in the variable named by password_env, or in ~/.pgpass")
    return value.strip()


@dataclass(frozen=True)
class PagesSettings:
    """``[pages]``: the web pages of the site (a page per post, the index, archives)."""

    enabled: bool = setting(_bool, True, "false: no pages (the site is hosted elsewhere)")
    out: Path = setting(_nonempty, "public", "the output folder, served at [site] url", relative=True)
    per_page: int = setting(_positive_int, 10, "posts on each page of the home, tag and author pages")
    subscribe: bool = setting(_bool, True, "a subscribe form on the pages (posts to `publisher serve`)")


@dataclass(frozen=True)
class StateSettings:
    """``[state]``: the store (it holds post identity: keep it). SQLite in
    ``path`` by default; PostgreSQL at ``url`` when one is given."""

    path: Path = setting(_nonempty, ".publisher/state.db", "the SQLite file; with url, where local lock files go", relative=True)
    url: str | None = setting(_state_url, None, "postgresql://user@host/db: PostgreSQL instead of the file")
    password: str | None  # the value of $password_env
    password_env: str = setting(_env_name, "PUBLISHER_STATE_PASSWORD", "the variable holding the password (or libpq's PGPASSWORD/.pgpass)")
    pool: int = setting(_positive_int, 4, "PostgreSQL connections kept open per process")
    timeout: float = setting(_positive_number, 30, "seconds: the longest a query may run")
    reconnect: float = setting(_positive_number, 60, "seconds to keep trying when the database goes away")
    lease: float = setting(_positive_number, 300, "seconds a sender holds a claimed batch of deliveries")
    batch: int = setting(_positive_int, 200, "deliveries a sender claims at a time (PostgreSQL)")


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
    password: str | None = field(repr=False)  # the value of $password_env
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
    secret: bytes | None = field(repr=False)
    previous_secrets: tuple[tuple[bytes, datetime], ...] = field(repr=False)  # retired, from secret_file
    secret_grace: str = setting(_duration, "180 days", "how long links signed with a retired secret still work")
    welcome: bool = setting(_bool, True, "email new subscribers once they confirm (templates email/welcome.*)")
    unsubscribe_mailto: str | None = setting(_address, None, "a mailto: in List-Unsubscribe")
    bounce_address: str | None = setting(_bounce_address, None, "VERP: each envelope sender bounces+TOKEN@ it")
    templates: Path = setting(_nonempty, "templates", "templates/email/<name> overrides a default", relative=True)
    dkim: DkimSettings | None = section(DkimSettings, optional=True)
    smtp: SmtpSettings | None = section(SmtpSettings, "read (defaults and all) even with the outbox transport")
    attempts: int = setting(_positive_int, 4, "tries per delivery per run before it is left pending")
    backoff: float = setting(_positive_number, 1.0, "seconds before the first retry; doubles, with jitter")
    backoff_max: float = setting(_positive_number, 60.0)
    processes: int = setting(
        _number(int, lambda n: not 1 <= n <= 64, "a whole number from 1 to 64"), 1,
        "`publisher send` processes sharing an issue (each with its own connections)",
    )

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
    bounces: str | None = setting(_schedule, None, "when it reads the bounce mailboxes; unset: never")


@dataclass(frozen=True)
class MailboxServerSettings:
    """``[bounces.imap]`` or ``[bounces.pop3]``: a mailbox on a server."""

    host: str = setting(_nonempty)
    port: int | None = setting(_port, None, "unset: 993 (IMAP) or 995 (POP3) with tls, 143 or 110 otherwise")
    user: str = setting(_nonempty)
    password: str | None  # the value of $password_env
    password_env: str = setting(_env_name, "PUBLISHER_BOUNCES_PASSWORD", "the variable holding the password")
    security: str = setting(_choice("tls", "starttls"), "tls", "never clear text")
    verify_certificates: bool = setting(_bool, True)
    folder: str = setting(_nonempty, "INBOX", "IMAP: the folder read")
    timeout: float = setting(_positive_number, 60.0, "seconds")


@dataclass(frozen=True)
class BounceSettings:
    """``[bounces]``: where bounce mail arrives and what it takes to be bounced."""

    maildir: Path | None = setting(_nonempty, None, "a Maildir the bounce address delivers to", relative=True)
    mbox: Path | None = setting(_nonempty, None, "an mbox file the bounce address delivers to", relative=True)
    imap: MailboxServerSettings | None = section(MailboxServerSettings, optional=True)
    pop3: MailboxServerSettings | None = section(MailboxServerSettings, optional=True)
    processed: str = setting(_folder_name, "processed", "where read mail goes (Maildir .NAME, IMAP folder, NAME.mbox)")
    soft_threshold: int = setting(_positive_int, 3, "soft bounces within soft_window that make an address bounced")
    soft_window: str = setting(_duration, "7 days", "how long a soft bounce counts")
    max_bytes: int = setting(_positive_int, 10_000_000, "a larger message is set aside unread")
    ses_topics: tuple[str, ...] = setting(_string_list, [], "SNS topic ARNs /hooks/ses accepts; none: off")
    mailgun_key: str | None  # the value of $mailgun_key_env
    mailgun_key_env: str = setting(_env_name, "PUBLISHER_MAILGUN_KEY", "Mailgun's webhook signing key; unset: off")
    postmark_user: str = setting(_nonempty, "postmark", "the basic-auth user in Postmark's webhook URL")
    postmark_password: str | None  # the value of $postmark_password_env
    postmark_password_env: str = setting(_env_name, "PUBLISHER_POSTMARK_PASSWORD", "its password; unset: off")


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]``: the HTTP server."""

    host: str = setting(_nonempty, "127.0.0.1")
    port: int = setting(_port, 8080)
    subscribe_per_address: int = setting(_positive_int, 3, "confirmation emails per address per day")
    subscribe_per_ip: int = setting(_positive_int, 20, "subscribe attempts per IP per hour")
    trusted_proxies: tuple[str, ...] = setting(_proxies, ["127.0.0.1", "::1"], "whose X-Forwarded-For is believed")
    connection_limit: int = setting(_positive_int, 1000, "open connections; more wait in the kernel's queue")
    read_timeout: int = setting(_positive_int, 10, "seconds a connection may send nothing mid-request or idle")
    request_timeout: int = setting(_positive_int, 30, "seconds to receive a whole request, however it trickles")
    ipv6_prefix: int = setting(_number(int, lambda n: not 8 <= n <= 128, "8 to 128"), 64, "IPv6 limits per network")
    mail_queue: int = setting(_positive_int, 1000, "subscribe requests waiting for the mailer; more are shed")
    confirm_expiry: str = setting(_duration, "2 days", "confirm links expire; unconfirmed addresses are purged")
    store_wait: float = setting(_positive_number, 2.0, "seconds a request waits for a busy store before a 503")


# A list's settings are publisher.model.DigestList's fields (and defaults): how each is read.
_LIST_PARSERS: dict[str, Callable[[Any], Any]] = {
    "title": _nonempty,
    "description": _text,
    "max_posts": _positive_int,
    "full_content": _bool,
    "max_bytes": _positive_int,
    "subject": _template,
    "preheader": _template,
    "schedule": lambda value: value if value == "immediately" else _schedule(value),
    "catch_up": _bool,
    "max_late": _duration,
    "mode": _choice("digest", "post"),
    "backfill": _count,
    "backdated": _duration,
    "test_prefix": _text,
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
    bounces: BounceSettings = section(BounceSettings)
    serve: ServeSettings = section(ServeSettings)
    pages: PagesSettings = section(PagesSettings)
    mail: MailSettings = section(MailSettings)
    lists: dict[str, DigestList] = section(DigestList, named=True)

    @staticmethod
    def _check(values: dict[str, Any], table: dict[str, Any]) -> list[str]:
        """Rules across sections, once each is read."""
        jobs, bounces = values.get("jobs") or {}, values.get("bounces") or {}
        if jobs.get("bounces") and not any(bounces.get(k) for k in ("maildir", "mbox", "imap", "pop3")):
            return ["[jobs] bounces: needs a bounce mailbox: [bounces] maildir, mbox, or a [bounces.imap] or [bounces.pop3] table"]
        return []

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
    try:
        mail["secret"], mail["previous_secrets"] = _read_secret(mail["secret_env"], root / mail["secret_file"])
    except KeyFileError as exc:
        raise ConfigError(f"{shown}", [f"[mail] secret_file: {mail['secret_file']}: {exc}"]) from None
    if mail["secret"] is not None and len(mail["secret"]) < 16:
        raise ConfigError(
            shown,
            [
                f"[mail] secret_env/secret_file: the signing secret (${mail['secret_env']} or "
                f"{mail['secret_file']}) is shorter than 16 bytes; use 32 random bytes or more"
            ],
        )
    mail["smtp"]["password"] = os.environ.get(mail["smtp"]["password_env"]) or None
    bounces = values["bounces"]
    bounces["mailgun_key"] = os.environ.get(bounces["mailgun_key_env"]) or None
    bounces["postmark_password"] = os.environ.get(bounces["postmark_password_env"]) or None
    for server in (bounces["imap"], bounces["pop3"]):
        if server is not None:
            server["password"] = os.environ.get(server["password_env"]) or None
    values["state"]["password"] = os.environ.get(values["state"]["password_env"]) or None


def _read_secret(env: str, path: Path) -> tuple[bytes | None, tuple[Retired, ...]]:
    """The current secret ($env, else the key file's first line) and the retired ones of the key file."""
    try:
        current, retired = parse_key_file(path.read_bytes())
    except OSError:
        current, retired = None, ()
    value = os.environ.get(env)
    return (value.encode("utf-8") if value else current), retired


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
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_under(root, item) for item in value)
    if isinstance(value, FeedSource):
        return FeedSource(value.name, value.url, root / value.path if value.path else None)
    return root / value
