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
