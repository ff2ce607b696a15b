"""The plain-text reader: link-blog posts as WordPress shows them as text.

The format, as in ``seeds/000_876ff53b270cd303.txt``: an optional front
matter block, the title on the first line, paragraphs separated by blank
lines. A paragraph led by "Sheera Frenkel reports: …" (or writes/says/…)
opens an excerpt quoted from that source, which runs until a continue-
reading marker ("[Continue reading…]"), the next lead, or the end of the
post. Share-button lines are dropped; "1 thought on “…”" opens the comments,
each "1. author" followed by its indented text; "Comments are closed." is a
flag. Everything else is kept, in order.

    post = read(path.read_bytes(), "seeds/a.txt", ReadOptions(timezone=tz))
    post.excerpts[0].source   # "Sheera Frenkel"
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from publisher.errors import ContentError
from publisher.model import Block, Comment, Excerpt, Paragraph, Post
from publisher.content.readers import ReadOptions, ReadResult
from publisher.content.readers.frontmatter import read_document
from publisher.content.readers.metadata import Metadata, post_fields
from publisher.text import one_line, summarize, visible_line

_LEADS = (
    "reports|reported|writes|wrote|says|said|notes|adds|explains|observes|argues"
    "|comments|concludes|points out"
)
_LEAD = re.compile(rf"^(?P<source>.{{2,100}}?)\s+(?P<lead>{_LEADS})\s*:\s*(?P<rest>.*)$", re.S)
# Lower-case words that may stand inside a source's name ("Ministry of Defence").
_NAME_JOINERS = {"of", "the", "de", "du", "da", "al", "el", "la", "le", "von", "van", "der", "and", "&", "for", "on", "in", "at"}
_PRONOUNS = {"he", "she", "it", "they", "we", "i", "you", "one", "this", "that", "who"}

_MORE = re.compile(
    r"\s*\[(?P<label>(?:continue reading|read more|read the full (?:article|story)|more)"
    r"\s*(?:…|\.\.\.)?)\](?:\((?P<url>https?://[^\s)]+)\))?\s*$",
    re.I,
)
_COMMENTS_HEADING = re.compile(
    r"^(?:\d+|one|two|three|no)\s+(?:thoughts?|comments?|responses?|replies|reply)\s+(?:on|to)\s+[“\"]",
    re.I,
)
_COMMENT_START = re.compile(r"^(?P<number>\d+)\.\s+(?P<author>\S.*)$")
_COMMENTS_CLOSED = re.compile(r"^comments are closed\.?$", re.I)
# A tag, a comment or a doctype: a "title" like this is a page saved with the wrong extension.
_MARKUP = re.compile(r"\s*<(?:[A-Za-z][\w-]*(?:\s[^<>]*)?/?>|!--|!DOCTYPE|/[A-Za-z]|\?xml)", re.I)


@dataclass
class _Chunk:
    """A paragraph of the source: its lines, and the line number it starts at."""

    lines: list[str]
    line: int

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _chunks(body: str, first_line: int) -> list[_Chunk]:
    chunks: list[_Chunk] = []
    lines: list[str] = []
    start = first_line
    for offset, raw in enumerate(body.split("\n")):
        if raw.strip():
            if not lines:
                start = first_line + offset
            lines.append(raw.strip())
        elif lines:
            chunks.append(_Chunk(lines, start))
            lines = []
    if lines:
        chunks.append(_Chunk(lines, start))
    return chunks


def _source_name(candidate: str) -> bool:
    words = candidate.split()
    if len(words) > 8 or words[0].lower() in _PRONOUNS:
        return False
    return all(w[0].isupper() or w[0].isdigit() or w.lower() in _NAME_JOINERS for w in words)


def _split_title(chunks: list[_Chunk], meta: Metadata, path: str, body_line: int) -> str:
    if meta.title:
        return meta.title
    if not chunks:
        raise ContentError(path, body_line, "no title: the post has no text")
    first = chunks.pop(0)
    if not visible_line(first.lines[0]):
        raise ContentError(path, first.line, "no title: the first line has only control characters")
    if _MARKUP.match(first.lines[0]):
        raise ContentError(
            path, first.line, "the first line is HTML markup, not a title: this file holds HTML; name it .html"
        )
    # The title is the first line; the rest of a wrapped first paragraph is body.
    if len(first.lines) > 1:
        chunks.insert(0, _Chunk(first.lines[1:], first.line + 1))
    return first.lines[0]


class _Parser:
    def __init__(self, meta: Metadata, boilerplate: tuple[str, ...]):
        self.sources = meta.sources
        self.boilerplate = {one_line(b).casefold() for b in boilerplate}
        self.blocks: list[Block] = []
        self.comments: list[Comment] = []
        self.comments_heading: str | None = None
        self.comments_closed = False
        self._excerpt: dict | None = None

    def feed(self, chunk: _Chunk) -> None:
        text = chunk.text
        if text.casefold() in self.boilerplate:
            return
        if _COMMENTS_CLOSED.match(text):
            self._close_excerpt()
            self.comments_closed = True
            return
        if self.comments_heading is None and _COMMENTS_HEADING.match(text):
            self._close_excerpt()
            self.comments_heading = text
            return
        if self.comments_heading is not None:
            self._comment(text)
            return
        self._body(text)

    def _comment(self, text: str) -> None:
        start = _COMMENT_START.match(text)
        if start and len(text) <= 120:
            self.comments.append(Comment(int(start["number"]), start["author"].strip(), ()))
        elif self.comments:
            last = self.comments[-1]
            self.comments[-1] = Comment(last.number, last.author, last.paragraphs + (text,))
        else:
            # Text under the heading before any numbered comment: keep it as body.
            self.blocks.append(Paragraph(text))

    def _body(self, text: str) -> None:
        lead = _LEAD.match(text)
        if lead and _source_name(lead["source"]):
            self._close_excerpt()
            source = lead["source"].strip()
            self._excerpt = {
                "source": source,
                "lead": lead["lead"],
                "paragraphs": [],
                "source_url": self.sources.get(source),
            }
            text = lead["rest"].strip()
            if not text:
                return
        more = _MORE.search(text)
        if more:
            text = text[: more.start()].rstrip()
        if self._excerpt is None:
            if text:
                self.blocks.append(Paragraph(text))
            if more:
                self.blocks.append(Paragraph(more.group(0).strip()))
            return
        if text:
            self._excerpt["paragraphs"].append(text)
        if more:
            self._excerpt["more"] = more["label"] and f"[{more['label']}]"
            self._excerpt["more_url"] = more["url"] or self._excerpt["source_url"]
            self._close_excerpt()

    def _close_excerpt(self) -> None:
        if self._excerpt is not None:
            data = self._excerpt
            self.blocks.append(
                Excerpt(
                    source=data["source"],
                    lead=data["lead"],
                    paragraphs=tuple(data["paragraphs"]),
                    source_url=data["source_url"],
                    more=data.get("more"),
                    more_url=data.get("more_url"),
                )
            )
            self._excerpt = None

    def finish(self) -> None:
        self._close_excerpt()


def render_blocks(blocks: tuple[Block, ...]) -> str:
    """HTML for a plain-text post's blocks; every piece of text is escaped."""
    esc = html.escape
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            out.append(f"<p>{esc(block.text)}</p>")
            continue
        name = esc(block.source)
        if block.source_url:
            name = f'<a href="{esc(block.source_url)}">{name}</a>'
        out.append(f'<p class="excerpt-source"><cite>{name}</cite> {esc(block.lead)}:</p>')
        cite = f' cite="{esc(block.source_url)}"' if block.source_url else ""
        paragraphs = [esc(p) for p in block.paragraphs] or [""]
        if block.more:
            more = esc(block.more)
            if block.more_url:
                more = f'<a class="more" href="{esc(block.more_url)}">{more}</a>'
            paragraphs[-1] = f"{paragraphs[-1]} {more}".strip()
        inner = "\n".join(f"<p>{p}</p>" for p in paragraphs)
        out.append(f"<blockquote{cite}>\n{inner}\n</blockquote>")
    return "\n".join(out)


def _first_text(blocks: tuple[Block, ...]) -> str:
    for block in blocks:
        if isinstance(block, Paragraph):
            return block.text
        if block.paragraphs:
            return f"{block.source} {block.lead}: {block.paragraphs[0]}"
    return ""


def read(data: bytes, path: str, options: ReadOptions) -> Post:
    return read_result(data, path, options).posts[0]


def read_result(data: bytes, path: str, options: ReadOptions) -> ReadResult:
    """The post, with the warnings about its metadata."""
    document = read_document(data, path, options)
    meta, body, body_line = document.meta, document.body, document.body_line
    chunks = _chunks(body, body_line)
    title = _split_title(chunks, meta, path, body_line)
    parser = _Parser(meta, options.boilerplate)
    for chunk in chunks:
        parser.feed(chunk)
    parser.finish()
    blocks = tuple(parser.blocks)
    post = Post(
        source=path,
        title=visible_line(title),
        content_html=render_blocks(blocks),
        blocks=blocks,
        summary=meta.summary or summarize(_first_text(blocks)) or None,
        **post_fields(meta),
        comments=tuple(parser.comments),
        comments_closed=parser.comments_closed,
        comments_heading=parser.comments_heading,
    )
    return ReadResult((post,), warnings=meta.warnings)
