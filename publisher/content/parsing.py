"""Parsing many post files, in worker processes beside this one when many.

Parsing (Markdown above all) is most of a cold build. ``Parsing`` takes the
files to parse one at a time, as the cache finds them changed. When many
are expected and the machine has more than one CPU, worker processes start
on the first PARSE_CHUNK files while this process is still reading the
rest; at the end this process parses, from the last back, the chunks no
worker has started, while the workers finish theirs. The results are the
same as parsing here, in the order the files were added.

    parsing = Parsing(config, expected=len(files))
    for path, shown, data in changed:
        parsing.add(path, shown, data)
    for outcome, resolved in parsing.outcomes(): ...
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from publisher.config import Config
from publisher.errors import ContentError
from publisher.model import Post
from publisher.content import load
from publisher.content.load import _attempt, _cleaned, permalink_url
from publisher.content.readers import ReadResult
from publisher.content.sanitize import absolutize
from publisher.text import slugify

log = logging.getLogger("publisher.content")

PARALLEL_MIN_FILES = 400  # below this, starting a worker costs more than it saves
PARSE_CHUNK = 32
MAX_PARSERS = 8

Item = tuple[Path, str, bytes]  # (path, as shown, the file's bytes)
# Per post of a file: the URL it is likely published at and its HTML with
# relative links resolved against it (None: the same HTML), or None.
Resolved = list[tuple[str, str | None] | None]
Parsed = tuple[ReadResult | Exception, Resolved | None]


class Parsing:
    """The files to parse, added as they are read; ``outcomes()`` once all are."""

    def __init__(self, config: Config, expected: int) -> None:
        self.config = config
        self.items: list[Item] = []
        self._chunks: list[tuple[int, int, Future]] = []  # (first item, the one after its last, its future)
        self._sent = 0  # items handed to the workers so far
        self._pool: ProcessPoolExecutor | None = None
        self._workers = _parsers(expected) - 1  # this process parses too

    def add(self, path: Path, shown: str, data: bytes) -> None:
        self.items.append((path, shown, data))
        if self._workers > 0 and len(self.items) - self._sent >= PARSE_CHUNK:
            self._send(len(self.items))

    def outcomes(self) -> list[Parsed]:
        """Each added file's reading, cleaned (a ``ReadResult`` or the error),
        and each post's HTML resolved against its likely URL, in order."""
        if self._pool is None and self._workers <= 0:
            # Fewer were expected (files changed that the cache knew): many found?
            self._workers = _parsers(len(self.items)) - 1
        if self._workers > 0:
            for end in range(self._sent + PARSE_CHUNK, len(self.items) + PARSE_CHUNK, PARSE_CHUNK):
                self._send(min(end, len(self.items)))
        results: list[Parsed | None] = [None] * len(self.items)
        try:
            # The chunks no worker has taken yet, from the last back, here.
            for start, end, future in reversed(self._chunks):
                if not future.cancel():
                    break  # taken, and so are all before it
                self._here(start, end, results)
            for start, end, future in self._chunks:
                if results[start] is not None:
                    continue
                try:
                    done = future.result()
                except Exception:  # a worker died or could not start: parse its chunk here
                    log.warning("a parsing worker failed; parsing its files here", exc_info=True)
                    self._here(start, end, results)
                    continue
                for offset, outcome in enumerate(done):
                    results[start + offset] = (_unpacked(outcome), outcome[5] if outcome[0] == "ok" else None)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
        self._here(self._sent, len(self.items), results)  # those no worker was sent (or could be)
        return results  # type: ignore[return-value]

    def _send(self, end: int) -> None:
        """Hand the items not sent yet, up to ``end``, to the workers."""
        if self._sent >= end:
            return
        try:
            if self._pool is None:
                # spawn: fresh interpreters, never a fork of this process (which
                # may hold threads and a database connection), none left after.
                self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"))
            future = _start(self._pool, self.config, self.items[self._sent : end])
        except Exception:  # no process could be started: parse here
            log.warning("parsing in worker processes failed; parsing the files here", exc_info=True)
            self._workers = 0
            return
        self._chunks.append((self._sent, end, future))
        future.add_done_callback(lambda done, start=self._sent: self._parsed(done, start, end))
        self._sent = end

    def _parsed(self, future: Future, start: int, end: int) -> None:
        """A worker's chunk is parsed: its files' bytes are needed no more."""
        if not future.cancelled() and future.exception() is None:
            for index in range(start, end):
                self.items[index] = self.items[index][:2] + (b"",)

    def _here(self, start: int, end: int, results: list[Parsed | None]) -> None:
        """Parse, in this process, the items from ``start`` to before ``end``."""
        for index in range(start, end):
            if results[index] is None:
                path, shown, data = self.items[index]
                self.items[index] = (path, shown, b"")  # the bytes are needed no more once parsed
                outcome = parse_one(path, shown, data, self.config)
                resolved = resolved_ahead(self.config, outcome.posts) if isinstance(outcome, ReadResult) else None
                results[index] = (outcome, resolved)


def _start(pool: ProcessPoolExecutor, config: Config, chunk: list[Item]) -> Future:
    return pool.submit(_parse_chunk, config, chunk)


def parse_one(path: Path, shown: str, data: bytes, config: Config) -> ReadResult | Exception:
    """One file's reading, cleaned, or the error (an exception of a reader bug)."""
    return _attempt(path, lambda: _cleaned(load._read(path, shown, data, config)))


def resolved_ahead(config: Config, posts: tuple[Post, ...]) -> Resolved:
    """Each post's HTML resolved against the URL it will have unless
    publishing finds otherwise (its own ``url``, or the permalink of its
    date and slug; a slug taken already, or an undated post, differ)."""
    out: Resolved = []
    for post in posts:
        url = post.url
        if not url and post.date is not None:
            url = permalink_url(config, post.slug or slugify(post.title), post.date.astimezone(config.site.timezone))
        if not url:
            out.append(None)
            continue
        try:
            html = absolutize(post.content_html, url, cleaned=True)
        except Exception:  # publishing resolves it again, and says what is wrong
            out.append(None)
            continue
        out.append((url, None if html == post.content_html else html))
    return out


def _parsers(files: int) -> int:
    """How many processes (this one included) should parse ``files`` files."""
    if files < PARALLEL_MIN_FILES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_PARSERS))


def _parse_chunk(config: Config, chunk: list[Item]) -> list[tuple]:
    """In a worker: parse ``chunk``; errors as plain tuples (ContentError does not pickle)."""
    out: list[tuple] = []
    for path, shown, data in chunk:
        outcome = parse_one(path, shown, data, config)
        if isinstance(outcome, ReadResult):
            errors = [(e.path, e.line, e.reason) for e in outcome.errors]
            resolved = resolved_ahead(config, outcome.posts)
            out.append(("ok", outcome.posts, errors, outcome.warnings, outcome.skipped, resolved))
        elif isinstance(outcome, ContentError):
            out.append(("rejected", outcome.path, outcome.line, outcome.reason))
        else:
            out.append(("bug", f"{type(outcome).__name__}: {outcome}"))
    return out


def _unpacked(outcome: tuple) -> ReadResult | Exception:
    if outcome[0] == "ok":
        return ReadResult(outcome[1], tuple(ContentError(*error) for error in outcome[2]), outcome[3], outcome[4])
    if outcome[0] == "rejected":
        return ContentError(*outcome[1:])
    return RuntimeError(outcome[1])
