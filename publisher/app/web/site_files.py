"""The pages folder over HTTP: ``SiteFiles`` serves what ``publisher build``
wrote into ``[pages] out`` at the site's root, with the feeds' rules
(strong ``ETag``, ``Last-Modified``, ``304``, gzip, the same refusals of
``..``, dot files, encoded separators and symlinks out of the folder).

    /                     -> index.html
    /2024/05/hello/       -> 2024/05/hello/index.html
    /2024/05/hello        -> 301 to /2024/05/hello/ (a folder with an index.html)
    /old/url/             -> 301 to where _redirects says the post moved

What is not a file there goes on to the application (the subscribe form,
the issue archive, …), whose 404 is the pages' ``404.html``.
"""

from __future__ import annotations

import mimetypes
import os
import threading
from pathlib import Path
from urllib.parse import quote, unquote

from .feed_files import FEED_MAX_AGE, FeedFiles
from .headers import CSP, SECURITY_HEADERS

REDIRECTS = "_redirects"  # written by publisher.pages beside the pages
_TEXT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".js": "text/javascript; charset=utf-8",
}
# Pages may embed what posts link to: images from anywhere on https.
CSP_PAGES = CSP.replace("img-src 'self' https:", "img-src 'self' https: data:; media-src 'self' https:")


def resolve_site_file(folder: Path, name: str) -> Path | None:
    """The file ``name`` (a relative, already-decoded URL path) names in
    ``folder``, or None when it must not be served: the refusals of
    ``resolve_feed_file`` but any extension, and never ``_redirects``."""
    if not name or name.startswith("/") or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/")) or name == REDIRECTS:
        return None
    try:
        root = folder.resolve(strict=True)
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def content_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return _TEXT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class SiteFiles(FeedFiles):
    """WSGI layer serving the pages folder at the root, ahead of the application."""

    def __init__(self, app, folder: Path):
        super().__init__(app, folder, "")
        self._map_key: tuple[int, int, int] | None = None
        self._map: dict[str, str] = {}
        self._map_lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            moved = self._moved(environ)
            if moved is not None:
                return self._redirect(start_response, moved)
        return super().__call__(environ, start_response)

    def _name(self, environ) -> str | None:
        name = super()._name(environ)
        if name is None:
            return None
        return name + "index.html" if name == "" or name.endswith("/") else name

    def _resolve(self, name: str) -> Path | None:
        return resolve_site_file(self.folder, name)

    def _lookup(self, name: str) -> Path:
        return self.folder / name

    def _kind(self, name: str) -> tuple[str, list[tuple[str, str]]]:
        return content_type(name), [
            ("Cache-Control", f"public, max-age={FEED_MAX_AGE}"),
            ("Vary", "Accept-Encoding"),
            ("Content-Security-Policy", CSP_PAGES),
        ]

    def _compressible(self, name: str) -> bool:
        kind = content_type(name)
        return kind.startswith("text/") or kind.startswith(("application/xml", "application/json", "image/svg"))

    # -- redirects -------------------------------------------------------------

    def _moved(self, environ) -> str | None:
        """Where the request's path has moved: ``_redirects``, or its folder with a slash."""
        path = environ.get("PATH_INFO", "")
        try:
            decoded = path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
        full = environ.get("SCRIPT_NAME", "") + decoded
        target = self._redirects().get(full)
        if target is not None:
            return target
        name = decoded[1:]
        if not name or name.endswith("/") or not os.path.isdir(self.folder / name):
            return None
        if resolve_site_file(self.folder, name + "/index.html") is None:
            return None
        # The path as the request spelt it (WSGI gives its bytes as latin-1), percent-encoded.
        raw = (environ.get("SCRIPT_NAME", "") + path).encode("latin-1")
        query = environ.get("QUERY_STRING")
        return quote(raw, safe="/:@!$&'()*+,;=-._~%") + "/" + (f"?{query}" if query else "")

    def _redirects(self) -> dict[str, str]:
        """``_redirects`` (``FROM TO [STATUS]`` a line), read again when it changes."""
        path = self.folder / REDIRECTS
        try:
            stat = path.stat()
        except OSError:
            return {}
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._map_lock:
            if key != self._map_key:
                found = {}
                try:
                    for line in path.read_text("utf-8").splitlines():
                        parts = line.split()
                        if len(parts) >= 2 and not parts[0].startswith("#"):
                            found[unquote(parts[0])] = parts[1]
                except (OSError, UnicodeError):
                    found = {}
                self._map, self._map_key = found, key
            return self._map

    @staticmethod
    def _redirect(start_response, location: str) -> list[bytes]:
        # Latin-1 bytes in a WSGI header: the location as its URI.
        safe = location.encode("utf-8").decode("latin-1")
        headers = [
            ("Location", safe),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", f"public, max-age={FEED_MAX_AGE}"),
            ("Content-Security-Policy", CSP),
            *SECURITY_HEADERS.items(),
        ]
        start_response("301 Moved Permanently", headers)
        return [b"Moved\n"]
