"""Bringing a blog from another tool: for each of WordPress, Jekyll, Hugo,
Pelican and Eleventy, a folder of posts written to that tool's documented
conventions (tests/data/<tool>/) is built as a site, and exactly the posts
that tool would publish come out, with their titles, dates, slugs and tags;
drafts never; every template tag converted or warned about; every other
file skipped with its reason."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest

from .conftest import build, write_config

DATA = Path(__file__).parent / "data"


def site_of(tmp_path: Path, tool: str, extra: str = "") -> Path:
    """A site whose posts folder is a copy of ``tests/data/<tool>``."""
    site = tmp_path / tool
    site.mkdir()
    write_config(site, extra)
    shutil.rmtree(site / "posts")
    shutil.copytree(DATA / tool, site / "posts")
    return site


def published(report) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(title, date in UTC, slug, tags) of each post, newest first."""
    return [
        (p.title, p.date.astimezone(timezone.utc).isoformat(), p.slug, p.tags) for p in report.site.posts
    ]


def by_title(report) -> dict:
    return {p.title: p for p in report.site.posts}


# -- WordPress ------------------------------------------------------------------


def test_wordpress_exports_of_every_wxr_version_and_scheme_publish_every_published_post(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "wordpress"))
    assert report.errors == ()
    assert published(report) == [
        ("Spring count", "2021-04-03T09:15:00+00:00", "spring-count", ("Birds", "survey")),
        ("Bread, week one", "2012-03-10T08:00:00+00:00", "bread-week-one", ("bread",)),
        ("Unique guid", "2009-07-01T14:00:00+00:00", "unique", ()),
        ("Moving day, part two", "2009-06-02T14:00:00+00:00", "moving-day-part-two", ("News",)),
        ("Moving day", "2009-06-01T14:00:00+00:00", "moving-day", ("News", "moving")),
    ]


def test_two_posts_sharing_a_guid_both_publish_keyed_on_the_blog_url_and_post_id(tmp_path: Path) -> None:
    posts = by_title(build(site_of(tmp_path, "wordpress")))
    assert posts["Moving day"].id == "http://oldblog.example/?p=7"
    assert posts["Moving day, part two"].id == "http://oldblog.example/?p=9"
    # Where the guid is unique, it is the post's id as it was.
    assert posts["Unique guid"].id == "http://oldblog.example/?p=12"
    assert posts["Moving day"].url == "http://oldblog.example/2009/06/moving-day/"


def test_wordpress_shortcodes_become_markup_and_unknown_ones_are_kept_and_warned(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "wordpress"))
    spring = by_title(report)["Spring count"].content_html
    # [gallery ids="31,32"]: the attachments' images, with the caption WordPress keeps.
    assert 'src="https://fieldnotes.example/wp-content/uploads/2021/04/heron.jpg"' in spring
    assert "<figcaption>A grey heron at the reeds</figcaption>" in spring
    assert 'src="https://fieldnotes.example/wp-content/uploads/2021/04/marsh.jpg"' in spring
    assert '<audio controls="" src="https://fieldnotes.example/wp-content/uploads/2021/04/dawn-chorus.mp3">' in spring
    assert '[contact-form-7 id="9" title="Contact"]' in spring
    assert report.warnings == (
        "posts/wxr-1.2-https-namespaces.xml:19: post 11: shortcode [contact-form-7] is not converted; kept as text",
    )
    bread = by_title(report)["Bread, week one"].content_html
    assert "<figcaption>The first loaf</figcaption>" in bread
    assert '<a href="https://www.youtube.com/watch?v=abcdefghijk">' in bread


def test_a_wordpress_enclosure_is_an_enclosure_in_all_three_feeds(tmp_path: Path) -> None:
    site = site_of(tmp_path, "wordpress")
    build(site)
    mp3 = "https://fieldnotes.example/wp-content/uploads/2021/04/dawn-chorus.mp3"
    for name in ("rss.xml", "atom.xml"):
        feed = feedparser.parse((site / "feeds" / name).read_bytes())
        (entry,) = [e for e in feed.entries if e.title == "Spring count"]
        assert [(e.href, e.type, e.length) for e in entry.enclosures] == [(mp3, "audio/mpeg", "4823011")]
    items = json.loads((site / "feeds" / "feed.json").read_text())["items"]
    (item,) = [i for i in items if i["title"] == "Spring count"]
    assert item["attachments"] == [{"url": mp3, "mime_type": "audio/mpeg", "size_in_bytes": 4823011}]


def test_an_export_given_as_a_feed_source_is_refused_and_nothing_of_it_publishes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    export = DATA / "wordpress" / "wxr-1.0-duplicate-guids.xml"
    write_config(site, f'\n[[content.feeds]]\npath = "{export}"\nname = "Old blog"\n')
    report = build(site)
    assert report.site.posts == ()
    (error,) = report.errors
    assert error.reason.startswith("a WordPress export (WXR), not a feed: list its file under [content] paths")


def test_a_blogger_export_given_as_a_feed_source_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    export = tmp_path / "blog-export.xml"
    export.write_text(
        "<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom'><id>tag:blogger.com,1999:blog-1</id>"
        "<title>B</title><entry><id>tag:blogger.com,1999:blog-1.settings.BLOG_NAME</id>"
        "<category scheme='http://schemas.google.com/g/2005#kind' term='http://schemas.google.com/blogger/2008/kind#settings'/>"
        "<title>Settings</title><content type='text'>admin@example.org</content></entry></feed>",
        encoding="utf-8",
    )
    write_config(site, f'\n[[content.feeds]]\npath = "{export}"\n')
    report = build(site)
    assert report.site.posts == ()
    assert report.errors[0].reason.startswith("a Blogger export, not a feed")


# -- Jekyll -------------------------------------------------------------------


def test_jekyll_posts_publish_as_jekyll_would(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "jekyll"))
    assert report.errors == ()
    assert published(report) == [
        ("Includes a partial", "2016-03-03T10:00:00+00:00", "includes-a-partial", ()),
        ("Same name, in notes", "2014-01-21T00:00:00+00:00", "same-name-2", ()),
        ("Same name, in _posts", "2014-01-20T00:00:00+00:00", "same-name", ()),
        # No title: the file name's, as Jekyll makes it; an empty tags: is none.
        ("Untitled Jekyll Post", "2014-01-01T00:00:00+00:00", "untitled-jekyll-post", ("ruby", "howto")),
        # date: in front matter dates the post; the slug is still the file name's.
        ("Jekyll 1.0.0 Released", "2013-05-06T01:16:49+00:00", "jekyll-1-0-0-released", ("release",)),
    ]
    assert "Written, then withdrawn" not in by_title(report)  # published: false


def test_jekyll_liquid_is_converted_or_warned_once_per_file(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "jekyll"))
    posts = by_title(report)
    untitled = posts["Untitled Jekyll Post"].content_html
    assert '<pre><code class="language-ruby">def greet(name)' in untitled
    assert "Literal Liquid, as written: {{ page.title }}." in untitled
    assert 'src="https://example.org/assets/logo.png"' in untitled
    assert '<a href="https://example.org/2013/05/jekyll-1-0-0-released/">the release</a>' in untitled
    assert "{% include signup-form.html %}" in posts["Includes a partial"].content_html
    assert report.warnings == (
        "posts/_posts/2013-05-06-jekyll-1-0-0-released.md:6: unknown key 'version'",
        "posts/_posts/2016-03-03-includes-a-partial.md:8: template syntax kept as text, "
        "not converted: {% include %}, {{ page.author }}",
    )


def test_files_that_are_not_posts_are_skipped_with_their_reasons(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "jekyll"))
    assert sorted(report.skipped) == [
        "posts/404.html: excluded by [content] exclude",
        "posts/_drafts: folder excluded by [content] exclude",
        "posts/about.md: a page (layout: page), not a post",
        "posts/assets/logo.png: no reader for .png",
        "posts/robots.txt: excluded by [content] exclude",
    ]


def test_exclude_globs_keep_more_files_out(tmp_path: Path) -> None:
    site = site_of(tmp_path, "jekyll", 'exclude = ["notes/*", "*.png"]\n')
    report = build(site)
    assert "Same name, in notes" not in by_title(report)
    assert "posts/notes: folder excluded by [content] exclude" in report.skipped
    assert "posts/assets/logo.png: excluded by [content] exclude" in report.skipped


# -- Hugo ---------------------------------------------------------------------


def test_hugo_posts_publish_as_hugo_would(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "hugo"))
    assert report.errors == ()
    # Not: the draft, the expired post, the post whose publishDate is to come.
    assert published(report) == [
        ("Dated before its publish date", "2025-06-15T09:00:00+00:00", "dated-before-its-publish-date", ("timing",)),
        ("A page bundle", "2024-05-01T12:00:00+00:00", "a-page-bundle", ("bundles",)),
        ("A post with its own URL", "2024-04-01T09:00:00+00:00", "a-post-with-its-own-url", ()),
        ("Hello from Hugo", "2024-02-02T12:14:54+00:00", "hello-hugo", ("hugo", "migration", "Notes")),
    ]
    assert sorted(report.skipped) == [
        "posts/_index.md: excluded by [content] exclude",
        "posts/about.md: a page (type: page), not a post",
    ]


def test_hugo_metadata_carries_over(tmp_path: Path) -> None:
    posts = by_title(build(site_of(tmp_path, "hugo")))
    hello = posts["Hello from Hugo"]
    assert hello.updated == datetime(2024, 2, 5, 18, 0, tzinfo=timezone.utc)  # lastmod
    assert hello.summary == "The summary Hugo's templates show."  # description
    assert hello.author is not None and hello.author.name == "Jane Doe"  # the first of authors
    assert hello.url == "https://example.org/2024/02/hello-hugo/"
    # url = "/custom/path/" is under [site] url.
    custom = posts["A post with its own URL"]
    assert custom.url == "https://example.org/custom/path/"
    # <!--more--> ends the summary, and is gone from the post.
    assert custom.summary == "Only this sentence is the summary."
    assert "more" not in custom.content_html and "<h" not in custom.content_html


def test_hugo_shortcodes_become_markup_and_others_are_warned(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "hugo"))
    posts = by_title(report)
    hello = posts["Hello from Hugo"].content_html
    assert '<a href="https://www.youtube.com/watch?v=w7Ft2ymGmfc">' in hello
    assert '<img src="https://example.org/img/sunset.jpg" alt="A sunset"><figcaption>Sunset over the bay</figcaption>' in hello
    # ref and relref lead to the posts those files became.
    assert '<a href="https://example.org/2024/05/a-page-bundle/">bundle post</a>' in hello
    assert '<a href="https://example.org/custom/path/">custom one</a>' in hello
    assert "<code>{{&lt; youtube w7Ft2ymGmfc &gt;}}</code>" in hello
    assert '<pre><code class="language-go">package main' in posts["A page bundle"].content_html
    assert report.warnings == (
        "posts/posts/bundle/index.md:11: template syntax kept as text, not converted: {{< gist >}}",
    )


# -- Pelican ------------------------------------------------------------------


def test_pelican_posts_in_markdown_rst_and_html_publish_as_pelican_would(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "pelican"))
    assert report.errors == ()
    assert report.warnings == ()
    # Not: Status draft (.mdown, .rst) or hidden (<meta name="status">).
    assert published(report) == [
        ("Published from .mkd", "2013-05-01T09:00:00+00:00", "from-mkd", ("markdown",)),
        ("Pelican HTML page", "2012-07-09T22:28:00+00:00", "pelican-html-page", ("thats", "awesome", "yeah")),
        ("Pelican Markdown header", "2010-12-03T10:20:00+00:00", "markdown-header", ("pelican", "publishing", "Python")),
        ("My super title", "2010-10-03T10:20:00+00:00", "my-super-post", ("thats", "awesome", "yeah")),
    ]


def test_pelican_metadata_is_metadata_not_body_text(tmp_path: Path) -> None:
    posts = by_title(build(site_of(tmp_path, "pelican")))
    header = posts["Pelican Markdown header"]
    assert header.content_html == "<p>This is the content of my super blog post.</p>"
    assert header.updated == datetime(2010, 12, 5, 19, 30, tzinfo=timezone.utc)
    assert header.summary == "Short version for index and feeds, continued on an indented line."
    assert header.author is not None and header.author.name == "Alexis Metaireau"
    # A "Note:" line after the header is the post's text.
    assert "Note: this line looks like metadata" in posts["Published from .mkd"].content_html
    rst = posts["My super title"]
    assert rst.updated == datetime(2010, 10, 4, 18, 40, tzinfo=timezone.utc)
    assert "<h2>A section</h2>" in rst.content_html and ":date:" not in rst.content_html
    assert "<script" not in rst.content_html  # the raw directive is off
    html = posts["Pelican HTML page"]
    assert html.summary == "Short version for index and feeds"
    assert html.updated == datetime(2012, 7, 10, 20, 14, tzinfo=timezone.utc)


# -- Eleventy -----------------------------------------------------------------


def test_eleventy_posts_publish_as_eleventy_would(tmp_path: Path) -> None:
    report = build(site_of(tmp_path, "eleventy"))
    # Not: draft: true, eleventyExcludeFromCollections: true, permalink: false.
    assert published(report) == [
        ("JSON front matter", "2021-06-01T10:00:00+00:00", "json-front-matter", ("json",)),
        ("My first Eleventy post", "2021-03-04T00:00:00+00:00", "my-first-eleventy-post", ("post", "eleventy")),
    ]
    # JavaScript front matter is refused with its line, never published as text.
    assert [str(e) for e in report.errors] == [
        "posts/posts/js-front-matter.md:1: JavaScript front matter (---js) cannot be read: write it as ---json or YAML"
    ]


@pytest.mark.parametrize("tool", ["wordpress", "jekyll", "hugo", "pelican", "eleventy"])
def test_no_template_syntax_or_draft_reaches_the_feeds(tmp_path: Path, tool: str) -> None:
    site = site_of(tmp_path, tool)
    report = build(site)
    rss = feedparser.parse((site / "feeds" / "rss.xml").read_bytes())
    assert not rss.bozo
    assert len(rss.entries) == len(report.site.posts)
    text = (site / "feeds" / "rss.xml").read_text(encoding="utf-8")
    for draft in ("Written, then withdrawn", "Still a draft", "A sale that ended", "Half written", "Members only",
                  "A draft in .mdown", "Not ready yet", "A hidden page", "An Eleventy draft", "Never written out",
                  "Out of the collections", "Settings page draft", "About"):  # fmt: skip
        assert f"<title>{draft}</title>" not in text
    # Template syntax in a feed is only what a warning named, or what the
    # file wrote as literal ({% raw %}, {{</* */>}}).
    warned = " ".join(report.warnings)
    for post in report.site.posts:
        if "{%" in post.content_html or "{{" in post.content_html:
            source = post.source.split("#")[0]
            written = (site / source).read_text(encoding="utf-8")
            assert source in warned or "{% raw %}" in written or "/*" in written


@pytest.mark.parametrize("tool", ["wordpress", "jekyll", "hugo", "pelican", "eleventy"])
def test_a_rebuild_from_the_cache_of_readings_gives_the_same(tmp_path: Path, tool: str) -> None:
    site = site_of(tmp_path, tool)
    first = build(site)
    again = build(site)
    assert again.site.posts == first.site.posts  # enclosures, expiry and derived slugs included
    assert (again.skipped, again.warnings) == (first.skipped, first.warnings)
    assert [str(e) for e in again.errors] == [str(e) for e in first.errors]
    assert again.written == ()


def test_a_page_read_in_a_worker_process_is_still_skipped(tmp_path: Path) -> None:
    from publisher.config import load_config
    from publisher.content import parsing

    site = site_of(tmp_path, "jekyll")
    config = load_config(site / "publisher.toml")
    path = site / "posts" / "about.md"
    (outcome,) = parsing._parse_chunk(config, [(path, "posts/about.md", path.read_bytes())])
    result = parsing._unpacked(outcome)
    assert (result.posts, result.skipped) == ((), "a page (layout: page), not a post")
