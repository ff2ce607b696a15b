"""The content stage: files and feed sources become the site's published
posts (readers, sanitising, the post cache, identity from the state store)."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "PostCache": "posts",
        "load_posts": "posts",
        "publish": "posts",
        "load_feed_sources": "sources",
    },
)

__all__ = [
    "PostCache",
    "load_feed_sources",
    "load_posts",
    "publish",
]

if TYPE_CHECKING:
    from publisher.content.posts import PostCache, load_posts, publish
    from publisher.content.sources import load_feed_sources
