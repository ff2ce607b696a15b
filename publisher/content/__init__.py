"""The content stage: files and feed sources become the site's published
posts (readers, sanitising, the post cache, identity from the state store)."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "IdentityNotes": "publishing",
        "PostCache": "cache",
        "load_posts": "load",
        "publish": "publishing",
        "load_feed_sources": "sources",
    },
)

__all__ = [
    "IdentityNotes",
    "PostCache",
    "load_feed_sources",
    "load_posts",
    "publish",
]

if TYPE_CHECKING:
    from publisher.content.cache import PostCache
    from publisher.content.load import load_posts
    from publisher.content.publishing import IdentityNotes, publish
    from publisher.content.sources import load_feed_sources
