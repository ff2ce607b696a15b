"""Links to another post by its file (Hugo's ref, Jekyll's post_url and
link) point at that post's URL once every URL is known."""

from __future__ import annotations

import logging

import pytest

from publisher.model import Post
from publisher.content.references import resolve_references
from publisher.content.readers.shortcodes import ref_url

SITE = "https://example.org/"


def post(source: str, url: str, html: str = "<p>x</p>") -> Post:
    return Post(source=source, title=source, content_html=html, url=url)


POSTS = [
    post("posts/_posts/2016-07-26-name.md", "https://example.org/2016/07/name/"),
    post("posts/content/posts/bundle/index.md", "https://example.org/2024/05/bundle/"),
    post("posts/content/posts/other.md", "https://example.org/2024/01/other/"),
]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("2016-07-26-name", "https://example.org/2016/07/name/"),  # {% post_url %}
        ("_posts/2016-07-26-name.md", "https://example.org/2016/07/name/"),  # {% link %}
        ("posts/other.md", "https://example.org/2024/01/other/"),  # {{< ref >}}
        ("/posts/other", "https://example.org/2024/01/other/"),
        ("other.md#part-2", "https://example.org/2024/01/other/#part-2"),
        ("bundle", "https://example.org/2024/05/bundle/"),  # a page bundle's folder
    ],
)
def test_a_reference_points_at_the_post_its_target_names(target: str, expected: str) -> None:
    link = f'<p><a href="https://example.org/2020/01/from{ref_url(target)}">see</a></p>'
    posts = POSTS + [post("posts/from.md", "https://example.org/2020/01/from/", link)]
    resolved = resolve_references(posts, SITE)
    assert resolved[-1].content_html == f'<p><a href="{expected}">see</a></p>'
    assert resolved[:3] == POSTS


def test_a_target_no_post_has_links_to_the_site_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    link = f'<a href="https://example.org{ref_url("missing.md")}">x</a>'
    with caplog.at_level(logging.WARNING, logger="publisher.content"):
        (resolved,) = resolve_references([post("posts/a.md", "https://example.org/a/", link)], SITE)
    assert resolved.content_html == '<a href="https://example.org/">x</a>'
    assert "posts/a.md: no post is 'missing.md'" in caplog.text
