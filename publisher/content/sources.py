"""Feed sources: the posts of existing feeds (``[[content.feeds]]``).

The I/O edge for feeds used as content: a ``path`` is read from disk, a
``url`` is fetched over HTTP; the pure ``readers.feed`` turns the bytes into
posts, which then go through the same content stage as files.

    result = load_feed_sources(config, store, now)
    result.posts, result.errors

Fetching a ``url``:

- only ``http`` and ``https``, redirects included (urllib follows them);
  the final URL is the base of the feed's relative links;
- ``User-Agent: publisher/<version>``; gzip is accepted and decoded;
- ``[content] fetch_timeout`` bounds connecting, each read, and the whole
  download (name resolution is the system resolver's, outside it);
- ``[content] fetch_max_bytes`` bounds what is read, and what gzip unpacks
  to: the body is read in chunks and the fetch stops past the cap;
- conditional GET: the ETag and Last-Modified of the last good body are
  kept in the state store and sent back; a 304 reuses the stored body.

A source that fails (timeout, DNS, HTTP 4xx/5xx, too big, unparsable) is
one ``ContentError`` ``url: reason`` and the other sources go on. If the
store holds a body from an earlier good fetch, its entries are still
published (with a warning in the log, and the error still reported), so a
flaky upstream does not make posts drop out of the feeds and come back.
A read-only store (``publisher check``) fetches but remembers nothing.
"""

from __future__ import annotations

import http.client
import logging
import socket
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from publisher import __version__
from publisher.config import Config, FeedSource
from publisher.errors import ContentError
from publisher.model import Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.readers.feed import read_feed
from publisher.state import CachedFetch, StateStore

log = logging.getLogger("publisher.sources")

USER_AGENT = f"publisher/{__version__}"
_CHUNK = 64 * 1024
_SCHEMES = ("http", "https")
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    """One HTTP response: a new body (200) or "not modified" (304, ``body`` empty)."""

    not_modified: bool
    body: bytes
    final_url: str
    etag: str | None
    last_modified: str | None


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only (urllib would also follow one to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme.lower() not in _SCHEMES:
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to a non-HTTP URL refused ({newurl})", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HttpOnlyRedirects)


def fetch(url: str, *, timeout: float, max_bytes: int, cached: CachedFetch | None = None) -> Fetched:
    """GET ``url`` (conditionally when ``cached``); raises ``ContentError(url, None, reason)``."""
    if urlsplit(url).scheme.lower() not in _SCHEMES:
        raise ContentError(url, None, "only http and https URLs can be fetched")
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", "Accept": _ACCEPT}
    if cached is not None:
        if cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
    request = urllib.request.Request(url, headers=headers)
    deadline = time.monotonic() + timeout
    try:
        with _opener().open(request, timeout=timeout) as response:
            body = _read_body(response, url, max_bytes, deadline, timeout)
            return Fetched(
                not_modified=False,
                body=body,
                final_url=response.geturl(),
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 304 and cached is not None:
                return Fetched(True, b"", exc.geturl() or cached.final_url, cached.etag, cached.last_modified)
            reason = exc.reason if isinstance(exc.reason, str) else http.client.responses.get(exc.code, "")
            raise ContentError(url, None, f"HTTP {exc.code} {reason}".rstrip()) from None
    except urllib.error.URLError as exc:
        raise ContentError(url, None, _network_reason(exc.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise ContentError(url, None, _network_reason(exc, timeout)) from None
    except ValueError as exc:  # a URL http.client cannot use
        raise ContentError(url, None, f"cannot fetch: {exc}") from None


def _network_reason(error: object, timeout: float) -> str:
    if isinstance(error, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout:g} s ([content] fetch_timeout)"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host name ({error.strerror or error})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.IncompleteRead):
        return "the connection closed before the whole body arrived"
    if isinstance(error, http.client.HTTPException):
        return f"broken HTTP response ({type(error).__name__}: {error})"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot fetch: {error.strerror}"
    return f"cannot fetch: {error}"


def _too_big(max_bytes: int) -> str:
    return f"larger than {max_bytes} bytes; raise [content] fetch_max_bytes to accept it"


def _chunks(response, url: str, deadline: float, timeout: float) -> Iterator[bytes]:
    while True:
        # read1: whatever has arrived, so a slow trickle meets the deadline.
        chunk = response.read1(_CHUNK)
        if not chunk:
            return
        if time.monotonic() > deadline:
            raise ContentError(url, None, f"timed out after {timeout:g} s ([content] fetch_timeout)")
        yield chunk


def _read_body(response, url: str, max_bytes: int, deadline: float, timeout: float) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise ContentError(url, None, _too_big(max_bytes))
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    chunks = _chunks(response, url, deadline, timeout)
    if encoding in ("gzip", "x-gzip"):
        return _gunzip(chunks, url, max_bytes)
    if encoding != "identity":
        raise ContentError(url, None, f"unsupported Content-Encoding {encoding!r}")
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise ContentError(url, None, _too_big(max_bytes))
    return bytes(body)


def _gunzip(chunks: Iterator[bytes], url: str, max_bytes: int) -> bytes:
    """Unpack a gzip stream, never holding more than ``max_bytes`` of output."""
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    body = bytearray()
    try:
        for chunk in chunks:
            pending = chunk
            while pending and not unpacker.eof:
                # max_length 0 would mean "no limit"; it is at least 1 here.
                body += unpacker.decompress(pending, max_bytes + 1 - len(body))
                if len(body) > max_bytes:
                    raise ContentError(url, None, _too_big(max_bytes) + " (unpacked)")
                pending = unpacker.unconsumed_tail
        body += unpacker.flush()
    except zlib.error as exc:
        raise ContentError(url, None, f"broken gzip body: {exc}") from None
    if len(body) > max_bytes:
        raise ContentError(url, None, _too_big(max_bytes) + " (unpacked)")
    if not unpacker.eof:
        raise ContentError(url, None, "the gzip body is cut short")
    return bytes(body)


def _read_options(config: Config) -> ReadOptions:
    return ReadOptions(timezone=config.site.timezone, boilerplate=config.content.boilerplate)


def _load_path(source: FeedSource, config: Config) -> ReadResult:
    assert source.path is not None
    shown = config.relative(source.path)
    try:
        data = source.path.read_bytes()
    except FileNotFoundError:
        raise ContentError(shown, None, "no such file ([[content.feeds]] path)") from None
    except OSError as exc:
        raise ContentError(shown, None, f"cannot be read: {exc.strerror}") from None
    return read_feed(data, source.name, shown, _read_options(config))


def _load_url(source: FeedSource, config: Config, store: StateStore, now: datetime) -> ReadResult:
    assert source.url is not None
    url = source.url
    options = _read_options(config)
    cached = store.fetches.get(url)
    try:
        fetched = fetch(
            url,
            timeout=config.content.fetch_timeout,
            max_bytes=config.content.fetch_max_bytes,
            cached=cached,
        )
        if fetched.not_modified:
            assert cached is not None
            log.info("%s (%s): not modified since %s", url, source.name, cached.fetched.isoformat())
            return read_feed(cached.body, source.name, url, options, base_url=fetched.final_url)
        result = read_feed(fetched.body, source.name, url, options, base_url=fetched.final_url)
    except ContentError as exc:
        if cached is None:
            raise
        return _stale(source, cached, exc, options)
    store.fetches.remember(
        CachedFetch(url, fetched.final_url, fetched.etag, fetched.last_modified, fetched.body, now)
    )
    log.info("%s (%s): %d entries fetched", url, source.name, len(result.posts))
    return result


def _stale(source: FeedSource, cached: CachedFetch, failure: ContentError, options: ReadOptions) -> ReadResult:
    """The posts of the last good body, with the failure still reported."""
    when = cached.fetched.strftime("%Y-%m-%d %H:%M UTC")
    try:
        result = read_feed(cached.body, source.name, cached.url, options, base_url=cached.final_url)
    except ContentError:
        raise failure from None
    log.warning(
        "%s (%s): %s; publishing the %d entries fetched %s",
        cached.url, source.name, failure.reason, len(result.posts), when,
    )  # fmt: skip
    error = ContentError(
        failure.path, failure.line, f"{failure.reason} (published the copy fetched {when})"
    )
    return ReadResult(result.posts, result.errors + (error,))


def load_feed_sources(config: Config, store: StateStore, now: datetime) -> ReadResult:
    """The posts of every ``[[content.feeds]]`` source, and one error per failing source or entry."""
    posts: list[Post] = []
    errors: list[ContentError] = []
    seen: set[str] = set()
    for source in config.content.feeds:
        shown = source.url or config.relative(source.path)
        if shown in seen:
            log.warning("%s: listed twice in [[content.feeds]]; read once", shown)
            continue
        seen.add(shown)
        try:
            if source.path is not None:
                result = _load_path(source, config)
            else:
                result = _load_url(source, config, store, now)
        except ContentError as exc:
            errors.append(exc)
            continue
        except Exception as exc:  # a bug with one source must not stop the others
            log.debug("reading feed source %s failed", shown, exc_info=True)
            errors.append(ContentError(shown, None, f"could not be read: {exc!r}"))
            continue
        posts.extend(result.posts)
        errors.extend(result.errors)
    return ReadResult(tuple(posts), tuple(errors))
