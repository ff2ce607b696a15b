"""HTML sanitising: what a post's HTML may carry into feeds and emails."""

from __future__ import annotations

import pytest
from html import escape
from urllib.parse import urljoin, urlsplit

import nh3
from hypothesis import given, strategies as st

from publisher.content.sanitize import absolutize, clean_html, resolved_srcset


@pytest.mark.parametrize(
    "dirty, gone",
    [
        ("<p>a<script>alert(1)</script></p>", "script"),
        ('<p onclick="steal()">a</p>', "onclick"),
        ('<a href="javascript:alert(1)">x</a>', "javascript"),
        ('<img src="x" onerror="alert(1)">', "onerror"),
        ("<iframe src='https://evil.example'></iframe>", "iframe"),
        ("<style>body{display:none}</style><p>a</p>", "display:none"),
        ("<p>bell\x07</p>", "\x07"),
    ],
)
def test_unsafe_markup_is_removed(dirty: str, gone: str) -> None:
    assert gone not in clean_html(dirty)


def test_ordinary_markup_survives() -> None:
    html = (
        '<p class="excerpt-source"><cite><a href="https://news.example/">News</a></cite> reports:</p>'
        '<blockquote cite="https://news.example/"><p>Quoted <em>text</em>.</p></blockquote>'
        '<img src="https://example.org/a.png" alt="A" width="600">'
    )
    assert clean_html(html) == html


BASE = "https://example.org/2024/01/post/"


def test_relative_links_and_images_become_absolute() -> None:
    html = '<p><a href="../other/">o</a> <img src="pic.png" alt="p"> <a href="#fn1">1</a> <a href="https://x.example/">x</a></p>'
    out = absolutize(html, BASE)
    assert 'href="https://example.org/2024/01/other/"' in out
    assert 'src="https://example.org/2024/01/post/pic.png"' in out
    assert 'href="https://x.example/"' in out
    assert 'href="#fn1"' in out


@pytest.mark.parametrize(
    "html",
    [
        '<p><a href="https://x.example/">x</a> &amp; text</p>',
        "<p><a href='http://x.example/a?b=1&amp;c=2'>x</a></p>",
        '<p><a href="mailto:editor@example.org">mail</a> <a HREF="tel:+15550100">call</a></p>',
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">',
        '<img src="//cdn.example.com/a.png" alt="a"><br>',
        '<p>See <a href="#fn-1">a note</a>.<p>unclosed',
        '<a href = "https://x.example/">spaced</a>',
        '<a href= "https://x.example/">spaced after</a>',
        "<a href=https://x.example/>unquoted</a>",
        '<blockquote cite="https://news.example/"><p>q</p></blockquote>',
        '<img src="https://x.example/a.png" srcset="https://x.example/a.png 1x, //cdn.example.com/b.png 2x">',
        '<picture><source srcset="data:image/png;base64,AA,BB 1x, https://x.example/c.png 2x"></picture>',
        "<p>No links at all.</p>",
        "",
    ],
)
def test_html_without_a_relative_url_is_returned_unparsed(html: str) -> None:
    assert absolutize(html, BASE) is html


@pytest.mark.parametrize(
    "html, resolved",
    [
        ('<a href="a.html">a</a>', 'href="https://example.org/2024/01/post/a.html"'),
        ("<img src='../x.png' alt=\"x\">", 'src="https://example.org/2024/01/x.png"'),
        ("<a href=x.html>x</a>", 'href="https://example.org/2024/01/post/x.html"'),
        ('<a href="https://x.example/">x</a> <a href="/about/">about</a>', 'href="https://example.org/about/"'),
        ('<blockquote cite="../source/"><p>q</p></blockquote>', 'cite="https://example.org/2024/01/source/"'),
        (
            '<img src="https://x.example/a.png" srcset="https://x.example/a.png 1x, b.png 2x">',
            'srcset="https://x.example/a.png 1x, https://example.org/2024/01/post/b.png 2x"',
        ),
        (
            '<picture><source srcset="wide.png, narrow.png 400w" media="(min-width: 40em)"></picture>',
            'srcset="https://example.org/2024/01/post/wide.png, https://example.org/2024/01/post/narrow.png 400w"',
        ),
    ],
)
def test_relative_urls_are_resolved(html: str, resolved: str) -> None:
    assert resolved in absolutize(html, BASE)


def test_first_paragraph_text() -> None:
    from publisher.content.sanitize import first_paragraph_text

    assert first_paragraph_text("<p> </p><p>Hello <b>there</b></p><p>no</p>") == "Hello there"
    assert first_paragraph_text("<div>just text</div>") == "just text"
    assert first_paragraph_text("") == ""


def test_audio_and_video_players_keep_their_source_and_lose_script() -> None:
    html = (
        '<audio controls src="javascript:alert(1)" onplay="x()"><a href="https://e.org/a.mp3">a</a></audio>'
        '<video controls src="https://e.org/v.mp4" poster="javascript:x()" autoplay></video>'
    )
    assert clean_html(html) == (
        '<audio controls=""><a href="https://e.org/a.mp3">a</a></audio>'
        '<video controls="" src="https://e.org/v.mp4"></video>'
    )


_LINKS = st.sampled_from(
    ["a.png", "../up/b c.html", " spaced.html ", "#fn-1", "/root/", "?q=1&r=2", "é/ü.png", "https://x.example/a", "//cdn.example/x",
     "mailto:e@example.org", 'q"uote.html', "lt<gt>.html", "a\xa0b.png", "x.png 2x, y.png 400w", ""]
)  # fmt: skip
_TAGGED = st.builds(
    lambda tag, attribute, value, title, text: f'<{tag} title="{escape(title)}" {attribute}="{escape(value)}">{escape(text)}</{tag}>',
    st.sampled_from(["a", "img", "blockquote", "q", "source", "p"]),
    st.sampled_from(["href", "src", "cite", "srcset", "alt"]),
    _LINKS,
    st.sampled_from(['x href="a.html"', "<b>", "plain", "t\xa0t"]),
    st.text(alphabet="ab <&>\"'\xa0é", max_size=8),
)


@given(st.lists(_TAGGED, min_size=1, max_size=6))
def test_clean_html_has_only_its_link_attributes_rewritten(fragments: list[str]) -> None:
    import lxml.html

    html = clean_html("<p>" + "".join(fragments) + "</p>")
    out = absolutize(html, BASE)

    def elements(markup: str) -> list:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
        return [(e.tag, dict(e.attrib), e.text, e.tail) for e in root.iter()]

    before, after = elements(html), elements(out)
    assert [(tag, text, tail) for tag, _, text, tail in before] == [(tag, text, tail) for tag, _, text, tail in after]
    for (_, old, _, _), (_, new, _, _) in zip(before, after):
        assert old.keys() == new.keys()
        for name, value in old.items():
            if name in ("href", "src", "cite"):
                link = value.strip()
                kept = link.startswith(("#", "//")) or urlsplit(link).scheme
                assert new[name] == (link if kept else urljoin(BASE, link))
            elif name == "srcset":
                assert new[name] == resolved_srcset(value, BASE)
            else:
                assert new[name] == value
    # Every other byte is as clean_html wrote it.
    assert clean_html(out) == out


_NESTED = st.recursive(
    st.sampled_from(["text", "<br>", '<img src="a.png" alt="&lt;b&gt;">', "a &lt; b"]),
    lambda inner: st.builds(lambda tag, body: f"<{tag}>{''.join(body)}</{tag}>", st.sampled_from(["b", "i", "div", "span", "em"]), st.lists(inner, max_size=3)),
    max_leaves=20,
)


@given(st.lists(_NESTED, min_size=1, max_size=4), st.integers(min_value=0, max_value=4))
def test_the_quick_depth_check_agrees_with_flattening(parts: list[str], limit: int) -> None:
    from publisher.content.sanitize import _deeper_than, _flattened

    html = nh3.clean("".join(parts))
    assert _deeper_than(html, limit) == (_flattened(html, limit) != html)


_PROSE = st.recursive(
    st.sampled_from(["", " ", "Hello", "a &amp; b", "&lt;tag&gt;", "\xa0", "x<br>y", '<img src="a.png" alt="p>q">', "é"]),
    lambda inner: st.builds(
        lambda tag, body: f"<{tag}>{''.join(body)}</{tag}>",
        st.sampled_from(["p", "b", "blockquote", "pre", "div", "li", 'p class="lead"']),
        st.lists(inner, max_size=3),
    ),
    max_leaves=12,
)


@given(st.lists(_PROSE, max_size=4))
def test_first_paragraph_text_reads_what_an_html_parser_reads(parts: list[str]) -> None:
    import lxml.html

    from publisher.content.sanitize import first_paragraph_text

    html = clean_html("".join(parts))
    if not html.strip():
        expected = ""
    else:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
        texts = [p.text_content().strip() for p in root.iter("p")]
        expected = next((text for text in texts if text), root.text_content().strip())
    assert first_paragraph_text(html) == expected


@given(st.lists(_TAGGED, min_size=1, max_size=6))
def test_html_known_to_be_clean_is_resolved_as_any_html_is(fragments: list[str]) -> None:
    html = clean_html("<div>" + "".join(fragments) + "</div>")
    assert absolutize(html, BASE, cleaned=True) == absolutize(html, BASE)


def test_a_quoted_greater_than_sign_does_not_hide_a_link() -> None:
    out = absolutize('<a title="a>b" href="x.html">x</a>', BASE)
    assert 'href="https://example.org/2024/01/post/x.html"' in out
