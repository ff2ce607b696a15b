"""The feed reader: RSS, Atom and JSON Feed fixtures become posts."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

import pytest

from publisher.errors import ContentError
from publisher.model import Author
from publisher.content.readers import ReadOptions
from publisher.content.readers.feed import read_feed

from .conftest import DATA

FEEDS = DATA / "feeds"


def read(name: str, base_url: str | None = None):
    return read_feed((FEEDS / name).read_bytes(), "Fixture", name, ReadOptions(), base_url=base_url)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_rss2_with_content_encoded() -> None:
    result = read("rss2-content-encoded.xml")
    first, untitled, plain = result.posts
    assert first.source == "rss2-content-encoded.xml#urn:uuid:6c0a3f3e-5a57-4e0b-9d4e-2f1d3c1e0001"
    assert first.id == "urn:uuid:6c0a3f3e-5a57-4e0b-9d4e-2f1d3c1e0001"
    assert first.url == "https://other.example/2024/05/ceasefire-talks/"
    assert first.title == "Ceasefire talks resume in Cairo"
    # content:encoded wins over the description; relative links resolve
    # against the channel's home page (the feed was not fetched).
    assert "<em>met again</em>" in first.content_html
    assert 'href="https://other.example/2024/04/earlier/"' in first.content_html
    assert 'src="https://other.example/images/cairo.jpg"' in first.content_html
    assert first.summary == "Negotiators met again on Wednesday."
    assert first.date == utc(2024, 5, 1, 12, 30)
    assert first.updated is None  # RSS has no <updated>: the content stage dates changes
    assert first.author == Author(name="Jane Reporter")
    assert first.tags == ("Middle East", "Diplomacy")
    assert first.image == "https://other.example/images/cairo-thumb.jpg"

    # No title: named by its first words, keyed by its link.
    assert untitled.title.startswith("A short note without a title")
    assert untitled.title.endswith("…") and len(untitled.title) <= 81
    assert untitled.source == "rss2-content-encoded.xml#https://other.example/2024/05/untitled-note/"
    assert untitled.content_html == (
        "<p>A short note without a title, as microblogs write them: it is named by its first words.</p>"
    )

    # RSS's "email (Name)" author, an image enclosure, a description only.
    assert plain.title == "Plain text & an enclosure"
    assert plain.author == Author(name="News Desk", email="desk@other.example")
    assert plain.image == "https://other.example/images/plain.png"
    assert plain.content_html == "Only a description here."

    # The empty item is rejected by number; the others are published.
    assert [str(e) for e in result.errors] == [
        "rss2-content-encoded.xml: entry 3: has neither a title nor any text"
    ]


def test_atom_with_html_title_xhtml_content_and_xml_base() -> None:
    rockets, text_only = read("atom.xml").posts
    assert rockets.title == "Rockets and rhetoric"  # type="html" title, tags stripped
    assert rockets.id == rockets.source.split("#", 1)[1] == "tag:atom.example,2024-06-01:/rockets"
    assert rockets.url == "https://atom.example/blog/posts/rockets.html"  # xml:base
    assert 'href="https://atom.example/about/"' in rockets.content_html
    assert rockets.summary == "A summary in plain text."
    assert rockets.date == utc(2024, 6, 1, 13)
    assert rockets.updated == utc(2024, 6, 2, 10)
    assert rockets.author == Author("Sam Writer", "sam@atom.example", "https://atom.example/sam")
    assert rockets.tags == ("analysis", "rockets")
    assert rockets.image == "https://atom.example/blog/img/rockets.jpg"

    # Only <updated>: it dates the post. Text content becomes escaped paragraphs.
    assert text_only.date == text_only.updated == utc(2024, 5, 20, 12)
    assert text_only.content_html == (
        "<p>Text content\nthat spans lines &amp; has an ampersand.</p>\n<p>Second paragraph.</p>"
    )
    # No author of its own: the feed's.
    assert text_only.author == Author("Feed Author", "feed@atom.example")


def test_json_feed_1_1() -> None:
    result = read("jsonfeed-1.1.json", base_url="https://json.example/feeds/feed.json")
    first, second = result.posts
    assert first.source == "jsonfeed-1.1.json#https://json.example/2024/07/first"
    assert first.title == "First JSON post"
    assert first.content_html == (
        '<p>Hello from <a href="https://json.example/2024/06/older">JSON</a>.</p>'
        '<img src="https://json.example/img/first.png">'
    )
    assert first.summary == "Hello from JSON."
    assert first.date == utc(2024, 7, 1, 6) and first.date.tzinfo == timezone.utc
    assert first.updated == utc(2024, 7, 2, 8)
    assert first.author == Author(name="Ana Author", url="https://json.example/ana")
    assert first.tags == ("json", "feeds")
    assert first.image == "https://json.example/img/first-cover.png"

    # A JSON Feed 1.0-style numeric id (not an IRI: the post's id is made from
    # it); content_text only; the feed's author; a relative url resolved
    # against where the feed came from.
    assert second.source == "jsonfeed-1.1.json#2"
    assert second.id == str(uuid.uuid5(uuid.NAMESPACE_URL, "jsonfeed-1.1.json#2").urn)
    assert second.url == "https://json.example/feeds/2024/07/second"
    assert second.title == "A post with no title and plain text only. It has two paragraphs <not tags>."
    assert second.content_html == (
        "<p>A post with no title and plain text only.</p>\n<p>It has two paragraphs &lt;not tags&gt;.</p>"
    )
    assert second.author == Author(name="Feed Person", url="https://json.example/about")

    assert [str(e) for e in result.errors] == [
        "jsonfeed-1.1.json: entry 3: has neither a title nor any text",
        "jsonfeed-1.1.json: entry 4: not a JSON object",
        "jsonfeed-1.1.json: entry 5: id 'https://json.example/2024/07/first' repeats entry 1; the first is kept",
    ]


@pytest.mark.parametrize(
    ("name", "title", "date"),
    [
        ("rss1-rdf.xml", "One", utc(2024, 3, 4, 5, 6, 7)),
        ("rss091.xml", "Ancient post", None),
    ],
)
def test_rss_1_0_and_0_91(name: str, title: str, date: datetime | None) -> None:
    (post,) = read(name).posts
    assert (post.title, post.date) == (title, date)
    assert post.url and post.source == f"{name}#{post.url}"


def test_broken_feed_names_the_line() -> None:
    with pytest.raises(ContentError) as caught:
        read("broken.xml")
    assert caught.value.path == "broken.xml"
    assert caught.value.line == 8
    assert "not a readable feed" in caught.value.reason


def test_bozo_feed_with_entries_is_published_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="publisher.readers.feed"):
        result = read("bozo-entities.xml")
    (post,) = result.posts
    assert post.title == "An undefined entity"  # &nbsp; read, then whitespace folded
    assert result.errors == ()
    assert "bozo-entities.xml (Fixture): not a well-formed feed (line 7): undefined entity" in caplog.text


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"<html><body><p>A web page, not a feed</p></body></html>", None, "not an RSS, Atom or JSON feed"),
        (b"   ", None, "empty feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1",\n "items": [,]}', 2, "not valid JSON: Expecting value"),
        (b'{"title": "some other JSON"}', None, "JSON, but not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": {}}', None, '"items" must be a list'),
    ],
)
def test_unusable_inputs_are_one_error(data: bytes, line: int | None, reason: str) -> None:
    with pytest.raises(ContentError) as caught:
        read_feed(data, "x", "feeds/x", ReadOptions())
    assert caught.value.line == line
    assert reason in caught.value.reason


def test_bytes_are_never_taken_for_a_file_name(tmp_path) -> None:
    # feedparser.parse(b"/path") would open the file; the reader must not.
    secret = tmp_path / "secret.xml"
    secret.write_bytes((FEEDS / "rss091.xml").read_bytes())
    with pytest.raises(ContentError):
        read_feed(str(secret).encode(), "x", "x", ReadOptions())


def test_control_characters_are_removed() -> None:
    data = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "urn:a\\u0001b", '
        b'"title": "T\\u0000i\\u001btle", "content_html": "<p>x\\u0007y</p>", "tags": ["t\\u0002ag"]}]}'
    )
    (post,) = read_feed(data, "x", "x", ReadOptions()).posts
    assert (post.id, post.title, post.content_html, post.tags) == ("urn:ab", "Title", "<p>xy</p>", ("tag",))


def test_entries_without_id_or_link_get_a_stable_key() -> None:
    data = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>No id</title><description>one</description></item>
      <item><title>Also no id</title><description>two</description></item>
    </channel></rss>"""
    first = read_feed(data, "x", "x.xml", ReadOptions())
    again = read_feed(data, "x", "x.xml", ReadOptions())
    assert [p.source for p in first.posts] == [p.source for p in again.posts]
    assert len({p.source for p in first.posts}) == 2
    assert all(p.id is None and p.url is None for p in first.posts)


def test_html_is_left_for_the_content_stage_to_sanitise() -> None:
    data = b"""<rss version="2.0"><channel><title>t</title><item><title>x</title><guid>g</guid>
      <description>&lt;p onclick="x()"&gt;hi&lt;script&gt;bad()&lt;/script&gt;&lt;/p&gt;</description>
    </item></channel></rss>"""
    (post,) = read_feed(data, "x", "x.xml", ReadOptions()).posts
    assert post.content_html == '<p onclick="x()">hi<script>bad()</script></p>'
    assert post.summary == "hi"


def test_relative_srcset_candidates_resolve_against_the_source() -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Elsewhere",
        "home_page_url": "https://other.example/blog/",
        "items": [
            {
                "id": "1",
                "url": "https://other.example/blog/one/",
                "title": "One",
                "date_published": "2024-05-01T12:00:00Z",
                "content_html": '<p><img src="a.jpg" srcset="a-2x.jpg 2x, https://cdn.example/a-3x.jpg 3x,/img/a-4x.jpg 4x"></p>',
            }
        ],
    }
    result = read_feed(json.dumps(feed).encode(), "Fixture", "elsewhere.json", ReadOptions())
    html = result.posts[0].content_html
    assert 'src="https://other.example/blog/a.jpg"' in html
    assert (
        'srcset="https://other.example/blog/a-2x.jpg 2x, https://cdn.example/a-3x.jpg 3x,'
        'https://other.example/img/a-4x.jpg 4x"'
    ) in html


# --- Ids that are not IRIs ----------------------------------------------------


@pytest.mark.parametrize(
    "name, kept",
    [
        ("jsonfeed-numbered-ids.json", {"Item three": "urn:uuid:0b5e6f0e-2d1a-4c39-9a43-6a2f1e9b7c01"}),
        (
            "rss2-guids-not-iris.xml",
            {
                # A permalink guid is resolved against the channel's link, as feedparser does.
                "A relative permalink": "https://guids.example/news/67890",
                "A tag URI": "tag:guids.example,2024-05-03:tagged",
            },
        ),
    ],
)
def test_ids_that_are_not_iris_are_made_into_urns_and_iris_kept(name: str, kept: dict[str, str]) -> None:
    result = read(name)
    assert result.errors == ()
    ids = {post.title: post.id for post in result.posts}
    assert {title: ids[title] for title in kept} == kept
    minted = {title: id for title, id in ids.items() if title not in kept}
    assert minted and all(id.startswith("urn:uuid:") for id in minted.values())
    assert len(set(ids.values())) == len(ids)
    # The same on every reading; the source's own key is unchanged.
    assert {post.title: post.id for post in read(name).posts} == ids
    assert all(post.source.startswith(f"{name}#") for post in result.posts)


def test_two_feeds_numbering_items_alike_get_distinct_ids() -> None:
    data = (FEEDS / "jsonfeed-numbered-ids.json").read_bytes()
    one = read_feed(data, "One", "https://one.example/feed.json", ReadOptions())
    two = read_feed(data, "Two", "https://two.example/feed.json", ReadOptions())
    first = {post.title: post.id for post in one.posts}
    second = {post.title: post.id for post in two.posts}
    assert first["Item one"] != second["Item one"]
    assert first["Item three"] == second["Item three"]  # an IRI is the source's own


# -- enclosures: a podcast republished stays a podcast ------------------------------

_RSS_PODCAST = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Pod</title><link>https://pod.example/</link>
<item><title>Episode 3</title><link>https://pod.example/3</link><guid>https://pod.example/3</guid>
<description>Notes</description>
<enclosure url="https://cdn.pod.example/3.mp3" length="5650889" type="audio/mpeg"/></item></channel></rss>"""

_ATOM_PODCAST = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Pod</title><id>urn:x:pod</id>
<updated>2024-01-01T00:00:00Z</updated><entry><title>Episode 4</title><id>https://pod.example/4</id>
<updated>2024-01-01T00:00:00Z</updated><link href="https://pod.example/4"/>
<link rel="enclosure" href="/media/4.ogg" type="audio/ogg" length="100"/><summary>Notes</summary></entry></feed>"""

_JSON_PODCAST = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Pod",
        "items": [
            {
                "id": "https://pod.example/5",
                "url": "https://pod.example/5",
                "title": "Episode 5",
                "content_text": "Notes",
                "attachments": [
                    {"url": "https://cdn.pod.example/5.m4a", "mime_type": "audio/x-m4a", "size_in_bytes": 42},
                    {"url": "javascript:alert(1)", "mime_type": "audio/mpeg"},
                ],
            }
        ],
    }
).encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_RSS_PODCAST, [("https://cdn.pod.example/3.mp3", "audio/mpeg", 5650889)]),
        (_ATOM_PODCAST, [("https://pod.example/media/4.ogg", "audio/ogg", 100)]),
        (_JSON_PODCAST, [("https://cdn.pod.example/5.m4a", "audio/x-m4a", 42)]),
    ],
)
def test_an_imported_entry_keeps_its_enclosures(data: bytes, expected: list) -> None:
    result = read_feed(data, "Pod", "https://pod.example/feed", ReadOptions(), base_url="https://pod.example/feed")
    (post,) = result.posts
    assert [(e.url, e.type, e.length) for e in post.enclosures] == expected


def test_a_blogger_takeout_export_is_refused_but_a_blogger_feed_is_read() -> None:
    takeout = (
        b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' "
        b"xmlns:blogger='http://schemas.google.com/blogger/2018'><id>x</id><title>B</title>"
        b"<entry><id>p1</id><blogger:type>POST</blogger:type><blogger:status>DRAFT</blogger:status>"
        b"<title>Draft</title><content type='html'>x</content><updated>2024-01-01T00:00:00Z</updated></entry></feed>"
    )
    with pytest.raises(ContentError) as caught:
        read_feed(takeout, "B", "blog.xml", ReadOptions())
    assert caught.value.reason.startswith("a Blogger export, not a feed")
    public = (
        b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' "
        b"xmlns:blogger='http://schemas.google.com/blogger/2008'><id>tag:blogger.com,1999:blog-1</id><title>B</title>"
        b"<entry><id>tag:blogger.com,1999:blog-1.post-2</id><title>Public post</title>"
        b"<content type='html'>x</content><updated>2024-01-01T00:00:00Z</updated>"
        b"<link rel='alternate' href='https://b.blogspot.com/2024/01/p.html'/></entry></feed>"
    )
    assert [p.title for p in read_feed(public, "B", "https://b.blogspot.com/feeds/posts/default", ReadOptions()).posts] == [
        "Public post"
    ]
