"""Front matter: a ``---`` YAML or ``+++`` TOML block at the top of a post.

    meta, body, body_line = split_front_matter(text, "posts/a.txt")
    # meta == {"date": ..., "tags": [...]}; body starts at line ``body_line``

    doc = read_document(data, "posts/a.md", options)   # decoded, metadata checked
    doc.meta.date, doc.body

Errors are ``ContentError`` with the line in the file where the problem is.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

from publisher.errors import ContentError, toml_error
from publisher.content.readers import ReadOptions, check_post_size, decode
from publisher.content.readers.metadata import Metadata, merge, parse_metadata

_FENCES = {"---": "yaml", "+++": "toml"}


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that leaves timestamps as text, for ``parse_date`` to check."""


_YamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    """Split ``text`` into (metadata, body, line number where the body starts)."""
    lines = text.split("\n")
    fence = lines[0].strip() if lines else ""
    if fence not in _FENCES:
        return {}, text, 1
    for index in range(1, len(lines)):
        if lines[index].strip() == fence:
            block = "\n".join(lines[1:index])
            meta = _parse(block, _FENCES[fence], path)
            return meta, "\n".join(lines[index + 1 :]), index + 2
    raise ContentError(path, 1, f"front matter opened with {fence!r} is never closed")


@dataclass(frozen=True)
class Document:
    """A post file decoded and split: its metadata (sidecar applied) and body."""

    text: str
    meta: Metadata
    body: str
    body_line: int


def read_document(data: bytes, path: str, options: ReadOptions) -> Document:
    """Decode ``data``, split off front matter and check it; the sidecar wins.

    A file larger than ``options.max_post_bytes`` is refused before it is decoded.
    """
    check_post_size(data, path, options)
    text = decode(data, path)
    raw, body, body_line = split_front_matter(text, path)
    meta = parse_metadata(raw, path=path, text=text, first_line=1, tz=options.timezone)
    return Document(text, merge(meta, options.overlay), body, body_line)


def _parse(block: str, kind: str, path: str) -> dict[str, Any]:
    if kind == "toml":
        try:
            data = tomllib.loads(block)
        except tomllib.TOMLDecodeError as exc:
            line, reason = toml_error(exc, block)
            raise ContentError(path, line + 1, f"front matter is not valid TOML: {reason}") from exc
        return data
    try:
        data = yaml.load(block, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(path, line, f"front matter is not valid YAML: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContentError(path, 2, "front matter must be a mapping of keys to values")
    return data
