"""Relative links in post HTML are resolved against the post's URL; HTML
without one reaches the feeds byte for byte as sanitised."""

from __future__ import annotations

from pathlib import Path

from publisher import content
from publisher.config import load_config

from .conftest import build


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


def test_relative_image_candidates_are_resolved_from_the_cache_too(blank_site: Path) -> None:
    (blank_site / "posts" / "c.md").write_text(
        '# Pictures\n\n<img src="https://cdn.example/a.png" srcset="a-2x.png 2x" alt="a">\n', encoding="utf-8"
    )
    first = build(blank_site)
    again = build(blank_site)
    (cold,) = first.site.posts
    (cached,) = again.site.posts
    assert 'srcset="https://example.org/' in cold.content_html
    assert cached.content_html == cold.content_html
