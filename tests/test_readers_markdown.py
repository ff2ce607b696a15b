"""The Markdown reader, on fixture posts under tests/data/markdown/."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from publisher.errors import ContentError
from publisher.model import Author, Post
from publisher.content.readers import ReadOptions, reader_for
from publisher.content.readers.markdown import NO_TITLE, read, read_result
from publisher.content.readers.metadata import Metadata

from .conftest import DATA

MD = DATA / "markdown"
NEW_YORK = ZoneInfo("America/New_York")
FULL = "yaml_front_matter_table_footnote_code.md"


def read_fixture(name: str, options: ReadOptions | None = None) -> Post:
    return read((MD / name).read_bytes(), f"posts/{name}", options or ReadOptions())


def body(post: Post) -> lxml.html.HtmlElement:
    """The post's HTML parsed into one <div>, to assert on elements."""
    return lxml.html.fragment_fromstring(post.content_html, create_parent="div")


@pytest.fixture
def full() -> Post:
    return read_fixture(FULL, ReadOptions(timezone=NEW_YORK))


# --- YAML front matter and the CommonMark extensions -------------------------


def test_yaml_front_matter_gives_every_field(full: Post) -> None:
    assert full.source == f"posts/{FULL}"
    assert full.title == "Ceasefire talks: what the table says"
    # A date without an offset is taken in the site's time zone.
    assert full.date == datetime(2024, 3, 5, 9, 30, tzinfo=NEW_YORK)
    assert full.updated == datetime(2024, 3, 6, 10, 0, tzinfo=timezone.utc)
    assert full.slug == "ceasefire-talks"
    assert full.author == Author(name="Paul Woodward", email="paul@example.org")
    assert full.image == "https://example.org/images/talks.jpg"
    assert full.draft is False
    assert full.blocks == ()


def test_tags_and_categories_are_joined_without_repeats(full: Post) -> None:
    assert full.tags == ("Gaza", "Diplomacy", "Analysis")


def test_table_keeps_its_cells(full: Post) -> None:
    (table,) = body(full).findall(".//table")
    rows = [[cell.text_content() for cell in row] for row in table.iter("tr")]
    assert rows == [
        ["Party", "Demand"],
        ["Israel", "hostage release"],
        ["Hamas", "full withdrawal"],
    ]
    assert [th.text for th in table.findall("thead/tr/th")] == ["Party", "Demand"]


def test_footnote_reference_links_to_its_footnote_and_back(full: Post) -> None:
    root = body(full)
    (ref,) = root.xpath(".//sup[@class='footnote-ref']/a")
    target = ref.get("href")
    assert target.startswith("#")
    (note,) = root.xpath(".//*[@id=$id]", id=target[1:])
    assert "Reported by two officials" in note.text_content()
    (back,) = note.xpath(".//a[@class='footnote-backref']")
    assert back.get("href") == f"#{ref.get('id')}"


def test_footnote_ids_differ_between_posts() -> None:
    data = (MD / FULL).read_bytes()
    one = body(read(data, "posts/one.md", ReadOptions())).xpath(".//sup/a/@href")
    two = body(read(data, "posts/two.md", ReadOptions())).xpath(".//sup/a/@href")
    assert one and two and one != two


def test_footnote_ids_differ_between_posts_named_in_other_scripts() -> None:
    data = (MD / FULL).read_bytes()
    roots = [body(read(data, f"posts/{name}.md", ReadOptions())) for name in ("Война", "Мир", "東京")]
    targets = [root.xpath(".//sup/a/@href") for root in roots]
    assert all(targets) and len({tuple(t) for t in targets}) == 3
    assert targets[0] == ["#fn-posts-война-1"]
    for root, (target,) in zip(roots, targets):
        assert root.xpath(".//*[@id=$id]", id=target[1:])  # each link still finds its note


def test_fenced_code_keeps_its_text_verbatim(full: Post) -> None:
    (code,) = body(full).findall(".//pre/code")
    assert code.get("class") == "language-python"
    assert code.text == (
        "def positions(a, b):\n"
        '    return a < b and b > a  # <no> & "change"\n'
    )


def test_inline_html_and_strikethrough_pass_through(full: Post) -> None:
    root = body(full)
    assert [kbd.text for kbd in root.iter("kbd")] == ["Ctrl", "F"]
    assert [s.text for s in root.iter("s")] == ["barely"]
    assert root.xpath(".//a[@href='https://www.reuters.com/']/text()") == ["Reuters"]


def test_summary_is_the_first_paragraph_as_plain_words(full: Post) -> None:
    # Markup and the footnote mark are gone; struck-out words are not summarised.
    assert full.summary == (
        "Negotiators met again in Doha on Tuesday, according to Reuters, "
        "and the positions have hardly moved."
    )


def test_a_heading_is_kept_when_front_matter_gives_another_title(full: Post) -> None:
    assert [h.text for h in body(full).iter("h1")] == ["Not the title: front matter gave one"]


def test_front_matter_title_repeated_as_heading_is_not_shown_twice() -> None:
    post = read_fixture("front_matter_title_repeated_as_heading.md")
    assert post.title == "Same words twice"
    root = body(post)
    assert root.findall(".//h1") == []
    assert "Same words twice" not in root.text_content()
    assert [p.text for p in root.iter("p")] == ["Only the body paragraph should remain."]


# --- TOML front matter -------------------------------------------------------


def test_toml_front_matter_gives_every_field() -> None:
    post = read_fixture("toml_front_matter.md")
    assert post.title == "Notes from the archive"
    assert post.date == datetime(2023, 11, 20, 13, 0, tzinfo=timezone.utc)
    assert post.date.utcoffset().total_seconds() == -5 * 3600
    assert post.id == "tag:example.org,2023:notes-from-the-archive"
    assert post.url == "https://example.org/2023/11/notes/"
    assert post.summary == "What the 1990s coverage got right."
    assert post.draft is True
    assert post.image == "/images/archive.png"
    assert post.tags == ("History",)
    assert post.author == Author("Ed Itor", "ed@example.org", "https://example.org/about/")
    assert [p.text_content() for p in body(post).iter("p")] == [
        "The archive has more than we thought.",
        "Second paragraph.",
    ]


# --- Titles from headings ----------------------------------------------------


def test_title_is_the_first_h1_and_is_taken_out_of_the_body() -> None:
    post = read_fixture("title_from_first_heading.md")
    assert post.title == "The Real Title"
    root = body(post)
    assert root.findall(".//h1") == []
    assert "The Real Title" not in root.text_content()
    # The h2 before it is not the title (an h1 is preferred) and stays.
    assert [h.text for h in root.iter("h2")] == ["A section heading", "Another section"]
    assert post.summary == "Opening words come before the heading here."


def test_title_is_the_first_heading_of_any_level_without_an_h1() -> None:
    post = read_fixture("title_from_h2_when_no_h1.md")
    # Inline markup is flattened to its words.
    assert post.title == "Weekly links: March 2024"
    root = body(post)
    assert root.findall(".//h2") == []
    # A heading inside a block quote is quoted text, never the title.
    assert root.xpath(".//blockquote/h1/text()") == ["A quoted heading is not the title"]
    # The only paragraphs are the items of a tight list: no summary.
    assert post.summary is None


def test_summary_skips_a_paragraph_that_is_only_an_image() -> None:
    post = read_fixture("summary_skips_image_paragraph.md")
    assert post.title == "Photo of the day"
    assert post.summary == (
        "The harbour at dawn, taken from the north wall with a long lens and a steady hand."
    )
    assert body(post).xpath(".//img/@src") == ["harbour.jpg"]


# --- Errors and edge cases ---------------------------------------------------


def test_no_title_with_front_matter_is_the_file_name_as_jekyll_makes_it() -> None:
    # Jekyll's titleize_slug: the name's words split at "-", each capitalised.
    assert read_fixture("no_title.md").title == "No_title"
    post = read(b"---\ntags: [x]\n---\nWords.\n", "posts/2013-05-06-jekyll-1-0-0-released.md", ReadOptions())
    assert post.title == "Jekyll 1 0 0 Released"


def test_no_title_without_front_matter_is_an_error_at_line_one() -> None:
    with pytest.raises(ContentError) as caught:
        read(b"Just words.\n\n> and a quote\n", "posts/a.md", ReadOptions())
    assert caught.value.line == 1
    assert caught.value.reason == NO_TITLE


def test_bad_yaml_is_an_error_with_its_line() -> None:
    with pytest.raises(ContentError) as caught:
        read_fixture("bad_yaml.md")
    # YAML notices the unclosed list where the next key starts.
    assert caught.value.line == 5
    assert "not valid YAML" in caught.value.reason


def test_bad_front_matter_value_is_an_error_with_its_line() -> None:
    data = b"---\ntitle: T\ndate: not a date\n---\nBody.\n"
    with pytest.raises(ContentError) as caught:
        read(data, "posts/a.md", ReadOptions())
    assert caught.value.line == 3
    assert caught.value.reason.startswith("date:")


def test_undecodable_bytes_are_an_error_with_their_line() -> None:
    with pytest.raises(ContentError) as caught:
        read(b"# Title\n\nfine\ncaf\xe9\n", "posts/latin1.md", ReadOptions())
    assert caught.value.line == 4
    assert "UTF-8" in caught.value.reason


def test_crlf_and_bom_read_the_same_as_lf() -> None:
    lf = (MD / FULL).read_bytes()
    assert b"\r" not in lf
    crlf_bom = b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n")
    options = ReadOptions(timezone=NEW_YORK)
    assert read(crlf_bom, "posts/a.md", options) == read(lf, "posts/a.md", options)


def test_front_matter_with_an_empty_body_is_a_post_with_no_content() -> None:
    post = read_fixture("front_matter_only.md")
    assert post.title == "A title and nothing else"
    assert post.content_html == ""
    assert post.summary is None
    assert post.date == datetime(2024, 2, 29, tzinfo=ZoneInfo("UTC"))


def test_sidecar_overlay_wins_over_front_matter() -> None:
    overlay = Metadata(title="From the sidecar", tags=("sidecar",), summary="Sidecar summary.")
    post = read_fixture(FULL, ReadOptions(overlay=overlay))
    assert post.title == "From the sidecar"
    assert post.tags == ("sidecar",)
    assert post.summary == "Sidecar summary."
    # Fields the sidecar leaves unset still come from front matter.
    assert post.slug == "ceasefire-talks"


def test_sidecar_title_keeps_the_heading_in_the_body() -> None:
    post = read_fixture("title_from_first_heading.md", ReadOptions(overlay=Metadata(title="Other")))
    assert post.title == "Other"
    assert body(post).xpath(".//h1/text()") == ["The Real Title"]


@pytest.mark.parametrize("name", ["posts/a.md", "posts/a.markdown", "posts/A.MD"])
def test_registry_reads_markdown_files_with_this_reader(name: str) -> None:
    reader = reader_for(name)
    assert reader is not None
    result = reader((MD / "toml_front_matter.md").read_bytes(), name, ReadOptions())
    assert result.errors == ()
    assert [p.title for p in result.posts] == ["Notes from the archive"]


# --- Front-matter keys: any case; other tools' keys read as those tools mean them


def test_keys_ignore_case_and_other_tools_keys_mean_what_they_mean_there() -> None:
    name = "hugo_and_jekyll_keys.md"
    result = read_result((MD / name).read_bytes(), f"posts/{name}", ReadOptions())
    (post,) = result.posts
    # Capitalised keys are publisher's own: this is a draft, titled, dated and tagged.
    assert post.draft is True
    assert post.title == "Moved from another blog"
    assert post.date == datetime(2024, 2, 10, 8, 0, tzinfo=timezone.utc)
    assert post.tags == ("Archive", "Notes")
    # Hugo's lastmod is the update, Jekyll's permalink the URL (under the
    # site's, resolved by the content stage); layout, aliases, weight and
    # params change nothing in a feed and are no warnings.
    assert post.updated == datetime(2024, 2, 11, 9, 0, tzinfo=timezone.utc)
    assert post.url == "/2024/moved/"
    assert result.warnings == ()
    # Hugo's aliases are read (each becomes a redirect page).
    assert post.aliases == ("/old/moved/", "/older/moved.html")
    # The registry hands the warnings on; read() gives the same post.
    reader = reader_for(f"posts/{name}")
    assert reader is not None
    assert reader((MD / name).read_bytes(), f"posts/{name}", ReadOptions()) == result
    assert read_fixture(name) == post


def test_a_key_given_in_two_spellings_is_an_error_at_the_second() -> None:
    name = "draft_in_two_spellings.md"
    with pytest.raises(ContentError) as caught:
        read_fixture(name)
    assert (caught.value.path, caught.value.line) == (f"posts/{name}", 5)
    assert "'Draft' repeats 'draft' (line 3)" in caught.value.reason


def test_a_file_with_only_known_keys_has_no_warnings() -> None:
    result = read_result((MD / FULL).read_bytes(), f"posts/{FULL}", ReadOptions())
    assert result.warnings == ()
