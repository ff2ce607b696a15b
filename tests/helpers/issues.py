"""A sample issue for the rendering and browser tests: the seed post and generated ones."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from publisher.model import Author, DigestList, Issue, Personal, Post, SiteInfo
from publisher.content.readers import ReadOptions
from ..conftest import SEED
from publisher.content.readers.text import read

TZ = ZoneInfo("America/New_York")


CREATED = datetime(2014, 6, 5, 11, 0, tzinfo=timezone.utc)


NASTY_NAME = '<script>alert(1)</script> "O\'Brien" & Søren'


SITE = SiteInfo(
    title="War in Context",
    url="https://example.org/",
    description="News and views",
    language="en",
    author=Author("Paul Woodward", "editor@example.org"),
    feeds_url="https://example.org/feeds/",
    timezone=TZ,
)


def recipient(name: str = NASTY_NAME, email: str = "soren@example.com") -> Personal:
    # The query strings carry & and ' so that attribute escaping is exercised.
    return Personal(
        email=email,
        name=name,
        unsubscribe_url="https://example.org/unsubscribe?t=a'b&list=daily",
        preferences_url="https://example.org/preferences?t=a'b&list=daily",
        view_url="https://example.org/issues/daily/3/?t=a'b",
    )


def seed_post() -> Post:
    """The seed post as the content stage publishes it: id, url and date."""
    post = read(SEED.read_bytes(), "seeds/000_876ff53b270cd303.txt", ReadOptions(timezone=TZ))
    return dataclasses.replace(
        post,
        id="tag:example.org,2014-06-04:/2014/06/04/us-hamas-back-channels/",
        slug="us-hamas-back-channels",
        url="https://example.org/2014/06/04/us-hamas-back-channels/",
        # 03:30 UTC is the evening before in New York: the date shown must be 4 June.
        date=datetime(2014, 6, 5, 3, 30, tzinfo=timezone.utc),
    )


def generated_post(number: int, paragraphs: int = 3, image: bool = False) -> Post:
    """A Markdown-like post with a link, a quote and a list in its HTML."""
    body = "".join(
        f"<p>Paragraph {k} of generated post {number}, marker body{number}x. "
        "The ministers were independent technocrats, the officials said, and the "
        f"talks would go on. See <a href=\"https://news.example.com/{number}/{k}\">the report</a>.</p>"
        for k in range(paragraphs)
    )
    body += "<blockquote><p>A quoted line.</p></blockquote><ul><li>first</li><li>second</li></ul>"
    return Post(
        source=f"posts/generated-{number}.md",
        title=f"Generated post {number}: O'Brien & <co> on “talks”",
        content_html=body,
        summary=f"Summary of generated post {number}, marker summary{number}x.",
        date=datetime(2014, 6, 4, 12, 0, tzinfo=timezone.utc) - timedelta(hours=number),
        id=f"tag:example.org,2014-06-04:/generated-{number}/",
        url=f"https://example.org/2014/06/04/generated-{number}/",
        author=Author("Guest Writer"),
        image=f"https://example.org/images/{number}.png" if image else None,
    )


def sample_issue(*, full_content: bool = False, posts: tuple[Post, ...] | None = None, **options) -> Issue:
    if posts is None:
        posts = (seed_post(), generated_post(1, image=True), generated_post(2))
    digest = DigestList(
        name="daily", title="Daily digest", description="The day's posts, every morning.",
        full_content=full_content, **options,
    )
    return Issue(list=digest, number=3, posts=posts, created=CREATED, web_url="https://example.org/issues/daily/3/")


def long_posts(count: int) -> tuple[Post, ...]:
    return tuple(generated_post(n, paragraphs=12) for n in range(1, count + 1))

