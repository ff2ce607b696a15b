"""Front matter: a ``---`` YAML or ``+++`` TOML block at the top of a post.

Also: YAML closed by ``...`` (Jekyll), ``---json``, ``---yaml`` and
``---toml`` (Eleventy), a JSON object (Hugo), and Pelican's ``Key: value``
header in Markdown files. ``---js`` front matter is refused: it is code.

    meta, body, body_line = split_front_matter(text, "posts/a.txt")
    # meta == {"date": ..., "tags": [...]}; body starts at line ``body_line``

    doc = read_document(data, "posts/a.md", options)   # decoded, metadata checked
    doc.meta.date, doc.body

Errors are ``ContentError`` with the line in the file where the problem is.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

from publisher.errors import ContentError, toml_error
from publisher.content.readers import NotAPost, ReadOptions, check_post_size, decode
from publisher.content.readers.metadata import ALIASES, KEYS, OTHER_TOOLS_KEYS, Metadata, merge, parse_metadata

KNOWN_KEYS = KEYS | set(ALIASES) | OTHER_TOOLS_KEYS

# Opening line -> (format, closing lines). YAML may close with "..." (as
# Jekyll allows); Eleventy's "---json" holds JSON.
_FENCES = {
    "---": ("yaml", ("---", "...")),
    "---yaml": ("yaml", ("---", "...")),
    "+++": ("toml", ("+++",)),
    "---toml": ("toml", ("---",)),
    "---json": ("json", ("---",)),
}
_JAVASCRIPT_FENCES = ("---js", "---javascript")


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that leaves timestamps as text, for ``parse_date`` to check."""


class _FastYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same, with libyaml's parser when PyYAML was built with it (several
    times faster, the same safe constructors). Its errors point less well (an
    unclosed list is reported at the end of the block), so a block it refuses
    is read again by ``_YamlLoader`` for the error to report."""


for _loader in (_YamlLoader, _FastYamlLoader):
    _loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    """Split ``text`` into (metadata, body, line number where the body starts)."""
    lines = text.split("\n")
    fence = lines[0].strip() if lines else ""
    if fence in _JAVASCRIPT_FENCES:
        raise ContentError(
            path, 1, f"JavaScript front matter ({fence}) cannot be read: write it as ---json or YAML"
        )
    if fence == "{":
        return _json_object(text, path)
    if fence not in _FENCES:
        return {}, text, 1
    kind, closers = _FENCES[fence]
    for index in range(1, len(lines)):
        if lines[index].strip() in closers:
            block = "\n".join(lines[1:index])
            meta = _parse(block, kind, path)
            return meta, "\n".join(lines[index + 1 :]), index + 2
    raise ContentError(path, 1, f"front matter opened with {fence!r} is never closed")


_HEADER_LINE = re.compile(r"^[ ]{0,3}(?P<key>[A-Za-z0-9_-]+):\s*(?P<value>.*)$")
_MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")


def _key_value_header(text: str) -> tuple[dict[str, Any], str, int] | None:
    """Pelican's Markdown metadata: ``Key: value`` lines at the top, values
    continued on lines indented by four spaces, ended by a blank line.

    Taken as metadata only when every line of the block is such a line and
    one of its keys is a metadata key, so a post that opens with "Note: …"
    keeps its first paragraph.
    """
    lines = text.split("\n")
    meta: dict[str, Any] = {}
    last: str | None = None
    for index, line in enumerate(lines):
        if not line.strip():
            break
        match = _HEADER_LINE.match(line)
        if match:
            last = match["key"]
            meta[last] = match["value"].strip()
        elif last is not None and line.startswith("    "):
            meta[last] = f"{meta[last]} {line.strip()}".strip()
        else:
            return None
    else:
        index = len(lines)
    if not meta or not any(key.lower() in KNOWN_KEYS for key in meta):
        return None
    return meta, "\n".join(lines[index + 1 :]), index + 2


def _json_object(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    """Hugo's JSON front matter: an object at the top of the file."""
    try:
        meta, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        raise ContentError(path, exc.lineno, f"front matter is not valid JSON: {exc.msg}") from None
    if not isinstance(meta, dict):
        raise ContentError(path, 1, "front matter must be a mapping of keys to values")
    line = text.count("\n", 0, end) + 1
    rest = text[end:]
    if rest.startswith("\n"):
        rest, line = rest[1:], line + 1
    return meta, rest, line


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
    if body_line == 1 and path.lower().endswith(_MARKDOWN_SUFFIXES):
        raw, body, body_line = _key_value_header(text) or (raw, body, body_line)
    meta = merge(parse_metadata(raw, path=path, text=text, first_line=1, tz=options.timezone), options.overlay)
    if meta.page:
        raise NotAPost(meta.page)
    return Document(text, meta, body, body_line)


def _parse(block: str, kind: str, path: str) -> dict[str, Any]:
    if kind == "json":
        try:
            data = json.loads(block or "{}")
        except json.JSONDecodeError as exc:
            raise ContentError(path, exc.lineno + 1, f"front matter is not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ContentError(path, 2, "front matter must be a mapping of keys to values")
        return data
    if kind == "toml":
        try:
            data = tomllib.loads(block)
        except tomllib.TOMLDecodeError as exc:
            line, reason = toml_error(exc, block)
            raise ContentError(path, line + 1, f"front matter is not valid TOML: {reason}") from exc
        return data
    try:
        data = yaml.load(block, Loader=_FastYamlLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError:
        data = _yaml_with_its_error(block, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContentError(path, 2, "front matter must be a mapping of keys to values")
    return data


def _yaml_with_its_error(block: str, path: str) -> Any:
    """``block`` read by PyYAML's own parser, whose error names the line."""
    try:
        return yaml.load(block, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(path, line, f"front matter is not valid YAML: {problem}") from exc
