"""The text part of a digest: one-line text wrapped, post HTML as plain text.

The text templates (``digest.txt``, ``_post.txt``) wrap their lines with
``wrap`` and turn each post's HTML into text with ``html_text``: paragraphs,
"> " quotes, "- " list items, links as ``text [n]`` numbered references
listed at the end of the email. ``tidy_text`` gives the finished part its
shape: no trailing spaces, at most one blank line in a row.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any

import lxml.etree
import lxml.html

from publisher.text import one_line

#: Where the text part wraps.
TEXT_WIDTH = 72


def wrap(text: str, width: int = TEXT_WIDTH, prefix: str = "", first: str | None = None) -> str:
    """``text`` on one line, then wrapped at ``width`` with ``prefix`` on
    every line (``first`` on the first, if given: ``"- "`` for a list item);
    a URL (or any long word) is never broken, so only a line holding one can
    be longer."""
    flat = one_line(str(text))
    if not flat:
        return prefix.rstrip()
    return textwrap.fill(
        flat,
        width=width,
        initial_indent=prefix if first is None else first,
        subsequent_indent=prefix,
        break_long_words=False,
        break_on_hyphens=False,
    )


_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCKS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer form h1 h2 h3 h4 h5 h6"
    " header hr li main nav ol p pre section table tbody tfoot thead tr ul".split()
)


def html_text(fragment: str, ref: Callable[[str | None], str]) -> str:
    """Post HTML as wrapped plain text: paragraphs, "> " quotes, "- " items,
    links as ``text [n]`` through ``ref``, preformatted text kept as is."""
    if not fragment.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return wrap(fragment)
    paragraphs: list[tuple[str, bool]] = []  # (text, is a list item)
    inline: list[str] = []

    def flush(first: str, rest: str) -> None:
        text = "".join(inline)
        inline.clear()
        lines = [wrap(line, prefix=rest) for line in text.split("\n") if line.strip()]
        if lines:
            lines[0] = first + lines[0][len(rest) :]
            paragraphs.append(("\n".join(lines), first.endswith("- ")))

    def walk(element: Any, first: str, rest: str) -> None:
        for child in element:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag in _SKIPPED or not tag:
                pass
            elif tag == "br":
                inline.append("\n")
            elif tag == "img":
                alt = one_line(child.get("alt") or "")
                if alt:
                    inline.append(f"[Image: {alt}]")
            elif tag == "pre":
                flush(first, rest)
                block = child.text_content().rstrip("\n")
                paragraphs.append(("\n".join(rest + line for line in block.split("\n")), False))
            elif tag in _BLOCKS:
                flush(first, rest)
                if tag == "blockquote":
                    inner_first, inner_rest = rest + "> ", rest + "> "
                elif tag == "li":
                    inner_first, inner_rest = rest + "- ", rest + "  "
                elif tag == "hr":
                    paragraphs.append((rest + "* * *", False))
                    inner_first, inner_rest = first, rest
                else:
                    inner_first, inner_rest = first, rest
                inline.append(child.text or "")
                walk(child, inner_first, inner_rest)
                flush(inner_first, inner_rest)
            else:
                inline.append(child.text or "")
                walk(child, first, rest)
                if tag == "a":
                    href = (child.get("href") or "").strip()
                    if href.startswith(("http://", "https://")):
                        inline.append(" " + ref(href))
            if child.tail:
                inline.append(child.tail)

    inline.append(root.text or "")
    walk(root, "", "")
    flush("", "")
    out: list[str] = []
    for index, (text, item) in enumerate(paragraphs):
        if index:
            # List items stay together; everything else is a paragraph.
            out.append("\n" if item and paragraphs[index - 1][1] else "\n\n")
        out.append(text)
    return "".join(out)


def tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
