"""The Markdown reader: CommonMark posts with front matter, as Jekyll or Hugo write them.

A post is an optional front-matter block (``---`` YAML or ``+++`` TOML) and a
CommonMark body with tables, ~~strikethrough~~, footnotes, fenced code and
raw HTML (markdown-it-py). Raw HTML is passed through: the content stage
sanitises every post's HTML afterwards, so nothing is removed here.

Title, first that applies:

1. ``title`` from front matter or the sidecar;
2. the first top-level ``#`` heading, else the first top-level heading of any
   level (headings inside block quotes and lists are quoted or listed text,
   not the post's title). That heading is taken out of the body so the title
   is not shown twice; so is a heading whose text is exactly the title given
   in front matter;
3. in a file with front matter, the file's name, as Jekyll makes it:
   ``2013-05-06-jekyll-1-0-0-released.md`` is "Jekyll 1 0 0 Released";
4. otherwise a ``ContentError`` at the body's first non-blank line.

The summary is ``summary`` from front matter, else the text before a
``<!--more-->`` line (Hugo's and Jekyll's summary divider, which is taken
out), else the text of the first paragraph (words only: no images, HTML or
struck-out text). A post whose body is empty after its front matter is
allowed: ``content_html`` is "".

Jekyll's Liquid and Hugo's shortcodes are converted first (``shortcodes``).

    post = read(path.read_bytes(), "posts/hello.md", ReadOptions(timezone=tz))
    post.title, post.content_html

Footnote anchors carry an id made from the file's path (``fn-posts-hello-1``)
so that several posts shown on one page (a digest, a feed reader's river)
do not send each other's footnote links to the wrong place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin

from publisher.errors import ContentError
from publisher.model import Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.readers.frontmatter import read_document
from publisher.content.readers.metadata import post_fields
from publisher.content.readers.shortcodes import convert_templates
from publisher.text import slugify, summarize, visible_line

# Built once: the parser's rule chains are compiled here, not per post.
_MARKDOWN = (
    MarkdownIt("commonmark", {"html": True, "typographer": False})
    .enable(["table", "strikethrough"])
    .use(footnote_plugin)
)

NO_TITLE = "no title: give a title in front matter or start with a # heading"


def _plain(inline: Token) -> str:
    """The words of an inline token: text and code; no markup, images, HTML or struck-out text."""
    parts: list[str] = []
    struck = 0
    for child in inline.children or ():
        if child.type in ("s_open", "s_close"):
            struck += 1 if child.type == "s_open" else -1
        elif struck:
            continue
        elif child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return visible_line("".join(parts))


def _title_heading(tokens: Sequence[Token]) -> int | None:
    """Index of the heading that would be the title: the first top-level h1, else the first heading.

    Headings inside block quotes or lists are quoted or listed text, not the
    post's title; headings with no words (``#`` alone, an image) are skipped.
    """
    first: int | None = None
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or not _plain(tokens[index + 1]):
            continue
        if token.tag == "h1":
            return index
        if first is None:
            first = index
    return first


def _first_paragraph(tokens: Sequence[Token]) -> str:
    """The text of the first shown paragraph that has any, footnotes excluded.

    Items of a tight list are paragraphs markdown-it hides (no ``<p>``);
    they are list entries, not prose to summarise.
    """
    for index, token in enumerate(tokens):
        if token.type == "footnote_block_open":
            break
        if token.type == "paragraph_open" and not token.hidden:
            text = _plain(tokens[index + 1])
            if text:
                return text
    return ""


def _first_text_line(body: str, body_line: int) -> int:
    """The line of the body's first non-blank line (where a heading would go)."""
    for offset, line in enumerate(body.split("\n")):
        if line.strip():
            return body_line + offset
    return body_line


_MORE = re.compile(r"^[ \t]*<!--\s*more\s*-->[ \t]*$", re.M | re.I)
_DATED_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-")


def title_from_name(path: str) -> str:
    """Jekyll's title for a post without one: its file name's words, capitalised."""
    stem = _DATED_NAME.sub("", PurePosixPath(path.replace("\\", "/")).stem).rstrip(".")
    return " ".join(word.capitalize() for word in stem.split("-") if word)


def _split_more(body: str) -> tuple[str, str | None]:
    """(body without the ``<!--more-->`` line, the Markdown before it or None)."""
    match = _MORE.search(body)
    if match is None:
        return body, None
    return body[: match.start()] + body[match.end() :], body[: match.start()]


def _summary_before_more(before: str | None, env: dict) -> str | None:
    if before is None:
        return None
    tokens = _MARKDOWN.parse(before, dict(env))
    words = [_plain(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "paragraph_open"]
    return summarize(" ".join(w for w in words if w)) or None


def _doc_id(path: str) -> str:
    return slugify(str(PurePosixPath(path.replace("\\", "/")).with_suffix("")))


def read(data: bytes, path: str, options: ReadOptions) -> Post:
    return read_result(data, path, options).posts[0]


def read_result(data: bytes, path: str, options: ReadOptions) -> ReadResult:
    """The post, with the warnings about its metadata."""
    document = read_document(data, path, options)
    meta, body, body_line = document.meta, document.body, document.body_line
    body, template_warnings = convert_templates(body, path, options.site_url, first_line=body_line)
    body, before_more = _split_more(body)

    env: dict = {"docId": _doc_id(path)}
    tokens = _MARKDOWN.parse(body, env)

    heading = _title_heading(tokens)
    heading_text = _plain(tokens[heading + 1]) if heading is not None else None
    if meta.title:
        title = meta.title
        if heading_text is None or heading_text != visible_line(title):
            heading = None
    elif heading_text:
        title = heading_text
    elif document.body_line > 1 and title_from_name(path):
        # A file with front matter is a Jekyll post: Jekyll titles it by its name.
        title = title_from_name(path)
    else:
        raise ContentError(path, _first_text_line(body, body_line), NO_TITLE)
    if heading is not None:
        # heading_open, inline, heading_close
        tokens = tokens[:heading] + tokens[heading + 3 :]

    content_html = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, env).strip()
    post = Post(
        source=path,
        title=visible_line(title),
        content_html=content_html,
        summary=meta.summary or _summary_before_more(before_more, env) or summarize(_first_paragraph(tokens)) or None,
        **post_fields(meta),
    )
    return ReadResult((post,), warnings=meta.warnings + template_warnings)
