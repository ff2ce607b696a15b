"""HTML sanitising: what a post's HTML may carry into feeds and emails."""

from __future__ import annotations

import pytest

from publisher.sanitize import clean_html


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


def test_relative_links_and_images_become_absolute() -> None:
    from publisher.sanitize import absolutize

    base = "https://example.org/2024/01/post/"
    html = '<p><a href="../other/">o</a> <img src="pic.png" alt="p"> <a href="#fn1">1</a> <a href="https://x.example/">x</a></p>'
    out = absolutize(html, base)
    assert 'href="https://example.org/2024/01/other/"' in out
    assert 'src="https://example.org/2024/01/post/pic.png"' in out
    assert 'href="https://x.example/"' in out
    assert 'href="#fn1"' in out
    # Absolute-only HTML comes back untouched, byte for byte.
    plain = '<p><a href="https://x.example/">x</a> &amp; text</p>'
    assert absolutize(plain, base) == plain


def test_first_paragraph_text() -> None:
    from publisher.sanitize import first_paragraph_text

    assert first_paragraph_text("<p> </p><p>Hello <b>there</b></p><p>no</p>") == "Hello there"
    assert first_paragraph_text("<div>just text</div>") == "just text"
    assert first_paragraph_text("") == ""
