"""Links from one post to another by its file: Hugo's ``ref``/``relref``,
Jekyll's ``{% link %}`` and ``{% post_url %}``.

A reader cannot know another post's URL, so it writes such a link as
``/.publisher-ref/<target>`` (``readers.shortcodes.ref_url``); once every
published post has its URL, ``resolve_references`` points each at the post
whose file the target names: its path under the site (``posts/a.md``),
that path's end (``a.md``, ``_posts/2016-07-26-name.md``), or its name
without the extension (``2010-07-21-name``, ``a``; a page bundle's folder for
its ``index.md``). A target no post matches is logged and links to the site.

    posts = resolve_references(posts, site_url)
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import PurePosixPath
from urllib.parse import unquote

from publisher.model import Post
from publisher.content.readers.shortcodes import REF_PREFIX

log = logging.getLogger("publisher.content")

_REF = re.compile(r"""(?P<quote>["'])[^"'<>]*?""" + re.escape(REF_PREFIX) + r"""(?P<target>[^"'#<>]*)(?P<anchor>#[^"'<>]*)?(?P=quote)""")


def _names(source: str) -> list[str]:
    """The names a post's file answers to, most specific first."""
    path = PurePosixPath(source.split("#", 1)[0])
    parts = path.parts
    names = ["/".join(parts[i:]) for i in range(len(parts))]
    names += ["/".join(path.with_suffix("").parts[i:]) for i in range(len(parts))]
    if path.stem in ("index", "_index") and len(parts) > 1:
        names += ["/".join(parts[i:-1]) for i in range(len(parts) - 1)]
    return names


def _index(posts: list[Post]) -> dict[str, str]:
    found: dict[str, str] = {}
    for post in posts:
        if post.url is None:
            continue
        for name in _names(post.source):
            found.setdefault(name.lower(), post.url)
    return found


def _lookup(index: dict[str, str], target: str) -> str | None:
    wanted = unquote(target).strip().strip("/").lower()
    if not wanted:
        return None
    return index.get(wanted) or index.get(str(PurePosixPath(wanted).with_suffix("")))


def resolve_references(posts: list[Post], site_url: str) -> list[Post]:
    """``posts`` with every link to another post's file pointed at its URL."""
    if not any(REF_PREFIX in post.content_html for post in posts):
        return posts
    index = _index(posts)
    resolved: list[Post] = []
    for post in posts:
        if REF_PREFIX not in post.content_html:
            resolved.append(post)
            continue

        def point(match: re.Match[str], post: Post = post) -> str:
            url = _lookup(index, match["target"])
            if url is None:
                log.warning("%s: no post is %r; the link goes to the site", post.source, unquote(match["target"]))
                url = site_url
            return f"{match['quote']}{url}{match['anchor'] or ''}{match['quote']}"

        resolved.append(dataclasses.replace(post, content_html=_REF.sub(point, post.content_html)))
    return resolved
