"""The HTML reader, on fixture pages under tests/data/html/."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from publisher.errors import ContentError
from publisher.model import Author, Post
from publisher.content.readers import ReadOptions, reader_for
from publisher.content.readers.html import NO_TEXT, NO_TITLE, read, read_result
from publisher.content.readers.metadata import Metadata, parse_metadata

from .conftest import DATA

HTML = DATA / "html"
WORDPRESS = "wordpress_article_with_meta_and_chrome.html"


def read_fixture(name: str, options: ReadOptions | None = None) -> Post:
    return read((HTML / name).read_bytes(), f"posts/{name}", options or ReadOptions())


def body(post: Post) -> lxml.html.HtmlElement:
    """The post's HTML parsed into one <div>, to assert on elements."""
    return lxml.html.fragment_fromstring(post.content_html, create_parent="div")


def read_error(name: str, options: ReadOptions | None = None) -> ContentError:
    with pytest.raises(ContentError) as caught:
        read_fixture(name, options)
    assert caught.value.path == f"posts/{name}"
    return caught.value


@pytest.fixture
def wordpress() -> Post:
    return read_fixture(WORDPRESS)


# --- A WordPress page: <article>, <meta>, canonical link, page chrome -------------------


def test_wordpress_title_is_the_articles_h1_not_the_title_element(wordpress: Post) -> None:
    # <title> is "Talks resume in Doha – War in Context".
    assert wordpress.title == "Talks resume in Doha"
    root = body(wordpress)
    assert root.findall(".//h1") == []
    assert "Talks resume in Doha" not in root.text_content()


def test_wordpress_metadata_comes_from_meta_and_link(wordpress: Post) -> None:
    assert wordpress.summary == "Negotiators returned to Doha with little sign of movement."
    assert wordpress.author == Author(name="Paul Woodward")
    # keywords first, then each article:tag; repeats dropped.
    assert wordpress.tags == ("Qatar", "Diplomacy", "Gaza")
    # article:published_time is preferred over <meta name="date">.
    assert wordpress.date == datetime(2024, 3, 5, 9, 30, tzinfo=timezone.utc)
    assert wordpress.updated == datetime(2024, 3, 6, 11, 15, tzinfo=timezone.utc)
    assert wordpress.image == "https://example.org/wp-content/uploads/2024/03/doha.jpg"
    assert wordpress.url == "https://example.org/2024/03/05/talks-resume-in-doha/"
    assert wordpress.blocks == ()


def test_wordpress_body_is_the_article_without_page_chrome(wordpress: Post) -> None:
    root = body(wordpress)
    text = root.text_content()
    for chrome in ("Skip to content", "War in Context", "About", "Previous post", "Recent posts", "©"):
        assert chrome not in text
    assert root.findall(".//script") == [] and "trackRead" not in wordpress.content_html
    assert root.findall(".//nav") == [] and root.findall(".//aside") == []
    assert [p.text_content() for p in root.xpath(".//div[@class='entry-content']/p")] == [
        "Negotiators returned to Doha on Tuesday.",
        "More to follow & more to say.",
    ]
    (quote,) = root.findall(".//blockquote")
    assert quote.get("cite") == "https://www.reuters.com/"
    assert root.xpath(".//a[@href='https://example.com/doha']/text()") == ["Doha"]
    # The serialisation is the article's children, not the <article> itself.
    assert root.findall(".//article") == []
    # The byline under the title is the article's own and is kept.
    assert root.xpath(".//div[@class='entry-meta']//time/@datetime") == ["2024-03-05T09:30:00+00:00"]


def test_wordpress_crlf_and_bom_read_the_same_as_lf(wordpress: Post) -> None:
    lf = (HTML / WORDPRESS).read_bytes()
    assert b"\r" not in lf
    crlf_bom = b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n")
    assert read(crlf_bom, f"posts/{WORDPRESS}", ReadOptions()) == wordpress


def test_sidecar_overlay_wins_over_meta() -> None:
    overlay = Metadata(title="Sidecar title", tags=("sidecar",))
    post = read_fixture(WORDPRESS, ReadOptions(overlay=overlay))
    assert post.title == "Sidecar title"
    assert post.tags == ("sidecar",)
    assert post.summary == "Negotiators returned to Doha with little sign of movement."
    # The article's h1 is not the title now, so it stays in the body.
    assert body(post).xpath(".//h1/text()") == ["Talks resume in Doha"]


# --- Body selection without <article> -------------------------------------------------


def test_without_article_the_body_is_main_and_the_title_is_kept_as_written() -> None:
    post = read_fixture("main_without_article.html")
    assert post.title == "Reading list - Example Site"
    root = body(post)
    assert root.xpath("./h2/text()") == ["This week"]
    assert [li.text for li in root.iter("li")] == ["One", "Two", "Three"]
    assert "Example Site" not in root.text_content()
    assert "Site footer text" not in root.text_content()
    assert root.findall(".//main") == []
    assert post.summary == "Three long reads worth your evening."


def test_without_article_or_main_the_body_loses_its_page_chrome() -> None:
    post = read_fixture("body_with_page_chrome.html")
    assert post.title == "Plain page"
    root = body(post)
    text = root.text_content()
    for chrome in ("Home", "Site banner text", "Jump", "Sidebar text", "Footer text", "alert", ".wrapper"):
        assert chrome not in text
    # A <header> inside the content is not page chrome.
    assert root.xpath(".//header/h2/text()") == ["Section header that is content"]
    assert [p.text for p in root.iter("p")] == [
        "The first paragraph of the page.",
        "The second paragraph.",
    ]
    assert post.summary == "The first paragraph of the page."


def test_title_element_alone_gives_the_title() -> None:
    post = read_fixture("title_element_only.html")
    assert post.title == "Only a title element | My Blog"
    assert [p.text for p in body(post).iter("p")] == ["Text of a page with no headings at all."]
    assert "My Blog" not in post.content_html


def test_without_title_element_the_first_h1_is_the_title() -> None:
    post = read_fixture("h1_without_title_element.html")
    assert post.title == "Heading as title"
    root = body(post)
    assert root.findall(".//h1") == []
    assert root.xpath("./div[@class='post']/p/text()") == ["Body text under the heading."]


def test_an_image_is_enough_body() -> None:
    post = read_fixture("image_only_post.html")
    assert post.title == "Photo: the harbour at dawn"
    assert body(post).xpath(".//figure/img/@src") == ["harbour.jpg"]
    assert post.summary is None


# --- Front matter ----------------------------------------------------------------------


def test_front_matter_wins_over_meta_and_title() -> None:
    post = read_fixture("jekyll_front_matter.html", ReadOptions(timezone=ZoneInfo("UTC")))
    assert post.title == "Front matter title wins"
    assert post.date == datetime(2024, 4, 1, 10, 0, tzinfo=timezone.utc)
    assert post.tags == ("jekyll", "html")
    # What front matter leaves unset still comes from <meta>.
    assert post.summary == "Meta description fills the summary."
    # The h1 that repeats the title is not shown twice.
    root = body(post)
    assert root.findall(".//h1") == []
    assert [p.text for p in root.iter("p")] == ["The post body, written as HTML."]


def test_sidecar_wins_over_front_matter_and_meta() -> None:
    overlay = Metadata(
        date=datetime(2025, 1, 1, tzinfo=timezone.utc), summary="Sidecar summary."
    )
    post = read_fixture("jekyll_front_matter.html", ReadOptions(overlay=overlay))
    assert post.date == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert post.summary == "Sidecar summary."
    assert post.title == "Front matter title wins"


def test_front_matter_over_a_fragment() -> None:
    post = read_fixture("jekyll_fragment.html")
    assert post.title == "A fragment post"
    assert [p.text for p in body(post).iter("p")] == [
        "Just a fragment, with no html, head or body tags.",
        "Second paragraph.",
    ]


def test_meta_errors_count_lines_from_the_top_of_the_file() -> None:
    error = read_error("front_matter_and_relative_canonical.html")
    assert error.line == 6  # the <link> line, after three lines of front matter
    assert error.reason.startswith('<link rel="canonical">:')
    assert "absolute" in error.reason


def test_a_field_given_by_the_sidecar_is_not_checked_in_meta() -> None:
    overlay = Metadata(url="https://example.org/2024/05/fixed/")
    post = read_fixture("front_matter_and_relative_canonical.html", ReadOptions(overlay=overlay))
    assert post.url == "https://example.org/2024/05/fixed/"
    assert post.title == "TOML front matter on an HTML post"


# --- Errors and safety -----------------------------------------------------------------


def test_no_title_is_an_error_at_the_body() -> None:
    error = read_error("no_title.html")
    assert error.line == 6
    assert error.reason == NO_TITLE


def test_no_body_text_is_an_error_at_the_article() -> None:
    error = read_error("no_body_text.html")
    assert error.line == 5
    assert error.reason == NO_TEXT


def test_front_matter_and_nothing_else_is_an_error() -> None:
    with pytest.raises(ContentError) as caught:
        read(b"---\ntitle: Nothing here\n---\n\n", "posts/empty.html", ReadOptions())
    assert caught.value.line == 4
    assert caught.value.reason == NO_TEXT


def test_bad_meta_date_is_an_error_at_its_line() -> None:
    error = read_error("bad_meta_date.html")
    assert error.line == 4
    assert error.reason.startswith('<meta name="date">:')
    assert "sometime last week" in error.reason


def test_undecodable_bytes_are_an_error_with_their_line() -> None:
    data = b"<html>\n<head><title>Caf\xe9</title></head>\n<body><p>x</p></body></html>\n"
    with pytest.raises(ContentError) as caught:
        read(data, "posts/latin1.html", ReadOptions())
    assert caught.value.line == 2
    assert "UTF-8" in caught.value.reason


def test_entities_declared_in_a_dtd_are_not_expanded() -> None:
    post = read_fixture("dtd_entities.html")
    assert post.title == "Entities from a DTD"
    (paragraph,) = body(post).iter("p")
    # The external entities stay as the literal text written; HTML's own entities decode.
    assert paragraph.text == "before [&local;] [&remote;] after & é"
    assert "root:" not in post.content_html
    # The misplaced <title> is not repeated as body text.
    assert "Entities from a DTD" not in body(post).text_content()


@pytest.mark.parametrize("name", ["posts/a.html", "posts/a.htm"])
def test_registry_reads_html_files_with_this_reader(name: str) -> None:
    reader = reader_for(name)
    assert reader is not None
    result = reader((HTML / "title_element_only.html").read_bytes(), name, ReadOptions())
    assert result.errors == ()
    assert [p.title for p in result.posts] == ["Only a title element | My Blog"]


def test_ten_megabyte_paragraph_is_kept_whole() -> None:
    from publisher.content.readers import ReadOptions
    from publisher.content.readers.html import read

    page = "<html><head><title>Big</title></head><body><p>" + "z" * 10_500_000 + "</p></body></html>"
    post = read(page.encode(), "posts/big.html", ReadOptions())
    assert "z" * 10_500_000 in post.content_html


# --- Front-matter keys ignore case; unknown ones are warnings ---------------------------


def test_front_matter_keys_ignore_case_and_unknown_ones_are_warnings() -> None:
    name = "front_matter_capitalised_draft.html"
    result = read_result((HTML / name).read_bytes(), f"posts/{name}", ReadOptions())
    (post,) = result.posts
    assert post.draft is True
    assert post.title == "Held back"
    # <meta> names ignore case too; the page's many other <meta> are no warnings.
    assert post.summary == "From the meta."
    # Pelican's template key changes nothing in a feed: no warning.
    assert result.warnings == ()


def test_jekyll_layout_post_is_read_without_a_warning() -> None:
    name = "jekyll_front_matter.html"
    result = read_result((HTML / name).read_bytes(), f"posts/{name}", ReadOptions())
    assert [p.title for p in result.posts] == ["Front matter title wins"]
    assert result.warnings == ()


def test_sidecar_warnings_come_after_the_files_own() -> None:
    name = "jekyll_front_matter.html"
    sidecar = "Draft = true\nlyout = 'x'\n"
    raw = {"Draft": True, "lyout": "x"}
    page = "---\nlayuot: post\ntitle: A\n---\n<p>Body.</p>\n"
    overlay = parse_metadata(raw, path=f"posts/{name}.meta.toml", text=sidecar, first_line=1, tz=ZoneInfo("UTC"))
    result = read_result(page.encode(), f"posts/{name}", ReadOptions(overlay=overlay))
    assert result.posts[0].draft is True
    assert [str(w) for w in result.warnings] == [
        f"posts/{name}:2: unknown key 'layuot'",
        f"posts/{name}.meta.toml:2: unknown key 'lyout'",
    ]
