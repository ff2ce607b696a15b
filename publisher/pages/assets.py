"""Static files for the pages folder: images and other files posts link to
relatively, and the ``[content] static`` folders, each copied to the URL its
links resolve to.

    assets = find_assets(config, site)   # name in the pages folder -> source file
    copied = copy_assets(out, assets, known)

A post's links were made absolute against its URL by the content stage
(``img.png`` in ``2024/05/hello/`` is ``https://SITE/2024/05/hello/img.png``),
so a link under the site's URL that is no page names a file: looked for
beside the post's file (the same relative path), then under each content
folder and its parent (a Jekyll ``assets/`` folder). A file outside the
site's folder is never copied.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from publisher.config import Config
from publisher.errors import OutputError
from publisher.files import fsync_folder
from publisher.model import Site
from publisher.pages.plan import page_name

log = logging.getLogger("publisher.pages.assets")



def find_assets(config: Config, site: Site) -> dict[str, Path]:
    """Every file to copy: its name in the pages folder -> the file it is copied from."""
    root = config.root.resolve()
    found: dict[str, Path] = {}
    for folder in config.content.static:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                name = path.relative_to(folder).as_posix()
                if path.is_file() and not any(part.startswith(".") for part in name.split("/")):
                    found.setdefault(name, path)
    bases = [p if p.is_dir() else p.parent for p in config.content.paths]
    bases = [str(b) for b in bases + [b.parent for b in bases if b.parent != b]]
    # The content stage made every link absolute: only those under the site's URL can name a file here.
    links = _LinkFinder(config.site.url)
    site_url = config.site.url
    for post in site.posts:
        if not post.url or not post.url.startswith(site_url):
            continue
        beside = os.path.dirname(os.path.join(config.root, post.source))
        here = None  # the post's folder under the site ("2024/05/hello/"): worked out once a post
        for url in dict.fromkeys(_links(post, links)):
            name = page_name(site_url, url)
            if name is None or name.endswith("index.html") or name in found:
                continue
            if here is None:
                rest = unquote(post.url[len(site_url) :].partition("?")[0].partition("#")[0])
                here = rest if rest.endswith("/") or not rest else posixpath.dirname(rest) + "/"
            path = _source_of(name, here, beside, bases, root)
            if path is not None:
                found[name] = path
    return found


class _LinkFinder:
    """What ``re.findall(_ATTRIBUTE % url, html, re.IGNORECASE)`` finds: the
    values of ``src``, ``href`` and ``poster`` attributes that start with
    ``url``, found by looking for ``url`` first (it is in few places of a
    post) and checking the attribute only there."""

    def __init__(self, url: str):
        self._url = re.compile(re.escape(url) + r"""[^"'<>]*(?=["'])""", re.IGNORECASE)
        # A search ignoring case is slow, unless it starts with text that has
        # no case: "://", in every place the URL is, then its host.
        self._offset = url.find("://")
        self._mark = re.compile("://(?i:%s)" % re.escape(url[self._offset + 3 :]))

    def _next(self, html: str, at: int) -> re.Match[str] | None:
        if self._offset < 0:
            return self._url.search(html, at)
        while (mark := self._mark.search(html, at + self._offset)) is not None:
            begin = mark.start() - self._offset
            if (match := self._url.match(html, begin)) is not None:
                return match
            at = begin + 1
        return None

    def findall(self, html: str) -> list[str]:
        found: list[str] = []
        floor = at = 0  # where the next attribute may start (after the last found); where to look on
        while (match := self._next(html, at)) is not None:
            begin, end = match.span()
            low = max(floor, begin - _LOOK_BACK)
            if _BEFORE.search(html, low, begin) or (
                # Only spaces, letters and "=" in the look back: the attribute may start before it.
                low > floor and _MAYBE_LONGER.fullmatch(html, low, begin) and _BEFORE.search(html, floor, begin)
            ):
                found.append(match.group())
                floor = at = end + 1  # past the closing quote
            else:
                at = begin + 1
        return found


_ATTRIBUTE = r"""\s(?:src|href|poster)\s*=\s*["'](%s[^"'<>]*)["']"""
_BEFORE = re.compile(r"""\s(?:src|href|poster)\s*=\s*["']\Z""", re.IGNORECASE)
_MAYBE_LONGER = re.compile(r"""[\sA-Za-z=]*["']""")
_LOOK_BACK = 64


def _links(post, pattern: _LinkFinder) -> list[str]:
    links = pattern.findall(post.content_html)
    if post.image:
        links.append(post.image)
    return [link.replace("&amp;", "&") for link in links]


def _source_of(name: str, here: str, beside: str, bases: list[str], root: Path) -> Path | None:
    """The file the link to ``name`` (a path under the site) names: beside
    the post (``here`` is its folder's path under the site, "" or ending
    in "/"), else under a content folder."""
    if name.startswith(here):
        relative = name[len(here) :]
    else:
        relative = posixpath.relpath(name, here or ".")
    for candidate in [os.path.join(beside, relative)] + [os.path.join(base, name) for base in bases]:
        if not os.path.isfile(candidate):  # one stat; most links name no file of ours
            continue
        found = Path(os.path.realpath(candidate))
        if found.is_relative_to(root):
            return found
    return None


def copy_asset(source: Path, target: Path, force: bool = False, before: Callable[[], None] | None = None) -> bool:
    """Copy ``source`` to ``target`` atomically unless it is there already
    (the same size and modification time: the copy keeps the source's); True if copied.
    ``before``: called before the temporary file of a copy is made."""
    try:
        stat = source.stat()
        try:
            have = target.stat()
            if not force and have.st_size == stat.st_size and have.st_mtime_ns == stat.st_mtime_ns:
                return False
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        if before is not None:
            before()
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle, source.open("rb") as data:
                shutil.copyfileobj(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)
            os.utime(tmp_name, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            os.replace(tmp_name, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        fsync_folder(target.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot copy {source}: {exc.strerror or exc}") from exc
    return True
