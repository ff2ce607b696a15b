"""The content model: frozen values passed between stages.

Readers produce ``Post`` values; the content stage fills in identity
(``id``, ``url``) and dates and gathers them into a ``Site``; the feed and
digest stages only read them. Nothing here does I/O or imports the rest of
the package.

    post = Post(source="posts/hello.txt", title="Hello", content_html="<p>Hi</p>")
    published = dataclasses.replace(post, id="tag:example.org,2024-01-01:/hello/")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo


# Every state a subscriber can be in (the store keeps one per address), from
# the one that is mailed to the strictest (where the columns of a subscriber
# file disagree, the strictest wins). ``publisher.mail.subscribers`` has the
# rules of moving from one to another.
SUBSCRIBER_STATUSES = ("active", "pending", "unsubscribed", "bounced", "complained")


@dataclass(frozen=True)
class Author:
    name: str
    email: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of the author's own text (plain text, not HTML)."""

    text: str


@dataclass(frozen=True)
class Excerpt:
    """A passage quoted from a source, as in "BBC News reports: …".

    ``lead`` is the verb phrase after the source's name ("reports");
    ``more`` is the continue-reading marker as written ("[Continue reading…]")
    and ``more_url`` where it leads, when known.
    """

    source: str
    lead: str
    paragraphs: tuple[str, ...]
    source_url: str | None = None
    more: str | None = None
    more_url: str | None = None


Block = Paragraph | Excerpt


@dataclass(frozen=True)
class Comment:
    """A reader's comment kept with its post (plain-text paragraphs).

    ``number`` is its position under the post (1-based); ``id`` the source's
    own id where it has one; ``parent`` the ``number`` of the comment it
    answers, for threaded comments.
    """

    number: int
    author: str
    paragraphs: tuple[str, ...]
    date: datetime | None = None
    id: str | None = None
    parent: int | None = None
    author_url: str | None = None


@dataclass(frozen=True)
class Enclosure:
    """A media file a post carries (a podcast episode, a video): RSS's
    ``<enclosure>``, Atom's ``link rel="enclosure"``, JSON Feed's
    ``attachments``. ``length`` is in bytes, 0 when unknown."""

    url: str
    type: str
    length: int = 0


@dataclass(frozen=True)
class Post:
    """One post, as read from a file and, after the content stage, published.

    ``source`` is the file's path relative to the site (the key the state
    store remembers it by). ``blocks`` keeps the structure of plain-text
    posts; every post has ``content_html``. ``date`` and ``updated`` are
    timezone-aware (UTC once the content stage has run).
    """

    source: str
    title: str
    content_html: str
    blocks: tuple[Block, ...] = ()
    summary: str | None = None
    date: datetime | None = None
    updated: datetime | None = None
    id: str | None = None
    slug: str | None = None
    url: str | None = None
    author: Author | None = None
    tags: tuple[str, ...] = ()
    draft: bool = False
    image: str | None = None
    comments: tuple[Comment, ...] = ()
    comments_closed: bool = False
    comments_heading: str | None = None
    enclosures: tuple[Enclosure, ...] = ()
    # Stop publishing after this (Hugo's expiryDate).
    expires: datetime | None = None
    # The slug was made from the file name, not given: on a clash it steps aside.
    derived_slug: bool = False
    # Other URLs of the post, as written (Hugo's ``aliases``: "/2019/old-name/"):
    # each gets a page that redirects to the post's.
    aliases: tuple[str, ...] = ()

    @property
    def excerpts(self) -> tuple[Excerpt, ...]:
        return tuple(b for b in self.blocks if isinstance(b, Excerpt))


@dataclass(frozen=True)
class SiteInfo:
    """What feeds and emails say about the site itself."""

    title: str
    url: str
    description: str
    language: str
    author: Author
    feeds_url: str
    timezone: tzinfo = timezone.utc


@dataclass(frozen=True)
class Site:
    """The published posts, newest first, with the site they belong to."""

    info: SiteInfo
    posts: tuple[Post, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DigestList:
    """A mailing list's digest settings (``[lists.NAME]`` in the config)."""

    name: str
    title: str
    description: str = ""
    max_posts: int = 20
    full_content: bool = False
    max_bytes: int = 100_000
    subject: str = "{{ site.title }}: {{ posts[0].title }}{% if posts|length > 1 %} and {{ posts|length - 1 }} more{% endif %}"
    preheader: str = "{{ posts|map(attribute='title')|join(' · ') }}"
    schedule: str | None = None  # as written in the config, e.g. "daily at 07:00", or "immediately"
    catch_up: bool = True
    max_late: str = "12 hours"
    mode: str = "digest"  # "digest": the new posts in one email; "post": each new post in its own
    backfill: int = 0  # the first issue also holds the newest N posts
    backdated: str = "7 days"  # how far before the cut-off a post first seen after it may be dated
    test_prefix: str = "[Test] "  # leads the subject of `publisher send --to` test messages


@dataclass(frozen=True)
class Issue:
    """One digest of a list: the posts it carries, newest first.

    ``number`` counts the list's issues from 1; ``web_url`` is where its web
    version is (the "view in browser" link).
    """

    list: DigestList
    number: int
    posts: tuple[Post, ...]
    created: datetime
    web_url: str


@dataclass(frozen=True)
class Personal:
    """What differs between two recipients of one issue."""

    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str
    view_url: str


@dataclass(frozen=True)
class RenderedIssue:
    """An issue rendered once: HTML (CSS inlined) and text, with placeholders
    where ``Personal`` fields go; ``personalize`` in the renderer fills them."""

    subject: str
    preheader: str
    html: str
    text: str
    full_posts: int
    linked_posts: int


@dataclass(frozen=True)
class Subscriber:
    """A subscriber: ``status`` is the address's own (active, pending,
    unsubscribed, bounced, complained); ``lists`` the lists it is active on."""

    id: int
    email: str
    name: str
    status: str
    lists: tuple[str, ...]
    source: str
    created: datetime
    changed: datetime
