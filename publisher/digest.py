"""Digests: which posts a list's next issue carries.

The next issue of a list holds the published posts that no earlier issue of
that list carried (the state store records each issue's posts), newest
first, at most the list's ``max_posts``. No new posts, no issue.

    issue = next_issue(site, config.lists["daily"], store, now=now)
    if issue is None: ...            # nothing new for this list
"""

from __future__ import annotations

from datetime import datetime

from publisher.model import DigestList, Issue, Site, SiteInfo
from publisher.store import StateStore


def issue_url(site: SiteInfo, list_name: str, number: int) -> str:
    """Where the web version of an issue lives (the "view in browser" link)."""
    return f"{site.url}issues/{list_name}/{number}/"


def next_issue(
    site: Site, digest_list: DigestList, store: StateStore, *, now: datetime, force: bool = False
) -> Issue | None:
    """The list's next issue, or None when it has no new posts.

    ``force`` gives the newest posts even when all were sent (a preview).
    """
    sent = store.issued_post_ids(digest_list.name)
    posts = tuple(p for p in site.posts if p.id not in sent)[: digest_list.max_posts]
    if not posts and force:
        posts = site.posts[: digest_list.max_posts]
    if not posts:
        return None
    number = store.next_issue_number(digest_list.name)
    return Issue(
        list=digest_list,
        number=number,
        posts=posts,
        created=now,
        web_url=issue_url(site.info, digest_list.name, number),
    )
