"""Reading the content folders: post files become posts.

``load_posts`` is the I/O edge: it finds the post files under the configured
paths, reads each with the reader for its extension (plus an optional
sidecar ``NAME.meta.toml`` beside it) and collects one ``ContentError`` per
file it cannot publish. With a ``PostCache`` (``content.cache``), files
unchanged since their last reading are not parsed again; when many are to
be parsed, worker processes help (``content.parsing``).

    loaded = load_posts(config, cache)
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from publisher.config import Config
from publisher.errors import ContentError, toml_error
from publisher.model import Post
from publisher.content.readers import ReadOptions, ReadResult, extensions, reader_for
from publisher.content.readers.metadata import ContentWarning, Metadata, parse_metadata
from publisher.content.sanitize import clean_html, first_paragraph_text
from publisher.text import one_line, slugify, summarize, uri_path, xml_safe

if TYPE_CHECKING:
    from publisher.content.cache import PostCache

log = logging.getLogger("publisher.content")

SIDECAR_SUFFIX = ".meta.toml"

# Files under the content folders that are never posts: a site's own files,
# and the folders Jekyll, Hugo and Eleventy keep templates, data and drafts in.
DEFAULT_EXCLUDE = (
    "robots.txt", "humans.txt", "ads.txt", "404.*", "README*", "LICENSE*", "CHANGELOG*",
    "_index.*", "_drafts/*", "_includes/*", "_layouts/*", "_data/*", "_site/*", "node_modules/*",
)  # fmt: skip


@dataclass(frozen=True)
class Skipped:
    """A file under the content folders that is not a post, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Loaded:
    """What reading the content folders gave: posts, the files rejected,
    warnings about what was published, and the files that are no posts."""

    posts: tuple[Post, ...]
    errors: tuple[ContentError, ...]
    warnings: tuple[ContentWarning, ...] = ()
    skipped: tuple[Skipped, ...] = ()


def _post_files(config: Config, errors: list[ContentError], skipped: list[Skipped]) -> dict[str, bool | None]:
    """The post files to read, in order, as paths: each with whether its
    folder's listing holds a sidecar for it (None for a file named in the
    config, whose folder was not listed). Files that are no posts go to
    ``skipped`` with the reason."""
    # A feed listed under [[content.feeds]] is read as a feed, not as a post file.
    feed_files = {s.path.resolve() for s in config.content.feeds if s.path}
    files: list[tuple[str, bool | None]] = []
    excluded = _exclusion(DEFAULT_EXCLUDE + config.content.exclude)
    for root in config.content.paths:
        if root.is_file():
            files.append((str(root), None))
        elif root.is_dir():
            found = sorted(_readable_files(str(root), excluded=excluded))
            for _, path, sidecar in found:
                if isinstance(sidecar, str):
                    skipped.append(Skipped(config.relative(Path(path)), sidecar))
                else:
                    files.append((path, sidecar))
        else:
            errors.append(ContentError(config.relative(root), None, "no such file or folder"))
    if len(config.content.paths) > 1:
        # Folders may overlap: each file once, where it came first (as Paths compare).
        unique: dict[Path, tuple[str, bool | None]] = {}
        for path, sidecar in files:
            unique.setdefault(Path(path), (path, sidecar))
        files = list(unique.values())
    if feed_files:
        files = [(path, sidecar) for path, sidecar in files if Path(path).resolve() not in feed_files]
    return dict(files)


def _exclusion(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for ``[content] exclude``: a glob matches a file's path under
    its content folder, or that path's end (``_drafts/*`` at any depth)."""
    if not patterns:
        return None
    globs = [fnmatch.translate(p) for p in patterns] + [fnmatch.translate("*/" + p) for p in patterns]
    return re.compile("|".join(f"(?:{g})" for g in globs))


def _readable_files(
    folder: str, parts: tuple[str, ...] = (), *, excluded: re.Pattern[str] | None = None
) -> list[tuple[tuple[str, ...], str, bool | str]]:
    """Files under ``folder``: (path parts below it, path, whether the folder
    also holds its sidecar), or for a file that is no post, the reason in
    place of that flag. Sorted, what ``sorted(rglob("*"))`` would list, less
    hidden files and folders, sidecars (and folders reached through a
    symlink); one scandir per folder instead of a stat and a Path per file,
    and no look for a sidecar per file. An excluded folder is one entry."""
    found: list[tuple[tuple[str, ...], str, bool | str]] = []
    readable = _EXTENSIONS
    with os.scandir(folder) as listing:
        entries = list(listing)
    names = {entry.name for entry in entries}
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith(SIDECAR_SUFFIX):
            continue
        below = (*parts, entry.name)
        relative = "/".join(below)
        if entry.is_dir(follow_symlinks=False):
            if excluded is not None and excluded.fullmatch(relative + "/x"):
                found.append((below, entry.path, "folder excluded by [content] exclude"))
            else:
                found += _readable_files(entry.path, below, excluded=excluded)
        elif not entry.is_file():
            continue
        elif excluded is not None and excluded.fullmatch(relative):
            found.append((below, entry.path, "excluded by [content] exclude"))
        elif (extension := os.path.splitext(entry.name)[1].lower()) not in readable:
            found.append((below, entry.path, f"no reader for {extension or 'files without an extension'}"))
        else:
            found.append((below, entry.path, entry.name + SIDECAR_SUFFIX in names))
    return found


_EXTENSIONS = frozenset(extensions())


def _sidecar(path: Path, shown: str, config: Config) -> Metadata:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return Metadata()
    name = shown + SIDECAR_SUFFIX
    try:
        text = sidecar.read_bytes().decode("utf-8-sig")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ContentError(name, 1, "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        line, reason = toml_error(exc, text)
        raise ContentError(name, line, f"not valid TOML: {reason}") from None
    return parse_metadata(raw, path=name, text=text, first_line=1, tz=config.site.timezone)


_DATED_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")


def _date_from_name(post: Post, path: Path, config: Config) -> Post:
    """Jekyll's convention: ``2024-05-01-title.md`` dates the post (unless its
    metadata does) and names it (unless it has a slug), so a migrated post
    keeps its URL; a name's slug steps aside on a clash (``derived_slug``).
    A site-relative ``url`` (``/about/``) is resolved against ``[site] url``."""
    if post.url and post.url.startswith("/"):
        post = replace(post, url=urljoin(config.site.url, post.url.lstrip("/")))
    match = _DATED_NAME.match(path.stem)
    if match is None:
        return post
    try:
        day = datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=config.site.timezone)
    except ValueError:
        raise ContentError(post.source, None, f"file name {path.name!r} starts with an impossible date") from None
    if post.slug:
        return post if post.date is not None else replace(post, date=day)
    return replace(post, date=post.date or day, slug=slugify(match[4]), derived_slug=True)


def read_file(path: Path, config: Config) -> ReadResult:
    """Read one content file (and its sidecar); raises ``ContentError``."""
    shown = config.relative(path)
    return _read(path, shown, _file_bytes(path, shown), config)


def _file_bytes(path: Path, shown: str) -> bytes:
    if reader_for(path.name) is None:
        raise ContentError(shown, None, f"no reader for {path.suffix or 'files without an extension'}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ContentError(shown, None, f"cannot be read: {exc.strerror}") from None


def _read(path: Path, shown: str, data: bytes, config: Config) -> ReadResult:
    reader = reader_for(path.name)
    if reader is None:
        raise ContentError(shown, None, f"no reader for {path.suffix or 'files without an extension'}")
    options = ReadOptions(
        timezone=config.site.timezone,
        boilerplate=config.content.boilerplate,
        overlay=_sidecar(path, shown, config),
        site_url=config.site.url,
    )
    result = reader(data, shown, options)
    if len(result.posts) == 1 and result.posts[0].source == shown:
        return replace(result, posts=(_date_from_name(result.posts[0], path, config),))
    return result


def load_posts(config: Config, cache: PostCache | None = None) -> Loaded:
    """Read every post file under the configured content paths.

    With a ``cache``, a file whose bytes (and sidecar) are those of its
    last reading is not parsed again: its posts come from the cache,
    already cleaned (``publish`` knows them by the cache).
    """
    errors: list[ContentError] = []
    posts: list[Post] = []
    warnings: list[ContentWarning] = []
    skipped: list[Skipped] = []
    files = _post_files(config, errors, skipped)
    if cache is not None:
        outcomes = cache.read_all(files, config)
    else:
        outcomes = ((path, _attempt(Path(path), lambda: read_file(Path(path), config))) for path in files)
    for path, outcome in outcomes:
        if isinstance(outcome, ReadResult):
            posts.extend(outcome.posts)
            errors.extend(outcome.errors)
            warnings.extend(outcome.warnings)
            if outcome.skipped:
                skipped.append(Skipped(config.relative(Path(path)), outcome.skipped))
        elif isinstance(outcome, ContentError):
            errors.append(outcome)
        else:  # a reader bug must not stop the other posts
            errors.append(ContentError(config.relative(Path(path)), None, f"could not be read: {outcome!r}"))
    for skip in skipped:
        log.debug("%s: skipped: %s", skip.path, skip.reason)
    return Loaded(tuple(posts), tuple(errors), tuple(warnings), tuple(skipped))


def _attempt(path: Path, read: Callable[[], ReadResult]) -> ReadResult | Exception:
    """``read()``, or the exception it raised (logged when it is a bug)."""
    try:
        return read()
    except ContentError as exc:
        return exc
    except Exception as exc:
        log.debug("reading %s failed", path, exc_info=True)
        return exc


def permalink_path(config: Config, slug: str, local: datetime) -> str:
    """The path, under ``[site] url``, of a post published with ``slug`` at ``local`` (the site's time)."""
    # A slug may be Unicode ("война-и-мир"): the URL is its percent-encoded UTF-8.
    return uri_path(
        config.content.permalink.format(
            year=f"{local.year:04d}", month=f"{local.month:02d}", day=f"{local.day:02d}", slug=slug
        )
    )


def permalink_url(config: Config, slug: str, local: datetime) -> str:
    """The URL of a post published with ``slug`` at ``local`` (the site's time)."""
    return urljoin(config.site.url, permalink_path(config, slug, local))


def _clean(post: Post) -> Post:
    html = clean_html(post.content_html)
    summary = post.summary or summarize(first_paragraph_text(html))
    return replace(
        post,
        title=xml_safe(one_line(post.title)),
        summary=xml_safe(summary) or None,
        content_html=html,
    )


def _cleaned(result: ReadResult) -> ReadResult:
    return replace(result, posts=tuple(_clean(post) for post in result.posts))
