"""The WordPress export (WXR) reader: a hand-written export of a small site,
generated exports (large, broken, hostile), and the pieces it is made of
(autop, shortcodes)."""

from __future__ import annotations

import http.server
import logging
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from publisher.errors import ContentError
from publisher.model import Author, Post
from publisher.content.readers import ReadOptions, ReadResult, reader_for
from publisher.content.readers.wordpress import autop, expand_shortcodes, is_shortcode
from publisher.content.readers.wxr import NOT_WXR, UNTITLED, read

from .helpers import wxr_factory as wxr
from .conftest import DATA, REPO

SMALL_SITE = DATA / "wxr" / "small-site.xml"
NEW_YORK = ZoneInfo("America/New_York")
PATH = "posts/export.xml"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def read_export(data: bytes, tz: ZoneInfo = NEW_YORK) -> ReadResult:
    return read(data, PATH, ReadOptions(timezone=tz))


def html_of(post: Post) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(post.content_html, create_parent="div")


def line_of(data: bytes, needle: str) -> int:
    """The line ``needle`` starts on, the way lxml counts."""
    at = data.index(needle.encode())
    return data.count(b"\n", 0, at) + 1


@pytest.fixture(scope="module")
def small() -> ReadResult:
    return read_export(SMALL_SITE.read_bytes())


@pytest.fixture(scope="module")
def by_id(small: ReadResult) -> dict[str, Post]:
    return {post.source.rsplit("-", 1)[1]: post for post in small.posts}


# -- the small site: which items become posts ---------------------------------


def test_only_published_unprotected_posts_come_out_in_file_order(small: ReadResult) -> None:
    assert [p.source for p in small.posts] == [
        f"{PATH}#post-{n}" for n in (101, 102, 103, 104, 105)
    ]
    assert small.errors == ()


def test_nothing_of_skipped_items_leaks_into_posts(small: ReadResult) -> None:
    skipped_words = (
        "DRAFTWORD", "FUTUREWORD", "PENDINGWORD", "PRIVATEWORD", "PASSWORDWORD", "PAGEWORD",
        "ATTACHMENTWORD", "REVISIONWORD", "MENUWORD", "TRASHWORD", "hunter2", "Protected.",
    )  # fmt: skip
    for post in small.posts:
        text = " ".join([post.title, post.content_html, post.summary or ""])
        text += " ".join(" ".join(c.paragraphs) for c in post.comments)
        assert not [word for word in skipped_words if word in text], post.source


def test_skipped_items_are_logged_at_debug_with_their_post_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="publisher.readers.wxr")
    read_export(SMALL_SITE.read_bytes())
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    for post_id, why in [
        (106, "draft"), (107, "future"), (108, "pending"), (109, "private"), (110, "inherit"),
        (111, "password-protected"), (112, "publish"), (113, "inherit"), (114, "publish"), (115, "trash"),
    ]:  # fmt: skip
        assert any(f"item {post_id} " in m and why in m for m in messages), post_id
    assert not any("item 101 " in m for m in messages)


def test_the_registry_reads_xml_files_with_this_reader() -> None:
    reader = reader_for("posts/export.xml")
    assert reader is not None
    result = reader(SMALL_SITE.read_bytes(), PATH, ReadOptions(timezone=NEW_YORK))
    assert len(result.posts) == 5


# -- the small site: fields -------------------------------------------------------


def test_identity_fields_come_from_guid_link_and_post_name(by_id: dict[str, Post]) -> None:
    post = by_id["101"]
    assert post.id == "https://example.org/?p=101"
    assert post.url == "https://example.org/2024/03/05/ceasefire-talks-resume-in-cairo/"
    assert post.slug == "ceasefire-talks-resume-in-cairo"
    assert post.title == "Ceasefire talks resume in Cairo"
    assert post.draft is False
    assert len({p.id for p in by_id.values()}) == 5


def test_dates_are_utc_from_gmt_columns(by_id: dict[str, Post]) -> None:
    assert by_id["101"].date == utc(2024, 3, 5, 14, 30)
    assert by_id["101"].updated == utc(2024, 3, 6, 10, 0)
    # Local 22:15 on the 7th is 03:15 UTC on the 8th.
    assert by_id["102"].date == utc(2024, 3, 8, 3, 15)
    for post in by_id.values():
        assert post.date is not None and post.date.utcoffset().total_seconds() == 0


def test_zero_gmt_date_falls_back_to_local_date_in_the_site_zone(by_id: dict[str, Post]) -> None:
    # 08:45 in New York on 14 March 2024 (EDT, UTC-4) is 12:45 UTC.
    assert by_id["104"].date == utc(2024, 3, 14, 12, 45)
    in_utc = read_export(SMALL_SITE.read_bytes(), tz=ZoneInfo("UTC")).posts[3]
    assert in_utc.date == utc(2024, 3, 14, 8, 45)


def test_a_published_post_dated_in_the_future_keeps_its_date(by_id: dict[str, Post]) -> None:
    assert by_id["105"].date == utc(2030, 1, 1, 10, 0)


def test_authors_map_logins_to_display_names_never_emails(by_id: dict[str, Post]) -> None:
    # The export has their login emails; those are private and stay out.
    assert by_id["101"].author == Author(name="Paul Woodward")
    assert by_id["102"].author == Author(name="Zoë Ångström")
    # A login missing from the channel's wp:author list stays a login.
    assert by_id["103"].author == Author(name="ghostwriter")


def test_categories_then_tags_without_duplicates_or_uncategorized(by_id: dict[str, Post]) -> None:
    # The tag "news" repeats the category "News"; post_format terms are not tags.
    assert by_id["101"].tags == ("Middle East & North Africa", "News", "ceasefire", "Gaza")
    assert by_id["102"].tags == ("Ünïcödé",)
    assert by_id["103"].tags == ()
    assert by_id["105"].tags == ()


def test_unicode_title_with_entities_is_plain_text(by_id: dict[str, Post]) -> None:
    assert by_id["102"].title == "Ünïcödé in Zürich — “quotes” & ampersands"
    assert "東京" in by_id["102"].content_html


def test_empty_title_becomes_the_first_words_of_the_text(by_id: dict[str, Post]) -> None:
    title = by_id["103"].title
    assert title == "Quick note: the live blog moves to a new page tomorrow…"
    assert len(title) <= 61


def test_summary_is_the_excerpt_as_plain_text_or_none(by_id: dict[str, Post]) -> None:
    assert by_id["102"].summary == "A hand-written summary, with emphasis & an ampersand."
    assert by_id["101"].summary is None


def test_featured_image_comes_from_the_thumbnail_attachment(by_id: dict[str, Post]) -> None:
    assert by_id["103"].image == "https://example.org/wp-content/uploads/2024/03/crossing.jpg"
    assert by_id["101"].image is None


def test_comments_closed_follows_comment_status(by_id: dict[str, Post]) -> None:
    assert by_id["102"].comments_closed is True
    assert by_id["101"].comments_closed is False


# -- the small site: comments -----------------------------------------------------


def test_only_approved_real_comments_are_kept(by_id: dict[str, Post]) -> None:
    # 13 is unapproved, 14 spam, 15 a pingback, 18 a trackback, 19 in the trash.
    comments = by_id["101"].comments
    assert [c.id for c in comments] == ["11", "12", "16", "17"]
    assert [c.number for c in comments] == [1, 2, 3, 4]
    words = " ".join(" ".join(c.paragraphs) for c in comments)
    for word in ("moderation:", "SPAMWORD", "PINGBACKWORD", "TRACKBACKWORD", "TRASHWORD"):
        assert word not in words


def test_threaded_comments_point_at_their_parent_by_number(by_id: dict[str, Post]) -> None:
    parents = {c.id: c.parent for c in by_id["101"].comments}
    # 12 answers 11; 17 answers 12; 16 answers the unapproved 13, so stands alone.
    assert parents == {"11": None, "12": 1, "16": None, "17": 2}


def test_comment_fields(by_id: dict[str, Post]) -> None:
    first, second, third, fourth = by_id["101"].comments
    assert first.author == "Leila Haddad"
    assert first.author_url == "https://leila.example/"
    assert first.date == utc(2024, 3, 5, 15, 0)
    assert first.paragraphs == (
        "Thank you for this.",
        "The second point matters most & nobody talks about it.",
    )
    assert second.paragraphs == ("Agreed — see the earlier post.",)
    # javascript: is not a URL to link to; an empty one is None.
    assert third.author_url is None
    assert fourth.author_url is None
    assert fourth.paragraphs == ("Thanks, I had missed it. Reading it now.",)
    assert by_id["102"].comments == ()


# -- the small site: content ------------------------------------------------------


def test_classic_text_gets_paragraphs_and_line_breaks(by_id: dict[str, Post]) -> None:
    root = html_of(by_id["101"])
    children = [child.tag for child in root]
    assert children == ["p", "p", "ul", "blockquote", "p", "h2", "p", "pre"]
    first = root[0]
    assert [c.tag for c in first] == ["strong", "br"]
    assert first.text_content() == (
        "The ceasefire talks resumed in Cairo on Tuesday.\nDelegations arrived in the morning."
    )
    assert [li.text for li in root.iter("li")] == [
        "the sequencing of releases",
        "the return of displaced families",
    ]
    assert [c.tag for c in root[3]] == ["p"] and root[3][0].find("br") is not None
    # <pre> is left exactly as written, blank line included.
    assert root[7].text == "Round 1: 12 Feb\nRound 2: 26 Feb\n\nRound 3: 5 Mar"
    assert "<!--more-->" not in by_id["101"].content_html
    assert "<br />\n<ul>" not in by_id["101"].content_html


def test_block_editor_content_is_not_autopd(by_id: dict[str, Post]) -> None:
    content = by_id["105"].content_html
    assert "<!-- wp:" not in content
    assert "<br" not in content
    root = html_of(by_id["105"])
    assert [child.tag for child in root] == ["p", "h2", "ul", "figure"]
    # A URL alone on its line inside an embed block becomes a link.
    assert [a.get("href") for a in root.iter("a")] == ["https://vimeo.com/76979871"]


def test_shortcodes_in_a_post(by_id: dict[str, Post]) -> None:
    post = by_id["104"]
    root = html_of(post)
    figure = root[0]
    assert figure.tag == "figure"
    assert "aligncenter" in figure.get("class")
    assert figure.find("img").get("src") == "https://example.org/wp-content/uploads/2024/03/crossing.jpg"
    caption = figure.find("figcaption")
    assert caption.text_content() == "The Rafah crossing on Monday. Photo: A. Photographer"
    assert caption.find("a").get("href") == "https://example.org/credits/"
    links = [a.get("href") for a in root.iter("a")]
    assert "https://www.youtube.com/watch?v=dQw4w9WgXcQ" in links
    text = root.text_content()
    assert "[gallery ids" not in text and "[embed]" not in text and "[caption" not in text
    # A shortcode publisher cannot convert is kept as written, never deleted with its text.
    assert '[contact-form-7 id="42" title="Tips"]' in text
    assert "[su_note note_color=\"#fffbe6\"]Send tips to the newsroom.[/su_note]" in text
    # Brackets that are not shortcodes are text, and [[gallery]] is a literal [gallery].
    assert "[Continue reading…]" in text
    assert "See note [1] below" in text and "[1] Figures from the UN." in text
    assert "write [gallery] in the editor" in text
    assert not [p for p in root.iter("p") if not p.text_content().strip()]


def test_unconverted_shortcodes_are_warned_once_per_name(small: ReadResult) -> None:
    reasons = [w.reason for w in small.warnings]
    assert reasons == [
        "post 104: shortcode [contact-form-7] is not converted; kept as text",
        "post 104: shortcode [su_note] is not converted; kept as text",
    ]


# -- autop ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello\nWorld", "<p>Hello<br />\nWorld</p>"),
        ("A\n\nB\n\n\n\nC", "<p>A</p>\n<p>B</p>\n<p>C</p>"),
        ("A\r\n\r\nB", "<p>A</p>\n<p>B</p>"),
        ("", ""),
        ("  \n\n  ", ""),
        ("<div>text</div>", "<div>text</div>"),
        (
            "Intro:\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\nAfter",
            "<p>Intro:</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<p>After</p>",
        ),
        ("<blockquote>Quoted\nline</blockquote>", "<blockquote><p>Quoted<br />\nline</p></blockquote>"),
        ("<pre>x\n\ny\nz</pre>", "<pre>x\n\ny\nz</pre>"),
        ("<h2>Title</h2>\nBody text", "<h2>Title</h2>\n<p>Body text</p>"),
        (
            "<table>\n<tr>\n<td>a</td>\n<td>b</td>\n</tr>\n</table>",
            "<table>\n<tr>\n<td>a</td>\n<td>b</td>\n</tr>\n</table>",
        ),
        ('Text <a\nhref="https://x.example/">link</a> here', '<p>Text <a href="https://x.example/">link</a> here</p>'),
        ("One<br><br>Two", "<p>One</p>\n<p>Two</p>"),
        (
            '<figure><img src="a.jpg" />\n<figcaption>Cap\nline</figcaption></figure>',
            '<figure><img src="a.jpg" />\n<figcaption>Cap\nline</figcaption></figure>',
        ),
        ("<p>Already a paragraph.</p>\n<p>Another.</p>", "<p>Already a paragraph.</p>\n<p>Another.</p>"),
        ("Line one<br />\nLine two", "<p>Line one<br />\nLine two</p>"),
        ("Before<hr />After", "<p>Before</p>\n<hr />\n<p>After</p>"),
        # <picture> is inline: the "p" of the block list must not match it.
        (
            '<picture><img src="a.jpg"></picture>\nNext',
            '<p><picture><img src="a.jpg"></picture><br />\nNext</p>',
        ),
    ],
)
def test_autop(text: str, expected: str) -> None:
    assert autop(text) == expected


@pytest.mark.parametrize("tag", ["pre", "figure"])
def test_autop_on_an_unclosed_protected_element_still_makes_paragraphs(tag: str) -> None:
    result = autop(f"<{tag}>first\n\nsecond")
    assert result.startswith(f"<{tag}>first")
    assert result.endswith("<p>second</p>")


# -- shortcodes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # [gallery] is filled from the export's attachments by the reader.
        ('Before [gallery ids="1,2"] after', 'Before <figure class="gallery" data-wxr-gallery="1,2"></figure> after'),
        ("[gallery]", '<figure class="gallery" data-wxr-gallery=""></figure>'),
        ("[gallery/]", '<figure class="gallery" data-wxr-gallery=""></figure>'),
        ('[gallery columns="3" /]', '<figure class="gallery" data-wxr-gallery=""></figure>'),
        ('[video src="https://example.org/a.mp4"][/video]',
         '<video controls src="https://example.org/a.mp4"><a href="https://example.org/a.mp4">https://example.org/a.mp4</a></video>'),
        ('[audio mp3="https://example.org/a.mp3"]',
         '<audio controls src="https://example.org/a.mp3"><a href="https://example.org/a.mp3">https://example.org/a.mp3</a></audio>'),
        # What is not converted is kept as written (and its name reported).
        ('[su_note note_color="#fff"]Kept text[/su_note]', '[su_note note_color="#fff"]Kept text[/su_note]'),
        ('[et_pb_section fb_built="1"][et_pb_text]Hi[/et_pb_text][/et_pb_section]',
         '[et_pb_section fb_built="1"][et_pb_text]Hi[/et_pb_text][/et_pb_section]'),
        ('[contact-form-7 id="42" title="Contact"]', '[contact-form-7 id="42" title="Contact"]'),
        ("[[gallery]]", "[gallery]"),
        ("[[caption]]", "[caption]"),
        ("[embed]https://youtu.be/x?a=1&amp;b=2[/embed]",
         '<a href="https://youtu.be/x?a=1&amp;b=2">https://youtu.be/x?a=1&amp;b=2</a>'),
        ("[embed]not a url[/embed]", "not a url"),
        ("[embed]javascript:alert(1)[/embed]", "javascript:alert(1)"),
        (
            '[caption id="attachment_7" align="alignleft" width="300"]<a href="https://e.org/a.jpg">'
            '<img src="https://e.org/a.jpg" alt="" /></a> A <em>fine</em> view[/caption]',
            '<figure id="attachment_7" class="wp-caption alignleft"><a href="https://e.org/a.jpg">'
            '<img src="https://e.org/a.jpg" alt="" /></a><figcaption>A <em>fine</em> view</figcaption></figure>',
        ),
        (
            '[caption caption="Old style &amp; more"]<img src="a.jpg" />[/caption]',
            '<figure class="wp-caption"><img src="a.jpg" /><figcaption>Old style &amp; more</figcaption></figure>',
        ),
        ('[caption]<img src="a.jpg" />[/caption]', '<img src="a.jpg" />'),
        # Not shortcodes: text in brackets stays as written.
        ("[Continue reading…]", "[Continue reading…]"),
        ("[Continue reading →](https://example.org/x)", "[Continue reading →](https://example.org/x)"),
        ("[1] and [2]", "[1] and [2]"),
        ("[sic]", "[sic]"),
        ("[citation needed]", "[citation needed]"),
        ("[update]", "[update]"),
        ("[a-z] and [e-mail]", "[a-z] and [e-mail]"),
        ("[Note: read this]", "[Note: read this]"),
        ("[…]", "[…]"),
        ("array[i] = x[0]", "array[i] = x[0]"),
        ("[/Continue]", "[/Continue]"),
        # Unclosed: the tag goes, the content stays.
        ('[caption id="x"]<img src="a.jpg" /> Never closed', '<img src="a.jpg" /> Never closed'),
        ("[embed]https://youtu.be/x", "https://youtu.be/x"),
    ],
)
def test_shortcodes(text: str, expected: str) -> None:
    assert expand_shortcodes(text) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gallery", True), ("caption", True), ("embed", True), ("audio", True), ("youtube", True),
        ("vc_row", True), ("et_pb_text", True), ("su_note", True), ("mc4wp_form", True),
        ("contact-form-7", True),
        ("Continue", False), ("Read", False), ("sic", False), ("more", False), ("update", False),
        ("a-z", False), ("self-promotion", False), ("Gallery", False),
    ],
)  # fmt: skip
def test_is_shortcode(name: str, expected: bool) -> None:
    assert is_shortcode(name) is expected


def test_shortcodes_inside_pre_are_left_alone() -> None:
    data = wxr.export([wxr.item(1, "Code", "<pre>[gallery ids=\"1\"]\n\nx</pre>\n\n[gallery]")])
    # (the [gallery] outside the <pre> has no images in this export: it goes)
    (post,) = read_export(data).posts
    assert post.content_html == '<pre>[gallery ids="1"]\n\nx</pre>'


def test_url_alone_on_its_line_becomes_a_link_but_not_one_in_a_sentence() -> None:
    content = "Watch:\n\nhttps://www.youtube.com/watch?v=abc\n\nOr read https://example.org/x today."
    (post,) = read_export(wxr.export([wxr.item(1, "Links", content)])).posts
    links = [a.get("href") for a in html_of(post).iter("a")]
    assert links == ["https://www.youtube.com/watch?v=abc"]


# -- generated exports: more rules ------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_every_wxr_version_is_read_under_either_scheme(version: str, scheme: str) -> None:
    namespace = f"{scheme}://wordpress.org/export/{version}/"
    data = wxr.export(
        [wxr.item(1, "One", excerpt="Short."), wxr.item(2, "Two", status="draft")],
        wp_namespace=namespace,
    )
    (post,) = read_export(data).posts
    assert post.source == f"{PATH}#post-1"
    assert post.summary == "Short."
    assert post.author == Author(name="Paul Woodward")


def test_the_namespace_bound_to_wp_is_wordpress_s_whatever_it_is() -> None:
    # As WordPress's importer reads it: the document's wp prefix names the namespace.
    data = wxr.export([wxr.item(1, "One")], wp_namespace="http://wordpress.org/export/1.3/")
    assert [p.title for p in read_export(data).posts] == ["One"]
    odd = wxr.export([wxr.item(2, "Two")]).replace(b"http://wordpress.org/export/1.2/", b"urn:example:wxr/")
    assert [p.title for p in read_export(odd).posts] == ["Two"]


def test_an_rss_feed_without_a_wordpress_namespace_is_no_export() -> None:
    feed = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>A</title></item></channel></rss>'
    with pytest.raises(ContentError) as caught:
        read_export(feed)
    assert caught.value.reason == NOT_WXR
    assert "[[content.feeds]]" in NOT_WXR and "[content] paths" in NOT_WXR


def test_comments_are_numbered_oldest_first_whatever_the_file_order() -> None:
    comments = [
        wxr.comment(3, "Third", "Later reply.", "2024-03-05 18:00:00", parent=1),
        wxr.comment(1, "First", "First!", "2024-03-05 15:00:00"),
        wxr.comment(2, "Second", "Second.", "2024-03-05 16:00:00"),
    ]
    (post,) = read_export(wxr.export([wxr.item(1, "Talk", comments=comments)])).posts
    assert [(c.number, c.author, c.parent) for c in post.comments] == [
        (1, "First", None),
        (2, "Second", None),
        (3, "Third", 1),
    ]


def test_comment_with_zero_gmt_date_uses_local_date() -> None:
    comment = wxr.comment(1, date_gmt="0000-00-00 00:00:00", date="2024-07-01 08:00:00")
    (post,) = read_export(wxr.export([wxr.item(1, comments=[comment])])).posts
    assert post.comments[0].date == utc(2024, 7, 1, 12, 0)


def test_untitled_post_without_text_is_untitled() -> None:
    (post,) = read_export(wxr.export([wxr.item(1, "", '[gallery ids="4,5"]')])).posts
    assert post.title == UNTITLED


def test_title_markup_is_dropped_and_entities_decoded() -> None:
    (post,) = read_export(wxr.export([wxr.item(1, "Using <em>autop</em> &amp; friends, a &lt; b")])).posts
    assert post.title == "Using autop & friends, a < b"


def test_post_without_any_date_leaves_it_to_the_content_stage() -> None:
    item = wxr.item(1, date_gmt="0000-00-00 00:00:00", date="0000-00-00 00:00:00")
    (post,) = read_export(wxr.export([item])).posts
    assert post.date is None


def test_empty_guid_leaves_the_id_to_the_content_stage() -> None:
    (post,) = read_export(wxr.export([wxr.item(1, guid="")])).posts
    assert post.id is None


def test_control_characters_are_removed_not_fatal() -> None:
    # Pasted from a word processor; libxml2 would stop at the first one.
    item = wxr.item(1, "Vertical\x0btab", "Text with \x1b escape and \x00 NUL.")
    (post,) = read_export(wxr.export([item, wxr.item(2, "Next")])).posts[:1]
    assert post.title == "Verticaltab"
    assert "\x1b" not in post.content_html and "\x00" not in post.content_html
    assert "escape and  NUL." in post.content_html


# -- errors -----------------------------------------------------------------------


def test_one_bad_date_rejects_that_item_only_and_names_its_line() -> None:
    bad = wxr.item(2, "Bad date", date_gmt="2024-13-45 99:00:00")
    data = wxr.export([wxr.item(1, "Good"), bad, wxr.item(3, "Also good")])
    result = read_export(data)
    assert [p.title for p in result.posts] == ["Good", "Also good"]
    (error,) = result.errors
    assert error.path == PATH
    item_line = line_of(data, "<item>\n\t\t<title><![CDATA[Bad date")
    assert error.line == item_line
    assert "post 2" in error.reason and "wp:post_date_gmt" in error.reason and "2024-13-45" in error.reason


def test_bad_comment_date_keeps_the_post_and_the_comment_and_reports_it() -> None:
    comments = [wxr.comment(1, "Ok"), wxr.comment(2, "Odd", date_gmt="yesterday")]
    data = wxr.export([wxr.item(1, comments=comments)])
    result = read_export(data)
    (post,) = result.posts
    assert [(c.author, c.date is None) for c in post.comments] == [("Ok", False), ("Odd", True)]
    (error,) = result.errors
    assert error.line == line_of(data, "<wp:comment>\n\t\t\t<wp:comment_id>2<")
    assert "'yesterday'" in error.reason


def test_duplicate_post_ids_keep_the_first() -> None:
    data = wxr.export([wxr.item(7, "First"), wxr.item(7, "Second")])
    result = read_export(data)
    assert [p.title for p in result.posts] == ["First"]
    (error,) = result.errors
    assert error.line == line_of(data, "<item>\n\t\t<title><![CDATA[Second")
    assert "post 7 appears twice" in error.reason


def test_published_item_without_post_id_is_an_error() -> None:
    data = wxr.export([wxr.item("", "No id"), wxr.item(2, "Fine")])
    result = read_export(data)
    assert [p.title for p in result.posts] == ["Fine"]
    assert "without wp:post_id" in result.errors[0].reason


def test_truncated_export_returns_the_posts_before_the_break() -> None:
    data = SMALL_SITE.read_bytes()
    cut = data.index(b"<title><![CDATA[Aid at the Rafah crossing")
    truncated = data[:cut]
    result = read_export(truncated)
    assert [p.source.rsplit("-", 1)[1] for p in result.posts] == ["101", "102", "103"]
    (error,) = result.errors
    assert error.path == PATH
    assert error.line == truncated.count(b"\n") + 1
    assert error.reason.startswith("not well-formed XML")
    assert "3 posts before it were read" in error.reason


def test_broken_xml_mid_file_names_the_line() -> None:
    data = wxr.export([wxr.item(1, "Fine"), wxr.item(2, "Broken")])
    broken = data.replace(b"<title><![CDATA[Broken]]></title>", b"<title>Fish & Chips</title>")
    result = read_export(broken)
    assert [p.title for p in result.posts] == ["Fine"]
    (error,) = result.errors
    assert error.line == line_of(broken, "<title>Fish & Chips")
    assert "column" in error.reason


def test_truncated_before_any_post_raises() -> None:
    data = SMALL_SITE.read_bytes()
    truncated = data[: data.index(b"<item>") + 30]
    with pytest.raises(ContentError) as caught:
        read_export(truncated)
    assert caught.value.line == truncated.count(b"\n") + 1
    assert caught.value.reason.startswith("not well-formed XML")


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"", 1, "empty file"),
        (b"  \n\n", 1, "empty file"),
        (b"This is a plain text file.\n", 1, "not well-formed XML"),
        (
            b'<?xml version="1.0"?>\n<rss xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
            b"<item><title>caf\xe9</title></item>",
            4,
            "not valid UTF-8 (column 17); save the export as UTF-8",
        ),
    ],
)
def test_unreadable_files_raise_with_a_line(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(ContentError) as caught:
        read_export(data)
    assert caught.value.path == PATH
    assert caught.value.line == line
    assert caught.value.reason.startswith(reason)


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:wp="http://wordpress.org/export/1.2/">
  <title>Someone's feed</title>
  <entry><title>An entry</title><id>urn:x</id></entry>
</feed>
"""

PLAIN_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>A WordPress site's feed</title>
  <item><title>Hello</title><link>https://other.example/hello/</link>
  <content:encoded><![CDATA[<p>Hi</p>]]></content:encoded></item>
</channel>
</rss>
"""

EMPTY_RSS = b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>x</title></channel></rss>\n'


@pytest.mark.parametrize("data", [ATOM, PLAIN_RSS, EMPTY_RSS], ids=["atom", "rss", "empty-rss"])
def test_feeds_that_are_not_exports_point_to_content_feeds(data: bytes) -> None:
    with pytest.raises(ContentError) as caught:
        read_export(data)
    assert (caught.value.line, caught.value.reason) == (1, NOT_WXR)
    assert "[[content.feeds]]" in str(caught.value)


def test_an_export_with_no_items_is_empty_not_an_error() -> None:
    assert read_export(wxr.export([])) == ReadResult(())


# -- safety -----------------------------------------------------------------------

WP = 'xmlns:wp="http://wordpress.org/export/1.2/"'

BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0" {WP} xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<item><title>&lol9;</title><content:encoded>&lol9;</content:encoded>
<wp:post_id>1</wp:post_id><wp:post_type>post</wp:post_type><wp:status>publish</wp:status></item>
</channel></rss>
""".encode()


def test_billion_laughs_is_refused_without_expanding() -> None:
    with pytest.raises(ContentError) as caught:
        read_export(BILLION_LAUGHS)
    assert caught.value.line == 2
    assert "entities" in caught.value.reason
    assert "lollol" not in str(caught.value)


def _with_entity(declaration: str, reference: str = "&x;") -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [{declaration}]>\n'
        f"<rss version=\"2.0\" {WP}><channel><item><title>a{reference}b</title>"
        "<wp:post_id>1</wp:post_id><wp:post_type>post</wp:post_type><wp:status>publish</wp:status>"
        "</item></channel></rss>\n"
    ).encode()


@pytest.mark.parametrize(
    "data",
    [
        _with_entity('<!ENTITY x SYSTEM "file:///etc/passwd">'),
        _with_entity('<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;', reference=""),
        (
            f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "file:///etc/passwd">\n'
            f'<rss version="2.0" {WP}><channel><item><title>a&x;b</title></item></channel></rss>\n'
        ).encode(),
    ],
    ids=["general-entity", "parameter-entity", "external-dtd"],
)
def test_local_files_are_never_read(data: bytes) -> None:
    passwd = Path("/etc/passwd")
    secret = passwd.read_text().split(":", 1)[0] + ":" if passwd.exists() else "root:"
    try:
        result = read_export(data)
    except ContentError as exc:
        assert secret not in str(exc)
        assert exc.line == 2
        return
    shown = [p.title + p.content_html for p in result.posts] + [str(e) for e in result.errors]
    assert not [s for s in shown if secret in s]


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'<!ENTITY x "FETCHED">')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []
    handler = type("Handler", (_Recorder,), {"requests": requests})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_the_network_is_never_touched(http_server: tuple[str, list[str]]) -> None:
    base, requests = http_server
    documents = [
        _with_entity(f'<!ENTITY x SYSTEM "{base}/entity">'),
        _with_entity(f'<!ENTITY % p SYSTEM "{base}/parameter.dtd"> %p;'),
        (
            f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{base}/external.dtd">\n'
            f'<rss version="2.0" {WP}><channel><item><title>a&x;b</title></item></channel></rss>\n'
        ).encode(),
    ]
    for data in documents:
        with pytest.raises(ContentError) as caught:
            read_export(data)
        assert "FETCHED" not in str(caught.value)
    assert requests == []


def test_xinclude_is_not_processed() -> None:
    include = (
        '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    )
    data = wxr.export([wxr.item(1, "Include", "PLACEHOLDER")])
    data = data.replace(b"<![CDATA[PLACEHOLDER]]>", f"Before {include} after".encode())
    (post,) = read_export(data).posts
    assert "Before" in post.content_html and "after" in post.content_html
    assert "root:" not in post.content_html


# -- large exports ----------------------------------------------------------------


@pytest.mark.slow
def test_a_30_mb_export_gives_every_published_post() -> None:
    items = (
        wxr.item(n, f"Post {n}", wxr.long_text(n), status="draft" if n % 4 == 0 else "publish")
        for n in range(1, 4001)
    )
    data = wxr.export(items)
    assert len(data) > 30_000_000
    tracemalloc.start()
    try:
        result = read_export(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.errors == ()
    published = [n for n in range(1, 4001) if n % 4]
    assert [p.source for p in result.posts] == [f"{PATH}#post-{n}" for n in published]
    for post in result.posts[::97]:
        n = int(post.title.split()[1])
        assert post.content_html.count(f"of post {n} says") == 12 * 7
        assert post.content_html.count("<p>") == 12
    # Python-side memory: the posts themselves and little else (loose bound).
    assert peak < 4 * len(data)


MEMORY_PROBE = textwrap.dedent(
    """
    import re, sys
    sys.path.insert(0, sys.argv[2])
    from publisher.content.readers import ReadOptions
    from publisher.content.readers.wxr import read

    def peak():
        # VmHWM belongs to this process's own memory map; ru_maxrss would
        # include the parent's size, inherited across fork and exec.
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024

    data = open(sys.argv[1], "rb").read()
    before = peak()
    result = read(data, "export.xml", ReadOptions())
    print(len(result.posts), peak() - before)
    """
)


@pytest.mark.slow
def test_reading_frees_each_item_so_memory_stays_bounded(tmp_path: Path) -> None:
    """Most of this export is revisions: kept in the tree, they would cost about
    twice the file's size; cleared as they are read, they cost next to nothing."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status (VmHWM)")
    text = wxr.long_text(0, paragraphs=16)
    items = (
        wxr.item(n, f"Post {n}", "Short.")
        if n % 50 == 0
        else wxr.item(n, f"Revision {n}", text, post_type="revision")
        for n in range(1, 4001)
    )
    path = tmp_path / "export.xml"
    path.write_bytes(wxr.export(items))
    size = path.stat().st_size
    assert size > 30_000_000
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), str(REPO)],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    posts, growth = (int(word) for word in out.split())
    assert posts == 80
    # Without clearing, the peak grows by about twice the file size (70 MB here).
    assert growth < size / 4


def test_audio_attached_to_a_post_is_its_enclosure_with_the_size_wordpress_recorded() -> None:
    episode = wxr.item(5, "Episode 5", "Listen: [audio]")
    attachment = wxr.item(
        6,
        "episode-5.mp3",
        "",
        status="inherit",
        post_type="attachment",
        parent=5,
        extra=(
            "<wp:attachment_url>https://example.org/wp-content/uploads/episode-5.mp3</wp:attachment_url>"
            '<wp:postmeta><wp:meta_key>_wp_attachment_metadata</wp:meta_key><wp:meta_value><![CDATA[a:2:{s:8:"filesize";i:7340032;s:9:"mime_type";s:10:"audio/mpeg";}]]></wp:meta_value></wp:postmeta>'
        ),
    )
    image = wxr.item(
        7,
        "cover.jpg",
        "",
        status="inherit",
        post_type="attachment",
        parent=5,
        extra="<wp:attachment_url>https://example.org/cover.jpg</wp:attachment_url>",
    )
    (post,) = read_export(wxr.export([episode, attachment, image])).posts
    # An image attached is no enclosure; the audio is, with its size in bytes.
    assert [(e.url, e.type, e.length) for e in post.enclosures] == [
        ("https://example.org/wp-content/uploads/episode-5.mp3", "audio/mpeg", 7340032)
    ]


def test_two_published_posts_sharing_a_guid_are_both_read_each_known_by_its_post_id() -> None:
    data = wxr.export([wxr.item(1, "One", guid="https://example.org/?p=1"), wxr.item(2, "Two", guid="https://example.org/?p=1")])
    result = read_export(data)
    assert result.errors == ()
    assert [(p.title, p.id) for p in result.posts] == [("One", "https://example.org/?p=1"), ("Two", "https://example.org/?p=2")]
