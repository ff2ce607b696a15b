"""Readers turn a file's bytes into posts: one module per format.

Each format's module has a pure function ``read(data, path, options)`` that
returns a ``Post`` (one post per file) or a ``ReadResult`` (a file holding
many posts, such as a WordPress export, where one bad item must not cost the
others), and raises ``ContentError(path, line, reason)`` for a file it cannot
publish at all. A one-post format's module also has ``read_result``: the same
reading as a ``ReadResult``, with the file's warnings (an unknown front-matter
key). The registry maps file extensions to those modules, imported when first
needed, and always hands back a ``ReadResult``:

    reader = reader_for("seeds/000_876ff53b270cd303.txt")
    result = reader(data, "seeds/000_876ff53b270cd303.txt", ReadOptions(timezone=tz))
    result.posts, result.errors, result.warnings
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from zoneinfo import ZoneInfo

from publisher.errors import ContentError
from publisher.text import DEFAULT_BOILERPLATE
from publisher.model import Post
from publisher.content.readers.metadata import ContentWarning, Metadata



# A file holding one post (text, Markdown, HTML) larger than this is
# refused: a post that size is a mistake (a log, an archive, a saved page
# full of inline images), and it would be copied into every feed that
# carries it. A WordPress export holds many posts and has no such limit.
MAX_POST_BYTES = 20_000_000


@dataclass(frozen=True)
class ReadOptions:
    """What a reader needs beyond the bytes: no I/O, no clock."""

    timezone: ZoneInfo = ZoneInfo("UTC")
    boilerplate: tuple[str, ...] = DEFAULT_BOILERPLATE
    overlay: Metadata = field(default_factory=Metadata)
    max_post_bytes: int = MAX_POST_BYTES
    # [site] url: what Liquid's {{ site.url }} and Hugo's site-relative paths mean.
    site_url: str = ""


class NotAPost(Exception):
    """Raised by a reader for a file that reads well but is no post (a page);
    the registry turns it into a ``ReadResult`` with ``skipped`` set."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ReadResult:
    """The posts a file gave, the items in it that were rejected, and what
    was published but may not be what was meant."""

    posts: tuple[Post, ...]
    errors: tuple[ContentError, ...] = ()
    warnings: tuple[ContentWarning, ...] = ()
    # Why a file that reads well is no post (a page: ``layout: page``); it has no posts.
    skipped: str | None = None


Reader = Callable[[bytes, str, ReadOptions], ReadResult]

# extension -> (module, what to install if its library is missing)
_MODULES: dict[str, tuple[str, str | None]] = {
    ".txt": ("publisher.content.readers.text", None),
    ".text": ("publisher.content.readers.text", None),
    ".md": ("publisher.content.readers.markdown", "markdown-it-py mdit-py-plugins"),
    ".markdown": ("publisher.content.readers.markdown", "markdown-it-py mdit-py-plugins"),
    ".mdown": ("publisher.content.readers.markdown", "markdown-it-py mdit-py-plugins"),
    ".mkd": ("publisher.content.readers.markdown", "markdown-it-py mdit-py-plugins"),
    ".rst": ("publisher.content.readers.rst", "docutils"),
    ".html": ("publisher.content.readers.html", None),
    ".htm": ("publisher.content.readers.html", None),
    ".xml": ("publisher.content.readers.wxr", None),
}

_BOMS = {
    b"\xff\xfe": "UTF-16 (little-endian)",
    b"\xfe\xff": "UTF-16 (big-endian)",
}


def megabytes(size: int) -> str:
    """``size`` bytes for a message: "52.4 MB"."""
    return f"{size / 1_000_000:.1f} MB"


def check_post_size(data: bytes, path: str, options: ReadOptions) -> None:
    """A ``ContentError`` for a one-post file larger than ``options.max_post_bytes``."""
    if len(data) > options.max_post_bytes:
        raise ContentError(
            path,
            None,
            f"{megabytes(len(data))} is too big for one post (at most {megabytes(options.max_post_bytes)}); "
            "is it really a post?",
        )


def decode(data: bytes, path: str) -> str:
    """UTF-8 text (a BOM allowed) with LF line ends, or a ``ContentError``.

    The error names the line and column of the first undecodable byte.
    """
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise ContentError(path, 1, f"file is {name}; save it as UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        raise ContentError(
            path, line, f"not valid UTF-8 (byte 0x{byte:02x} at column {column})"
        ) from None
    # A stray NUL is removed like any control character; text made of them
    # (UTF-16 without a BOM, a binary file) is not a post.
    nuls = text.count("\x00")
    if nuls and nuls * 8 >= len(text):
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ContentError(path, line, "mostly NUL bytes: not a text file (UTF-16 without a BOM?)")
    if not text.strip():
        raise ContentError(path, 1, "empty file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extensions() -> tuple[str, ...]:
    """The file extensions that have a reader."""
    return tuple(_MODULES)


def reader_for(path: str) -> Reader | None:
    """The reader for ``path`` by its extension, or None if there is none."""
    entry = _MODULES.get(PurePath(path).suffix.lower())
    if entry is None:
        return None
    module_name, install = entry

    def read(data: bytes, shown: str, options: ReadOptions) -> ReadResult:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = f"; install {install}" if install else ""
            raise ContentError(shown, None, f"cannot read this format: {exc}{hint}") from None
        try:
            result = getattr(module, "read_result", module.read)(data, shown, options)
        except NotAPost as exc:
            return ReadResult((), skipped=exc.reason)
        return result if isinstance(result, ReadResult) else ReadResult((result,))

    return read
