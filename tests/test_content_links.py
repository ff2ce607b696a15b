"""Relative links in post HTML, and a relative ``image``, are resolved
against the post's URL; HTML without one reaches the feeds byte for byte as
sanitised."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
from lxml import etree

from publisher.content import load
from publisher.config import load_config
from publisher.model import DigestList, Issue
from publisher.mail.render import render_issue

from .conftest import NOW, build


def test_a_post_with_only_absolute_links_is_published_byte_for_byte(blank_site: Path) -> None:
    absolute = blank_site / "posts" / "a.md"
    absolute.write_text("# Absolute only\n\nRead [this](https://example.com/x?a=1&b=2)&nbsp;now.\n", encoding="utf-8")
    (blank_site / "posts" / "b.md").write_text("# Relative\n\n![chart](chart.png)\n", encoding="utf-8")
    report = build(blank_site)
    by_title = {p.title: p for p in report.site.posts}
    assert 'src="https://example.org/' in by_title["Relative"].content_html
    config = load_config(blank_site / "publisher.toml")
    (read,) = load.read_file(absolute, config).posts
    assert by_title["Absolute only"].content_html == load._clean(read).content_html


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


def test_a_relative_image_is_resolved_against_the_post_url_in_feeds_and_email(blank_site: Path) -> None:
    (blank_site / "posts" / "a.md").write_text(
        "---\ndate: 2024-03-01T10:00:00Z\nimage: cover.png\n---\n# Beside the post\n\nText.\n", encoding="utf-8"
    )
    (blank_site / "posts" / "b.md").write_text(
        "---\ndate: 2024-03-02T10:00:00Z\nImage: /img/root.png\n---\n# From the site root\n\nText.\n", encoding="utf-8"
    )
    (blank_site / "posts" / "c.md").write_text(
        "---\ndate: 2024-03-03T10:00:00Z\nimage: https://cdn.example/c.png\n---\n# Elsewhere\n\nText.\n", encoding="utf-8"
    )
    expected = {
        "Beside the post": "https://example.org/2024/03/beside-the-post/cover.png",
        "From the site root": "https://example.org/img/root.png",
        "Elsewhere": "https://cdn.example/c.png",
    }
    report = build(blank_site)
    assert report.errors == ()
    assert {p.title: p.image for p in report.site.posts} == expected

    feeds = blank_site / "feeds"
    items = json.loads((feeds / "feed.json").read_text(encoding="utf-8"))["items"]
    assert {item["title"]: item["image"] for item in items} == expected
    # Atom and RSS carry no relative form of an image, wherever they mention one.
    for name in ("atom.xml", "rss.xml"):
        for element in etree.fromstring((feeds / name).read_bytes()).iter():
            values = [element.text or "", *element.attrib.values()]
            assert not any(v.strip() in ("cover.png", "/img/root.png") for v in values), name

    issue = Issue(DigestList(name="daily", title="Daily"), 1, report.site.posts, NOW, "https://example.org/issues/daily/1/")
    rendered = render_issue(issue, report.site.info)
    sources = lxml.html.fromstring(rendered.html).xpath("//img[contains(@class, 'post-image')]/@src")
    assert sorted(sources) == sorted(expected.values())
    assert "cover.png" not in rendered.text.replace(expected["Beside the post"], "")

    # Read from the cache of readings, the same: nothing to rewrite.
    again = build(blank_site)
    assert {p.title: p.image for p in again.site.posts} == expected
    assert again.written == ()
