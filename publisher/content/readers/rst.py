"""The reStructuredText reader: ``.rst`` posts as Pelican writes them, read with docutils.

The document's title is the post's title; the field list at the top (the
docinfo: ``:date:``, ``:modified:``, ``:tags:``, ``:category:``, ``:slug:``,
``:author:`` or ``:authors:``, ``:summary:``, ``:status:``) is its metadata,
read with the same rules as front matter (``status: draft`` is not
published). The body is docutils' HTML5 without the title and the field
list, headings starting at ``<h2>``. A sidecar file's keys win, as for
every format.

Docutils reads nothing but the text: file inclusion and the ``raw``
directive are off, and its warnings never reach the post.

    post = read(path.read_bytes(), "posts/first.rst", ReadOptions(timezone=tz))
"""

from __future__ import annotations

import io
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree, publish_parts
from docutils.writers.html5_polyglot import Writer

from publisher.errors import ContentError
from publisher.model import Post
from publisher.content.readers import NotAPost, ReadOptions, ReadResult, check_post_size, decode
from publisher.content.readers.metadata import merge, parse_metadata, post_fields
from publisher.text import summarize, visible_line

NO_TITLE = "no title: start the document with a title (a line of text underlined with ===)"


def _settings() -> dict[str, Any]:
    return {
        "input_encoding": "unicode",
        "output_encoding": "unicode",
        "_disable_config": True,
        "file_insertion_enabled": False,
        "raw_enabled": False,
        "report_level": 5,  # nothing: docutils' complaints are not the post's text
        "halt_level": 5,
        "warning_stream": io.StringIO(),
        "doctitle_xform": True,
        "initial_header_level": 2,
        "syntax_highlight": "none",
        "embed_stylesheet": False,
        "stylesheet_path": "",
        "math_output": "HTML",
    }


def _docinfo(doctree: nodes.document) -> dict[str, str]:
    """The field list at the top: name (as written) -> text."""
    found: dict[str, str] = {}
    for docinfo in doctree.findall(nodes.docinfo):
        for child in docinfo.children:
            if isinstance(child, nodes.field):
                found.setdefault(child[0].astext().strip(), child[1].astext().strip())
            elif isinstance(child, nodes.authors):
                found.setdefault("authors", ", ".join(a.astext().strip() for a in child.children))
            elif isinstance(child, nodes.Element):
                found.setdefault(child.tagname, child.astext().strip())
    return found


def _first_paragraph(doctree: nodes.document) -> str:
    for paragraph in doctree.findall(nodes.paragraph):
        if not any(isinstance(a, (nodes.docinfo, nodes.field_list)) for a in _ancestors(paragraph)):
            text = visible_line(paragraph.astext())
            if text:
                return text
    return ""


def _ancestors(node: nodes.Node):
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def read(data: bytes, path: str, options: ReadOptions) -> Post:
    return read_result(data, path, options).posts[0]


def read_result(data: bytes, path: str, options: ReadOptions) -> ReadResult:
    """The post, with the warnings about its metadata."""
    check_post_size(data, path, options)
    text = decode(data, path)
    try:
        doctree = publish_doctree(text, source_path=path, settings_overrides=_settings())
        parts = publish_parts(text, source_path=path, writer=Writer(), settings_overrides=_settings())
    except Exception as exc:  # docutils raises many kinds for broken input
        raise ContentError(path, None, f"reStructuredText cannot be read: {exc}") from None
    meta = parse_metadata(_docinfo(doctree), path=path, text=text, first_line=1, tz=options.timezone)
    meta = merge(meta, options.overlay)
    if meta.page:
        raise NotAPost(meta.page)
    title = meta.title or visible_line(doctree.get("title", ""))
    if not title:
        raise ContentError(path, 1, NO_TITLE)
    post = Post(
        source=path,
        title=title,
        content_html=parts["body"].strip(),
        summary=meta.summary or summarize(_first_paragraph(doctree)) or None,
        **post_fields(meta),
    )
    return ReadResult((post,), warnings=meta.warnings)
