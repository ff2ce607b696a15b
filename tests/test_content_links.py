"""Relative links in post HTML are resolved against the post's URL; HTML
without one reaches the feeds byte for byte as sanitised."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher import content
from publisher.config import load_config
from publisher.sanitize import absolutize as lxml_absolutize

from .conftest import build


@pytest.mark.parametrize(
    "html",
    [
        '<p>See <a href="https://example.com/a?b=1&amp;c=2">this</a> and <a href="#fn-1">a note</a>.</p>',
        "<p><img src=\"//cdn.example.com/a.png\" alt=\"a\"><a href='mailto:a@example.org'>mail</a></p>",
        "<p>No links at all, href=\"a\" in text.</p>",
    ],
)
def test_html_without_a_relative_link_is_left_as_it_is(html: str) -> None:
    assert content.absolutize(html, "https://example.org/2024/01/post/") == html


@pytest.mark.parametrize(
    "html",
    [
        '<p><img src="images/a.png" alt="a"> and <a href="https://example.com/">b</a></p>',
        "<p><a href='../archive/'>archive</a></p>",
        "<p><a href=other.html>other</a></p>",
    ],
)
def test_html_with_a_relative_link_is_resolved_as_sanitize_resolves_it(html: str) -> None:
    base = "https://example.org/2024/01/post/"
    resolved = content.absolutize(html, base)
    assert resolved == lxml_absolutize(html, base)
    assert 'href="https://example.org/' in resolved or 'src="https://example.org/' in resolved


def test_a_post_with_only_absolute_links_is_published_byte_for_byte(blank_site: Path) -> None:
    absolute = blank_site / "posts" / "a.md"
    absolute.write_text("# Absolute only\n\nRead [this](https://example.com/x?a=1&b=2)&nbsp;now.\n", encoding="utf-8")
    (blank_site / "posts" / "b.md").write_text("# Relative\n\n![chart](chart.png)\n", encoding="utf-8")
    report = build(blank_site)
    by_title = {p.title: p for p in report.site.posts}
    assert 'src="https://example.org/' in by_title["Relative"].content_html
    config = load_config(blank_site / "publisher.toml")
    (read,) = content.read_file(absolute, config).posts
    assert by_title["Absolute only"].content_html == content._clean(read).content_html
