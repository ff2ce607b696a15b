"""The feeds folder over HTTP: ``FeedFiles`` answers GET and HEAD of the feed
files ahead of Flask, with feed content types, a strong ``ETag``,
``Last-Modified``, ``304`` for conditional requests and gzip when accepted.
"""

from __future__ import annotations

import gzip
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

from werkzeug.http import parse_accept_header, parse_date, parse_etags

from .headers import CSP_FEED, SECURITY_HEADERS

FEED_MAX_AGE = 300  # seconds a feed may be cached: readers poll, a 304 is cheap

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
XSLT_TYPE = "application/xslt+xml; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"

_ARCHIVE_ATOM = re.compile(r"(?:.*/)?atom-\d+\.xml")
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c|00)", re.IGNORECASE)
_GZIP_CACHE_SIZE = 64
# Appended to the name of a feed asked for by a browser (see ``wants_page``).
_VIEW = "\x00view"
# The feed as a page: the browser fetches feed.xsl (CSP's script-src
# governs XSLT) and shows its output, which has an inline <style>.
# Chromium's XSLT runs an inline handler of its own: 'unsafe-inline', on
# this answer only, whose document holds no script (the feed's text is
# text to the stylesheet, never markup).
CSP_FEED_VIEW = CSP_FEED + "; script-src 'self' 'unsafe-inline'"
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")


def wants_page(accept: str | None) -> bool:
    """Does a request with this Accept header come from a browser opening a
    feed (text/html asked for, no feed type named) rather than a feed reader?"""
    if not accept:
        return False
    accepted = parse_accept_header(accept)
    if not any(value == "text/html" and quality > 0 for value, quality in accepted):
        return False
    return not any(value in _FEED_TYPES and quality > 0 for value, quality in accepted)


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


def _etag(size: int, mtime_ns: int, inode: int, gzipped: bool, variant: str = "") -> str:
    # Strong: the writer replaces a feed by renaming a new file over it, so
    # new bytes always come with a new inode and mtime. The gzip coding is
    # another representation, so it gets its own tag (as does the page view).
    return f'"{inode:x}-{size:x}-{mtime_ns:x}{variant}{"-gz" if gzipped else ""}"'


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

    def __init__(self, app, folder: Path, mount: str, *, view: bool = False):
        self.app = app
        self.folder = folder
        self.mount = mount
        self.view = view  # feed.xsl is written: a browser gets the feed as a page
        self._known: dict[str, _FeedFile] = {}
        self._codings: dict[str, bool] = {}
        self._views: dict[str, bool] = {}
        self._gzip = _GzipCache()

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return self.app(environ, start_response)
        name = self._name(environ)
        if name and self.view and name.endswith(".xml") and self._wants_page(environ.get("HTTP_ACCEPT")):
            name += _VIEW
        known = self._check(name) if name else None
        if known is None:
            return self.app(environ, start_response)
        gzipped = self._accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")) and self._compressible(name)
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
        path = self._resolve(name)
        if path is None:
            self._known.pop(name, None)
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        known = self._describe(name, str(self._lookup(name)), str(path), stat)
        if len(self._known) >= _MAX_KNOWN_FILES:
            self._known.clear()
        self._known[name] = known
        return known

    def _resolve(self, name: str) -> Path | None:
        """The file to serve for ``name``, or None (see ``resolve_feed_file``)."""
        return resolve_feed_file(self.folder, name.removesuffix(_VIEW))

    def _compressible(self, name: str) -> bool:
        return True

    def _lookup(self, name: str) -> Path:
        """The path each request for ``name`` stats, symlinks unresolved."""
        return self.folder / name.removesuffix(_VIEW)

    def _wants_page(self, accept: str | None) -> bool:
        if not accept:
            return False
        found = self._views.get(accept)
        if found is None:
            found = wants_page(accept)
            if len(self._views) >= _MAX_KNOWN_CODINGS:
                self._views.clear()
            self._views[accept] = found
        return found

    def _kind(self, name: str) -> tuple[str, list[tuple[str, str]]]:
        """The Content-Type of ``name`` and the headers of its kind of file."""
        viewed = name.endswith(_VIEW)
        media_type = XML_TYPE if viewed else feed_content_type(name) or "application/octet-stream"
        return media_type, [
            ("Cache-Control", f"public, max-age={FEED_MAX_AGE}"),
            ("Vary", "Accept, Accept-Encoding" if self.view and name.endswith((".xml", _VIEW)) else "Accept-Encoding"),
            ("Access-Control-Allow-Origin", "*"),
            ("Content-Security-Policy", CSP_FEED_VIEW if viewed else CSP_FEED),
        ]

    def _describe(self, name: str, lookup: str, path: str, stat: os.stat_result) -> _FeedFile:
        variant = "-view" if name.endswith(_VIEW) else ""
        identity = _etag(stat.st_size, stat.st_mtime_ns, stat.st_ino, gzipped=False, variant=variant)
        coded = _etag(stat.st_size, stat.st_mtime_ns, stat.st_ino, gzipped=True, variant=variant)
        modified = datetime.fromtimestamp(int(stat.st_mtime), timezone.utc)
        last_modified = format_datetime(modified, usegmt=True)
        media_type, headers = self._kind(name)
        common = [("Last-Modified", last_modified), *headers, *SECURITY_HEADERS.items()]
        content_type = ("Content-Type", media_type)
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
        # RFC 9110 13.1.3: a date later than the server's clock is invalid; ignore it.
        return date is not None and known.modified <= date <= datetime.now(timezone.utc)
