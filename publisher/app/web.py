"""The web server: the feeds over HTTP, subscribing, unsubscribing and the issue archive.

Flask and waitress live here and nowhere else. ``create_app`` builds the
WSGI application from a config; ``serve`` runs it under waitress.

    app = create_app(config)     # a Flask app; app.extensions["publisher.mailer"] sends confirmations
    serve(app, host="127.0.0.1", port=8080, on_ready=print)

What it answers (under the path of ``[site] url``):

- ``/`` the index: feed autodiscovery, the latest posts (from the feeds
  folder's ``feed.json``) and the subscribe form; ``/site.css`` its stylesheet.
- the feeds folder, at the path of ``[feeds] url`` (``/feeds/rss.xml``) and
  at the root (``/rss.xml``): feed content types, a strong ``ETag`` and
  ``Last-Modified``, ``304`` for ``If-None-Match`` and ``If-Modified-Since``,
  gzip when accepted. Only regular files with a feed's extension inside the
  folder are served; ``..``, dot files, encoded slashes and backslashes, NUL
  and symlinks that lead out are 404. ``FeedFiles`` answers these ahead of
  Flask: a poll that gets a 304 costs a ``stat`` and no routing.
- ``/issues/`` and ``/issues/<list>/<number>/``: the web version of each
  issue sent (the frozen rendering, with neutral personal values).
- ``POST /subscribe``: double opt-in (``publisher.mail.optin``); the same answer
  whatever the address, a honeypot field, rate limits per IP and address.
- ``/confirm/<token>``, ``/unsubscribe/<token>`` (RFC 8058 one-click on
  POST), ``/preferences/<token>``: a GET only shows a page with a button;
  a bad token gets one generic 400 page.

Each request that needs the state store opens its own ``StateStore``
(SQLite connections are never shared between waitress's threads) and
closes it at the end; ``create_app`` checks the file's integrity once, so
a request does not read the whole file first.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, redirect, render_template, request, url_for
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header, parse_date, parse_etags

from publisher.config import Config
from publisher.dates import format_day
from publisher.errors import ConfigError, PublisherError
from publisher.model import DigestList, Personal
from publisher.mail import (
    ConfirmationMailer,
    confirm_subscription,
    event_key,
    request_subscription,
    requested_lists,
)
from publisher.mail import personalize
from publisher.resources import default_templates
from publisher.mail import frozen_issue
from publisher.state import StateStore
from publisher.mail import SubscriberError, clean_name, normalize_email, remove_subscriber
from publisher.mail import TokenClaims, sign_token, verify_token
from publisher.mail import OutboxTransport, SmtpTransport

log = logging.getLogger("publisher.web")

MAX_REQUEST_BYTES = 64 * 1024
FEED_MAX_AGE = 300  # seconds a feed may be cached: readers poll, a 304 is cheap
IP_WINDOW = timedelta(hours=1)
EVENT_RETENTION = timedelta(days=2)  # longer than any rate-limit window
HONEYPOT = "website"  # a field people never see; bots fill in anything called so
LATEST_POSTS = 10

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
XSLT_TYPE = "application/xslt+xml; charset=utf-8"

_ARCHIVE_ATOM = re.compile(r"(?:.*/)?atom-\d+\.xml")
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c|00)", re.IGNORECASE)
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
_GZIP_CACHE_SIZE = 64
_MAX_ISSUE_NUMBER = 2**62

# default-src 'none' and no script-src: the pages run no script at all.
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The web version of an issue is the email's HTML: inline styles throughout.
_CSP_ISSUE = _CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# A feed opened in a browser may be shown through feed.xsl, whose output
# has an inline <style>.
_CSP_FEED = _CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # tokens are in the URLs
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class ServeError(PublisherError):
    """The server cannot start (the address is in use, the port needs privileges)."""


# -- the feeds folder ------------------------------------------------------------


def feed_content_type(name: str) -> str | None:
    """The media type of a file of the feeds folder, by name; None for anything else.

    ``*.atom.xml``, ``atom.xml`` and ``archive/atom-N.xml`` are Atom; every
    other ``.xml`` (``rss.xml``, tag and author feeds, ``archive/rss-N.xml``,
    ``comments.xml``) is RSS; ``.json`` is JSON Feed; ``.xsl`` the stylesheet.
    """
    if name.endswith(".atom.xml") or name == "atom.xml" or (name.startswith("archive/") and _ARCHIVE_ATOM.fullmatch(name)):
        return ATOM_TYPE
    if name.endswith(".xml"):
        return RSS_TYPE
    if name.endswith(".json"):
        return JSON_FEED_TYPE
    if name.endswith(".xsl"):
        return XSLT_TYPE
    return None


def resolve_feed_file(folder: Path, name: str) -> Path | None:
    """The file ``name`` (a relative, already-decoded URL path) names in
    ``folder``, or None when it must not be served.

    Refused: empty, absolute, ``.``/``..`` or empty segments, dot files (the
    writer's temporary files), backslashes, control characters (NUL among
    them), names without a feed's extension, anything that is not a
    regular file, and anything whose real path (symlinks followed) is
    outside the folder.
    """
    if not name or name.startswith("/") or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/")):
        return None
    if feed_content_type(name) is None:
        return None
    try:
        root = folder.resolve(strict=True)
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop, a name too long
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _etag(size: int, mtime_ns: int, inode: int, gzipped: bool) -> str:
    # Strong: the writer replaces a feed by renaming a new file over it, so
    # new bytes always come with a new inode and mtime. The gzip coding is
    # another representation, so it gets its own tag.
    return f'"{inode:x}-{size:x}-{mtime_ns:x}{"-gz" if gzipped else ""}"'


class _GzipCache:
    """Compressed bodies of recently served files, by path and ETag."""

    def __init__(self, size: int = _GZIP_CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], data: Callable[[], bytes]) -> bytes:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        # mtime=0: the same bytes compress to the same bytes.
        compressed = gzip.compress(data(), compresslevel=6, mtime=0)
        with self._lock:
            self._items[key] = compressed
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return compressed


_MAX_KNOWN_FILES = 4096
_MAX_KNOWN_CODINGS = 256


@dataclass(frozen=True, slots=True)
class _FeedFile:
    """A file of the feeds folder as it was when last checked."""

    lookup: str  # the folder and the name asked for, symlinks unresolved: what each request stats
    path: str  # the real path that resolve_feed_file accepted
    key: tuple[int, int, int, int]  # device, inode, size, mtime in ns
    identity: str  # the ETag of the bytes as they are
    coded: str  # the ETag of their gzip coding
    modified: datetime  # Last-Modified, in whole seconds
    last_modified: str  # the same as sent
    plain: list[tuple[str, str]]  # the headers of a 200 without coding, but its length
    zipped: list[tuple[str, str]]  # the same for the gzip coding
    plain_304: list[tuple[str, str]]
    zipped_304: list[tuple[str, str]]


def _file_key(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FeedFiles:
    """WSGI layer serving the feeds folder ahead of Flask.

    Feed readers poll: most requests for a feed are conditional and most
    answers are 304. So GET and HEAD of a feed are answered here without
    routing: each file's validators and headers are kept from the first
    request and revalidated by one ``stat`` of the name asked for (the
    same device, inode, size and mtime is the same file with the same
    bytes: the writer replaces a feed by renaming a new file over it). A
    new or changed file goes through ``resolve_feed_file``'s checks again.
    Anything else (another method, a name that is not a servable feed
    file, an encoded separator in the request line) goes on to ``app``.
    """

    def __init__(self, app, folder: Path, mount: str):
        self.app = app
        self.folder = folder
        self.mount = mount
        self._known: dict[str, _FeedFile] = {}
        self._codings: dict[str, bool] = {}
        self._gzip = _GzipCache()

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return self.app(environ, start_response)
        name = self._name(environ)
        known = self._check(name) if name else None
        if known is None:
            return self.app(environ, start_response)
        gzipped = self._accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
        if self._not_modified(environ, known):
            return self._answer_304(start_response, known, gzipped)
        try:
            handle = open(known.path, "rb")
        except OSError:  # removed since the check
            return self.app(environ, start_response)
        with handle:
            stat = os.fstat(handle.fileno())
            if _file_key(stat) != known.key:
                # Replaced since the check: the headers describe the very
                # file read, never old tags with new bytes.
                known = self._describe(name, known.lookup, known.path, stat)
                if self._not_modified(environ, known):
                    return self._answer_304(start_response, known, gzipped)
            if method == "HEAD" and not gzipped:
                start_response("200 OK", [*known.plain, ("Content-Length", str(stat.st_size))])
                return []
            data = handle.read()
        if gzipped:
            data = self._gzip.get((known.path, known.identity), lambda: data)
        start_response("200 OK", [*(known.zipped if gzipped else known.plain), ("Content-Length", str(len(data)))])
        return [data] if method == "GET" else []

    @staticmethod
    def _answer_304(start_response, known: _FeedFile, gzipped: bool) -> list[bytes]:
        start_response("304 Not Modified", known.zipped_304 if gzipped else known.plain_304)
        return []

    def _name(self, environ) -> str | None:
        """The name in the feeds folder the request asks for, not yet checked."""
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
        if "%" in raw and _ENCODED_SEPARATOR.search(raw.split("?", 1)[0]):
            return None
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/"):
            return None
        try:  # WSGI gives the path's bytes as latin-1
            name = path[1:].encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
        if self.mount and name.startswith(self.mount):
            name = name[len(self.mount) :]
        return name

    def _check(self, name: str) -> _FeedFile | None:
        known = self._known.get(name)
        if known is not None:
            try:
                if _file_key(os.stat(known.lookup)) == known.key:
                    return known
            except OSError:
                pass
        path = resolve_feed_file(self.folder, name)
        if path is None:
            self._known.pop(name, None)
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        known = self._describe(name, str(self.folder / name), str(path), stat)
        if len(self._known) >= _MAX_KNOWN_FILES:
            self._known.clear()
        self._known[name] = known
        return known

    @staticmethod
    def _describe(name: str, lookup: str, path: str, stat: os.stat_result) -> _FeedFile:
        identity = _etag(stat.st_size, stat.st_mtime_ns, stat.st_ino, gzipped=False)
        coded = _etag(stat.st_size, stat.st_mtime_ns, stat.st_ino, gzipped=True)
        modified = datetime.fromtimestamp(int(stat.st_mtime), timezone.utc)
        last_modified = format_datetime(modified, usegmt=True)
        common = [
            ("Last-Modified", last_modified),
            ("Cache-Control", f"public, max-age={FEED_MAX_AGE}"),
            ("Vary", "Accept-Encoding"),
            ("Access-Control-Allow-Origin", "*"),
            ("Content-Security-Policy", _CSP_FEED),
            *_SECURITY_HEADERS.items(),
        ]
        content_type = ("Content-Type", feed_content_type(name) or "application/octet-stream")
        return _FeedFile(
            lookup=lookup,
            path=path,
            key=_file_key(stat),
            identity=identity,
            coded=coded,
            modified=modified,
            last_modified=last_modified,
            plain=[content_type, ("ETag", identity), *common],
            zipped=[content_type, ("Content-Encoding", "gzip"), ("ETag", coded), *common],
            plain_304=[("ETag", identity), *common],
            zipped_304=[("ETag", coded), *common],
        )

    def _accepts_gzip(self, header: str | None) -> bool:
        if not header:
            return False
        accepted = self._codings.get(header)
        if accepted is None:
            accepted = parse_accept_header(header)["gzip"] > 0  # "*" counts, q=0 refuses
            if len(self._codings) >= _MAX_KNOWN_CODINGS:
                self._codings.clear()
            self._codings[header] = accepted
        return accepted

    @staticmethod
    def _not_modified(environ, known: _FeedFile) -> bool:
        """RFC 9110 13.2.2: If-None-Match decides when present (weak
        comparison, either coding's tag), else If-Modified-Since."""
        header = environ.get("HTTP_IF_NONE_MATCH")
        if header is not None:
            if header == known.identity or header == known.coded:
                return True
            tags = parse_etags(header)
            return tags.star_tag or any(tags.contains_weak(tag.strip('"')) for tag in (known.identity, known.coded))
        since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if since is None:
            return False
        if since == known.last_modified:
            return True
        date = parse_date(since)
        return date is not None and known.modified <= date


# -- the client's address ----------------------------------------------------------


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(peer: str, forwarded_for: list[str], trusted: tuple[ipaddress._BaseNetwork, ...]) -> str:
    """Who is asking: the socket peer, unless it is a trusted proxy; then the
    nearest hop of ``X-Forwarded-For`` (read right to left) that is not a
    trusted proxy.

    Each proxy appends the address it received from, so the hops to the
    right of the first untrusted one were written by our own proxies and
    the ones to its left by the client, who can write anything there.
    """

    def is_trusted(value: str) -> bool:
        address = _address(value)
        return address is not None and any(address in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            address = _address(hop)
            return str(address) if address is not None else hop[:64]
    return str(_address(hops[0])) if hops else peer


# -- the application ------------------------------------------------------------------


def _transport(config: Config):
    if config.mail.transport == "smtp":
        return SmtpTransport(config.mail.smtp)
    return OutboxTransport(config.mail.outbox)


def _site_prefix(config: Config) -> str:
    """The path of the site URL without its final slash ("" at a host's root)."""
    return urlsplit(config.site.url).path.rstrip("/")


def _feeds_mount(config: Config) -> str:
    """Where the feeds folder is served besides the root: the path of
    ``[feeds] url`` under the site URL, else the folder's own name."""
    if config.feeds.url.startswith(config.site.url):
        return config.feeds.url[len(config.site.url) :]
    return config.feeds.out.name + "/"


class _PrefixMiddleware:
    """Serves the app under the site URL's path (``https://example.org/news/``):
    the prefix moves from PATH_INFO to SCRIPT_NAME, so generated links carry it."""

    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Security-Policy", _CSP)]
            start_response("404 Not Found", headers + list(_SECURITY_HEADERS.items()))
            return [b"Not found\n"]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        return self.app(environ, start_response)


def create_app(
    config: Config,
    *,
    transport=None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """The WSGI application for ``config``.

    ``transport`` sends confirmation emails (default: the configured one);
    ``clock`` gives the current time (default: the system clock, in UTC).
    The config must have a signing secret (``publisher serve`` creates one).
    """
    if config.mail.secret is None:
        raise ConfigError(
            str(config.path),
            [f"[mail]: `serve` needs the secret that signs links: set ${config.mail.secret_env} "
             f"or create {config.relative(config.mail.secret_file)}"],
        )
    secret = config.mail.secret
    now: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
    https = config.site.url.startswith("https:")
    prefix = _site_prefix(config)
    mount = _feeds_mount(config)
    trusted = tuple(ipaddress.ip_network(p, strict=False) for p in config.serve.trusted_proxies)
    csrf_cookie = "__Host-publisher_csrf" if https and not prefix else "publisher_csrf"
    mailer = ConfirmationMailer(config, transport or _transport(config))

    templates = default_templates() / "web"
    site_templates = config.mail.templates / "web"
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES, MAX_FORM_PARTS=100)
    app.url_map.merge_slashes = False  # "//etc/passwd" is a 404, not a redirect
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(str(folder)) for folder in (site_templates, templates) if folder.is_dir()]
    )
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.extensions["publisher.mailer"] = mailer
    app.wsgi_app = FeedFiles(app.wsgi_app, config.feeds.out, mount)  # type: ignore[method-assign]
    if prefix:
        app.wsgi_app = _PrefixMiddleware(app.wsgi_app, prefix)  # type: ignore[method-assign]

    # -- per request -------------------------------------------------------------

    # The store is checked (every page read) and migrated once, here; each
    # request then opens it without reading the whole file again.
    StateStore.open(config.state.path).close()

    def store() -> StateStore:
        if "store" not in g:
            g.store = StateStore.open(config.state.path, check=False)
        return g.store

    @app.teardown_appcontext
    def close_store(_exc: BaseException | None) -> None:
        opened = g.pop("store", None)
        if opened is not None:
            opened.close()

    def csrf_nonce() -> str:
        if "csrf_nonce" not in g:
            cookie = request.cookies.get(csrf_cookie, "")
            if _NONCE.fullmatch(cookie):
                g.csrf_nonce = cookie
            else:
                g.csrf_nonce = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
                g.csrf_new = True
        return g.csrf_nonce

    def csrf_for(nonce: str) -> str:
        digest = hmac.new(secret, b"csrf." + nonce.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_for(csrf_nonce()))

    def require_csrf() -> None:
        cookie = request.cookies.get(csrf_cookie, "")
        sent = request.form.get("csrf_token", "")
        if not _NONCE.fullmatch(cookie) or not hmac.compare_digest(csrf_for(cookie), sent):
            log.info("%s %s: missing or wrong CSRF token", request.method, request.path)
            abort(Response(page("form_expired.html"), status=400))

    def the_client() -> str:
        return client_ip(request.remote_addr or "", request.headers.getlist("X-Forwarded-For"), trusted)

    def page(template: str, **context: Any) -> str:
        return render_template(template, **context)

    def claims(token: str, purpose: str) -> TokenClaims | None:
        return verify_token(secret, token, purpose)

    def invalid_link() -> Response:
        # One page for every bad token, whatever was wrong with it.
        response = Response(page("invalid_link.html"), status=400)
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    def token_page(html: str, status: int = 200) -> Response:
        response = Response(html, status=status)
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    @app.context_processor
    def common() -> dict[str, Any]:
        return {
            "site": config.site_info,
            "lists": list(config.lists.values()),
            "csrf_field": csrf_field,
            "honeypot": HONEYPOT,
            "local_date": local_date,
        }

    def local_date(moment: datetime) -> str:
        return format_day(moment, config.site.timezone, config.site.language)

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("Cache-Control", "no-store")
        if g.get("csrf_new"):
            response.set_cookie(
                csrf_cookie, g.csrf_nonce, httponly=True, samesite="Lax", secure=https, path=(prefix or "") + "/"
            )
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if isinstance(exc.response, Response):  # abort(Response(...)) carries its own page
            return exc.response
        response = Response(page("error.html", code=exc.code, title=exc.name), status=exc.code or 500)
        if exc.code == 405:
            response.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", None) or ())
        return response

    # -- pages ---------------------------------------------------------------------

    def autodiscovery() -> list[dict[str, str]]:
        found = []
        for name, kind, label in (
            ("rss.xml", "application/rss+xml", "RSS"),
            ("atom.xml", "application/atom+xml", "Atom"),
            ("feed.json", "application/feed+json", "JSON Feed"),
        ):
            if (config.feeds.out / name).is_file():
                found.append(
                    {"href": config.feeds.url + name, "type": kind, "title": f"{config.site.title} ({label})", "label": label}
                )
        return found

    def latest_posts() -> list[dict[str, Any]]:
        try:
            feed = json.loads((config.feeds.out / "feed.json").read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read the latest posts: %s", config.feeds.out / "feed.json", exc)
            return []
        posts = []
        for item in feed.get("items", [])[:LATEST_POSTS] if isinstance(feed, dict) else []:
            if not isinstance(item, dict):
                continue
            try:
                date = datetime.fromisoformat(item["date_published"]) if item.get("date_published") else None
            except (TypeError, ValueError):
                date = None
            url = item.get("url") or item.get("external_url")
            posts.append(
                {
                    "title": str(item.get("title") or "Untitled"),
                    "url": url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
                    "date": date,
                    "summary": str(item.get("summary") or ""),
                }
            )
        return posts

    def index_page(*, error: str | None = None, form: dict[str, Any] | None = None, status: int = 200) -> Response:
        html = page(
            "index.html",
            feeds=autodiscovery(),
            posts=latest_posts(),
            error=error,
            form=form or {"email": "", "name": "", "lists": [next(iter(config.lists))] if len(config.lists) == 1 else []},
        )
        return Response(html, status=status)

    @app.get("/")
    def index():
        return index_page()

    @app.get("/site.css")
    def stylesheet():
        for folder in (site_templates, templates):
            path = folder / "site.css"
            if path.is_file():
                response = Response(path.read_bytes(), content_type="text/css; charset=utf-8")
                response.headers["Cache-Control"] = "public, max-age=3600"
                return response
        abort(404)

    @app.get("/favicon.ico")
    def favicon():
        # Browsers ask on every page; "nothing here" without a 404 in the logs.
        return Response(status=204, headers={"Cache-Control": "public, max-age=86400"})

    # -- the issue archive -----------------------------------------------------

    def list_title(name: str) -> str:
        found = config.lists.get(name)
        return found.title if found is not None else name

    @app.get("/issues/")
    def issues():
        groups: dict[str, list] = {name: [] for name in config.lists}
        for info in store().issues.archived():
            groups.setdefault(info.list_name, []).append(info)
        shown = [
            {"name": name, "title": list_title(name), "issues": found} for name, found in groups.items() if found
        ]
        response = Response(page("issues.html", groups=shown))
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    @app.get("/issues/<list_name>/<int:number>/")
    def issue(list_name: str, number: int):
        if number > _MAX_ISSUE_NUMBER:
            abort(404)
        info = store().issues.archived_one(list_name, number)
        if info is None or info.rendered is None:
            abort(404)
        digest_list = config.lists.get(list_name) or DigestList(name=list_name, title=list_name)
        frozen, rendered = frozen_issue(config, digest_list, number, info.rendered)
        # Neutral values: "Hello there", "because you subscribed", and the
        # links that would be personal lead to the index and its form.
        home = config.site.url
        html, _ = personalize(
            rendered,
            Personal(email="you", name="", unsubscribe_url=home, preferences_url=home, view_url=frozen.web_url),
        )
        response = Response(html, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = _CSP_ISSUE
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    # -- subscribing ---------------------------------------------------------------

    @app.get("/subscribe")
    def subscribe_form():
        return redirect(url_for("index") + "#subscribe", code=303)

    @app.post("/subscribe")
    def subscribe():
        require_csrf()
        if not config.lists:
            abort(404)
        moment = now()
        db = store()
        if not db.web_events.take(
            "subscribe-ip",
            event_key(config, the_client()),
            limit=config.serve.subscribe_per_ip,
            since=moment - IP_WINDOW,
            now=moment,
        ):
            log.warning("subscribe: more than %d attempts from one address in an hour", config.serve.subscribe_per_ip)
            response = Response(page("too_many.html"), status=429)
            response.headers["Retry-After"] = str(int(IP_WINDOW.total_seconds()))
            return response
        db.web_events.forget(moment - EVENT_RETENTION)
        if request.form.get(HONEYPOT, "").strip():
            log.info("subscribe: honeypot filled in; dropped")
            return Response(page("subscribed.html"))
        typed = request.form.get("email", "")[:320]
        name = clean_name(request.form.get("name", ""))
        chosen_names = [n for n in dict.fromkeys(request.form.getlist("list")) if n in config.lists]
        form = {"email": typed, "name": name, "lists": chosen_names}
        try:
            email = normalize_email(typed)
        except SubscriberError:
            return index_page(error="That does not look like an email address.", form=form, status=400)
        if not chosen_names:
            return index_page(error="Choose at least one list.", form=form, status=400)
        chosen = [config.lists[n] for n in chosen_names]
        wanted = request_subscription(config, db, email, name, chosen, now=moment)
        if wanted:
            mailer.submit(email, wanted, now=moment)
        # The same page whatever became of the request.
        return Response(page("subscribed.html"))

    @app.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str):
        found = claims(token, "confirm")
        if found is None or not requested_lists(config, found):
            return invalid_link()
        if request.method != "POST":  # GET and HEAD
            return token_page(page("confirm.html", email=found.subscriber, chosen=requested_lists(config, found)))
        require_csrf()
        subscriber = confirm_subscription(config, store(), found, now=now())
        if subscriber is None:
            return invalid_link()
        return token_page(page("confirmed.html", email=found.subscriber, chosen=requested_lists(config, found)))

    # -- leaving -------------------------------------------------------------------

    def preferences_url(email: str, list_name: str) -> str:
        return url_for("preferences", token=sign_token(secret, email, list_name, purpose="preferences"))

    @app.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str):
        found = claims(token, "unsubscribe")
        if found is None:
            return invalid_link()
        db = store()
        if request.method != "POST":  # GET and HEAD
            # Shows a button only: link scanners that follow every URL in a
            # message must not unsubscribe anyone.
            if db.subscribers.find(found.subscriber) is None:
                return invalid_link()
            return token_page(page("unsubscribe.html", email=found.subscriber, list_title=list_title(found.list_name)))
        # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click; no
        # CSRF token (it has no page to take one from): the signed token in
        # the URL is the authority.
        if request.form.get("List-Unsubscribe") != "One-Click":
            return invalid_link()
        after = remove_subscriber(db.subscribers, found.subscriber, found.list_name, now=now())
        if after is None:
            return invalid_link()
        return token_page(
            page(
                "unsubscribed.html",
                email=found.subscriber,
                list_title=list_title(found.list_name),
                preferences=preferences_url(found.subscriber, found.list_name),
            )
        )

    @app.route("/preferences/<token>", methods=["GET", "POST"])
    def preferences(token: str):
        found = claims(token, "preferences")
        if found is None:
            return invalid_link()
        db = store()
        subscriber = db.subscribers.find(found.subscriber)
        if subscriber is None:
            return invalid_link()
        left = None
        if request.method == "POST":
            require_csrf()
            leave = request.form.get("leave", "")
            if leave == "*":
                subscriber = remove_subscriber(db.subscribers, subscriber.email, None, now=now()) or subscriber
                left = "every list"
            elif leave in subscriber.lists:
                subscriber = remove_subscriber(db.subscribers, subscriber.email, leave, now=now()) or subscriber
                left = list_title(leave)
        names = list(dict.fromkeys([*config.lists, *subscriber.lists]))
        rows = [{"name": n, "title": list_title(n), "on": n in subscriber.lists} for n in names]
        return token_page(page("preferences.html", subscriber=subscriber, rows=rows, left=left))

    # -- the feeds folder ------------------------------------------------------------
    # FeedFiles answers GET and HEAD for the files that exist; what reaches
    # Flask under these paths is a 404 (or a 405 for another method).

    @app.route("/<path:name>", methods=["GET", "HEAD"])
    def not_a_feed(name: str):
        abort(404)

    return app


def serve(app: Flask, *, host: str, port: int, on_ready: Callable[[str], None], threads: int = 8) -> None:
    """Run ``app`` under waitress until Ctrl-C or SIGTERM; queued
    confirmation emails are sent before it returns.

    ``on_ready`` gets the URL once the socket listens. No ``Server`` header
    is sent, and waitress leaves X-Forwarded-For alone: ``client_ip``
    reads it, believing only ``[serve] trusted_proxies``.
    """
    from waitress import create_server

    try:
        server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="",
            clear_untrusted_proxy_headers=False,
            max_request_body_size=MAX_REQUEST_BYTES * 4,
            expose_tracebacks=False,
        )
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another server using it? choose another with --port or [serve] port)"
        ) from exc

    def stop(_signum, _frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        shown_host = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown_host}:{server.effective_port}/")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        mailer = app.extensions.get("publisher.mailer")
        if mailer is not None:
            mailer.close()
