"""The plain-text reader, on the seed post and on small variations of it."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from publisher.errors import ContentError
from publisher.model import Excerpt, Paragraph, Post
from publisher.content.readers import ReadOptions, reader_for
from publisher.content.readers.text import read, read_result

from .conftest import SEED

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return WORD.findall(text)


@pytest.fixture
def seed_bytes() -> bytes:
    return SEED.read_bytes()


@pytest.fixture
def seed(seed_bytes: bytes) -> Post:
    return read(seed_bytes, "seeds/seed.txt", ReadOptions())


def parsed_words(post: Post) -> list[str]:
    """Every word the reader kept, in the order it keeps them."""
    out = words(post.title)
    for block in post.blocks:
        if isinstance(block, Paragraph):
            out += words(block.text)
        else:
            out += words(f"{block.source} {block.lead}")
            for paragraph in block.paragraphs:
                out += words(paragraph)
            out += words(block.more or "")
    out += words(post.comments_heading or "")
    for comment in post.comments:
        out += words(comment.author)
        for paragraph in comment.paragraphs:
            out += words(paragraph)
    return out


def test_seed_keeps_every_word_of_the_author_in_order(seed: Post, seed_bytes: bytes) -> None:
    lines = seed_bytes.decode("utf-8").split("\n")
    dropped = {"Print Friendly, PDF & Email", "Comments are closed."}
    kept = [line for line in lines if line.strip() not in dropped]
    source_words = words("\n".join(kept))
    # The comment's number ("1.") is structure, kept as Comment.number.
    del source_words[source_words.index("pabelmont") - 1]
    assert parsed_words(seed) == source_words


def test_seed_body_html_carries_the_body_words_in_order(seed: Post) -> None:
    body_words = parsed_words(
        Post(source=seed.source, title="", content_html="", blocks=seed.blocks)
    )
    html_text = lxml.html.fromstring(f"<div>{seed.content_html}</div>").text_content()
    assert words(html_text) == body_words


def test_seed_title_excerpts_and_sources(seed: Post) -> None:
    assert seed.title == "The U.S. has been speaking to Hamas through back channels for more than six months"
    assert [(e.source, e.lead) for e in seed.excerpts] == [
        ("Sheera Frenkel", "reports"),
        ("BBC News", "reports"),
    ]
    frenkel, bbc = seed.excerpts
    assert len(frenkel.paragraphs) == 4
    assert frenkel.paragraphs[0].startswith("United States officials have been holding")
    assert frenkel.paragraphs[-1].endswith("the U.S. official said.")
    assert frenkel.more == "[Continue reading…]"
    assert frenkel.more_url is None
    assert len(bbc.paragraphs) == 3
    assert bbc.paragraphs[-1].endswith("watched “very closely”.")
    assert bbc.more is None
    assert all(isinstance(b, Excerpt) for b in seed.blocks)


def test_seed_boilerplate_dropped_comments_structured(seed: Post) -> None:
    assert "Print Friendly" not in seed.content_html
    assert all("Print Friendly" not in p for e in seed.excerpts for p in e.paragraphs)
    assert len(seed.comments) == 1
    comment = seed.comments[0]
    assert (comment.number, comment.author) == (1, "pabelmont")
    assert len(comment.paragraphs) == 2
    assert comment.paragraphs[0].startswith("Trust he is also watching")
    assert comment.paragraphs[1].endswith("at all for Palestinians.")
    assert seed.comments_closed is True
    assert seed.comments_heading.startswith("1 thought on “The U.S.")
    # Comments are not part of the post's body.
    assert "pabelmont" not in seed.content_html


def test_seed_html_renders_excerpts_as_cited_blockquotes(seed: Post) -> None:
    doc = lxml.html.fromstring(f"<div>{seed.content_html}</div>")
    cites = [c.text_content() for c in doc.iter("cite")]
    assert cites == ["Sheera Frenkel", "BBC News"]
    quotes = doc.findall("blockquote")
    assert len(quotes) == 2
    assert len(quotes[0].findall("p")) == 4
    # No URL known: the marker stays as plain text, not a link.
    assert quotes[0].findall(".//a") == []
    assert quotes[0].text_content().rstrip().endswith("[Continue reading…]")


def test_summary_is_the_start_of_the_text(seed: Post) -> None:
    assert seed.summary.startswith("Sheera Frenkel reports: United States officials")
    assert len(seed.summary) <= 281


def test_crlf_and_bom_read_the_same(seed: Post, seed_bytes: bytes) -> None:
    variant = b"\xef\xbb\xbf" + seed_bytes.replace(b"\n", b"\r\n")
    assert read(variant, "seeds/seed.txt", ReadOptions()) == seed


def test_registry_maps_txt_to_this_reader(seed: Post, seed_bytes: bytes) -> None:
    result = reader_for("posts/A.TXT")(seed_bytes, "seeds/seed.txt", ReadOptions())
    assert result.posts == (seed,) and result.errors == ()
    assert reader_for("posts/a.docx") is None


def test_known_source_url_makes_links() -> None:
    text = (
        "+++\n"
        'sources = { "Sheera Frenkel" = "https://news.example/talks" }\n'
        "+++\n"
        "Title\n\nSheera Frenkel reports: Officials met.\n\nThey talked. [Continue reading…]\n"
    )
    post = read(text.encode(), "p.txt", ReadOptions())
    (excerpt,) = post.excerpts
    assert excerpt.source_url == excerpt.more_url == "https://news.example/talks"
    doc = lxml.html.fromstring(f"<div>{post.content_html}</div>")
    links = [(a.get("href"), a.text_content()) for a in doc.iter("a")]
    assert links == [
        ("https://news.example/talks", "Sheera Frenkel"),
        ("https://news.example/talks", "[Continue reading…]"),
    ]
    assert doc.find("blockquote").get("cite") == "https://news.example/talks"


def test_inline_continue_url_and_author_text_after_it() -> None:
    text = (
        "Title\n\nIntro by the author.\n\n"
        "The Guardian writes: A passage. [Continue reading...](https://guardian.example/a)\n\n"
        "The author's comment on it.\n"
    )
    post = read(text.encode(), "p.txt", ReadOptions())
    assert [type(b).__name__ for b in post.blocks] == ["Paragraph", "Excerpt", "Paragraph"]
    excerpt = post.blocks[1]
    assert (excerpt.source, excerpt.lead, excerpt.more, excerpt.more_url) == (
        "The Guardian",
        "writes",
        "[Continue reading...]",
        "https://guardian.example/a",
    )
    assert post.blocks[2].text == "The author's comment on it."


@pytest.mark.parametrize(
    "paragraph, expected",
    [
        ("BBC News says: x", ("BBC News", "says")),
        ("Al Jazeera’s Dalia Hatuqa writes: x", ("Al Jazeera’s Dalia Hatuqa", "writes")),
        ("Ministry of Defence says: x", ("Ministry of Defence", "says")),
        ("He says: x", None),
        ("the minister said that he reports: x", None),
        ("Nobody in particular was here today to talk about it at length reports: x", None),
    ],
)
def test_lead_recognition(paragraph: str, expected: tuple[str, str] | None) -> None:
    post = read(f"Title\n\n{paragraph}\n".encode(), "p.txt", ReadOptions())
    found = [(e.source, e.lead) for e in post.excerpts]
    assert found == ([expected] if expected else [])
    if expected is None:
        assert post.blocks == (Paragraph(paragraph),)


def test_lead_alone_on_its_line_takes_the_following_paragraphs() -> None:
    post = read(b"Title\n\nBBC News reports:\n\nOne.\n\nTwo.\n", "p.txt", ReadOptions())
    assert post.excerpts[0].paragraphs == ("One.", "Two.")


def test_boilerplate_list_is_configurable() -> None:
    text = b"Title\n\nBody.\n\nShare on Mastodon\n\nPrint Friendly, PDF & Email\n"
    default = read(text, "p.txt", ReadOptions())
    assert [b.text for b in default.blocks] == ["Body.", "Share on Mastodon"]
    custom = read(text, "p.txt", ReadOptions(boilerplate=("share on mastodon",)))
    assert [b.text for b in custom.blocks] == ["Body.", "Print Friendly, PDF & Email"]


def test_markup_in_text_is_escaped() -> None:
    post = read(b'Using <b> in a title\n\nA <script>alert(1)</script> & more\n', "p.txt", ReadOptions())
    assert post.title == "Using <b> in a title"
    assert "<script>" not in post.content_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in post.content_html


@pytest.mark.parametrize(
    "first_line",
    [b'<b onmouseover="x()">T</b>', b"<!DOCTYPE html>", b"<html lang=en>", b"<p>Hello</p>", b"<!-- saved page -->"],
)
def test_a_txt_holding_html_is_refused_naming_the_line(first_line: bytes) -> None:
    with pytest.raises(ContentError) as caught:
        read(b"---\ndate: 2024-01-01\n---\n" + first_line + b"\n\nBody.\n", "posts/saved.txt", ReadOptions())
    assert (caught.value.path, caught.value.line) == ("posts/saved.txt", 4)
    assert caught.value.reason == "the first line is HTML markup, not a title: this file holds HTML; name it .html"


def test_wrapped_first_paragraph_title_is_first_line() -> None:
    post = read(b"Title line\nbody continues here\n\nNext.\n", "p.txt", ReadOptions())
    assert post.title == "Title line"
    assert [b.text for b in post.blocks] == ["body continues here", "Next."]


def test_yaml_front_matter() -> None:
    text = (
        "---\n"
        "date: 2014-06-05 09:12:00 -0400\n"
        "id: urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427\n"
        "tags: [Hamas, Diplomacy]\n"
        "author: Jane Doe <jane@example.org>\n"
        "summary: A short summary.\n"
        "slug: us-hamas\n"
        "draft: false\n"
        "---\n"
        "Title\n\nBody.\n"
    )
    post = read(text.encode(), "p.txt", ReadOptions())
    assert post.date == datetime(2014, 6, 5, 13, 12, tzinfo=timezone.utc)
    assert post.id == "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert post.tags == ("Hamas", "Diplomacy")
    assert (post.author.name, post.author.email) == ("Jane Doe", "jane@example.org")
    assert (post.summary, post.slug, post.draft) == ("A short summary.", "us-hamas", False)
    assert post.title == "Title"


def test_toml_front_matter_naive_date_is_in_site_time_zone() -> None:
    text = '+++\ndate = "2014-06-05 09:12"\ndraft = true\ntitle = "From front matter"\n+++\nFirst line.\n'
    post = read(text.encode(), "p.txt", ReadOptions(timezone=ZoneInfo("America/New_York")))
    assert post.date == datetime(2014, 6, 5, 13, 12, tzinfo=timezone.utc)
    assert post.draft is True
    # With a title in the metadata the first line is body text.
    assert post.title == "From front matter"
    assert post.blocks == (Paragraph("First line."),)


@pytest.mark.parametrize(
    "data, line, reason",
    [
        (b"", 1, "empty file"),
        (b"  \n\n \n", 1, "empty file"),
        (b"Title\n\nok\n\xff\xfe bad\n", 4, "not valid UTF-8"),
        (b"\xff\xfeT\x00", 1, "UTF-16"),
        (b"---\ndate: 2014-01-01\n---\n\n", 4, "no title"),
        (b"---\ndate: [unclosed\n---\nTitle\n", 2, "not valid YAML"),
        (b"---\ntitle: x\n  bad: indent\n---\nTitle\n", 3, "not valid YAML"),
        (b"+++\ntags = []\ndate = \n+++\nTitle\n", 3, "not valid TOML"),
        (b"+++\ndate = 2014-02-30\n+++\nTitle\n", 2, "not valid TOML"),
        (b"---\ntags: [a]\ndate: 2014-02-30\n---\nTitle\n", 3, "date:"),
        (b"---\ndate: 2014-01-01\nTitle\n", 1, "never closed"),
        (b"---\n- a list\n---\nTitle\n", 2, "mapping"),
        (b"---\nauthor: {nom: x}\n---\nTitle\n", 2, "author"),
    ],
)
def test_bad_input_names_the_line(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(ContentError) as caught:
        read(data, "posts/bad.txt", ReadOptions())
    error = caught.value
    assert (error.path, error.line) == ("posts/bad.txt", line)
    assert reason in error.reason
    assert str(error).startswith(f"posts/bad.txt:{line}: ")


# --- Front-matter keys: any case, unknown keys warned, no two spellings --------


@pytest.mark.parametrize(
    "front_matter",
    ["---\nDraft: true\n---\n", "---\nDRAFT: yes\n---\n", '+++\nDraft = true\n+++\n', '+++\n"dRaFt" = true\n+++\n'],
)
def test_draft_is_a_draft_whatever_its_case(front_matter: str) -> None:
    result = read_result(f"{front_matter}Title\n\nBody.\n".encode(), "posts/a.txt", ReadOptions())
    assert result.posts[0].draft is True
    assert result.warnings == ()


def test_capitalised_keys_fill_their_fields() -> None:
    text = (
        "---\n"
        "Title: From front matter\n"
        "Date: 2014-06-05 09:12:00 -0400\n"
        "Author: {Name: Jane Doe, EMAIL: jane@example.org}\n"
        "Slug: us-hamas\n"
        "Sources: {BBC News: 'https://bbc.example/a'}\n"
        "---\n"
        "First line.\n\nBBC News reports: quoted.\n"
    )
    post = read(text.encode(), "p.txt", ReadOptions())
    assert post.title == "From front matter"
    assert post.date == datetime(2014, 6, 5, 13, 12, tzinfo=timezone.utc)
    assert (post.author.name, post.author.email) == ("Jane Doe", "jane@example.org")
    assert post.slug == "us-hamas"
    assert post.excerpts[0].source_url == "https://bbc.example/a"


def test_a_misspelt_key_is_a_warning_naming_its_line() -> None:
    text = "---\ntitle: T\ndarft: true\n2024: a year\non: true\n---\nBody.\n"
    result = read_result(text.encode(), "posts/a.txt", ReadOptions())
    assert result.posts[0].draft is False
    # YAML reads "2024" as a number and "on" as true: keys all the same, never a crash.
    assert [str(w) for w in result.warnings] == [
        "posts/a.txt:3: unknown key 'darft'",
        "posts/a.txt:4: unknown key '2024'",
        "posts/a.txt:1: unknown key 'True'",
    ]


@pytest.mark.parametrize(
    "data, line, first",
    [
        (b"---\ndraft: false\ntitle: T\nDraft: true\n---\nBody.\n", 4, 2),
        (b'+++\nTags = ["a"]\ntags = ["b"]\n+++\nTitle\n', 3, 2),
        (b"---\nauthor: {name: a, Name: b}\n---\nTitle\n", 2, None),
    ],
)
def test_one_key_in_two_spellings_is_an_error(data: bytes, line: int, first: int | None) -> None:
    with pytest.raises(ContentError) as caught:
        read(data, "posts/a.txt", ReadOptions())
    assert (caught.value.path, caught.value.line) == ("posts/a.txt", line)
    if first is not None:
        assert f"(line {first})" in caught.value.reason
