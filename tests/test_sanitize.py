"""HTML sanitising: what a post's HTML may carry into feeds and emails."""

from __future__ import annotations

import pytest

from publisher.content.sanitize import absolutize, clean_html


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
